//! What a run leaves behind: the signals to the running child's group and
//! cgroup, the hold on the group after the exit (`Hold`), and the sweep
//! (SIGTERM, KILL_GRACE, SIGKILL, KILL_WAIT) until nothing is left.

use std::time::{Duration, Instant};

use super::restart::{close_after_run, RestartPolicy};
use super::{opt, Hold, Process, KILL_GRACE, KILL_WAIT, TIMER_SWEEP};
use crate::core::Cx;
use crate::external::limits::Limits;
use crate::external::sys;
use crate::modes;

/// The first look at what is left after SIGTERM, doubling up to SWEEP_MAX:
/// the kernel reports no event when a process group becomes empty.
const SWEEP_FIRST: Duration = Duration::from_millis(10);
/// The first look when each look walks /proc (no cgroup; see
/// `Process::looks_scan`): a walk costs some 4 µs per process on the host
/// (docs/modes/external.md), on the driver's thread, so the first two looks
/// are skipped. A later look only delays the close, never a signal (the
/// SIGKILL is due KILL_GRACE after the SIGTERM whatever the step), and the
/// group stays held meanwhile, so this is safe.
const SWEEP_FIRST_SCAN: Duration = Duration::from_millis(40);
const SWEEP_MAX: Duration = Duration::from_millis(250);
impl Process {
    /// EXTERNAL_RESTART_POLICY's kill_mode is "process": only the main
    /// process is ever signalled; what it started is kept (but for a restart).
    pub(super) fn keeps_leftovers(&self, cx: &Cx) -> bool {
        self.mode == modes::EXTERNAL_PROCESS
            && RestartPolicy::from(cx.core.options.raw(opt::EXTERNAL_RESTART_POLICY)).keep
    }

    /// A signal to the running (unreaped) child: its whole process group and
    /// its cgroup, or with kill_mode "process" the child alone. A SIGTERM is
    /// followed by SIGCONT (a stopped process gets to handle it) and starts
    /// the grace.
    pub(super) fn signal_running(&mut self, cx: &Cx, sig: i32) {
        if !self.running() {
            return;
        }
        let keep = self.keeps_leftovers(cx);
        let send = |s: i32| {
            if keep {
                sys::kill(self.pid, s);
            } else {
                sys::kill_group(self.pid, s);
                if let Some(l) = &self.limits {
                    l.signal_members(s);
                }
            }
        };
        send(sig);
        if sig == libc::SIGTERM {
            send(libc::SIGCONT);
            self.term_at.get_or_insert_with(Instant::now);
        }
    }

    /// Whether the run has a cgroup: every process the child started is in
    /// it (also those that left its process group), so what is left is
    /// counted there, not by a walk of /proc. (A process that moved itself
    /// to another cgroup but stayed in the group is still signalled through
    /// the group, but not waited for; one that can move cgroups can as well
    /// leave the group with setsid, which no walk would find either.)
    fn in_cgroup(&self) -> bool {
        self.limits.as_ref().is_some_and(Limits::has_cgroup)
    }

    /// Whether a look at what is left walks /proc (`sys::group_has_live_member`):
    /// no cgroup, and the group held (a pidfd answers "empty" itself, but
    /// while something is left it is checked in /proc too).
    fn looks_scan(&self) -> bool {
        !self.in_cgroup() && matches!(self.hold, Some(Hold::Zombie | Hold::Pidfd(_)))
    }

    /// Sends `sig` to what is left of the run after its exit (the group as
    /// held, and the cgroup); whether anything was there.
    pub(super) fn signal_leftovers(&self, sig: i32) -> bool {
        let group = match &self.hold {
            Some(Hold::Pidfd(fd)) => sys::pidfd_signal_group(fd, sig).unwrap_or(true),
            Some(Hold::Zombie) if self.zombie_held() => {
                if self.in_cgroup() {
                    // The number is ours while the zombie is held, so the
                    // signal is safe; the cgroup says whether anyone was there.
                    sys::kill_group(self.pid, sig);
                    false
                } else {
                    let any = sys::group_has_live_member(self.pid, self.pid);
                    if any {
                        sys::kill_group(self.pid, sig);
                    }
                    any
                }
            }
            Some(Hold::Zombie | Hold::CgroupOnly) | None => false,
        };
        let cgroup = self.limits.as_ref().is_some_and(|l| l.signal_members(sig));
        group || cgroup
    }

