//! The few system calls the external family makes that std does not wrap:
//! pipes we hand to the child ourselves (so stderr can share stdout's),
//! pidfd_open, wait4 with resource usage (and waitid, which leaves the child
//! a zombie), signals to a process group (by number, or pinned by a pidfd),
//! and writes to a pipe that cannot raise SIGPIPE in the driver.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub use crate::sys::{has_cap, CAP_SYS_ADMIN, CAP_SYS_NICE, CAP_SYS_RESOURCE};

/// A pipe whose two ends are close-on-exec: (read end, write end).
/// `Command` dup2s the child's end onto 0/1/2, which clears the flag there.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1i32; 2];
    // SAFETY: `fds` is a valid, writable array of two ints, as pipe2 requires.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A pidfd for our child `pid`: readable once it has exited.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes (pid_t, unsigned flags) and returns a new fd or -1;
    // no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd (close-on-exec by default) and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Watches child `pid` for its exit: Ok(Some(pidfd)), readable once it has
/// exited; or, where pidfd_open is missing (kernels before 5.3, valgrind
/// before 3.20) or `UNISOCK_EXTERNAL_EXIT_WATCH=thread` asks for it, Ok(None)
/// and a helper thread that blocks in waitid(WNOWAIT) and calls `on_exit`
/// once the child has exited (or cannot be waited for). Either way the driver
/// thread reaps with wait4; nothing polls and no SIGCHLD handler is installed.
pub fn exit_watch(
    pid: i32,
    on_exit: impl FnOnce() + Send + 'static,
) -> io::Result<Option<OwnedFd>> {
    static FORCE_THREAD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let force = *FORCE_THREAD
        .get_or_init(|| std::env::var("UNISOCK_EXTERNAL_EXIT_WATCH").is_ok_and(|v| v == "thread"));
    if !force {
        match pidfd_open(pid) {
            Ok(fd) => return Ok(Some(fd)),
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {}
            Err(e) => return Err(e),
        }
    }
    std::thread::Builder::new()
        .name("unisock-exit".into())
        .spawn(move || {
            // SAFETY: siginfo_t is plain data; waitid only writes into it.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            loop {
                // SAFETY: `info` is valid for writes; WNOWAIT leaves the child
                // for the driver thread to reap.
                let r = unsafe {
                    libc::waitid(
                        libc::P_PID,
                        pid as libc::id_t,
                        &mut info,
                        libc::WEXITED | libc::WNOWAIT,
                    )
                };
                if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    break;
                }
            }
            on_exit();
        })?;
    Ok(None)
}

/// How a reaped child ended.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ended {
    /// Exit status, or -1 when a signal ended it.
    pub exit_code: i64,
    /// The signal that ended it, 0 if none.
    pub signal: i64,
    /// User + system CPU time.
    pub cpu_ms: i64,
    pub max_rss_kb: i64,
}

fn usage(exit_code: i64, signal: i64, ru: &libc::rusage) -> Ended {
    let ms = |t: libc::timeval| t.tv_sec * 1000 + t.tv_usec / 1000;
    Ended {
        exit_code,
        signal,
        cpu_ms: ms(ru.ru_utime) + ms(ru.ru_stime),
        max_rss_kb: ru.ru_maxrss,
    }
}

/// Reaps `pid` (our child). Without `block`, Ok(None) while it still runs.
pub fn wait4(pid: i32, block: bool) -> io::Result<Option<Ended>> {
    let mut status = 0i32;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let flags = if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: `status` and `ru` are valid for writes; `pid` names one child of ours.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut ru) };
        if r == 0 {
            return Ok(None);
        }
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        break;
    }
    let (exit_code, signal) = if libc::WIFEXITED(status) {
        (libc::WEXITSTATUS(status) as i64, 0)
    } else if libc::WIFSIGNALED(status) {
        (-1, libc::WTERMSIG(status) as i64)
    } else {
        (-1, 0)
    };
    Ok(Some(usage(exit_code, signal, &ru)))
}

