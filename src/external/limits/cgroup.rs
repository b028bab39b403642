//! The groups one `Limits` makes: creating them below the driver's cgroup
//! (v2: enabling the controllers on the way), writing the cpu and memory
//! files of v1 and v2, killing what is in them, removing them, and the
//! process-wide lists of groups still to remove.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use parking_lot::Mutex;

use super::emulate;
use super::hierarchy::{Ctl, Place, Version};
use super::sys::kill;

/// The CFS period written with every quota (µs).
const PERIOD_US: u64 = 100_000;
/// The directory below the driver's cgroup that holds the children's groups.
const PARENT: &str = "unisock";

/// One cgroup directory this Limits made (v2: one for every controller; v1:
/// one per hierarchy).
#[derive(Clone, Debug)]
pub(super) struct Dir {
    pub(super) path: PathBuf,
    pub(super) version: Version,
    pub(super) base: PathBuf,
    pub(super) emulated: bool,
}

impl Dir {
    pub(super) fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.file(name).exists()
    }

    pub(super) fn read(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.file(name)).ok()
    }

    pub(super) fn write(&self, name: &str, value: &str) -> Result<(), String> {
        self.write_io(name, value)
            .map_err(|e| self.write_error(name, value, &e))
    }

    fn write_io(&self, name: &str, value: &str) -> io::Result<()> {
        write_file(self.emulated, &self.file(name), value)
    }

    fn write_error(&self, name: &str, value: &str, e: &io::Error) -> String {
        format!("writing {value:?} to {}: {e}", self.file(name).display())
    }

    /// A "key value" line of a flat-keyed file (memory.events, cpu.stat...).
    pub(super) fn key(&self, name: &str, key: &str) -> Option<i64> {
        self.read(name)?.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            if k == key {
                v.trim().parse().ok()
            } else {
                None
            }
        })
    }

    pub(super) fn procs(&self) -> Vec<i32> {
        let me = std::process::id() as i32;
        self.read("cgroup.procs")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            // never ourselves, never a group (0 or negative)
            .filter(|&p: &i32| p > 0 && p != me)
            .collect()
    }

    /// SIGKILLs every process in the group (cgroup.kill where the kernel has it).
    pub(super) fn kill_all(&self) {
        if self.emulated {
            return;
        }
        if self.version == Version::V2
            && self.has("cgroup.kill")
            && self.write("cgroup.kill", "1").is_ok()
        {
            return;
        }
        // A process may fork while we read; a few rounds catch those.
        for _ in 0..20 {
            let procs = self.procs();
            if procs.is_empty() {
                return;
            }
            for p in procs {
                kill(p, libc::SIGKILL);
            }
        }
    }

    /// Removes the directory; true when it is gone.
    pub(super) fn remove(&self) -> bool {
        let r = if self.emulated {
            emulate::rmdir(&self.path)
        } else {
            fs::remove_dir(&self.path)
        };
        match r {
            Ok(()) => {
                if let Some(parent) = self.path.parent() {
                    // Only succeeds when no other group is left in it.
                    let _ = if self.emulated {
                        emulate::rmdir(parent)
                    } else {
                        fs::remove_dir(parent)
                    };
                }
                true
            }
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        }
    }

    /// Kills what is left, then removes the directory, waiting a little for
    /// killed processes to leave. True when it is gone.
    pub(super) fn kill_and_remove(&self) -> bool {
        if !self.path.exists() {
            return true;
        }
        self.kill_all();
        for _ in 0..25 {
            if self.remove() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
            self.kill_all();
        }
        false
    }
}

