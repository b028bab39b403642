//! Resource limits for one external child: CPU (EXTERNAL_CPU_LIMIT, 155),
//! memory (EXTERNAL_MEMORY_LIMIT, 156), a process count (the sandbox's
//! "processes" key), open files and nice value (EXTERNAL_FILE_LIMIT 157,
//! EXTERNAL_PRIORITY 154), set before exec and changed while the child runs
//! (`external_set_resource_limits`), and reported as they are enforced
//! (`external_get_process_stats`'s "limits").
//!
//! It is for the limits only: starting, reaping and killing the child stay in
//! `spawn` and `process`. A `Limits` lives from just before the spawn to just
//! after the reap:
//!
//! ```text
//! let mut l = Limits::prepare(&wanted)?;      // parent: cgroups made and written
//! let setup = l.child_setup();                // moved into Command::pre_exec
//! // pre_exec(move || setup.apply())          // child: joins the cgroups, rlimits, nice
//! l.started(pid);
//! // timer: while let Some(d) = l.next_tick() { after d: l.tick() }
//! // on exit: l.signal_members(SIGTERM) … l.populated() … l.signal_members(SIGKILL)
//! // then: reason "limit" when l.limit_hit(&ended); l.cleanup() (or l.release())
//! ```
//!
//! Decisions:
//! - **Where the cgroups go.** Below the driver's own cgroup (from
//!   /proc/self/cgroup and /proc/self/mountinfo), in a `unisock` directory and
//!   then `<driver pid>.<n>`; so a child stays inside whatever limits the
//!   driver itself runs under, and a delegated subtree is all the driver
//!   needs. Each controller is looked up separately: in the cgroup v2
//!   hierarchy when it offers the controller, else in the v1 hierarchy that
//!   mounts it (hybrid hosts have both). The `unisock` directory is removed
//!   when its last child group goes; a group a crashed driver left empty is
//!   removed the first time another driver uses that directory.
//! - **cgroup v2 and "no internal processes".** A v2 cgroup can hand
//!   controllers down only if it holds no processes itself (the root
//!   excepted). When the driver's own cgroup holds the driver, enabling the
//!   controller fails with EBUSY; that is reported and the fallback used.
//! - **Fallbacks.** `UNISOCK_EXTERNAL_CGROUPS=off` (or 0/no/false; read when
//!   cgroups are first needed) skips
//!   cgroups. CPU: RLIMIT_CPU, with the soft limit raised by `tick` about once
//!   a second to `floor(percent/100 × (age + 1 s)) + 1` seconds for every
//!   process of the child's tree (each by its own age); the extra second
//!   covers the time until the next tick, or a process using exactly its
//!   share would be killed between ticks. Hard = soft + 2 when the driver may
//!   raise hard limits (CAP_SYS_RESOURCE); without it the hard limit cannot
//!   follow, so `tick` itself SIGKILLs a process past soft + 2. Memory:
//!   RLIMIT_AS, soft = hard, per process: allocations fail rather than the
//!   process being killed. Processes: RLIMIT_NPROC only when no pids cgroup
//!   exists (it counts every process of the uid, so next to a pids cgroup it
//!   would only do harm), and only when it binds the child (not root, no
//!   CAP_SYS_RESOURCE/CAP_SYS_ADMIN); otherwise `prepare` fails rather than
//!   claim a limit.
//! - **"limit" as the exit reason**: SIGKILL with an OOM kill counted by the
//!   memory cgroup (v2 memory.events `oom_kill`, v1 memory.oom_control
//!   `oom_kill`, or failcnt > 0 on kernels without that line); or, with the
//!   CPU fallback, SIGXCPU, or SIGKILL when `tick` sent it or the CPU time
//!   reached the hard limit. CPU cgroups throttle and never kill.
//! - **While running** (`set_running`): a limit the child already has is
//!   rewritten in place (cgroup file, or prlimit on every process of the
//!   tree). A CPU or memory limit it did not have gets a new cgroup the tree
//!   is moved into (memory already charged stays with the old group, which the
//!   report says), else the fallback. Files: prlimit(RLIMIT_NOFILE) on each
//!   process of the tree; priority: setpriority on each of their threads.
//!   The values are checked first; an OS refusal names what was applied.
//! - **What is left after the child's exit** is the endpoint's business
//!   (`process`: SIGTERM, a grace, SIGKILL, on the reactor's timers): it asks
//!   `populated` and `signal_members` here, which reach every process of the
//!   groups, also those that left the child's process group with setsid.
//! - **Cleanup** kills whatever is still in the groups (cgroup.kill where it
//!   exists, else SIGKILL to each pid of cgroup.procs), waits at most ~25 ms
//!   for them to go, and removes the directories. Groups that cannot be
//!   removed yet are kept (and, from `Drop`, queued process-wide) and retried
//!   by later calls, so nothing stays behind for long. `release` is the
//!   other end (kill_mode "process"): nothing is killed, and a group that
//!   still holds processes is removed by a later call once it is empty.
//! - Files and priority may be given here too, so that one object reports
//!   every limit; `ChildSetup::apply` then sets them as `sys::in_child` does
//!   (doing both is harmless).
//!
//! The only unsafe code is the system calls (prlimit, setpriority, kill,
//! sysconf, and open/write/setrlimit in the child), each with its SAFETY note.

use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::sys::{self, clk_tck, kill, proc_stat as stat, Ended};
use crate::value::Value;

/// The environment variable that, set to "off", makes `prepare` use the
/// rlimit fallbacks even where cgroups are writable.
pub const ENV_CGROUPS: &str = "UNISOCK_EXTERNAL_CGROUPS";
/// How often `tick` wants to run while the CPU fallback is in use.
pub const TICK: Duration = Duration::from_secs(1);
/// The smallest memory limit (EXTERNAL_MEMORY_LIMIT).
pub const MIN_MEMORY: u64 = crate::options::validate::external::MIN_MEMORY as u64;
/// The CFS period written with every quota (µs).
const PERIOD_US: u64 = 100_000;
/// The directory below the driver's cgroup that holds the children's groups.
const PARENT: &str = "unisock";
/// Most processes a tree walk visits.
const MAX_TREE: usize = 4096;
const CAP_SYS_ADMIN: u32 = 21;

