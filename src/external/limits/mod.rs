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
//! Files: `hierarchy` (where each controller is: cgroup v2 or v1), `cgroup`
//! (the groups: made, written for v1 and v2, killed, removed), `emulate` (a
//! plain tree standing in for cgroupfs v2 in tests), `child` (`ChildSetup`,
//! between fork and exec), `rlimit` (the CPU fallback's ticks, prlimit on the
//! tree), `running` (`set_running`), `report` (`report`, `usage`), `tests`.
//!
//! The only unsafe code is the system calls (prlimit, setpriority, kill,
//! sysconf, and open/write/setrlimit in the child), each with its SAFETY note.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::sys::{self, kill, Ended};

mod cgroup;
mod child;
mod emulate;
mod hierarchy;
mod report;
mod rlimit;
mod running;
#[cfg(test)]
mod tests;

use cgroup::{
    enable, make_leaf, retry_pending, write_cpu, write_memory, Dir, COUNTER, LINGER, PENDING,
};
pub use child::ChildSetup;
use hierarchy::{Ctl, Hierarchies, Version};
use rlimit::cpu_allowance;
use running::{check_cpu, check_files, check_memory, check_priority};

/// The environment variable that, set to "off", makes `prepare` use the
/// rlimit fallbacks even where cgroups are writable.
pub const ENV_CGROUPS: &str = "UNISOCK_EXTERNAL_CGROUPS";
/// How often `tick` wants to run while the CPU fallback is in use.
pub const TICK: Duration = Duration::from_secs(1);
/// The smallest memory limit (EXTERNAL_MEMORY_LIMIT).
pub const MIN_MEMORY: u64 = crate::options::validate::external::MIN_MEMORY as u64;

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
                sys::has_cap(sys::CAP_SYS_ADMIN),
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