    /// Whether a live process is left of the run (zombies nobody reaped yet
    /// do not count).
    fn leftovers_alive(&self) -> bool {
        // With a cgroup, `populated` below counts every live one.
        let group = !self.in_cgroup()
            && match &self.hold {
                Some(Hold::Pidfd(fd)) => {
                    // The pidfd answers "empty" at once; zombies count as members
                    // there, so a "no" from it is checked in /proc.
                    !matches!(sys::pidfd_signal_group(fd, 0), Ok(false))
                        && sys::group_has_live_member(self.pid, self.pid)
                }
                Some(Hold::Zombie) if self.zombie_held() => {
                    sys::group_has_live_member(self.pid, self.pid)
                }
                Some(Hold::Zombie | Hold::CgroupOnly) | None => false,
            };
        group || self.limits.as_ref().is_some_and(Limits::populated)
    }

    /// `Hold::Zombie`: whether the child is still our unreaped zombie. A
    /// host that reaps every child itself (waitpid(-1); FluffOS's SIGCHLD
    /// handler does not) takes it away, and with it the guarantee that the
    /// group number is still this group's: then only the cgroup is reached.
    fn zombie_held(&self) -> bool {
        matches!(sys::waitid_nowait(self.pid), Ok(Some(_)))
    }

    /// After the exit: SIGTERM and SIGCONT to what is left; the sweep then
    /// follows it (SIGKILL after the grace). Nothing left: let go at once.
    pub(super) fn end_leftovers(&mut self, cx: &mut Cx) {
        if self.hold.is_none() || self.sweeping {
            return;
        }
        self.sweeping = true;
        if self.signal_leftovers(libc::SIGTERM) {
            self.signal_leftovers(libc::SIGCONT);
            if self.keeps_leftovers(cx) {
                // Ended for a restart: none of the run's earlier signals reached them.
                self.term_at = Some(Instant::now());
            }
            self.term_at.get_or_insert_with(Instant::now);
            self.arm_sweep(cx);
        } else {
            self.let_go(true);
            self.settled(cx);
        }
    }

    fn arm_sweep(&mut self, cx: &mut Cx) {
        if self.sweep_armed {
            return;
        }
        let first = if self.looks_scan() {
            SWEEP_FIRST_SCAN
        } else {
            SWEEP_FIRST
        };
        let mut d = first
            .saturating_mul(1 << self.sweep_step.min(8))
            .min(SWEEP_MAX);
        if let (None, Some(t)) = (self.killed_at, self.term_at) {
            d = d.min((t + KILL_GRACE).saturating_duration_since(Instant::now()));
        }
        self.sweep_step += 1;
        self.sweep_armed = true;
        cx.timer(d, TIMER_SWEEP);
    }

    /// TIMER_SWEEP: nothing left, let go; the grace is over, SIGKILL; the
    /// SIGKILL is KILL_WAIT old, let go anyway; else look again later.
    pub(super) fn sweep(&mut self, cx: &mut Cx) {
        self.sweep_armed = false;
        if self.hold.is_none() {
            return;
        }
        if self.leftovers_alive() {
            let now = Instant::now();
            let term_at = *self.term_at.get_or_insert(now);
            match self.killed_at {
                None if now >= term_at + KILL_GRACE => {
                    self.signal_leftovers(libc::SIGKILL);
                    self.killed_at = Some(now);
                    self.sweep_step = 0;
                }
                Some(k) if now >= k + KILL_WAIT => {}
                _ => return self.arm_sweep(cx),
            }
            if self.killed_at.is_some_and(|k| now < k + KILL_WAIT) {
                return self.arm_sweep(cx);
            }
        }
        self.let_go(true);
        self.settled(cx);
    }

    /// Lets go of the run's group: the zombie leader is reaped, the pidfd
    /// closed; the cgroup is removed (`kill`: whatever is still in it is
    /// killed) or, when the rest is kept, left until it is empty.
    pub(super) fn let_go(&mut self, kill: bool) {
        match self.hold.take() {
            Some(Hold::Zombie) => {
                // A zombie: this returns at once.
                let _ = sys::wait4(self.pid, false);
            }
            Some(Hold::Pidfd(fd)) => drop(fd),
            Some(Hold::CgroupOnly) | None => {}
        }
        self.sweeping = false;
        if let Some(l) = &mut self.limits {
            if kill {
                l.cleanup();
            } else {
                l.release();
            }
        }
    }

    /// The run's group was let go: the close or the restart that waited for
    /// it goes on (before the run's end is reported, nothing waits).
    pub(super) fn settled(&mut self, cx: &mut Cx) {
        if !self.finished || self.hold.is_some() {
            return;
        }
        if self.closing {
            cx.die(None);
        } else if let Some(why) = self.die_when_clean.take() {
            close_after_run(cx, &why);
        } else if self.restart_when_clean {
            self.restart_when_clean = false;
            self.restart(cx);
        }
    }
}