/// What the options ask for. None: no limit of that kind.
#[derive(Clone, Debug, Default)]
pub struct Wanted {
    /// Percent of one core, 1..=100 × cores.
    pub cpu_percent: Option<u32>,
    /// Bytes, at least MIN_MEMORY.
    pub memory: Option<u64>,
    /// Most processes (and threads, for a pids cgroup) in the child's tree.
    pub processes: Option<u64>,
    /// RLIMIT_NOFILE, 3..=1048576.
    pub files: Option<u64>,
    /// Nice value, -20..=19.
    pub priority: Option<i32>,
    /// The uid the child will run as, when it is switched (EXTERNAL_USER);
    /// None: the driver's. Decides whether RLIMIT_NPROC binds it.
    pub child_uid: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctl {
    Cpu,
    Memory,
    Pids,
}

impl Ctl {
    fn name(self) -> &'static str {
        match self {
            Ctl::Cpu => "cpu",
            Ctl::Memory => "memory",
            Ctl::Pids => "pids",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// Where one controller can be used: the driver's own cgroup directory in
/// the hierarchy that offers it.
#[derive(Clone, Debug)]
struct Place {
    version: Version,
    base: PathBuf,
    /// Tests: a plain directory tree standing in for cgroupfs (see `emulate`).
    emulated: bool,
}

/// For each controller, its place or why there is none.
#[derive(Clone, Debug)]
struct Hierarchies {
    cpu: Result<Place, String>,
    memory: Result<Place, String>,
    pids: Result<Place, String>,
}

impl Hierarchies {
    fn get(&self, c: Ctl) -> &Result<Place, String> {
        match c {
            Ctl::Cpu => &self.cpu,
            Ctl::Memory => &self.memory,
            Ctl::Pids => &self.pids,
        }
    }

    fn none(why: &str) -> Hierarchies {
        Hierarchies {
            cpu: Err(why.to_string()),
            memory: Err(why.to_string()),
            pids: Err(why.to_string()),
        }
    }

    /// From the environment variable and this process's mounts and cgroups.
    fn current() -> Hierarchies {
        let off =
            |v: String| ["off", "0", "no", "false"].contains(&v.to_ascii_lowercase().as_str());
        if std::env::var(ENV_CGROUPS).is_ok_and(off) {
            return Hierarchies::none(&format!("cgroups are turned off ({ENV_CGROUPS}=off)"));
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Hierarchies::parse(&mountinfo, &own, |p| fs::read_to_string(p).ok())
    }

    /// `mountinfo` and `own` are /proc/self/mountinfo and /proc/self/cgroup;
    /// `read` reads a file (a v2 cgroup's cgroup.controllers).
    fn parse(mountinfo: &str, own: &str, read: impl Fn(&Path) -> Option<String>) -> Hierarchies {
        let mut v2_mount: Option<(String, String)> = None;
        let mut v1_mounts: Vec<(Vec<String>, String, String)> = Vec::new();
        for line in mountinfo.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 5 || post.len() < 3 {
                continue;
            }
            let (root, point) = (unescape(pre[3]), unescape(pre[4]));
            match post[0] {
                "cgroup2" if v2_mount.is_none() => v2_mount = Some((root, point)),
                "cgroup" => {
                    let opts = post[2].split(',').map(str::to_string).collect();
                    v1_mounts.push((opts, root, point));
                }
                _ => {}
            }
        }
        let mut v2_path = None;
        let mut v1_paths: Vec<(Vec<&str>, &str)> = Vec::new();
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(ctls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if id == "0" && ctls.is_empty() {
                v2_path = Some(path);
            } else {
                v1_paths.push((ctls.split(',').collect(), path));
            }
        }
        let find = |c: Ctl| -> Result<Place, String> {
            let name = c.name();
            let mut why = Vec::new();
            match (&v2_mount, v2_path) {
                (Some((root, point)), Some(path)) => match below(point, root, path) {
                    Some(base) => {
                        let offered = read(&base.join("cgroup.controllers")).unwrap_or_default();
                        if offered.split_whitespace().any(|t| t == name) {
                            return Ok(Place {
                                version: Version::V2,
                                base,
                                emulated: false,
                            });
                        }
                        why.push(format!(
                            "cgroup v2 does not offer the {name} controller to {}",
                            base.display()
                        ));
                    }
                    None => why.push(format!(
                        "the driver's cgroup v2 group {path} is not visible under {point}"
                    )),
                },
                _ => why.push("no cgroup v2 hierarchy".to_string()),
            }
            let mount = v1_mounts
                .iter()
                .find(|(opts, _, _)| opts.iter().any(|o| o == name));
            let own = v1_paths.iter().find(|(ctls, _)| ctls.contains(&name));
            match (mount, own) {
                (Some((_, root, point)), Some((_, path))) => match below(point, root, path) {
                    Some(base) => {
                        return Ok(Place {
                            version: Version::V1,
                            base,
                            emulated: false,
                        })
                    }
                    None => why.push(format!(
                        "the driver's cgroup v1 {name} group {path} is not visible under {point}"
                    )),
                },
                _ => why.push(format!("no cgroup v1 hierarchy mounts {name}")),
            }
            Err(why.join("; "))
        };
        Hierarchies {
            cpu: find(Ctl::Cpu),
            memory: find(Ctl::Memory),
            pids: find(Ctl::Pids),
        }
    }
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(n) = s
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directory of cgroup `path` (as /proc/self/cgroup names it) under a
/// mount of the hierarchy whose root is `root`.
fn below(point: &str, root: &str, path: &str) -> Option<PathBuf> {
    let rest = if root == "/" {
        path
    } else {
        let rest = path.strip_prefix(root)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest
    };
    let mut dir = PathBuf::from(point);
    for part in rest.split('/').filter(|p| !p.is_empty()) {
        if part == ".." {
            return None;
        }
        dir.push(part);
    }
    Some(dir)
}

/// One cgroup directory this Limits made (v2: one for every controller; v1:
/// one per hierarchy).
#[derive(Clone, Debug)]
struct Dir {
    path: PathBuf,
    version: Version,
    base: PathBuf,
    emulated: bool,
}

impl Dir {
    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn has(&self, name: &str) -> bool {
        self.file(name).exists()
    }

    fn read(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.file(name)).ok()
    }

    fn write(&self, name: &str, value: &str) -> Result<(), String> {
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
    fn key(&self, name: &str, key: &str) -> Option<i64> {
        self.read(name)?.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            if k == key {
                v.trim().parse().ok()
            } else {
                None
            }
        })
    }

    fn procs(&self) -> Vec<i32> {
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
    fn kill_all(&self) {
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
    fn remove(&self) -> bool {
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
    fn kill_and_remove(&self) -> bool {
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
fn enable(place: &Place, dir: &Path, ctls: &[Ctl]) -> Result<(), String> {
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
static PENDING: Mutex<Vec<Dir>> = Mutex::new(Vec::new());
/// Groups left holding processes a mudlib keeps (`Limits::release`): removed
/// by later calls once empty, never killed.
static LINGER: Mutex<Vec<Dir>> = Mutex::new(Vec::new());
/// `unisock` directories already swept of groups crashed drivers left.
static SWEPT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static COUNTER: AtomicU64 = AtomicU64::new(1);

fn retry_pending() {
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
fn make_leaf(place: &Place, ctls: &[Ctl], name: &str) -> Result<Dir, String> {
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

/// How one limit is enforced.
#[derive(Clone, Debug)]
enum How {
    /// By the group; `moved`: the running tree was moved into it.
    Cgroup { dir: Dir, moved: bool },
    /// By an rlimit, because of `why_not_cgroup`.
    Rlimit { why_not_cgroup: String },
}

#[derive(Clone, Debug)]
struct Limit {
    value: u64,
    how: How,
    /// Memory cgroup: swap is limited too (memsw, or v2 memory.swap.max 0).
    swap: bool,
}

/// What the child does between fork and exec; owns everything it needs, so
/// that `apply` neither allocates nor locks.
#[derive(Clone, Debug, Default)]
pub struct ChildSetup {
    /// cgroup.procs files to write "0" (this process) to.
    procs: Vec<CString>,
    /// (resource, soft, hard).
    rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
    nice: Option<i32>,
}

impl ChildSetup {
    /// Joins the groups, then sets the rlimits and the nice value. Only
    /// async-signal-safe calls (open, write, close, setrlimit, setpriority)
    /// on data made before the fork; an error is the errno, which makes the
    /// spawn fail with it.
    pub fn apply(&self) -> io::Result<()> {
        for path in &self.procs {
            // SAFETY: `path` is a NUL-terminated string made before the fork;
            // open takes it and plain flags.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is open; the buffer is a static one-byte string.
            let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
            let err = io::Error::last_os_error();
            // SAFETY: `fd` is ours and closed once.
            unsafe { libc::close(fd) };
            if n != 1 {
                return Err(err);
            }
        }
        for &(resource, soft, hard) in &self.rlimits {
            let r = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            // SAFETY: `r` is a valid rlimit that setrlimit only reads.
            if unsafe { libc::setrlimit(resource, &r) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(n) = self.nice {
            // SAFETY: setpriority takes plain integers (who 0 = this process).
            if unsafe { libc::setpriority(libc::PRIO_PROCESS as _, 0, n) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// What the driver may do, found once per `prepare`.
#[derive(Clone, Copy, Debug)]
struct Env {
    /// CAP_SYS_RESOURCE: hard limits can be raised (the CPU fallback's hard
    /// limit follows the soft one).
    cap_resource: bool,
    /// RLIMIT_NPROC binds the child (not root, no CAP_SYS_RESOURCE/ADMIN).
    nproc_binds: bool,
    cores: u32,
}

impl Env {
    fn current(w: &Wanted) -> Env {
        // The driver's capabilities and the number of cores, read once (three
        // file reads that every spawn would otherwise pay).
        static DRIVER: std::sync::OnceLock<(bool, bool, u32)> = std::sync::OnceLock::new();
        let &(cap_resource, cap_admin, cores) = DRIVER.get_or_init(|| {
            (
                sys::has_cap(sys::CAP_SYS_RESOURCE),
                sys::has_cap(CAP_SYS_ADMIN),
                cores(),
            )
        });
        // SAFETY: getuid takes nothing and cannot fail.
        let uid = unsafe { libc::getuid() };
        let nproc_binds = match w.child_uid {
            Some(u) => u != 0,
            None => uid != 0 && !cap_resource && !cap_admin,
        };
        Env {
            cap_resource,
            nproc_binds,
            cores,
        }
    }
}

fn cores() -> u32 {
    // SAFETY: sysconf takes a plain integer.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as u32
}

/// Usage the cgroups know (they count the whole tree).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_ms: Option<i64>,
    pub memory_kb: Option<i64>,
}

/// The limits of one child, from before its spawn to after its reap.
pub struct Limits {
    /// Found when first needed (a limit may be added while running).
    places: Option<Hierarchies>,
    env: Env,
    name: String,
    /// Groups made, to join and to remove.
    dirs: Vec<Dir>,
    cpu: Option<Limit>,
    memory: Option<Limit>,
    processes: Option<Limit>,
    files: Option<u64>,
    priority: Option<i32>,
    setup: ChildSetup,
    pid: i32,
    /// The CPU fallback: the child's RLIMIT_CPU hard limit (s), and the
    /// driver's, which the child inherits when it cannot be changed.
    cpu_hard: u64,
    inherited_cpu_hard: u64,
    /// `tick` SIGKILLed the child for its CPU time.
    killed_by_limit: bool,
    /// An OOM kill seen by `cleanup` before the memory group went.
    oom_seen: bool,
}

fn cpu_allowance(percent: u32, age_ms: u64) -> u64 {
    u64::from(percent) * (age_ms + TICK.as_millis() as u64) / 100_000 + 1
}

impl Limits {
    /// In the parent before the spawn: makes the groups and writes their
    /// limits, or prepares the rlimit fallbacks. Nothing wanted: no group,
    /// no cost. Errors name the limit and why.
    pub fn prepare(w: &Wanted) -> Result<Limits, String> {
        let places = (w.cpu_percent.is_some() || w.memory.is_some() || w.processes.is_some())
            .then(Hierarchies::current);
        Limits::prepare_with(w, places, Env::current(w))
    }

    /// `places`: None finds them when first needed.
    fn prepare_with(w: &Wanted, places: Option<Hierarchies>, env: Env) -> Result<Limits, String> {
        if let Some(p) = w.cpu_percent {
            check_cpu(i64::from(p), env.cores, false)?;
        }
        if let Some(m) = w.memory {
            check_memory(i64::try_from(m).unwrap_or(i64::MAX), false)?;
        }
        if w.processes == Some(0) {
            return Err("processes: wants at least 1".into());
        }
        if let Some(f) = w.files {
            check_files(i64::try_from(f).unwrap_or(i64::MAX))?;
            let hard = sys::rlimit(libc::RLIMIT_NOFILE).1;
            if let Some(why) = super::nofile_refusal(f, hard, sys::nr_open(), env.cap_resource) {
                return Err(format!("files: {why}"));
            }
        }
        if let Some(n) = w.priority {
            check_priority(i64::from(n))?;
        }
        retry_pending();
        let mut l = Limits {
            places,
            env,
            name: format!(
                "{}.{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ),
            dirs: Vec::new(),
            cpu: None,
            memory: None,
            processes: None,
            files: w.files,
            priority: w.priority,
            setup: ChildSetup::default(),
            pid: 0,
            cpu_hard: 0,
            inherited_cpu_hard: sys::rlimit(libc::RLIMIT_CPU).1,
            killed_by_limit: false,
            oom_seen: false,
        };
        let mut rlimits = Vec::new();
        if let Some(p) = w.cpu_percent {
            let how = l.in_group(Ctl::Cpu, &[], |d| write_cpu(d, p));
            if let How::Rlimit { .. } = how {
                let soft = cpu_allowance(p, 0);
                let (soft, hard) = l.cpu_pair(soft);
                l.cpu_hard = hard;
                rlimits.push((libc::RLIMIT_CPU, soft, hard));
            }
            l.cpu = Some(Limit {
                value: u64::from(p),
                how,
                swap: false,
            });
        }
        if let Some(m) = w.memory {
            let mut swap = false;
            let how = l.in_group(Ctl::Memory, &[], |d| {
                swap = write_memory(d, m, None)?;
                Ok(())
            });
            let mut value = m;
            if let How::Rlimit { .. } = how {
                // Never above the driver's own hard limit, which the child inherits.
                value = m.min(sys::rlimit(libc::RLIMIT_AS).1);
                rlimits.push((libc::RLIMIT_AS, value, value));
            }
            l.memory = Some(Limit { value, how, swap });
        }
        if let Some(n) = w.processes {
            let how = l.in_group(Ctl::Pids, &[], |d| d.write("pids.max", &n.to_string()));
            if let How::Rlimit { why_not_cgroup } = &how {
                if !l.env.nproc_binds {
                    return Err(format!(
                        "processes: no pids cgroup can be used ({why_not_cgroup}), and \
                         RLIMIT_NPROC does not bind a child running as root or with \
                         CAP_SYS_RESOURCE"
                    ));
                }
                let hard = sys::rlimit(libc::RLIMIT_NPROC).1;
                rlimits.push((libc::RLIMIT_NPROC, n.min(hard), n.min(hard)));
            }
            l.processes = Some(Limit {
                value: n,
                how,
                swap: false,
            });
        }
        if let Some(f) = w.files {
            rlimits.push((libc::RLIMIT_NOFILE, f, f));
        }
        let mut procs = Vec::new();
        for d in &l.dirs {
            procs.push(
                CString::new(d.file("cgroup.procs").as_os_str().as_bytes())
                    .map_err(|_| format!("{}: a NUL in the path", d.path.display()))?,
            );
        }
        l.setup = ChildSetup {
            procs,
            rlimits,
            nice: w.priority,
        };
        Ok(l)
    }

    /// The CPU fallback's (soft, hard) for an allowance of `soft` seconds.
    fn cpu_pair(&self, soft: u64) -> (u64, u64) {
        if self.env.cap_resource {
            (soft, soft + 2)
        } else {
            (soft.min(self.inherited_cpu_hard), self.inherited_cpu_hard)
        }
    }

    /// Puts `ctl` in a group (made or reused; `pids`, when running, moved
    /// into a new one) and runs `write` on it; on any failure, the rlimit
    /// fallback with the reason.
    fn in_group(
        &mut self,
        ctl: Ctl,
        pids: &[i32],
        write: impl FnOnce(&Dir) -> Result<(), String>,
    ) -> How {
        let r = self.attach(ctl, pids).and_then(|(dir, moved)| {
            write(&dir)?;
            Ok((dir, moved))
        });
        match r {
            Ok((dir, moved)) => How::Cgroup { dir, moved },
            Err(why_not_cgroup) => How::Rlimit { why_not_cgroup },
        }
    }

    /// The group for `ctl`: the one already made in its hierarchy, or a new
    /// one that `pids` (the running tree, if any) are moved into.
    fn attach(&mut self, ctl: Ctl, pids: &[i32]) -> Result<(Dir, bool), String> {
        let place = self
            .places
            .get_or_insert_with(Hierarchies::current)
            .get(ctl)
            .clone()?;
        if let Some(d) = self.dirs.iter().find(|d| d.base == place.base) {
            if place.version == Version::V2 {
                enable(&place, &place.base, &[ctl])?;
                if let Some(parent) = d.path.parent() {
                    enable(&place, parent, &[ctl])?;
                }
            }
            return Ok((d.clone(), false));
        }
        let d = make_leaf(&place, &[ctl], &self.name)?;
        self.dirs.push(d.clone());
        for (i, p) in pids.iter().enumerate() {
            if let Err(e) = d.write("cgroup.procs", &p.to_string()) {
                // The child itself must get in; a descendant may have gone.
                if i == 0 {
                    return Err(e);
                }
            }
        }
        Ok((d, !pids.is_empty()))
    }

    /// What the child runs between fork and exec (moved into `pre_exec`).
    pub fn child_setup(&self) -> ChildSetup {
        self.setup.clone()
    }

    /// The child is running as `pid`.
    pub fn started(&mut self, pid: i32) {
        self.pid = pid;
    }

    /// When `tick` must run next: Some while the CPU fallback is in use.
    pub fn next_tick(&self) -> Option<Duration> {
        match &self.cpu {
            Some(Limit {
                how: How::Rlimit { .. },
                ..
            }) if self.pid > 0 => Some(TICK),
            _ => None,
        }
    }

    /// The CPU fallback: raises each process's RLIMIT_CPU to its share of
    /// its age (see the module doc); without CAP_SYS_RESOURCE, SIGKILLs a
    /// process 2 s past it. Returns when to run again.
    pub fn tick(&mut self) -> Option<Duration> {
        let next = self.next_tick()?;
        let percent = self.cpu.as_ref().map_or(0, |c| c.value as u32);
        let now_ms = boot_ms();
        let clk = clk_tck();
        for p in tree(self.pid) {
            let Some(st) = stat(p) else {
                continue;
            };
            let age_ms = now_ms.saturating_sub(st.start_ticks * 1000 / clk);
            let (soft, hard) = self.cpu_pair(cpu_allowance(percent, age_ms));
            if prlimit(p, libc::RLIMIT_CPU, soft, hard).is_ok() && p == self.pid {
                self.cpu_hard = hard;
            }
            if !self.env.cap_resource && st.cpu_ticks / clk > soft + 2 {
                kill(p, libc::SIGKILL);
                if p == self.pid {
                    self.killed_by_limit = true;
                }
            }
        }
        Some(next)
    }

    /// After the reap: whether a limit ended the child.
    pub fn limit_hit(&self, ended: &Ended) -> bool {
        let sig = ended.signal as i32;
        if sig == libc::SIGKILL && self.oom_killed() {
            return true;
        }
        match &self.cpu {
            Some(Limit {
                how: How::Rlimit { .. },
                ..
            }) => {
                sig == libc::SIGXCPU
                    || (sig == libc::SIGKILL
                        && (self.killed_by_limit
                            // killed by a finite hard limit (CAP_SYS_RESOURCE)
                            || i64::try_from(self.cpu_hard)
                                .ok()
                                .and_then(|h| h.checked_mul(1000))
                                .is_some_and(|h| h > 0 && ended.cpu_ms >= h)))
            }
            _ => false,
        }
    }

    /// Whether the memory group counted an OOM kill.
    fn oom_killed(&self) -> bool {
        if self.oom_seen {
            return true;
        }
        let Some(Limit {
            how: How::Cgroup { dir, .. },
            ..
        }) = &self.memory
        else {
            return false;
        };
        match dir.version {
            Version::V2 => dir.key("memory.events", "oom_kill").is_some_and(|n| n > 0),
            Version::V1 => match dir.key("memory.oom_control", "oom_kill") {
                Some(n) => n > 0,
                // kernels before 4.13: the limit was reached, and SIGKILL came
                None => dir
                    .read("memory.failcnt")
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .is_some_and(|n| n > 0),
            },
        }
    }

    /// Changes limits of the running child: a mapping with keys "cpu"
    /// (percent, 0 removes), "memory" (bytes, 0 removes), "files", "priority".
    /// All values are checked before any is applied.
    pub fn set_running(&mut self, limits: &Value) -> Result<(), String> {
        self.set_running_noting(limits, &mut Vec::new())
    }

    /// `set_running`, noting in `applied` the keys that took effect: when
    /// the kernel refuses one after others were applied (raising a hard
    /// limit without CAP_SYS_RESOURCE, say), those stay applied, and the
    /// caller records them.
    pub fn set_running_noting(
        &mut self,
        limits: &Value,
        applied: &mut Vec<&'static str>,
    ) -> Result<(), String> {
        let Value::Mapping(pairs) = limits else {
            return Err(format!(
                "wants a mapping with keys cpu, memory, files, priority, got {}",
                limits.describe()
            ));
        };
        let (mut cpu, mut memory, mut files, mut priority) = (None, None, None, None);
        for (k, v) in pairs {
            let key = k.as_str().unwrap_or("");
            let n = v.as_int().ok_or_else(|| {
                format!(
                    "{}: wants an int, got {}",
                    if key.is_empty() {
                        k.describe()
                    } else {
                        key.to_string()
                    },
                    v.describe()
                )
            })?;
            match key {
                "cpu" => {
                    check_cpu(n, self.env.cores, true)?;
                    cpu = Some(n as u32);
                }
                "memory" => {
                    check_memory(n, true)?;
                    memory = Some(n as u64);
                }
                "files" => {
                    check_files(n)?;
                    files = Some(n as u64);
                }
                "priority" => {
                    check_priority(n)?;
                    priority = Some(n as i32);
                }
                _ => {
                    return Err(format!(
                        "unknown key {}: the keys are cpu, memory, files, priority",
                        k.describe()
                    ))
                }
            }
        }
        if self.pid <= 0 {
            return Err("the process is not running".into());
        }
        applied.clear();
        let done = |applied: &[&str], e: String| {
            if applied.is_empty() {
                e
            } else {
                format!("{e} ({} applied)", applied.join(", "))
            }
        };
        if let Some(p) = cpu {
            self.set_cpu(p)
                .map_err(|e| done(applied, format!("cpu: {e}")))?;
            applied.push("cpu");
        }
        if let Some(m) = memory {
            self.set_memory(m)
                .map_err(|e| done(applied, format!("memory: {e}")))?;
            applied.push("memory");
        }
        if let Some(f) = files {
            self.set_files(f)
                .map_err(|e| done(applied, format!("files: {e}")))?;
            applied.push("files");
        }
        if let Some(n) = priority {
            self.set_priority(n)
                .map_err(|e| done(applied, format!("priority: {e}")))?;
            applied.push("priority");
        }
        Ok(())
    }

    fn set_cpu(&mut self, percent: u32) -> Result<(), String> {
        match self.cpu.as_ref().map(|c| c.how.clone()) {
            Some(How::Cgroup { dir, .. }) => {
                write_cpu(&dir, percent)?;
                if percent == 0 {
                    self.cpu = None;
                } else if let Some(c) = &mut self.cpu {
                    c.value = u64::from(percent);
                }
            }
            Some(How::Rlimit { .. }) => {
                if percent == 0 {
                    let (soft, hard) = if self.env.cap_resource {
                        (libc::RLIM_INFINITY, libc::RLIM_INFINITY)
                    } else {
                        (self.inherited_cpu_hard, self.inherited_cpu_hard)
                    };
                    on_tree(self.pid, |p| prlimit(p, libc::RLIMIT_CPU, soft, hard))
                        .map_err(|e| rlimit_error("RLIMIT_CPU", e))?;
                    self.cpu = None;
                    self.cpu_hard = 0;
                } else {
                    if let Some(c) = &mut self.cpu {
                        c.value = u64::from(percent);
                    }
                    self.tick();
                }
            }
            None if percent == 0 => {}
            None => {
                let tree = tree(self.pid);
                let how = self.in_group(Ctl::Cpu, &tree, |d| write_cpu(d, percent));
                self.cpu = Some(Limit {
                    value: u64::from(percent),
                    how,
                    swap: false,
                });
                // The fallback: the first tick sets the limits.
                self.tick();
            }
        }
        Ok(())
    }

    fn set_memory(&mut self, bytes: u64) -> Result<(), String> {
        match self.memory.as_ref().map(|m| (m.how.clone(), m.value)) {
            Some((How::Cgroup { dir, .. }, old)) => {
                let swap = write_memory(&dir, bytes, Some(old))?;
                if bytes == 0 {
                    self.memory = None;
                } else if let Some(m) = &mut self.memory {
                    m.value = bytes;
                    m.swap = swap;
                }
            }
            Some((How::Rlimit { .. }, _)) => {
                let v = if bytes == 0 {
                    libc::RLIM_INFINITY
                } else {
                    bytes
                };
                on_tree(self.pid, |p| prlimit(p, libc::RLIMIT_AS, v, v))
                    .map_err(|e| rlimit_error("RLIMIT_AS", e))?;
                if bytes == 0 {
                    self.memory = None;
                } else if let Some(m) = &mut self.memory {
                    m.value = bytes;
                }
            }
            None if bytes == 0 => {}
            None => {
                let tree = tree(self.pid);
                let mut swap = false;
                let how = self.in_group(Ctl::Memory, &tree, |d| {
                    swap = write_memory(d, bytes, None)?;
                    Ok(())
                });
                if let How::Rlimit { .. } = how {
                    on_tree(self.pid, |p| prlimit(p, libc::RLIMIT_AS, bytes, bytes))
                        .map_err(|e| rlimit_error("RLIMIT_AS", e))?;
                }
                self.memory = Some(Limit {
                    value: bytes,
                    how,
                    swap,
                });
            }
        }
        Ok(())
    }

    fn set_files(&mut self, n: u64) -> Result<(), String> {
        let hard = get_prlimit(self.pid, libc::RLIMIT_NOFILE)
            .map_err(|e| format!("reading the process's RLIMIT_NOFILE: {e}"))?
            .1;
        if let Some(why) =
            super::nofile_refusal(n, hard, sys::nr_open(), sys::has_cap(sys::CAP_SYS_RESOURCE))
        {
            return Err(why.replace("the driver's own", "the process's"));
        }
        on_tree(self.pid, |p| prlimit(p, libc::RLIMIT_NOFILE, n, n))
            .map_err(|e| rlimit_error("RLIMIT_NOFILE", e))?;
        self.files = Some(n);
        Ok(())
    }

    fn set_priority(&mut self, n: i32) -> Result<(), String> {
        let current = stat(self.pid).map_or(0, |s| s.nice);
        let rlimit_nice = get_prlimit(self.pid, libc::RLIMIT_NICE).map_or(0, |r| r.0);
        if let Some(why) = super::nice_refusal(
            i64::from(n),
            current,
            sys::has_cap(sys::CAP_SYS_NICE),
            rlimit_nice,
        ) {
            return Err(why.replace("the driver's own nice value", "the process's nice value"));
        }
        on_tree(self.pid, |p| {
            // every thread: setpriority(PRIO_PROCESS) acts on one
            let tasks = fs::read_dir(format!("/proc/{p}/task"))?;
            let mut first = Ok(());
            for t in tasks.flatten() {
                let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                // SAFETY: setpriority takes plain integers.
                if unsafe { libc::setpriority(libc::PRIO_PROCESS as _, tid, n) } != 0
                    && first.is_ok()
                {
                    first = Err(io::Error::last_os_error());
                }
            }
            first
        })
        .map_err(|e| format!("setpriority {n}: {e}"))?;
        self.priority = Some(n);
        Ok(())
    }

    /// What is enforced and how: keys "cpu", "memory", "processes",
    /// "files", "priority", each only when enforced.
    pub fn report(&self) -> Value {
        let mut out = Value::mapping(Vec::<(String, Value)>::new());
        let group = |how: &How, file: &str, entry: &mut Vec<(&str, Value)>| match how {
            How::Cgroup { dir, moved } => {
                let v = if dir.version == Version::V1 {
                    "v1"
                } else {
                    "v2"
                };
                entry.push(("mechanism", Value::str(format!("cgroup {v} {file}"))));
                entry.push(("cgroup", Value::str(dir.path.display().to_string())));
                if *moved {
                    entry.push((
                        "joined_while_running",
                        Value::str("the running process was moved into the group; what it had already used is not counted"),
                    ));
                }
            }
            How::Rlimit { why_not_cgroup } => {
                entry.push(("cgroup_unavailable", Value::str(why_not_cgroup.clone())));
            }
        };
        if let Some(c) = &self.cpu {
            let mut e = vec![("percent", Value::Int(c.value as i64))];
            let file = match &c.how {
                How::Cgroup { dir, .. } if dir.version == Version::V1 => "cpu.cfs_quota_us",
                _ => "cpu.max",
            };
            if let How::Rlimit { .. } = c.how {
                e.push(("mechanism", Value::str("rlimit_cpu")));
                let then = if self.env.cap_resource {
                    "SIGXCPU, then SIGKILL at the hard limit 2 s later"
                } else {
                    "SIGXCPU; the hard limit cannot follow without CAP_SYS_RESOURCE, so the \
                     driver sends SIGKILL 2 s later"
                };
                e.push((
                    "note",
                    Value::str(format!(
                        "RLIMIT_CPU of each process, raised each second to its share of the \
                         process's age: the average over its life is limited, not its rate; \
                         exceeding it kills the process ({then})"
                    )),
                ));
            }
            group(&c.how, file, &mut e);
            out.insert(Value::str("cpu"), Value::mapping(e));
        }
        if let Some(m) = &self.memory {
            let mut e = vec![("bytes", Value::Int(m.value as i64))];
            match &m.how {
                How::Cgroup { dir, .. } => {
                    let (file, swap) = match dir.version {
                        Version::V1 => ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"),
                        Version::V2 => ("memory.max", "memory.swap.max 0"),
                    };
                    group(&m.how, file, &mut e);
                    e.push((
                        "swap",
                        Value::str(if m.swap {
                            format!("limited too ({swap})")
                        } else {
                            format!(
                                "not limited: no {} (swap accounting is off)",
                                swap.split(' ').next().unwrap_or(swap)
                            )
                        }),
                    ));
                    e.push((
                        "on_exceed",
                        Value::str(
                            if dir.version == Version::V2 && dir.has("memory.oom.group") {
                                "the kernel's OOM killer kills the whole group (SIGKILL)"
                            } else {
                                "the kernel's OOM killer kills a process of the group (SIGKILL)"
                            },
                        ),
                    ));
                }
                How::Rlimit { .. } => {
                    e.push(("mechanism", Value::str("rlimit_as")));
                    e.push(("on_exceed", Value::str(
                        "allocations fail (the process usually exits with an error); it is not killed",
                    )));
                    e.push(("note", Value::str(
                        "RLIMIT_AS: the address space of each process separately, mapped but unused memory included",
                    )));
                    group(&m.how, "", &mut e);
                }
            }
            out.insert(Value::str("memory"), Value::mapping(e));
        }
        if let Some(p) = &self.processes {
            let mut e = vec![("max", Value::Int(p.value as i64))];
            if let How::Rlimit { .. } = p.how {
                e.push(("mechanism", Value::str("rlimit_nproc")));
                e.push(("note", Value::str(
                    "RLIMIT_NPROC counts every process of the child's uid, not only this tree, \
                     and does not bind root or CAP_SYS_RESOURCE",
                )));
            }
            if let How::Cgroup { .. } = p.how {
                e.push((
                    "note",
                    Value::str("pids.max counts threads as well as processes"),
                ));
            }
            group(&p.how, "pids.max", &mut e);
            out.insert(Value::str("processes"), Value::mapping(e));
        }
        if let Some(f) = self.files {
            out.insert(
                Value::str("files"),
                Value::mapping([
                    ("max", Value::Int(f as i64)),
                    ("mechanism", Value::str("rlimit_nofile")),
                ]),
            );
        }
        if let Some(n) = self.priority {
            out.insert(
                Value::str("priority"),
                Value::mapping([
                    ("nice", Value::Int(i64::from(n))),
                    ("mechanism", Value::str("setpriority")),
                ]),
            );
        }
        out
    }

    /// Usage counted by the groups (the whole tree), where they count it.
    pub fn usage(&self) -> Usage {
        let mut u = Usage::default();
        for d in &self.dirs {
            match d.version {
                Version::V2 => {
                    u.cpu_ms = u
                        .cpu_ms
                        .or(d.key("cpu.stat", "usage_usec").map(|n| n / 1000));
                    u.memory_kb = u.memory_kb.or(d
                        .read("memory.current")
                        .and_then(|s| s.trim().parse::<i64>().ok())
                        .map(|b| b / 1024));
                }
                Version::V1 => {
                    u.cpu_ms = u.cpu_ms.or(d
                        .read("cpuacct.usage")
                        .and_then(|s| s.trim().parse::<i64>().ok())
                        .map(|ns| ns / 1_000_000));
                    u.memory_kb = u.memory_kb.or(d
                        .read("memory.usage_in_bytes")
                        .and_then(|s| s.trim().parse::<i64>().ok())
                        .map(|b| b / 1024));
                }
            }
        }
        u
    }

    /// After the reap: kills whatever is left in the groups and removes
    /// them. True when none is left; may be called again until then. Also
    /// ends the ticks (the pid may be reused from now on).
    pub fn cleanup(&mut self) -> bool {
        self.pid = 0;
        if self.dirs.is_empty() {
            return true;
        }
        self.oom_seen = self.oom_killed();
        self.dirs.retain(|d| !d.kill_and_remove());
        retry_pending();
        self.dirs.is_empty()
    }

    /// The processes in the groups (each once; never the driver; none in an
    /// emulated tree).
    fn members(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for d in self.dirs.iter().filter(|d| !d.emulated) {
            for p in d.procs() {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// Whether the child has a real cgroup (not an emulated one): every
    /// process it starts is in it, so what is left of its process group can
    /// be found through `populated` / `signal_members` without a walk of
    /// /proc.
    pub fn has_cgroup(&self) -> bool {
        self.dirs.iter().any(|d| !d.emulated)
    }

    /// Whether any process is left in the groups (after the child's exit:
    /// its descendants, also those that left its process group with setsid).
    pub fn populated(&self) -> bool {
        !self.members().is_empty()
    }

    /// Sends `sig` to every process in the groups (SIGKILL through
    /// cgroup.kill where v2 has it); whether any was there. A process that
    /// left the child's process group (setsid, setpgid) is still in them.
    pub fn signal_members(&self, sig: i32) -> bool {
        let members = self.members();
        if sig == libc::SIGKILL {
            for d in self.dirs.iter().filter(|d| !d.emulated) {
                d.kill_all();
            }
        } else {
            for &p in &members {
                kill(p, sig);
            }
        }
        !members.is_empty()
    }

    /// After the reap, when what is left is to be kept (kill_mode "process"):
    /// the empty groups are removed; one still holding processes stays, with
    /// its limits, and is removed by a later call once it is empty. Nothing
    /// is killed. Also ends the ticks.
    pub fn release(&mut self) {
        self.pid = 0;
        if self.dirs.is_empty() {
            return;
        }
        self.oom_seen = self.oom_killed();
        let mut kept = Vec::new();
        for d in std::mem::take(&mut self.dirs) {
            if !d.remove() {
                kept.push(d);
            }
        }
        retry_pending();
        LINGER.lock().append(&mut kept);
    }
}

impl Drop for Limits {
    fn drop(&mut self) {
        if !self.cleanup() {
            PENDING.lock().append(&mut self.dirs);
        }
    }
}

fn check_cpu(percent: i64, cores: u32, zero_ok: bool) -> Result<(), String> {
    let max = 100 * i64::from(cores);
    if percent < 0 || (percent == 0 && !zero_ok) || percent > max {
        return Err(format!(
            "cpu: wants a percent of one core in 1..{max} ({cores} cores){}, got {percent}",
            if zero_ok { " or 0 to remove it" } else { "" }
        ));
    }
    Ok(())
}

fn check_memory(bytes: i64, zero_ok: bool) -> Result<(), String> {
    if bytes < MIN_MEMORY as i64 && !(zero_ok && bytes == 0) {
        return Err(format!(
            "memory: wants bytes ≥ {MIN_MEMORY}{}, got {bytes}",
            if zero_ok { " or 0 to remove it" } else { "" },
        ));
    }
    Ok(())
}

fn check_files(n: i64) -> Result<(), String> {
    let (lo, hi) = crate::options::validate::external::FILE_LIMIT;
    if !(lo..=hi).contains(&n) {
        return Err(format!("files: wants {lo}..{hi} open files, got {n}"));
    }
    Ok(())
}

fn check_priority(n: i64) -> Result<(), String> {
    let (lo, hi) = crate::options::catalog::int_range(crate::options::ids::EXTERNAL_PRIORITY)
        .expect("EXTERNAL_PRIORITY is an int range");
    if !(lo..=hi).contains(&n) {
        return Err(format!(
            "priority: wants a nice value in {lo}..{hi}, got {n}"
        ));
    }
    Ok(())
}

fn write_cpu(d: &Dir, percent: u32) -> Result<(), String> {
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
fn write_memory(d: &Dir, bytes: u64, old: Option<u64>) -> Result<bool, String> {
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

fn rlimit_error(what: &str, e: io::Error) -> String {
    if e.raw_os_error() == Some(libc::EPERM) {
        format!(
            "prlimit {what}: {e}: raising a hard limit needs CAP_SYS_RESOURCE, which the \
             driver lacks"
        )
    } else {
        format!("prlimit {what}: {e}")
    }
}

/// Runs `f` on the child and each of its descendants: the child's error is
/// returned, a descendant's (it may have exited, or changed uid) ignored.
fn on_tree(pid: i32, mut f: impl FnMut(i32) -> io::Result<()>) -> io::Result<()> {
    for p in tree(pid) {
        let r = f(p);
        if p == pid {
            r?;
        }
    }
    Ok(())
}

/// `pid` and its descendants, breadth first (/proc/<pid>/task/<tid>/children).
fn tree(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() && out.len() < MAX_TREE {
        let p = out[i];
        i += 1;
        let Ok(tasks) = fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Ok(s) = fs::read_to_string(t.path().join("children")) else {
                continue;
            };
            for c in s.split_whitespace().filter_map(|c| c.parse::<i32>().ok()) {
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
    }
    out
}

/// Milliseconds since boot (the clock /proc/<pid>/stat's starttime counts in).
fn boot_ms() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0)
}

fn prlimit(pid: i32, resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
    let r = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `r` is valid for reads; no old value is asked for (null).
    if unsafe { libc::prlimit(pid, resource, &r, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// (soft, hard) of `resource` for process `pid`.
fn get_prlimit(pid: i32, resource: libc::__rlimit_resource_t) -> io::Result<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: no new value (null); `r` is valid for writes.
    if unsafe { libc::prlimit(pid, resource, std::ptr::null(), &mut r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((r.rlim_cur, r.rlim_max))
}

/// A plain directory tree standing in for cgroupfs v2 in tests: mkdir makes
/// the interface files of the controllers the parent's subtree_control
/// enables; subtree_control accepts only controllers the directory is
/// offered; other files must exist to be written; rmdir refuses while a
/// child group exists.
mod emulate {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::fd::AsFd;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command, Stdio};

    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::time::Instant;

    const PYTHON: &str = "/usr/bin/python3";
    const BUSY: &[&str] = &["-c", "while :; do :; done"];

    fn env(cap_resource: bool, nproc_binds: bool) -> Env {
        Env {
            cap_resource,
            nproc_binds,
            cores: cores(),
        }
    }

    fn real_env() -> Env {
        env(sys::has_cap(sys::CAP_SYS_RESOURCE), false)
    }

    fn fallback() -> Option<Hierarchies> {
        Some(Hierarchies::none("forced by the test"))
    }

    fn current() -> Option<Hierarchies> {
        Some(Hierarchies::current())
    }

    fn python(test: &str) -> bool {
        let ok = Path::new(PYTHON).exists();
        if !ok {
            eprintln!("{test}: skipped: {PYTHON} is missing");
        }
        ok
    }

    /// The group enforcing `which`, or None after printing why a test that
    /// needs real cgroups is skipped.
    fn grouped(l: &Limits, which: Ctl, test: &str) -> Option<Dir> {
        let limit = match which {
            Ctl::Cpu => &l.cpu,
            Ctl::Memory => &l.memory,
            Ctl::Pids => &l.processes,
        };
        match limit.as_ref().map(|x| &x.how) {
            Some(How::Cgroup { dir, .. }) => Some(dir.clone()),
            Some(How::Rlimit { why_not_cgroup }) => {
                eprintln!(
                    "{test}: skipped: no writable {} cgroup: {why_not_cgroup}",
                    which.name()
                );
                None
            }
            None => None,
        }
    }

    fn mech(l: &Limits, key: &str) -> String {
        l.report()
            .get(key)
            .and_then(|m| m.get("mechanism"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_string()
    }

    /// A child started with the limits' setup, in its own process group,
    /// SIGKILLed and reaped on drop (declare it after its Limits, so that
    /// it goes first and the Limits' cleanup finds the group empty).
    struct Kid {
        child: Child,
        pid: i32,
        reaped: bool,
    }

    impl Kid {
        fn spawn(l: &mut Limits, program: &str, args: &[&str], stdout: Stdio) -> Kid {
            let setup = l.child_setup();
            let mut cmd = Command::new(program);
            cmd.args(args)
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(stdout);
            // SAFETY: ChildSetup::apply is async-signal-safe and allocates nothing.
            unsafe {
                cmd.pre_exec(move || setup.apply());
            }
            let child = cmd.spawn().expect("spawn");
            let pid = child.id() as i32;
            l.started(pid);
            Kid {
                child,
                pid,
                reaped: false,
            }
        }

        fn line(&mut self) -> String {
            let mut s = String::new();
            BufReader::new(self.child.stdout.as_mut().expect("piped stdout"))
                .read_line(&mut s)
                .expect("read");
            s.trim().to_string()
        }

        /// Waits for the exit (a pidfd), calling `l.tick()` when it asks, as
        /// the driver's reactor does; None after `max`.
        fn wait(&mut self, l: &mut Limits, max: Duration) -> Option<Ended> {
            let fd = sys::pidfd_open(self.pid).expect("pidfd_open");
            let end = Instant::now() + max;
            let mut next = l.next_tick().map(|d| Instant::now() + d);
            loop {
                let now = Instant::now();
                if now >= end {
                    return None;
                }
                let until = next.map_or(end, |n| n.min(end));
                let ms = until.saturating_duration_since(now).as_millis() as i32;
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                if poll(&mut fds, PollTimeout::try_from(ms).unwrap()).unwrap_or(0) > 0 {
                    let e = sys::wait4(self.pid, true).expect("wait4").expect("ended");
                    self.reaped = true;
                    return Some(e);
                }
                if next.is_some_and(|t| Instant::now() >= t) {
                    next = l.tick().map(|d| Instant::now() + d);
                }
            }
        }
    }

    impl Drop for Kid {
        fn drop(&mut self) {
            if !self.reaped {
                kill(-self.pid, libc::SIGKILL);
                kill(self.pid, libc::SIGKILL);
                let _ = sys::wait4(self.pid, true);
            }
        }
    }

    /// The CPU share (% of one core) `pid` uses over `window`: the window is
    /// the thing measured, not a wait for something to happen.
    fn cpu_share(pid: i32, window: Duration) -> f64 {
        let t0 = stat(pid).expect("stat").cpu_ticks;
        let i0 = Instant::now();
        std::thread::sleep(window);
        let t1 = stat(pid).expect("stat").cpu_ticks;
        (t1 - t0) as f64 / clk_tck() as f64 / i0.elapsed().as_secs_f64() * 100.0
    }

    fn limits_line(pid: i32, what: &str) -> String {
        read(Path::new(&format!("/proc/{pid}/limits")))
            .lines()
            .find(|l| l.starts_with(what))
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn gone_or_zombie(pid: i32) -> bool {
        fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
            s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z'))
        })
    }

    /// Removes a temporary tree, also when the test fails.
    struct Rm(PathBuf);

    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn cpu_allowance_covers_the_time_until_the_next_tick() {
        // before the first tick: 1 s at 50 %, 2 s at 150 %
        assert_eq!(cpu_allowance(50, 0), 1);
        assert_eq!(cpu_allowance(150, 0), 2);
        // a process exactly at its share stays below it until the next tick
        for age in [1000u64, 2500, 9999, 60_000] {
            let used_by_next_tick = 50 * (age + 1000) / 100; // ms
            assert!(cpu_allowance(50, age) * 1000 > used_by_next_tick, "{age}");
        }
        // one using twice its share passes it within a few seconds
        assert!(cpu_allowance(50, 3000) * 1000 < 2 * 3000 + 1000);
    }

    #[test]
    fn hierarchies_are_found_on_hybrid_and_v2_hosts() {
        let hybrid = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";
        let own = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";
        let h = Hierarchies::parse(hybrid, own, |p| {
            (p == Path::new("/sys/fs/cgroup/unified/cgroup.controllers"))
                .then(|| "hugetlb\n".to_string())
        });
        let cpu = h.cpu.as_ref().unwrap();
        assert_eq!(cpu.version, Version::V1);
        assert_eq!(cpu.base, Path::new("/sys/fs/cgroup/cpu"));
        let mem = h.memory.as_ref().unwrap();
        assert_eq!(mem.base, Path::new("/sys/fs/cgroup/memory/process_api/abc"));
        assert_eq!(
            h.pids.as_ref().unwrap().base,
            Path::new("/sys/fs/cgroup/pids")
        );

        // v2 only, the driver in a delegated subtree; memory not offered
        let v2 = "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate";
        let own = "0::/system.slice/mud.service/driver\n";
        let h = Hierarchies::parse(v2, own, |p| {
            (p == Path::new("/sys/fs/cgroup/system.slice/mud.service/driver/cgroup.controllers"))
                .then(|| "cpuset cpu io pids\n".to_string())
        });
        let cpu = h.cpu.as_ref().unwrap();
        assert_eq!(cpu.version, Version::V2);
        assert_eq!(
            cpu.base,
            Path::new("/sys/fs/cgroup/system.slice/mud.service/driver")
        );
        assert!(h.pids.is_ok());
        let why = h.memory.unwrap_err();
        assert!(
            why.contains("does not offer the memory controller")
                && why.contains("no cgroup v1 hierarchy mounts memory"),
            "{why}"
        );

        // a container whose mount root is the driver's group; escaped spaces
        let m = r"40 30 0:40 /docker/x /sys/fs/my\040cg rw - cgroup2 cgroup2 rw";
        let h = Hierarchies::parse(m, "0::/docker/x/sub\n", |_| Some("cpu".into()));
        assert_eq!(h.cpu.as_ref().unwrap().base, Path::new("/sys/fs/my cg/sub"));
        let h = Hierarchies::parse(m, "0::/elsewhere\n", |_| Some("cpu".into()));
        assert!(h.cpu.unwrap_err().contains("not visible"));
        assert!(Hierarchies::parse("", "", |_| None).pids.is_err());
    }

    #[test]
    fn limits_can_live_in_the_endpoint_and_the_setup_in_pre_exec() {
        fn send<T: Send>() {}
        fn send_sync_static<T: Send + Sync + 'static>() {}
        send::<Limits>();
        send_sync_static::<ChildSetup>();
    }

    #[test]
    fn nothing_wanted_makes_nothing() {
        let mut l = Limits::prepare(&Wanted::default()).unwrap();
        assert!(l.dirs.is_empty());
        assert_eq!(l.report(), Value::Mapping(Vec::new()));
        assert!(l.child_setup().procs.is_empty() && l.child_setup().rlimits.is_empty());
        l.started(1);
        assert!(l.next_tick().is_none() && l.tick().is_none());
        assert!(!l.limit_hit(&Ended {
            signal: libc::SIGKILL as i64,
            ..Ended::default()
        }));
        assert!(l.cleanup());
    }

    #[test]
    fn bad_values_are_refused_before_anything_is_applied() {
        let e = env(true, false);
        let max = 100 * e.cores;
        for w in [
            Wanted {
                cpu_percent: Some(0),
                ..Wanted::default()
            },
            Wanted {
                cpu_percent: Some(max + 1),
                ..Wanted::default()
            },
            Wanted {
                memory: Some(MIN_MEMORY - 1),
                ..Wanted::default()
            },
            Wanted {
                processes: Some(0),
                ..Wanted::default()
            },
            Wanted {
                files: Some(2),
                ..Wanted::default()
            },
            Wanted {
                priority: Some(20),
                ..Wanted::default()
            },
        ] {
            assert!(Limits::prepare_with(&w, fallback(), e).is_err(), "{w:?}");
        }
        let mut l = Limits::prepare_with(&Wanted::default(), fallback(), e).unwrap();
        let set = |l: &mut Limits, pairs: Vec<(&str, Value)>| l.set_running(&Value::mapping(pairs));
        let err = set(
            &mut l,
            vec![("cpu", Value::Int(50)), ("color", Value::Int(1))],
        )
        .unwrap_err();
        assert!(err.contains("unknown key \"color\""), "{err}");
        let err = set(&mut l, vec![("cpu", Value::Int(i64::from(max) + 1))]).unwrap_err();
        assert!(err.contains(&format!("1..{max}")), "{err}");
        assert!(set(&mut l, vec![("memory", Value::Int(-1))]).is_err());
        assert!(set(&mut l, vec![("files", Value::Int(0))]).is_err());
        assert!(set(&mut l, vec![("priority", Value::Int(-21))]).is_err());
        let err = set(&mut l, vec![("cpu", Value::str("50"))]).unwrap_err();
        assert!(err.contains("cpu: wants an int"), "{err}");
        assert!(l
            .set_running(&Value::Int(3))
            .unwrap_err()
            .contains("mapping"));
        // valid, but nothing runs
        let err = set(&mut l, vec![("cpu", Value::Int(50))]).unwrap_err();
        assert!(err.contains("not running"), "{err}");
        assert!(l.cpu.is_none());
    }

    #[test]
    fn processes_fallback_only_where_rlimit_nproc_binds() {
        let w = Wanted {
            processes: Some(5),
            ..Wanted::default()
        };
        let err = Limits::prepare_with(&w, fallback(), env(true, false))
            .err()
            .unwrap();
        assert!(err.contains("RLIMIT_NPROC does not bind"), "{err}");
        let l = Limits::prepare_with(&w, fallback(), env(true, true)).unwrap();
        assert_eq!(mech(&l, "processes"), "rlimit_nproc");
        let note = l.report().get("processes").unwrap().get("note").cloned();
        assert!(note.unwrap().as_str().unwrap().contains("every process of"));
        assert!(l
            .setup
            .rlimits
            .iter()
            .any(|&(r, s, h)| r == libc::RLIMIT_NPROC && s == 5 && h == 5));
    }

    /// A temporary directory standing in for a v2 cgroupfs root that offers
    /// `controllers` and has `subtree` enabled, as every hierarchy; removed
    /// when the returned guard drops.
    fn emulated_v2(name: &str, controllers: &str, subtree: &str) -> (PathBuf, Rm, Hierarchies) {
        let tmp =
            std::env::temp_dir().join(format!("unisock-limits-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).unwrap();
        let rm = Rm(tmp.clone());
        fs::write(tmp.join("cgroup.controllers"), controllers).unwrap();
        fs::write(tmp.join("cgroup.subtree_control"), subtree).unwrap();
        fs::write(tmp.join("cgroup.procs"), "").unwrap();
        let place = Place {
            version: Version::V2,
            base: tmp.clone(),
            emulated: true,
        };
        let h = Hierarchies {
            cpu: Ok(place.clone()),
            memory: Ok(place.clone()),
            pids: Ok(place),
        };
        (tmp, rm, h)
    }

    /// cgroup v2's file writing, in a directory tree standing in for cgroupfs
    /// (this machine's v2 hierarchy offers no controllers).
    #[test]
    fn v2_groups_are_written_in_an_emulated_tree() {
        let (tmp, _rm, h) = emulated_v2("v2", "cpuset cpu io memory pids", "io");
        let w = Wanted {
            cpu_percent: Some(50),
            memory: Some(64 << 20),
            processes: Some(10),
            ..Wanted::default()
        };
        let mut l = Limits::prepare_with(&w, Some(h), env(true, false)).unwrap();
        // the controllers were handed down: root, then unisock
        let on = read(&tmp.join("cgroup.subtree_control"));
        assert_eq!(on, "io cpu memory pids");
        assert_eq!(
            read(&tmp.join("unisock/cgroup.subtree_control")),
            "cpu memory pids"
        );
        assert_eq!(l.dirs.len(), 1, "one v2 group for every controller");
        let leaf = l.dirs[0].path.clone();
        assert_eq!(leaf, tmp.join("unisock").join(&l.name));
        assert_eq!(read(&leaf.join("cpu.max")), "50000 100000");
        assert_eq!(read(&leaf.join("memory.max")), (64u64 << 20).to_string());
        assert_eq!(read(&leaf.join("memory.swap.max")), "0");
        assert_eq!(read(&leaf.join("memory.oom.group")), "1");
        assert_eq!(read(&leaf.join("pids.max")), "10");
        assert_eq!(
            l.setup.procs,
            vec![CString::new(leaf.join("cgroup.procs").as_os_str().as_bytes()).unwrap()]
        );
        assert!(l.setup.rlimits.is_empty());
        assert_eq!(mech(&l, "cpu"), "cgroup v2 cpu.max");
        assert_eq!(mech(&l, "memory"), "cgroup v2 memory.max");
        assert_eq!(mech(&l, "processes"), "cgroup v2 pids.max");
        let r = l.report();
        let mem = r.get("memory").unwrap();
        assert_eq!(
            mem.get("swap").unwrap().as_str(),
            Some("limited too (memory.swap.max 0)")
        );
        assert!(mem
            .get("on_exceed")
            .unwrap()
            .as_str()
            .unwrap()
            .contains("whole group"));

        // the exit: SIGKILL is "limit" only with an OOM kill counted
        let killed = Ended {
            signal: libc::SIGKILL as i64,
            ..Ended::default()
        };
        assert!(!l.limit_hit(&killed));
        fs::write(
            leaf.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert!(l.limit_hit(&killed));
        assert!(!l.limit_hit(&Ended {
            exit_code: 1,
            ..Ended::default()
        }));
        fs::write(
            leaf.join("cpu.stat"),
            "usage_usec 2500000\nuser_usec 2000000\n",
        )
        .unwrap();
        fs::write(leaf.join("memory.current"), "1048576\n").unwrap();
        assert_eq!(
            l.usage(),
            Usage {
                cpu_ms: Some(2500),
                memory_kb: Some(1024)
            }
        );

        // while running: rewritten in place (no process is touched)
        l.started(i32::MAX);
        let set =
            |l: &mut Limits, k: &str, v: i64| l.set_running(&Value::mapping([(k, Value::Int(v))]));
        set(&mut l, "cpu", 20).unwrap();
        assert_eq!(read(&leaf.join("cpu.max")), "20000 100000");
        set(&mut l, "cpu", 0).unwrap();
        assert_eq!(read(&leaf.join("cpu.max")), "max 100000");
        set(&mut l, "memory", 0).unwrap();
        assert_eq!(read(&leaf.join("memory.max")), "max");
        assert_eq!(read(&leaf.join("memory.swap.max")), "max");
        let r = l.report();
        assert!(r.get("cpu").is_none() && r.get("memory").is_none());
        assert!(r.get("processes").is_some());

        // cleanup: the group and the now empty unisock directory go; the
        // OOM kill seen before stays known
        assert!(l.cleanup());
        assert!(!tmp.join("unisock").exists());
        assert!(l.cleanup(), "a second call is harmless");
    }

    /// A controller the emulated root does not offer: that limit alone falls
    /// back, and says why.
    #[test]
    fn v2_controller_not_offered_falls_back_for_that_limit_only() {
        let (tmp, _rm, h) = emulated_v2("v2b", "cpu pids", "");
        let w = Wanted {
            cpu_percent: Some(30),
            memory: Some(8 << 20),
            ..Wanted::default()
        };
        let l = Limits::prepare_with(&w, Some(h), env(true, false)).unwrap();
        assert_eq!(mech(&l, "cpu"), "cgroup v2 cpu.max");
        assert_eq!(mech(&l, "memory"), "rlimit_as");
        let why = l
            .report()
            .get("memory")
            .unwrap()
            .get("cgroup_unavailable")
            .cloned();
        assert!(why.unwrap().as_str().unwrap().contains("+memory"));
        assert!(l
            .setup
            .rlimits
            .iter()
            .any(|&(r, s, _)| r == libc::RLIMIT_AS && s == 8 << 20));
        drop(l);
        assert!(!tmp.join("unisock").exists(), "Drop cleaned up");
    }

    #[test]
    fn cgroup_cpu_quota_holds_a_busy_loop_to_its_share() {
        let test = "cgroup_cpu_quota_holds_a_busy_loop_to_its_share";
        let w = Wanted {
            cpu_percent: Some(50),
            ..Wanted::default()
        };
        let mut l = Limits::prepare_with(&w, current(), real_env()).unwrap();
        let Some(dir) = grouped(&l, Ctl::Cpu, test) else {
            return;
        };
        let kid = Kid::spawn(&mut l, "/bin/sh", BUSY, Stdio::null());
        let share = cpu_share(kid.pid, Duration::from_secs(3));
        eprintln!("{test}: {} → {share:.1}% of one core", mech(&l, "cpu"));
        assert!(share <= 55.0, "{share:.1}% under a 50% limit");
        assert!(share > 5.0, "the loop ran ({share:.1}%)");
        assert!(fs::read_to_string(format!("/proc/{}/cgroup", kid.pid))
            .unwrap()
            .contains(&format!("/unisock/{}", l.name)));
        drop(kid);
        assert!(l.cleanup());
        assert!(!dir.path.exists());
    }

    #[test]
    fn fallback_cpu_kills_a_busy_loop_with_sigxcpu() {
        // 1 %: a busy loop passes its share within seconds even when the
        // machine is so loaded that the loop gets little CPU
        let w = Wanted {
            cpu_percent: Some(1),
            ..Wanted::default()
        };
        let mut l = Limits::prepare_with(&w, fallback(), real_env()).unwrap();
        assert_eq!(mech(&l, "cpu"), "rlimit_cpu");
        let mut kid = Kid::spawn(&mut l, "/bin/sh", BUSY, Stdio::null());
        assert_eq!(l.next_tick(), Some(TICK));
        let t0 = Instant::now();
        let ended = kid
            .wait(&mut l, Duration::from_secs(60))
            .expect("killed within 60 s");
        eprintln!(
            "fallback_cpu_kills_a_busy_loop_with_sigxcpu: signal {} after {:.1} s, {} ms CPU",
            ended.signal,
            t0.elapsed().as_secs_f64(),
            ended.cpu_ms
        );
        // the kernel sends SIGXCPU at the soft limit, whatever the hard one
        assert_eq!(ended.signal, libc::SIGXCPU as i64);
        assert!(l.limit_hit(&ended));
    }

    #[test]
    fn fallback_cpu_backstop_kills_what_ignores_sigxcpu_without_cap_resource() {
        let w = Wanted {
            cpu_percent: Some(1),
            ..Wanted::default()
        };
        // as if the driver lacked CAP_SYS_RESOURCE: the hard limit stays put
        let mut l = Limits::prepare_with(&w, fallback(), env(false, false)).unwrap();
        let args = ["-c", "trap '' XCPU; while :; do :; done"];
        let mut kid = Kid::spawn(&mut l, "/bin/sh", &args, Stdio::null());
        let ended = kid
            .wait(&mut l, Duration::from_secs(90))
            .expect("killed within 90 s");
        eprintln!(
            "fallback_cpu_backstop: signal {}, {} ms CPU",
            ended.signal, ended.cpu_ms
        );
        assert_eq!(ended.signal, libc::SIGKILL as i64);
        assert!(l.limit_hit(&ended));
    }

    #[test]
    fn fallback_cpu_spares_a_process_under_its_share() {
        if !python("fallback_cpu_spares_a_process_under_its_share") {
            return;
        }
        let w = Wanted {
            cpu_percent: Some(50),
            ..Wanted::default()
        };
        let mut l = Limits::prepare_with(&w, fallback(), real_env()).unwrap();
        // busy 0.1 s of every 0.4 s for 5 s: about 25 %
        let script = "import time\nend = time.time() + 5\nwhile time.time() < end:\n    \
                      t = time.time()\n    while time.time() - t < 0.1: pass\n    time.sleep(0.3)\n";
        let mut kid = Kid::spawn(&mut l, PYTHON, &["-c", script], Stdio::null());
        let ended = kid.wait(&mut l, Duration::from_secs(30)).expect("ended");
        eprintln!(
            "fallback_cpu_spares: exit {} signal {}, {} ms CPU",
            ended.exit_code, ended.signal, ended.cpu_ms
        );
        assert_eq!((ended.exit_code, ended.signal), (0, 0));
        assert!(!l.limit_hit(&ended));
    }

    #[test]
    fn cgroup_memory_limit_kills_an_allocation_past_it() {
        let test = "cgroup_memory_limit_kills_an_allocation_past_it";
        if !python(test) {
            return;
        }
        let w = Wanted {
            memory: Some(50 << 20),
            ..Wanted::default()
        };
        let mut l = Limits::prepare_with(&w, current(), real_env()).unwrap();
        let Some(dir) = grouped(&l, Ctl::Memory, test) else {
            return;
        };
        eprintln!("{test}: {:?}", l.report().get("memory"));
        let mut kid = Kid::spawn(
            &mut l,
            PYTHON,
            &["-c", "b = b'x' * (200 << 20)\nprint(len(b))"],
            Stdio::null(),
        );
        let ended = kid.wait(&mut l, Duration::from_secs(30)).expect("ended");
        assert_eq!(ended.signal, libc::SIGKILL as i64, "{ended:?}");
        assert!(l.limit_hit(&ended));
        assert!(l.cleanup());
        assert!(!dir.path.exists());
        assert!(l.limit_hit(&ended), "still known after the group is gone");
    }

    #[test]
    fn fallback_memory_makes_the_allocation_fail() {
        if !python("fallback_memory_makes_the_allocation_fail") {
            return;
        }
        let w = Wanted {
            memory: Some(50 << 20),
            ..Wanted::default()
        };
        let mut l = Limits::prepare_with(&w, fallback(), real_env()).unwrap();
        assert_eq!(mech(&l, "memory"), "rlimit_as");
        let mut kid = Kid::spawn(
            &mut l,
            PYTHON,
            &["-c", "b = b'x' * (200 << 20)"],
            Stdio::null(),
        );
        let ended = kid.wait(&mut l, Duration::from_secs(30)).expect("ended");
        // MemoryError: an error exit, not a kill, and not reported as "limit"
        assert_eq!((ended.exit_code, ended.signal), (1, 0));
        assert!(!l.limit_hit(&ended));
        let on = l.report().get("memory").unwrap().get("on_exceed").cloned();
        assert!(on.unwrap().as_str().unwrap().contains("allocations fail"));
    }

    #[test]
    fn set_running_changes_cpu_files_priority_and_adds_memory() {
        let test = "set_running_changes_cpu_files_priority_and_adds_memory";
        let w = Wanted {
            cpu_percent: Some(50),
            ..Wanted::default()
        };
        let mut l = Limits::prepare_with(&w, current(), real_env()).unwrap();
        let Some(dir) = grouped(&l, Ctl::Cpu, test) else {
            return;
        };
        let quota = |d: &Dir| match d.version {
            Version::V1 => read(&d.file("cpu.cfs_quota_us")),
            Version::V2 => read(&d.file("cpu.max")),
        };
        let (q20, q_high, q_none) = match dir.version {
            Version::V1 => ("20000", "150000", "-1"),
            Version::V2 => ("20000 100000", "150000 100000", "max 100000"),
        };
        let kid = Kid::spawn(&mut l, "/bin/sh", BUSY, Stdio::null());
        let set = |l: &mut Limits, pairs: Vec<(&str, Value)>| l.set_running(&Value::mapping(pairs));
        set(&mut l, vec![("cpu", Value::Int(20))]).unwrap();
        assert_eq!(quota(&dir), q20);
        let share = cpu_share(kid.pid, Duration::from_secs(2));
        eprintln!("{test}: lowered to 20% → {share:.1}%");
        assert!(share <= 25.0, "{share:.1}% under 20%");
        if cores() >= 2 {
            set(&mut l, vec![("cpu", Value::Int(150))]).unwrap();
            assert_eq!(quota(&dir), q_high);
        }
        set(
            &mut l,
            vec![("files", Value::Int(64)), ("priority", Value::Int(10))],
        )
        .unwrap();
        assert_eq!(
            limits_line(kid.pid, "Max open files"),
            "Max open files 64 64 files"
        );
        assert_eq!(stat(kid.pid).unwrap().nice, 10);
        let r = l.report();
        assert_eq!(r.get("files").unwrap().get("max"), Some(&Value::Int(64)));
        assert_eq!(
            r.get("priority").unwrap().get("nice"),
            Some(&Value::Int(10))
        );

        // a memory limit it did not have: a new group, or RLIMIT_AS
        set(&mut l, vec![("memory", Value::Int(100 << 20))]).unwrap();
        let m = l.report().get("memory").cloned().unwrap();
        eprintln!("{test}: memory added while running: {m}");
        match &l.memory.as_ref().unwrap().how {
            How::Cgroup { dir, moved } => {
                assert!(*moved);
                assert!(m.get("joined_while_running").is_some());
                let own = fs::read_to_string(format!("/proc/{}/cgroup", kid.pid)).unwrap();
                let rel = dir.path.strip_prefix(&dir.base).unwrap();
                assert!(own.contains(&*rel.to_string_lossy()), "{own}");
            }
            How::Rlimit { .. } => assert_eq!(
                limits_line(kid.pid, "Max address space"),
                format!("Max address space {0} {0} bytes", 100u64 << 20)
            ),
        }

        set(&mut l, vec![("cpu", Value::Int(0))]).unwrap();
        assert_eq!(quota(&dir), q_none);
        assert!(l.report().get("cpu").is_none(), "no longer claimed");
        drop(kid);
        assert!(l.cleanup());
        assert!(!dir.path.exists());
    }

    #[test]
    fn fallback_limits_added_while_running() {
        let mut l = Limits::prepare_with(&Wanted::default(), fallback(), real_env()).unwrap();
        let kid = Kid::spawn(&mut l, "/bin/sleep", &["30"], Stdio::null());
        assert!(l.next_tick().is_none());
        l.set_running(&Value::mapping([
            ("cpu", Value::Int(50)),
            ("memory", Value::Int(64 << 20)),
        ]))
        .unwrap();
        assert_eq!(l.next_tick(), Some(TICK), "the driver must now tick");
        let cpu = limits_line(kid.pid, "Max cpu time");
        if l.env.cap_resource {
            assert_eq!(cpu, "Max cpu time 1 3 seconds");
        } else {
            assert!(cpu.starts_with("Max cpu time 1 "), "{cpu}");
        }
        assert_eq!(
            limits_line(kid.pid, "Max address space"),
            format!("Max address space {0} {0} bytes", 64u64 << 20)
        );
        assert_eq!(mech(&l, "cpu"), "rlimit_cpu");
        assert_eq!(mech(&l, "memory"), "rlimit_as");
        // lowering needs no privilege; raising the hard limit needs CAP_SYS_RESOURCE
        l.set_running(&Value::mapping([("memory", Value::Int(32 << 20))]))
            .unwrap();
        let raised = l.set_running(&Value::mapping([("memory", Value::Int(128 << 20))]));
        if l.env.cap_resource {
            raised.unwrap();
        } else {
            let e = raised.unwrap_err();
            assert!(
                e.starts_with("memory: ") && e.contains("CAP_SYS_RESOURCE"),
                "{e}"
            );
            let bytes = l.report().get("memory").unwrap().get("bytes").cloned();
            assert_eq!(
                bytes,
                Some(Value::Int(32 << 20)),
                "the report keeps what is enforced"
            );
        }
        l.set_running(&Value::mapping([("cpu", Value::Int(0))]))
            .unwrap();
        assert!(l.next_tick().is_none());
        assert!(l.report().get("cpu").is_none());
        drop(kid);
        l.cleanup();
        assert!(l
            .set_running(&Value::mapping([("cpu", Value::Int(5))]))
            .is_err());
    }

    #[test]
    fn cpu_added_to_a_process_started_without_limits_moves_it_into_a_group() {
        let test = "cpu_added_to_a_process_started_without_limits_moves_it_into_a_group";
        let mut l = Limits::prepare(&Wanted::default()).unwrap();
        assert!(l.places.is_none(), "nothing wanted: nothing looked up");
        let kid = Kid::spawn(&mut l, "/bin/sleep", &["30"], Stdio::null());
        l.set_running(&Value::mapping([("cpu", Value::Int(30))]))
            .unwrap();
        let Some(dir) = grouped(&l, Ctl::Cpu, test) else {
            return;
        };
        let own = fs::read_to_string(format!("/proc/{}/cgroup", kid.pid)).unwrap();
        assert!(own.contains(&format!("/unisock/{}", l.name)), "{own}");
        let cpu = l.report().get("cpu").cloned().unwrap();
        assert!(cpu.get("joined_while_running").is_some(), "{cpu}");
        assert!(l.next_tick().is_none());
        drop(kid);
        assert!(l.cleanup());
        assert!(!dir.path.exists());
    }

    /// A SIGKILL from elsewhere (timeout, close) is not the CPU fallback's,
    /// whether the hard limit is finite (CAP_SYS_RESOURCE) or not.
    #[test]
    fn fallback_cpu_limit_hit_only_for_its_own_kills() {
        let w = Wanted {
            cpu_percent: Some(50),
            ..Wanted::default()
        };
        let killed = |cpu_ms| Ended {
            signal: libc::SIGKILL as i64,
            exit_code: -1,
            cpu_ms,
            ..Ended::default()
        };
        for cap in [false, true] {
            let mut l = Limits::prepare_with(&w, fallback(), env(cap, false)).unwrap();
            l.cpu_hard = if cap { 3 } else { libc::RLIM_INFINITY };
            assert!(!l.limit_hit(&killed(5)), "cap {cap}");
            assert!(!l.limit_hit(&Ended::default()));
            assert!(l.limit_hit(&Ended {
                signal: libc::SIGXCPU as i64,
                ..Ended::default()
            }));
            // at the hard limit: the kernel's SIGKILL
            assert_eq!(l.limit_hit(&killed(3000)), cap, "cap {cap}");
            l.killed_by_limit = true;
            assert!(l.limit_hit(&killed(5)));
        }
    }

    #[test]
    fn pids_max_stops_a_fork_loop_and_cleanup_kills_the_rest() {
        let test = "pids_max_stops_a_fork_loop_and_cleanup_kills_the_rest";
        if !python(test) {
            return;
        }
        let w = Wanted {
            processes: Some(10),
            ..Wanted::default()
        };
        // real_env: as root, RLIMIT_NPROC would not bind, so no pids cgroup is an error
        let mut l = match Limits::prepare_with(&w, current(), real_env()) {
            Ok(l) => l,
            Err(why) => {
                eprintln!("{test}: skipped: {why}");
                return;
            }
        };
        let Some(dir) = grouped(&l, Ctl::Pids, test) else {
            return;
        };
        let script = "import os, time\nn = 0\nfor i in range(50):\n    try:\n        \
                      pid = os.fork()\n    except OSError as e:\n        \
                      print('failed after', n, e.errno, flush=True)\n        break\n    \
                      if pid == 0:\n        time.sleep(60)\n        os._exit(0)\n    n += 1\n\
                      else:\n    print('forked', n, flush=True)\n";
        let mut kid = Kid::spawn(&mut l, PYTHON, &["-c", script], Stdio::piped());
        let line = kid.line();
        eprintln!("{test}: {line}");
        assert_eq!(line, format!("failed after 9 {}", libc::EAGAIN));
        let ended = kid.wait(&mut l, Duration::from_secs(30)).expect("ended");
        assert_eq!(ended.exit_code, 0);
        // its nine children are still in the group; cleanup kills them
        let left = dir.procs();
        assert_eq!(left.len(), 9, "{left:?}");
        assert!(l.cleanup());
        assert!(!dir.path.exists());
        assert!(left.iter().all(|&p| gone_or_zombie(p)), "{left:?}");
    }

    #[test]
    fn cleanup_removes_the_group_with_a_grandchild_alive() {
        let test = "cleanup_removes_the_group_with_a_grandchild_alive";
        let w = Wanted {
            cpu_percent: Some(100),
            memory: Some(64 << 20),
            ..Wanted::default()
        };
        let mut l = Limits::prepare_with(&w, current(), real_env()).unwrap();
        if grouped(&l, Ctl::Cpu, test).is_none() && grouped(&l, Ctl::Memory, test).is_none() {
            return;
        }
        let dirs: Vec<PathBuf> = l.dirs.iter().map(|d| d.path.clone()).collect();
        let mut kid = Kid::spawn(
            &mut l,
            "/bin/sh",
            &["-c", "sleep 100 & echo $!; wait"],
            Stdio::piped(),
        );
        let grandchild: i32 = kid.line().parse().unwrap();
        kill(kid.pid, libc::SIGKILL);
        let ended = kid.wait(&mut l, Duration::from_secs(10)).expect("ended");
        assert_eq!(ended.signal, libc::SIGKILL as i64);
        assert!(
            !l.limit_hit(&ended),
            "a SIGKILL without an OOM kill is not the limit"
        );
        assert!(
            !gone_or_zombie(grandchild),
            "the grandchild outlived its parent"
        );
        assert!(l.cleanup());
        for d in &dirs {
            assert!(!d.exists(), "{}", d.display());
        }
        assert!(gone_or_zombie(grandchild));
    }
}
