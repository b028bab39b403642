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
    /// Read it (a PEM file, a child's stdin): a regular file only.
    Read,
    /// Append to it, creating it 0644 if missing (a child's output file):
    /// a regular file only.
    Append,
    /// A directory to work in (O_PATH).
    Dir,
    /// Anything, not opened for I/O (O_PATH): a path to watch.
    Path,
}

/// Options for reading (`append` false) or appending to a file, never
/// blocking in the open itself: a FIFO (or a device) would otherwise hold
/// the driver's thread until a peer opens its other end. `create` makes a
/// missing file 0644; `nofollow` refuses a symbolic link as the last name.
fn io_options(append: bool, create: bool, nofollow: bool) -> OpenOptions {
    let mut o = OpenOptions::new();
    if append {
        o.append(true).create(create).mode(0o644);
    } else {
        o.read(true);
    }
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if nofollow {
        flags |= libc::O_NOFOLLOW;
    }
    o.custom_flags(flags);
    o
}

/// The error for what is not a regular file (`t` is its type).
fn not_regular(t: std::fs::FileType) -> io::Error {
    use std::os::unix::fs::FileTypeExt;
    let kind = if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    };
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {kind}; only a regular file is used"),
    )
}

/// `f` if it is a regular file, made blocking again (it is read whole, or
/// handed to a child as its stdin or output, which expects blocking I/O).
fn regular(f: File) -> io::Result<File> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let t = f.metadata()?.file_type();
    if !t.is_file() {
        return Err(not_regular(t));
    }
    let fd = f.as_raw_fd();
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
    Ok(f)
}

/// Opens the regular file `probe` (an O_PATH descriptor) refers to, for
/// reading or appending: through `/proc/self/fd/N`, so the very inode that
/// was looked at is opened, and nothing else is ever opened (no device's
/// open side effects, no FIFO).
fn reopen(probe: &File, append: bool) -> io::Result<File> {
    let t = probe.metadata()?.file_type();
    if !t.is_file() {
        return Err(not_regular(t));
    }
    regular(io_options(append, false, false).open(fd_path(probe))?)
}

fn probe_options(nofollow: bool) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true).custom_flags(if nofollow {
        libc::O_PATH | libc::O_NOFOLLOW
    } else {
        libc::O_PATH
    });
    o
}

/// Opens the canonical `path` as `how` says, following no symbolic link.
/// Read and Append open a regular file only (anything else is refused
/// with an InvalidInput error saying what it is), without ever blocking.
pub fn open(path: &Path, how: Last) -> io::Result<File> {
    let mut o = OpenOptions::new();
    match how {
        Last::Read | Last::Append => {
            let append = matches!(how, Last::Append);
            return match open_nofollow(path, &probe_options(true)) {
                Ok(probe) => reopen(&probe, append),
                Err(e) if append && e.kind() == io::ErrorKind::NotFound => {
                    regular(open_nofollow(path, &io_options(true, true, true))?)
                }
                Err(e) => Err(e),
            };
        }
        Last::Dir => o
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW),
        Last::Path => o.read(true).custom_flags(libc::O_PATH | libc::O_NOFOLLOW),
    };
    open_nofollow(path, &o)
}

/// Opens `path` as given (relative to the working directory, links
/// followed) for reading or appending (created 0644 when missing), as an
/// open policy does: like [`open`], a regular file only, never blocking.
pub fn open_as_given(path: &Path, append: bool) -> io::Result<File> {
    match probe_options(false).open(path) {
        Ok(probe) => reopen(&probe, append),
        Err(e) if append && e.kind() == io::ErrorKind::NotFound => {
            regular(io_options(true, true, false).open(path)?)
        }
        Err(e) => Err(e),
    }
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