fn write_file(emulated: bool, path: &Path, value: &str) -> io::Result<()> {
    if emulated {
        return emulate::write(path, value);
    }
    // Every cgroup file exists already; never create one. One write(2).
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

fn mkdir(emulated: bool, path: &Path) -> io::Result<()> {
    if emulated {
        emulate::mkdir(path)
    } else {
        fs::create_dir(path)
    }
}

/// cgroup v2: makes the controllers available to the children of `dir`.
pub(super) fn enable(place: &Place, dir: &Path, ctls: &[Ctl]) -> Result<(), String> {
    let file = dir.join("cgroup.subtree_control");
    let have = fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let missing: Vec<String> = ctls
        .iter()
        .map(|c| c.name())
        .filter(|n| {
            !have
                .split_whitespace()
                .any(|t| t.trim_start_matches('+') == *n)
        })
        .map(|n| format!("+{n}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let line = missing.join(" ");
    write_file(place.emulated, &file, &line).map_err(|e| {
        if e.raw_os_error() == Some(libc::EBUSY) {
            format!(
                "cgroup v2 cannot enable {line} below {}: that cgroup holds processes, and v2 \
                 gives controllers only to the children of a cgroup without processes (run \
                 the driver in a leaf of a delegated subtree, e.g. systemd Delegate=yes)",
                dir.display()
            )
        } else {
            format!("writing {line:?} to {}: {e}", file.display())
        }
    })
}

/// Groups whose removal `Drop` could not finish; retried by later calls.
pub(super) static PENDING: Mutex<Vec<Dir>> = Mutex::new(Vec::new());
/// Groups left holding processes a mudlib keeps (`Limits::release`): removed
/// by later calls once empty, never killed.
pub(super) static LINGER: Mutex<Vec<Dir>> = Mutex::new(Vec::new());
/// `unisock` directories already swept of groups crashed drivers left.
static SWEPT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
pub(super) static COUNTER: AtomicU64 = AtomicU64::new(1);

pub(super) fn retry_pending() {
    PENDING.lock().retain(|d| !d.kill_and_remove());
    LINGER.lock().retain(|d| !d.remove());
}

/// Removes the empty groups of drivers that are gone (the first time this
/// process uses `parent`).
fn sweep_once(parent: &Path, emulated: bool) {
    if emulated {
        return;
    }
    {
        let mut swept = SWEPT.lock();
        if swept.iter().any(|p| p == parent) {
            return;
        }
        swept.push(parent.to_path_buf());
    }
    let me = std::process::id();
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some((pid, n)) = name.to_str().and_then(|n| n.split_once('.')) else {
            continue;
        };
        let (Ok(pid), Ok(_)) = (pid.parse::<u32>(), n.parse::<u64>()) else {
            continue;
        };
        if pid != me && !Path::new(&format!("/proc/{pid}")).exists() {
            // rmdir fails while processes are in it: only empty groups go.
            let _ = fs::remove_dir(e.path());
        }
    }
}

/// Creates `<place.base>/unisock/<name>` with `ctls` available in it.
pub(super) fn make_leaf(place: &Place, ctls: &[Ctl], name: &str) -> Result<Dir, String> {
    let parent = place.base.join(PARENT);
    let path = parent.join(name);
    let mut last = String::new();
    // Another Limits of this process may remove `parent` (its last group
    // gone) between our mkdirs: then start over.
    for _ in 0..3 {
        if place.version == Version::V2 {
            enable(place, &place.base, ctls)?;
        }
        match mkdir(place.emulated, &parent) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", parent.display())),
        }
        sweep_once(&parent, place.emulated);
        if place.version == Version::V2 {
            if let Err(e) = enable(place, &parent, ctls) {
                if parent.exists() {
                    return Err(e);
                }
                last = e;
                continue;
            }
        }
        match mkdir(place.emulated, &path) {
            Ok(()) => {
                return Ok(Dir {
                    path,
                    version: place.version,
                    base: place.base.clone(),
                    emulated: place.emulated,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                last = format!("cannot create {}: {e}", path.display())
            }
            Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
        }
    }
    Err(last)
}

pub(super) fn write_cpu(d: &Dir, percent: u32) -> Result<(), String> {
    let quota = u64::from(percent) * PERIOD_US / 100;
    match d.version {
        Version::V2 => d.write(
            "cpu.max",
            &if percent == 0 {
                format!("max {PERIOD_US}")
            } else {
                format!("{quota} {PERIOD_US}")
            },
        ),
        Version::V1 => {
            d.write("cpu.cfs_period_us", &PERIOD_US.to_string())?;
            d.write(
                "cpu.cfs_quota_us",
                &if percent == 0 {
                    "-1".to_string()
                } else {
                    quota.to_string()
                },
            )
        }
    }
}

/// Writes a memory limit (0: none), swap included where the kernel accounts
/// it; `old` is the limit in force (None: none). Returns whether swap is limited.
pub(super) fn write_memory(d: &Dir, bytes: u64, old: Option<u64>) -> Result<bool, String> {
    match d.version {
        Version::V2 => {
            d.write(
                "memory.max",
                &if bytes == 0 {
                    "max".to_string()
                } else {
                    bytes.to_string()
                },
            )?;
            let swap = d.has("memory.swap.max");
            if swap {
                d.write("memory.swap.max", if bytes == 0 { "max" } else { "0" })?;
            }
            if d.has("memory.oom.group") {
                d.write("memory.oom.group", "1")?;
            }
            Ok(swap)
        }
        Version::V1 => {
            let v = if bytes == 0 {
                "-1".to_string()
            } else {
                bytes.to_string()
            };
            let swap = d.has("memory.memsw.limit_in_bytes");
            // memsw must stay ≥ the memory limit: raise it first, lower it last.
            let raising = bytes == 0 || old.is_some_and(|o| bytes > o);
            if swap && raising {
                d.write("memory.memsw.limit_in_bytes", &v)?;
            }
            d.write_io("memory.limit_in_bytes", &v).map_err(|e| {
                let text = d.write_error("memory.limit_in_bytes", &v, &e);
                if e.raw_os_error() == Some(libc::EBUSY) {
                    format!(
                        "{text}: the group uses more than {bytes} bytes and the kernel could \
                         not reclaim enough"
                    )
                } else {
                    text
                }
            })?;
            if swap && !raising {
                d.write("memory.memsw.limit_in_bytes", &v)?;
            }
            Ok(swap)
        }
    }
}
