//! Opening what a check allowed, so that the kernel uses what was checked.
//!
//! A check resolves a path to its canonical form (no symbolic link, no
//! `..`) and compares it with the policy's directories; between that check
//! and the use, whoever may write into a directory on the way could swap a
//! component for a symbolic link pointing elsewhere. [`open_nofollow`]
//! therefore opens the canonical path one component at a time, each one
//! relative to the directory opened before it and with O_NOFOLLOW: a
//! component that became a symbolic link makes the open fail (ELOOP or
//! ENOTDIR) instead of leading out of the allowed tree. What was opened is
//! then used through its descriptor: read from it, or named by
//! `/proc/self/fd/N` for the calls that take a path (inotify, bind), which
//! the kernel resolves to the very inode opened.
//!
//! No unsafe code: the opens go through std's `OpenOptions` with custom
//! flags and `/proc/self/fd/N/name` paths (openat without the raw fd).

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// The path by which the kernel reaches what `f` refers to.
pub fn fd_path(f: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()))
}

/// An O_PATH descriptor of the directory `parent` holds as `name` (no
/// symbolic link followed).
fn open_dir_in(parent: &File, name: &OsStr) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(fd_path(parent).join(name))
}

/// Opens the canonical `path` (absolute, no `.` or `..`) without following
/// any symbolic link on the way: every directory with O_PATH, the last
/// component with `last` (whose flags include O_NOFOLLOW). A component
/// swapped for a symbolic link since the path was resolved fails with
/// ELOOP or ENOTDIR (see [`explain`]).
fn open_nofollow(path: &Path, last: &OpenOptions) -> io::Result<File> {
    let names: Vec<&OsStr> = path
        .components()
        .map(|c| match c {
            Component::RootDir => Ok(None),
            Component::Normal(n) => Ok(Some(n)),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a canonical path", path.display()),
            )),
        })
        .collect::<io::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    if !path.is_absolute() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not absolute", path.display()),
        ));
    }
    let root = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open("/")?;
    let Some((name, dirs)) = names.split_last() else {
        // "/" itself
        return last.open("/");
    };
    let mut dir = root;
    for n in dirs {
        dir = open_dir_in(&dir, n)?;
    }
    let f = last.open(fd_path(&dir).join(name))?;
    // O_PATH | O_NOFOLLOW opens a symbolic link itself rather than failing.
    if f.metadata()?.file_type().is_symlink() {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    Ok(f)
}

/// How the last component is opened.
pub enum Last {
    /// Read it (a PEM file).
    Read,
    /// Append to it, creating it 0644 if missing (a child's output file).
    Append,
    /// A directory to work in (O_PATH).
    Dir,
    /// Anything, not opened for I/O (O_PATH): a path to watch.
    Path,
}

/// Opens the canonical `path` as `how` says, following no symbolic link.
pub fn open(path: &Path, how: Last) -> io::Result<File> {
    let mut o = OpenOptions::new();
    match how {
        Last::Read => o.read(true).custom_flags(libc::O_NOFOLLOW),
        Last::Append => o
            .append(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW),
        Last::Dir => o
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW),
        Last::Path => o.read(true).custom_flags(libc::O_PATH | libc::O_NOFOLLOW),
    };
    open_nofollow(path, &o)
}

/// The text for an error of [`open`] on `path`: ELOOP and ENOTDIR mean a
/// symbolic link where the check saw none (or a file where it saw a
/// directory): the path changed between the check and the open.
pub fn explain(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ELOOP | libc::ENOTDIR) => format!(
            "{e}: it changed after it was checked (a symbolic link or a file where a directory \
             was); it is not followed"
        ),
        _ => e.to_string(),
    }
}