/// How child `pid` ended, **without reaping it** (waitid with WNOWAIT), or
/// Ok(None) while it runs. The usage is what wait4 would report: the kernel
/// fills it through waitid's fifth argument, which glibc's wrapper does not
/// pass, hence the raw system call. The child stays a zombie, and a zombie
/// keeps its pid — so the number of the process group it leads — from being
/// given to anyone else until `wait4` reaps it.
pub fn waitid_nowait(pid: i32) -> io::Result<Option<Ended>> {
    // SAFETY: siginfo_t and rusage are plain data; all-zero is valid for both.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waitid(idtype, id, siginfo_t *, options, struct rusage *):
        // both pointers are valid for writes for the whole call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_waitid,
                libc::P_PID,
                pid as libc::id_t,
                &mut info as *mut libc::siginfo_t,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                &mut ru as *mut libc::rusage,
            )
        };
        if r == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    // SAFETY: waitid filled `info` for a child-state change (or left it
    // zeroed with WNOHANG: si_pid 0); these fields are then the ones set.
    let (who, status) = unsafe { (info.si_pid(), info.si_status()) };
    if who == 0 {
        return Ok(None);
    }
    let (exit_code, signal) = match info.si_code {
        libc::CLD_EXITED => (status as i64, 0),
        libc::CLD_KILLED | libc::CLD_DUMPED => (-1, status as i64),
        _ => (-1, 0),
    };
    Ok(Some(usage(exit_code, signal, &ru)))
}

/// Sends `sig` to the process group `pgid` (our child leads it; we only call
/// this while the leader is not yet reaped, so the group id cannot have been reused).
pub fn kill_group(pgid: i32, sig: i32) {
    if pgid > 0 {
        // SAFETY: kill takes plain integers; a negative pid addresses the group.
        unsafe { libc::kill(-pgid, sig) };
    }
}

/// Sends `sig` to the one process `pid` (never a group: pid > 0 only).
pub fn kill(pid: i32, sig: i32) {
    if pid > 0 {
        // SAFETY: kill takes plain integers; pid > 0 addresses one process.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Sends `sig` to the process group led by the process `pidfd` refers to:
/// pidfd_send_signal with PIDFD_SIGNAL_PROCESS_GROUP (Linux 6.9). This works
/// after the leader was reaped too, and can never reach another group: the
/// pidfd pins the group's kernel pid object, not its number (which is free
/// for reuse once the group is empty). Ok(false): nobody is left in the group
/// (zombies count as members until their parent reaps them). EINVAL: a kernel
/// without the flag.
pub fn pidfd_signal_group(pidfd: &OwnedFd, sig: i32) -> io::Result<bool> {
    // SAFETY: pidfd_send_signal(int pidfd, int sig, siginfo_t *info, unsigned
    // flags) with a null info (the kernel fills one as kill does); no memory
    // is written.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            libc::PIDFD_SIGNAL_PROCESS_GROUP,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ESRCH) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Whether `pidfd_signal_group` works here (asked with signal 0, which sends
/// nothing): false on kernels before 6.9 (EINVAL) and where the system call
/// is unknown (ENOSYS).
pub fn pidfd_signals_groups(pidfd: &OwnedFd) -> bool {
    !matches!(pidfd_signal_group(pidfd, 0),
              Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)))
}

/// Whether a live process (not a zombie) other than `except` is in process
/// group `pgid`: a walk of /proc, for where the group cannot be asked through
/// a pidfd (and to tell live members from zombies nobody reaped). When /proc
/// cannot be read the answer is "yes": the caller then waits and escalates
/// rather than assuming the group is empty.
pub fn group_has_live_member(pgid: i32, except: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    dir.flatten().any(|e| {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            return false;
        };
        pid != except
            && proc_stat(pid)
                .is_some_and(|st| st.pgrp == pgid && !matches!(st.state, 'Z' | 'X' | 'x'))
    })
}

