//! The rlimit side: the CPU fallback's ticks (RLIMIT_CPU raised to each
//! process's share of its age), prlimit on a running tree, and the walk of
//! that tree.

use std::fs;
use std::io;
use std::time::Duration;

use super::sys::{clk_tck, kill, proc_stat as stat};
use super::{How, Limit, Limits, TICK};

/// Most processes a tree walk visits.
const MAX_TREE: usize = 4096;

pub(super) fn cpu_allowance(percent: u32, age_ms: u64) -> u64 {
    u64::from(percent) * (age_ms + TICK.as_millis() as u64) / 100_000 + 1
}

impl Limits {
    /// The CPU fallback's (soft, hard) for an allowance of `soft` seconds.
    pub(super) fn cpu_pair(&self, soft: u64) -> (u64, u64) {
        if self.env.cap_resource {
            (soft, soft + 2)
        } else {
            (soft.min(self.inherited_cpu_hard), self.inherited_cpu_hard)
        }
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
}

pub(super) fn rlimit_error(what: &str, e: io::Error) -> String {
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
pub(super) fn on_tree(pid: i32, mut f: impl FnMut(i32) -> io::Result<()>) -> io::Result<()> {
    for p in tree(pid) {
        let r = f(p);
        if p == pid {
            r?;
        }
    }
    Ok(())
}

/// `pid` and its descendants, breadth first (/proc/<pid>/task/<tid>/children).
pub(super) fn tree(pid: i32) -> Vec<i32> {
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

pub(super) fn prlimit(
    pid: i32,
    resource: libc::__rlimit_resource_t,
    soft: u64,
    hard: u64,
) -> io::Result<()> {
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
pub(super) fn get_prlimit(pid: i32, resource: libc::__rlimit_resource_t) -> io::Result<(u64, u64)> {
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
