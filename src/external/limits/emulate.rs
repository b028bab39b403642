//! A plain directory tree standing in for cgroupfs v2 in tests: mkdir makes
//! the interface files of the controllers the parent's subtree_control
//! enables; subtree_control accepts only controllers the directory is
//! offered; other files must exist to be written; rmdir refuses while a
//! child group exists.

use std::fs;
use std::io;
use std::path::Path;

fn tokens(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|t| t.trim_start_matches('+').to_string())
        .collect()
}

/// The interface files of controller `c`.
fn files(c: &str) -> &'static [&'static str] {
    match c {
        "cpu" => &["cpu.max"],
        "memory" => &[
            "memory.max",
            "memory.swap.max",
            "memory.events",
            "memory.current",
            "memory.oom.group",
        ],
        "pids" => &["pids.max", "pids.current"],
        _ => &[],
    }
}

/// Controller `c` becomes available in group `dir`.
fn offer(dir: &Path, c: &str) -> io::Result<()> {
    let list = dir.join("cgroup.controllers");
    let mut offered = tokens(&fs::read_to_string(&list).unwrap_or_default());
    if !offered.iter().any(|o| o == c) {
        offered.push(c.to_string());
    }
    fs::write(list, offered.join(" "))?;
    for f in files(c) {
        if !dir.join(f).exists() {
            fs::write(dir.join(f), "")?;
        }
    }
    Ok(())
}

pub(super) fn mkdir(path: &Path) -> io::Result<()> {
    fs::create_dir(path)?;
    for f in [
        "cgroup.controllers",
        "cgroup.procs",
        "cgroup.subtree_control",
        "cgroup.kill",
        "cpu.stat",
    ] {
        fs::write(path.join(f), "")?;
    }
    let parent = path.parent().unwrap_or(path);
    for c in tokens(&fs::read_to_string(parent.join("cgroup.subtree_control"))?) {
        offer(path, &c)?;
    }
    Ok(())
}

pub(super) fn write(path: &Path, value: &str) -> io::Result<()> {
    if !path.exists() {
        return Err(io::Error::from(io::ErrorKind::NotFound));
    }
    if path.ends_with("cgroup.subtree_control") {
        let dir = path.parent().unwrap_or(path);
        let offered = tokens(&fs::read_to_string(dir.join("cgroup.controllers"))?);
        let mut on = tokens(&fs::read_to_string(path)?);
        for t in tokens(value) {
            if !offered.contains(&t) {
                return Err(io::Error::from_raw_os_error(libc::ENOENT));
            }
            if !on.contains(&t) {
                // the groups below get the controller's files
                for e in fs::read_dir(dir)?.flatten() {
                    if e.file_type()?.is_dir() {
                        offer(&e.path(), &t)?;
                    }
                }
                on.push(t);
            }
        }
        return fs::write(path, on.join(" "));
    }
    fs::write(path, value)
}

pub(super) fn rmdir(path: &Path) -> io::Result<()> {
    for e in fs::read_dir(path)?.flatten() {
        if e.file_type()?.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
    }
    fs::remove_dir_all(path)
}