/// Runs `f` (a write to a pipe) with SIGPIPE blocked on this thread, so a
/// child that closed its stdin gives EPIPE rather than a signal that would
/// kill the driver (FluffOS ignores SIGPIPE, but a C host might not). A
/// SIGPIPE the write raised is consumed before the mask is restored.
pub fn without_sigpipe<T>(f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    // SAFETY (whole block): sigset_t is plain data initialised by sigemptyset;
    // pthread_sigmask / sigpending / sigtimedwait only read and write the sets
    // passed, on the calling thread.
    unsafe {
        let mut pipe_set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe_set);
        libc::sigaddset(&mut pipe_set, libc::SIGPIPE);
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pending);
        libc::sigpending(&mut pending);
        let was_pending = libc::sigismember(&pending, libc::SIGPIPE) == 1;
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe_set, &mut old);
        let r = f();
        if !was_pending && matches!(&r, Err(e) if e.raw_os_error() == Some(libc::EPIPE)) {
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            while libc::sigtimedwait(&pipe_set, std::ptr::null_mut(), &zero) < 0
                && *libc::__errno_location() == libc::EINTR
            {}
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        r
    }
}

/// The calling thread's nice value (what a child it forks starts with).
pub fn nice_now() -> i32 {
    // SAFETY: getpriority takes plain integers; errno (this thread's) is
    // cleared first because -1 is also a valid nice value.
    unsafe {
        *libc::__errno_location() = 0;
        let n = libc::getpriority(libc::PRIO_PROCESS as _, 0);
        if n == -1 && *libc::__errno_location() != 0 {
            0
        } else {
            n
        }
    }
}

/// (soft, hard) of `resource` for this process; RLIM_INFINITY is u64::MAX.
pub fn rlimit(resource: libc::__rlimit_resource_t) -> (u64, u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid, writable rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(resource, &mut r) } != 0 {
        return (0, 0);
    }
    (r.rlim_cur, r.rlim_max)
}

/// The most open files a process may be allowed (/proc/sys/fs/nr_open).
pub fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20)
}

/// Runs in the child between fork and exec, after the limits are joined and
/// before the sandbox: the supplementary groups (only `gid`, when the driver
/// may set them), the group, then the user. setgid before setuid, since a
/// process that gave up root can no longer change its group. Only
/// async-signal-safe calls on plain integers.
pub fn switch_user(uid: Option<u32>, gid: Option<u32>, set_groups: bool) -> io::Result<()> {
    if let Some(g) = gid {
        if set_groups {
            // SAFETY: one gid_t read from a local array for the call.
            if unsafe { libc::setgroups(1, &g) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: plain integer argument.
        if unsafe { libc::setgid(g) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    if let Some(u) = uid {
        // SAFETY: plain integer argument.
        if unsafe { libc::setuid(u) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The primary group of user `uid` from the user database, if it has an entry.
pub fn primary_gid(uid: u32) -> Option<u32> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.gid.as_raw())
}

/// The effective uid of the driver.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Fields of /proc/<pid>/stat.
pub struct ProcStat {
    /// state (3): R, S, D, Z (zombie), T, X (dead)...
    pub state: char,
    /// pgrp (5): the process group.
    pub pgrp: i32,
    /// utime + stime (fields 14, 15), in clock ticks.
    pub cpu_ticks: u64,
    /// cutime + cstime (16, 17): its children that were reaped, in ticks.
    pub children_ticks: u64,
    /// nice (19).
    pub nice: i32,
    /// starttime (22), in ticks since boot.
    pub start_ticks: u64,
}

/// /proc/<pid>/stat, or None when the process is gone.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command, which may hold spaces, in parentheses.
    let rest = s.get(s.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i - 3)?.parse::<i64>().ok();
    Some(ProcStat {
        state: f.first()?.chars().next()?,
        pgrp: num(5)? as i32,
        cpu_ticks: (num(14)? + num(15)?) as u64,
        children_ticks: (num(16)? + num(17)?) as u64,
        nice: num(19)? as i32,
        start_ticks: num(22)? as u64,
    })
}

/// Clock ticks per second (the unit of /proc/<pid>/stat's times).
pub fn clk_tck() -> u64 {
    // SAFETY: sysconf takes a plain integer.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 {
        n as u64
    } else {
        100
    }
}

/// CPU time (ms, the process and its reaped children), resident set and its
/// peak (kB) of a running process, from /proc; zeros when it is gone.
pub fn proc_usage(pid: i32) -> (i64, i64, i64) {
    let cpu = proc_stat(pid).map_or(0, |st| {
        ((st.cpu_ticks + st.children_ticks) * 1000 / clk_tck()) as i64
    });
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (cpu, kb("VmRSS:"), kb("VmHWM:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// Waits (bounded) until `pidfd`'s process has exited.
    fn exited(pidfd: &OwnedFd) {
        let mut p = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the call.
        assert_eq!(
            unsafe { libc::poll(&mut p, 1, 10_000) },
            1,
            "the child did not exit"
        );
    }

    fn until(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by wait4 with its pid, as the endpoint does
    fn a_group_is_held_after_its_leader_exits() {
        // sh leads a group of its own, leaves a sleep in it, says its pid and exits.
        let mut c = Command::new("/bin/sh")
            .args(["-c", "sleep 30 >/dev/null 2>&1 & echo $!"])
            .process_group(0)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = c.id() as i32;
        let fd = pidfd_open(pid).unwrap();
        let mut out = String::new();
        c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let sleeper: i32 = out.trim().parse().unwrap();
        exited(&fd);
        // waitid(WNOWAIT): how it ended, and it stays a zombie (its number held).
        let e = waitid_nowait(pid).unwrap().expect("it has exited");
        assert_eq!((e.exit_code, e.signal), (0, 0));
        assert_eq!(proc_stat(pid).unwrap().state, 'Z');
        assert_eq!(proc_stat(sleeper).unwrap().pgrp, pid);
        assert!(group_has_live_member(pid, pid));
        assert!(!group_has_live_member(pid, sleeper)); // the zombie leader is not live
        if pidfd_signals_groups(&fd) {
            // Linux 6.9+: reaped, the group is still reached through the pidfd.
            assert!(wait4(pid, false).unwrap().is_some());
            assert!(pidfd_signal_group(&fd, 0).unwrap());
            assert!(pidfd_signal_group(&fd, libc::SIGKILL).unwrap());
        } else {
            kill_group(pid, libc::SIGKILL);
            assert!(wait4(pid, false).unwrap().is_some());
        }
        until("the sleep outlived the SIGKILL", || {
            proc_stat(sleeper).map_or(true, |s| s.state == 'Z')
        });
        assert!(!group_has_live_member(pid, pid));
    }

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by wait4 with its pid, as the endpoint does
    fn waitid_nowait_reports_a_signal_and_none_while_running() {
        let c = Command::new("/bin/sleep").arg("30").spawn().unwrap();
        let pid = c.id() as i32;
        let fd = pidfd_open(pid).unwrap();
        assert!(waitid_nowait(pid).unwrap().is_none());
        kill(pid, libc::SIGTERM);
        exited(&fd);
        let e = waitid_nowait(pid).unwrap().unwrap();
        assert_eq!((e.exit_code, e.signal), (-1, libc::SIGTERM as i64));
        // Still there for wait4, with the same answer.
        let r = wait4(pid, false).unwrap().unwrap();
        assert_eq!((r.exit_code, r.signal), (-1, libc::SIGTERM as i64));
        assert!(waitid_nowait(pid).is_err()); // ECHILD: reaped
    }
}
