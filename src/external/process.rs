//! EXTERNAL_PROCESS (22) and EXTERNAL_COMMAND_MODE (23): one child process
//! as a socket. socket_bind(id, 0) starts it; its stdout and stderr reach
//! the read callback as they come (22 with EXTERNAL_ASYNC 1) or as one
//! result mapping at the end (23, or EXTERNAL_ASYNC 0); socket_write feeds
//! its stdin. The exit is seen through a pidfd on the reactor and reaped
//! with wait4 (no SIGCHLD handler, no polling, no zombie).
//!
//! The end is reported only after both output pipes reached EOF and the
//! child was reaped, so no output is lost. A pipe still held open by a
//! descendant after the child exited is given DRAIN_GRACE, then dropped.
//!
//! What the child leaves behind (its process group, and its cgroup when the
//! limits made one) is ended when it exits, as systemd's default KillMode
//! does: SIGTERM (and SIGCONT), SIGKILL KILL_GRACE after the first SIGTERM,
//! on the reactor's timers; the close callback, or the next run of a
//! restart policy, waits until nothing is left. The group is signalled by
//! number only while its leader is unreaped; after the exit it is held
//! either by the leader's pidfd (`Hold::Pidfd`, Linux 6.9's
//! PIDFD_SIGNAL_PROCESS_GROUP) or by leaving the leader a zombie until the
//! group is done (`Hold::Zombie`), so a reused number is never signalled.
//! EXTERNAL_RESTART_POLICY's "kill_mode" "process" keeps the rest
//! (KillMode=process), except before a restart.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Child;
use std::time::{Duration, Instant};

use mio::unix::pipe::{Receiver, Sender};
use mio::unix::SourceFd;
use mio::{Interest, Token};

use super::limits::Limits;
use super::sandbox::Sandbox;
use super::spawn::Spec;
use super::sys::{self, Ended};
use super::watch::Watches;
use super::{opt, Call, ExternalError};
use crate::core::{Cx, Endpoint, EventKind, State};
use crate::error::{Error, Result, ResultCode};
use crate::modes;
use crate::policy::PolicyError;
use crate::reactor::{CompletionKind, Readiness};
use crate::transport::OutQueue;
use crate::value::Value;

const TIMER_TIMEOUT: u64 = 1;
const TIMER_KILL: u64 = 2;
const TIMER_READ_MORE: u64 = 3;
const TIMER_DRAIN: u64 = 4;
const TIMER_RESTART: u64 = 5;
const TIMER_LIMITS: u64 = 6;
const TIMER_WATCH_MORE: u64 = 7;
const TIMER_SWEEP: u64 = 8;

/// SIGTERM first; SIGKILL this long after (timeout, socket_close, and what
/// is left of the group after the child's exit, counted from the first SIGTERM).
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(5);
/// After SIGKILL to what was left, how long to wait for it to vanish before
/// the group is let go anyway (a process stuck in the kernel, state D).
pub(crate) const KILL_WAIT: Duration = Duration::from_secs(1);
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
/// After the child is reaped, how long a pipe a descendant still holds open may delay the end.
pub(crate) const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// Bytes read from one pipe per readiness before the driver gets a turn.
pub(crate) const READ_ROUND: usize = 256 * 1024;
/// The longest delay before a restart (EXTERNAL_RESTART_POLICY's backoff cap);
/// a run at least this long also resets the backoff.
pub(crate) const RESTART_CAP: Duration = Duration::from_secs(60);
/// File events kept for external_get_file_events (pull style); past it the
/// oldest go and one "overflow" event takes their place.
pub(crate) const PULLED_EVENTS_MAX: usize = 4096;

/// The inotify watches of the socket (EXTERNAL_WATCH_PATH and
/// external_monitor_path), registered on the reactor.
struct Watch {
    w: Watches,
    token: Token,
    /// The paths EXTERNAL_WATCH_PATH names and the ones external_monitor_path
    /// added (canonical keys; a path may be in both). A path is watched while
    /// either names it.
    from_option: Vec<String>,
    from_efun: Vec<String>,
}

/// What survives a restart: the watches, the events held for pulling, and
/// the restart bookkeeping.
#[derive(Default)]
struct Kept {
    watch: Option<Watch>,
    pulled: VecDeque<Value>,
    restarts: i64,
    /// When the last max_restarts restarts were decided (for the policy's window).
    restart_times: VecDeque<Instant>,
    /// The next restart's delay doubles from backoff_ms this many times.
    backoff_step: u32,
    restart_armed: bool,
    watch_more_armed: bool,
}

struct Output {
    rx: Receiver,
    token: Token,
    kind: &'static str,
    /// An incomplete UTF-8 sequence at the end of the last chunk (≤ 3 bytes).
    carry: Vec<u8>,
    /// Collected output (mode 23 / EXTERNAL_ASYNC 0), at most SO_MAX_BUFFERED bytes.
    collected: Vec<u8>,
    truncated: bool,
}

/// How a run's process group is held after its leader (the child) exited,
/// until nothing is left in it: the group's number is free for reuse once
/// the group is empty, so it is never signalled by number after the reap.
enum Hold {
    /// The leader is reaped; its pidfd pins the group, which
    /// `sys::pidfd_signal_group` signals (Linux 6.9+).
    Pidfd(OwnedFd),
    /// No pidfd, or an older kernel: the leader is left a zombie (its end
    /// read with `sys::waitid_nowait`), which keeps the number ours; reaped
    /// when the group is let go.
    Zombie,
    /// The child was reaped by someone else (a host that ignores SIGCHLD):
    /// only its cgroup, if any, can still be reached.
    CgroupOnly,
}

struct Input {
    tx: Sender,
    token: Token,
    queue: OutQueue,
    /// ([ "eof": 1 ]) was written: close after the queue is out.
    eof: bool,
}

pub struct Process {
    mode: u8,
    command: String,
    child: Option<Child>,
    pid: i32,
    /// Readable when the child has exited (None: `sys::exit_watch`'s thread
    /// posts CompletionKind::Exited instead).
    pidfd: Option<(OwnedFd, Token)>,
    exit_watch: &'static str,
    stdin: Option<Input>,
    stdin_closed_why: &'static str,
    out: [Option<Output>; 2],
    /// What each pipe collected by its EOF (mode 23 / EXTERNAL_ASYNC 0), and whether it was cut.
    collected: [Option<(Vec<u8>, bool)>; 2],
    ended: Option<Ended>,
    timed_out: bool,
    collect: bool,
    buf_size: usize,
    max_buffered: usize,
    started: Option<Instant>,
    write_owed: bool,
    closing: bool,
    finished: bool,
    read_more_armed: bool,
    /// A spawn failure, kept for the core's IPv4 retry of the same socket_bind.
    spawn_error: Option<Error>,
    scratch: Vec<u8>,
    limits: Option<Limits>,
    sandbox: Option<Sandbox>,
    /// TIMER_LIMITS is armed (the CPU limit's RLIMIT_CPU fallback).
    ticking: bool,
    /// From the child's exit until nothing of the run is left (or, with
    /// kill_mode "process", until the run's end lets the rest go).
    hold: Option<Hold>,
    /// What is left after the exit has been sent SIGTERM (and is being swept).
    sweeping: bool,
    /// The first SIGTERM of this run (timeout, socket_close or the exit);
    /// SIGKILL follows KILL_GRACE after it.
    term_at: Option<Instant>,
    /// When SIGKILL went to what was left after the exit.
    killed_at: Option<Instant>,
    sweep_armed: bool,
    sweep_step: u32,
    /// The run is over but its group is not clean yet: close once it is,
    /// with this end of the run ("exited", "timeout", ...).
    die_when_clean: Option<String>,
    /// The restart's delay is over but the group is not clean yet: start once it is.
    restart_when_clean: bool,
    kept: Kept,
}

impl Process {
    pub fn new(mode: u8) -> Process {
        Process {
            mode,
            command: String::new(),
            child: None,
            pid: 0,
            pidfd: None,
            exit_watch: "",
            stdin: None,
            stdin_closed_why: "the process has not been started (socket_bind(id, 0))",
            out: [None, None],
            collected: [None, None],
            ended: None,
            timed_out: false,
            collect: mode == modes::EXTERNAL_COMMAND_MODE,
            buf_size: 65536,
            max_buffered: 4 << 20,
            started: None,
            write_owed: false,
            closing: false,
            finished: false,
            read_more_armed: false,
            spawn_error: None,
            scratch: Vec::new(),
            limits: None,
            sandbox: None,
            ticking: false,
            hold: None,
            sweeping: false,
            term_at: None,
            killed_at: None,
            sweep_armed: false,
            sweep_step: 0,
            die_when_clean: None,
            restart_when_clean: false,
            kept: Kept::default(),
        }
    }

    /// EXTERNAL_RESTART_POLICY's kill_mode is "process": only the main
    /// process is ever signalled; what it started is kept (but for a restart).
    fn keeps_leftovers(&self, cx: &Cx) -> bool {
        self.mode == modes::EXTERNAL_PROCESS
            && RestartPolicy::from(cx.core.options.raw(opt::EXTERNAL_RESTART_POLICY)).keep
    }

    /// A signal to the running (unreaped) child: its whole process group and
    /// its cgroup, or with kill_mode "process" the child alone. A SIGTERM is
    /// followed by SIGCONT (a stopped process gets to handle it) and starts
    /// the grace.
    fn signal_running(&mut self, cx: &Cx, sig: i32) {
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
    fn signal_leftovers(&self, sig: i32) -> bool {
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
    fn end_leftovers(&mut self, cx: &mut Cx) {
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
    fn sweep(&mut self, cx: &mut Cx) {
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
    fn let_go(&mut self, kill: bool) {
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
    fn settled(&mut self, cx: &mut Cx) {
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

    fn running(&self) -> bool {
        self.pid > 0 && self.ended.is_none()
    }

    fn start(&mut self, cx: &mut Cx) -> Result<()> {
        // A start after a failed one (or a restart) begins from a clean
        // slate, but for the watches and the restart bookkeeping. A restart
        // comes only once the last run's group was let go; should it not
        // have been, it is ended now.
        if self.hold.is_some() {
            self.signal_leftovers(libc::SIGKILL);
            self.let_go(true);
        }
        let kept = std::mem::take(&mut self.kept);
        *self = Process::new(self.mode);
        self.kept = kept;
        let o = &cx.core.options;
        let spec = Spec::from_options(o, self.mode)?;
        self.collect =
            self.mode == modes::EXTERNAL_COMMAND_MODE || o.int(opt::EXTERNAL_ASYNC, self.mode) == 0;
        self.buf_size = o.int(opt::EXTERNAL_BUFFER_SIZE, self.mode).max(1024) as usize;
        self.max_buffered = o.int(opt::SO_MAX_BUFFERED, self.mode).max(0) as usize;
        let timeout = o.int(opt::EXTERNAL_TIMEOUT, self.mode).max(0) as u64;
        self.command = spec.command.clone();
        let mut sp = spec.spawn()?;
        self.limits = sp.limits.take();
        self.sandbox = sp.sandbox.take();
        self.pid = sp.pid;
        self.child = Some(sp.child);
        self.started = Some(Instant::now());
        let fail = |what: &str, e: io::Error| -> Error {
            ExternalError::Start {
                why: format!("{what}: {e}"),
            }
            .into()
        };
        let registered = (|| -> Result<()> {
            let notifier = cx.notifier();
            let pid = self.pid;
            let on_exit = move || notifier.post(CompletionKind::Exited(pid));
            match sys::exit_watch(pid, on_exit).map_err(|e| fail("watching its exit", e))? {
                Some(pidfd) => {
                    let token = cx
                        .register(&mut SourceFd(&pidfd.as_raw_fd()), Interest::READABLE)
                        .map_err(|e| fail("register", e))?;
                    self.pidfd = Some((pidfd, token));
                    self.exit_watch = "pidfd";
                }
                None => self.exit_watch = "thread",
            }
            for (i, fd) in [sp.stdout, sp.stderr].into_iter().enumerate() {
                let Some(fd) = fd else { continue };
                let mut rx = Receiver::from(fd);
                rx.set_nonblocking(true).map_err(|e| fail("pipe", e))?;
                let token = cx
                    .register(&mut rx, Interest::READABLE)
                    .map_err(|e| fail("register", e))?;
                self.out[i] = Some(Output {
                    rx,
                    token,
                    kind: if i == 0 { "stdout" } else { "stderr" },
                    carry: Vec::new(),
                    collected: Vec::new(),
                    truncated: false,
                });
            }
            self.stdin_closed_why = "EXTERNAL_STDIN_MODE is not \"pipe\"";
            if let Some(fd) = sp.stdin {
                let mut tx = Sender::from(fd);
                tx.set_nonblocking(true).map_err(|e| fail("pipe", e))?;
                let token = cx
                    .register(&mut tx, Interest::WRITABLE)
                    .map_err(|e| fail("register", e))?;
                self.stdin = Some(Input {
                    tx,
                    token,
                    queue: OutQueue::default(),
                    eof: false,
                });
            }
            Ok(())
        })();
        if let Err(e) = registered {
            self.abort(cx);
            self.pid = 0;
            return Err(e);
        }
        if timeout > 0 {
            cx.timer(Duration::from_secs(timeout), TIMER_TIMEOUT);
        }
        if let Some(d) = self.limits.as_ref().and_then(Limits::next_tick) {
            self.ticking = true;
            cx.timer(d, TIMER_LIMITS);
        }
        cx.core.state = State::DataXfer;
        cx.core.mark_connected();
        Ok(())
    }

    /// The pidfd is readable, or the exit-watch thread saw the exit: learn
    /// how the child ended, and hold its group (see `Hold`).
    fn reap(&mut self, cx: &mut Cx) {
        if self.ended.is_some() || self.pid <= 0 {
            return;
        }
        // The leader is still unreaped here, so the pidfd can be asked whether
        // it signals groups (the group holds at least the zombie).
        let by_pidfd = self
            .pidfd
            .as_ref()
            .is_some_and(|(fd, _)| sys::pidfd_signals_groups(fd));
        let ended = if by_pidfd {
            sys::wait4(self.pid, false)
        } else {
            sys::waitid_nowait(self.pid)
        };
        let (ended, hold) = match ended {
            Ok(Some(e)) => (e, if by_pidfd { None } else { Some(Hold::Zombie) }),
            Ok(None) => return,
            // ECHILD: someone else reaped it (a host with SIGCHLD ignored); report what we know.
            Err(_) => (
                Ended {
                    exit_code: -1,
                    ..Ended::default()
                },
                None,
            ),
        };
        self.ended = Some(ended);
        let pidfd = self.pidfd.take().map(|(fd, token)| {
            cx.reactor.deregister(&mut SourceFd(&fd.as_raw_fd()), token);
            fd
        });
        self.hold = Some(match (hold, pidfd) {
            (Some(h), _) => h,
            (None, Some(fd)) if by_pidfd => Hold::Pidfd(fd),
            _ => Hold::CgroupOnly,
        });
        // Dropping the Child does not wait (it is reaped, or held as a zombie).
        self.child = None;
        // What the child left is ended now, unless kill_mode "process" keeps it
        // (then the run's end lets it go, or ends it before a restart).
        if !self.keeps_leftovers(cx) {
            self.end_leftovers(cx);
        }
        self.close_stdin(cx, "the process has exited");
        // Output written just before the exit is read before the end is reported.
        self.read_all(cx);
        if self.out.iter().any(Option::is_some) {
            cx.timer(DRAIN_GRACE, TIMER_DRAIN);
        }
        self.check_done(cx);
    }

    fn read_all(&mut self, cx: &mut Cx) {
        let mut more = false;
        for i in 0..2 {
            more |= self.read_out(cx, i);
        }
        if more && !self.read_more_armed {
            self.read_more_armed = true;
            cx.timer(Duration::ZERO, TIMER_READ_MORE);
        }
    }

    /// Reads pipe `i` until it would block (true: stopped at READ_ROUND).
    fn read_out(&mut self, cx: &mut Cx, i: usize) -> bool {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.resize(self.buf_size, 0);
        let mut total = 0;
        let limited = loop {
            let Some(o) = &mut self.out[i] else {
                break false;
            };
            if total >= READ_ROUND {
                break true;
            }
            let room = self.buf_size - o.carry.len();
            match o.rx.read(&mut buf[..room]) {
                Ok(0) => {
                    self.eof(cx, i);
                    break false;
                }
                Ok(n) => {
                    total += n;
                    cx.core.stats.bytes_in += n as u64;
                    self.deliver(cx, i, &buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.eof(cx, i);
                    break false;
                }
            }
        };
        self.scratch = buf;
        limited
    }

    fn deliver(&mut self, cx: &mut Cx, i: usize, data: &[u8]) {
        let collect = self.collect;
        let max = self.max_buffered;
        let Some(o) = &mut self.out[i] else { return };
        if collect {
            let room = max.saturating_sub(o.collected.len());
            o.collected.extend_from_slice(&data[..data.len().min(room)]);
            o.truncated |= data.len() > room;
            return;
        }
        let mut bytes = std::mem::take(&mut o.carry);
        bytes.extend_from_slice(data);
        o.carry = cut_incomplete_char(&mut bytes);
        if bytes.is_empty() {
            return;
        }
        let kind = o.kind;
        self.emit_chunk(cx, kind, bytes);
    }

    fn emit_chunk(&mut self, cx: &mut Cx, kind: &'static str, bytes: Vec<u8>) {
        let data = Value::from_bytes_lossless(bytes);
        let binary = matches!(data, Value::Buffer(_));
        cx.core.stats.messages_in += 1;
        let ev = Value::mapping([
            ("type", Value::str(kind)),
            ("data", data),
            ("data_is_binary", Value::Int(binary as i64)),
        ]);
        cx.emit(EventKind::Read, Some(ev), Some(self.command.clone()));
    }

    /// Pipe `i` reached EOF (or failed): what is held back goes out; it is dropped.
    fn eof(&mut self, cx: &mut Cx, i: usize) {
        let Some(mut o) = self.out[i].take() else {
            return;
        };
        cx.reactor.deregister(&mut o.rx, o.token);
        if !o.carry.is_empty() && !self.collect {
            let carry = std::mem::take(&mut o.carry);
            self.emit_chunk(cx, o.kind, carry);
        }
        if self.collect {
            // Keep what was collected for the result mapping.
            self.collected[i] = Some((std::mem::take(&mut o.collected), o.truncated));
        }
        self.check_done(cx);
    }

    fn check_done(&mut self, cx: &mut Cx) {
        if self.finished || self.ended.is_none() || self.out.iter().any(Option::is_some) {
            return;
        }
        self.finish(cx);
    }

    /// Both pipes are done and the child is reaped: the final mapping, then close_cb.
    fn finish(&mut self, cx: &mut Cx) {
        if self.finished {
            return;
        }
        self.finished = true;
        for i in 0..2 {
            if self.out[i].is_some() {
                // Held open by a descendant past DRAIN_GRACE.
                self.eof(cx, i);
            }
        }
        let e = self.ended.unwrap_or_default();
        let reason = if self.timed_out {
            "timeout"
        } else if self.limits.as_ref().is_some_and(|l| l.limit_hit(&e)) {
            "limit"
        } else if e.signal != 0 {
            "killed"
        } else {
            "exited"
        };
        let ev = if self.collect {
            let mut m = Value::mapping([("type", Value::str("result"))]);
            let mut truncated = false;
            for (i, name) in ["stdout", "stderr"].into_iter().enumerate() {
                let (bytes, cut) = self.collected[i].take().unwrap_or_default();
                truncated |= cut;
                let v = Value::from_bytes_lossless(bytes);
                let binary = matches!(v, Value::Buffer(_));
                m.insert(Value::str(name), v);
                m.insert(
                    Value::Str(format!("{name}_is_binary")),
                    Value::Int(binary as i64),
                );
            }
            m.insert(Value::str("exit_code"), Value::Int(e.exit_code));
            m.insert(Value::str("signal"), Value::Int(e.signal));
            m.insert(Value::str("reason"), Value::str(reason));
            let elapsed = self.started.map_or(0, |t| t.elapsed().as_millis() as i64);
            m.insert(Value::str("elapsed_ms"), Value::Int(elapsed));
            if truncated {
                m.insert(Value::str("truncated"), Value::Int(1));
            }
            m
        } else {
            Value::mapping([
                ("type", Value::str("exit")),
                ("exit_code", Value::Int(e.exit_code)),
                ("signal", Value::Int(e.signal)),
                ("reason", Value::str(reason)),
                ("restarts", Value::Int(self.kept.restarts)),
                ("cpu_ms", Value::Int(e.cpu_ms)),
                ("max_rss_kb", Value::Int(e.max_rss_kb)),
            ])
        };
        cx.emit(EventKind::Read, Some(ev), Some(self.command.clone()));
        let failed = reason != "exited" || e.exit_code != 0;
        let ran = self.started.map_or(Duration::ZERO, |t| t.elapsed());
        self.end_run(cx, failed, ran, reason);
    }

    /// A run ended (its exit mapping is out): restart it as
    /// EXTERNAL_RESTART_POLICY says, or close. `why`: the mapping's "reason"
    /// ("exited" is a normal end of the socket, anything else an abnormal one).
    /// The close callback waits until nothing of the run is left; so does
    /// the restart, which ends what kill_mode "process" would have kept.
    fn end_run(&mut self, cx: &mut Cx, failed: bool, ran: Duration, why: &str) {
        match self.restart_delay(cx, failed, ran) {
            Some(delay) => {
                let ev = Value::mapping([
                    ("type", Value::str("restart")),
                    ("attempt", Value::Int(self.kept.restarts + 1)),
                    ("delay_ms", Value::Int(delay.as_millis() as i64)),
                ]);
                cx.emit(EventKind::Read, Some(ev), Some(self.command.clone()));
                self.kept.restart_armed = true;
                cx.timer(delay, TIMER_RESTART);
                self.end_leftovers(cx);
            }
            None => {
                if self.hold.is_some() && !self.sweeping {
                    // kill_mode "process": the rest is kept.
                    self.let_go(false);
                }
                if self.hold.is_some() {
                    self.die_when_clean = Some(why.to_string());
                } else {
                    close_after_run(cx, why);
                }
            }
        }
    }

    /// How long to wait before starting again, or None to stay ended.
    fn restart_delay(&mut self, cx: &mut Cx, failed: bool, ran: Duration) -> Option<Duration> {
        if self.closing || self.mode != modes::EXTERNAL_PROCESS {
            return None;
        }
        let policy = RestartPolicy::from(cx.core.options.raw(opt::EXTERNAL_RESTART_POLICY));
        match policy.policy.as_str() {
            "always" => {}
            "on-failure" if failed => {}
            _ => return None,
        }
        let k = &mut self.kept;
        let now = Instant::now();
        if policy.window > 0 {
            let window = Duration::from_secs(policy.window);
            while k
                .restart_times
                .front()
                .is_some_and(|t| now.duration_since(*t) > window)
            {
                k.restart_times.pop_front();
            }
        }
        if policy.max_restarts > 0 && k.restart_times.len() as u64 >= policy.max_restarts {
            return None;
        }
        // Only the last max_restarts times can matter (none without a limit).
        k.restart_times.push_back(now);
        while k.restart_times.len() as u64 > policy.max_restarts {
            k.restart_times.pop_front();
        }
        if ran >= RESTART_CAP {
            k.backoff_step = 0;
        }
        let delay = Duration::from_millis(policy.backoff_ms)
            .saturating_mul(1u32.checked_shl(k.backoff_step).unwrap_or(u32::MAX))
            .min(RESTART_CAP);
        k.backoff_step = (k.backoff_step + 1).min(31);
        Some(delay)
    }

    /// TIMER_RESTART: the next run. A start that fails is reported as an
    /// exit (exit_code -1, with "error") and counts as a failure.
    fn restart(&mut self, cx: &mut Cx) {
        if !self.kept.restart_armed || self.closing {
            return;
        }
        if self.hold.is_some() {
            // The last run's group is not clean yet: `settled` comes back.
            self.restart_when_clean = true;
            return;
        }
        self.kept.restart_armed = false;
        self.kept.restarts += 1;
        if let Err(e) = self.start(cx) {
            self.finished = true;
            let why = format!("restart failed: {}", e.message);
            let ev = Value::mapping([
                ("type", Value::str("exit")),
                ("exit_code", Value::Int(-1)),
                ("signal", Value::Int(0)),
                ("reason", Value::str("exited")),
                ("restarts", Value::Int(self.kept.restarts)),
                ("cpu_ms", Value::Int(0)),
                ("max_rss_kb", Value::Int(0)),
                ("error", Value::Str(e.message)),
            ]);
            cx.emit(EventKind::Read, Some(ev), Some(self.command.clone()));
            self.end_run(cx, true, Duration::ZERO, &why);
        }
    }

    /// Whether output and file events are held for pulling (mode 23 or
    /// EXTERNAL_ASYNC 0) rather than sent to the read callback.
    fn pulls(&self, cx: &Cx) -> bool {
        self.mode == modes::EXTERNAL_COMMAND_MODE
            || cx.core.options.int(opt::EXTERNAL_ASYNC, self.mode) == 0
    }

    /// The socket's watches, made and registered on first use.
    fn watch(&mut self, cx: &mut Cx) -> Result<&mut Watch> {
        if self.kept.watch.is_none() {
            let fail = |e: io::Error| ExternalError::Inotify { why: e.to_string() };
            let w = Watches::new().map_err(fail)?;
            let token = cx
                .register(&mut SourceFd(&w.fd()), Interest::READABLE)
                .map_err(fail)?;
            self.kept.watch = Some(Watch {
                w,
                token,
                from_option: Vec::new(),
                from_efun: Vec::new(),
            });
        }
        Ok(self.kept.watch.as_mut().expect("made above"))
    }

    fn drop_watches(&mut self, cx: &mut Cx) {
        if let Some(w) = self.kept.watch.take() {
            cx.reactor.deregister(&mut SourceFd(&w.w.fd()), w.token);
        }
    }

    /// EXTERNAL_WATCH_PATH was set: watch the new paths, stop watching the
    /// ones it no longer names unless external_monitor_path added them too.
    /// All or nothing: a path that cannot be watched leaves the old set.
    fn watch_option(&mut self, cx: &mut Cx) -> Result<()> {
        let given: Vec<String> = match cx.core.options.raw(opt::EXTERNAL_WATCH_PATH) {
            Some(Value::Str(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if given.is_empty() && self.kept.watch.is_none() {
            return Ok(());
        }
        let refused = |why| super::refused(opt::EXTERNAL_WATCH_PATH, why);
        let mut wanted: Vec<String> = Vec::new();
        for p in &given {
            let key = Watches::key(p).map_err(refused)?;
            if !wanted.contains(&key) {
                wanted.push(key);
            }
        }
        let w = self.watch(cx)?;
        let watched = w.w.paths();
        let mut added = Vec::new();
        for key in &wanted {
            if watched.contains(key) {
                continue;
            }
            match add_watch(&mut w.w, key, 0, "EXTERNAL_WATCH_PATH") {
                Ok(_) => added.push(key.clone()),
                Err((policy, why)) => {
                    for a in &added {
                        let _ = w.w.remove(a);
                    }
                    return Err(if policy {
                        PolicyError::Refused {
                            verb: "socket_set_option",
                            why,
                        }
                        .into()
                    } else {
                        refused(why)
                    });
                }
            }
        }
        for old in std::mem::take(&mut w.from_option) {
            if !wanted.contains(&old) && !w.from_efun.contains(&old) {
                let _ = w.w.remove(&old);
            }
        }
        w.from_option = wanted;
        Ok(())
    }

    /// The inotify fd is readable: the events go to the read callback, or
    /// are held for external_get_file_events.
    fn read_watches(&mut self, cx: &mut Cx) {
        let Some(w) = &mut self.kept.watch else {
            return;
        };
        let mut evs = Vec::new();
        let more = w.w.read(&mut evs);
        let pull = self.pulls(cx);
        for ev in evs {
            if pull {
                hold(&mut self.kept.pulled, ev, PULLED_EVENTS_MAX);
            } else {
                cx.emit(EventKind::Read, Some(ev), None);
            }
        }
        if more && !self.kept.watch_more_armed {
            self.kept.watch_more_armed = true;
            cx.timer(Duration::ZERO, TIMER_WATCH_MORE);
        }
    }

    /// external_read_process: takes up to `max` bytes of the stdout held
    /// for the result mapping, never cutting a UTF-8 character.
    fn pull_output(&mut self, max: Option<usize>) -> Value {
        let held = match (&mut self.out[0], &mut self.collected[0]) {
            (Some(o), _) => &mut o.collected,
            (None, Some((bytes, _))) => bytes,
            _ => return Value::Int(0),
        };
        if held.is_empty() {
            return Value::Int(0);
        }
        let mut n = max.unwrap_or(held.len()).min(held.len());
        if let Err(e) = std::str::from_utf8(&held[..n]) {
            // A character cut at the end waits for the next pull, unless
            // the output is not text anyway.
            if e.error_len().is_none() && e.valid_up_to() > 0 {
                n = e.valid_up_to();
            }
        }
        let rest = held.split_off(n);
        let taken = std::mem::replace(held, rest);
        Value::from_bytes_lossless(taken)
    }

    /// external_set_resource_limits.
    fn set_limits(&mut self, cx: &mut Cx, limits: &Value) -> Result<()> {
        let Value::Mapping(pairs) = limits else {
            return Err(ExternalError::LimitsNotMapping {
                got: limits.type_name(),
            }
            .into());
        };
        // Every key is checked (as its option would be) before anything changes.
        let mut todo = Vec::new();
        for (k, v) in pairs {
            let id = match k.as_str() {
                Some("cpu") => opt::EXTERNAL_CPU_LIMIT,
                Some("memory") => opt::EXTERNAL_MEMORY_LIMIT,
                Some("files") => opt::EXTERNAL_FILE_LIMIT,
                Some("priority") => opt::EXTERNAL_PRIORITY,
                _ => return Err(ExternalError::LimitsUnknownKey { key: k.describe() }.into()),
            };
            let def = crate::options::catalog::find(id as i64).expect("in the catalog");
            let v = crate::options::validate::validate(def, v).map_err(as_limits_error)?;
            super::option_set(id, Some(&v)).map_err(as_limits_error)?;
            if id == opt::EXTERNAL_FILE_LIMIT && v.as_int() == Some(0) && self.running() {
                return Err(ExternalError::LimitsFilesZero.into());
            }
            todo.push((id, v));
        }
        if self.running() {
            let key = |id: u16| match id {
                opt::EXTERNAL_CPU_LIMIT => "cpu",
                opt::EXTERNAL_MEMORY_LIMIT => "memory",
                opt::EXTERNAL_FILE_LIMIT => "files",
                _ => "priority",
            };
            let asked = Value::mapping(todo.iter().map(|(id, v)| (key(*id), v.clone())));
            let l = self
                .limits
                .as_mut()
                .expect("a running process has its limits");
            let mut applied = Vec::new();
            let result = l.set_running_noting(&asked, &mut applied);
            // A CPU limit that had to fall back to RLIMIT_CPU needs the ticks.
            if !self.ticking {
                if let Some(d) = l.next_tick() {
                    self.ticking = true;
                    cx.timer(d, TIMER_LIMITS);
                }
            }
            if let Err(why) = result {
                // What was applied before the refusal stays, and its options say so.
                for (id, v) in todo {
                    if applied.contains(&key(id)) {
                        cx.core.options.set_internal(id, v);
                    }
                }
                return Err(ExternalError::Limits { why }.into());
            }
        }
        // Stored as the options too: get_option tells the truth, and a
        // restart (or the first start) applies them.
        for (id, v) in todo {
            cx.core.options.set_internal(id, v);
        }
        Ok(())
    }

    /// external_get_process_stats.
    fn stats(&self) -> Value {
        let mut m = Value::mapping([
            ("pid", Value::Int(self.pid as i64)),
            ("running", Value::Int(self.running() as i64)),
            (
                "uptime_ms",
                Value::Int(match (self.started, self.running()) {
                    (Some(t), true) => t.elapsed().as_millis() as i64,
                    _ => 0,
                }),
            ),
        ]);
        let (cpu_ms, rss_kb, max_rss_kb) = match self.ended {
            Some(e) => (e.cpu_ms, 0, e.max_rss_kb),
            None if self.running() => {
                let (cpu, rss, hwm) = sys::proc_usage(self.pid);
                // The cgroups count the descendants too, where they count.
                let u = self.limits.as_ref().map(Limits::usage).unwrap_or_default();
                (
                    u.cpu_ms.map_or(cpu, |c| c.max(cpu)),
                    u.memory_kb.map_or(rss, |m| m.max(rss)),
                    hwm,
                )
            }
            None => (0, 0, 0),
        };
        m.insert(Value::str("cpu_ms"), Value::Int(cpu_ms));
        m.insert(Value::str("rss_kb"), Value::Int(rss_kb));
        m.insert(Value::str("max_rss_kb"), Value::Int(max_rss_kb));
        m.insert(Value::str("restarts"), Value::Int(self.kept.restarts));
        let limits = match &self.limits {
            Some(l) => l.report(),
            None => Value::Mapping(vec![]),
        };
        m.insert(Value::str("limits"), limits);
        let sandbox = self
            .sandbox
            .as_ref()
            .map_or(Value::Mapping(vec![]), Sandbox::report);
        m.insert(Value::str("sandbox"), sandbox);
        if let Some(w) = &self.kept.watch {
            m.insert(
                Value::str("watches"),
                Value::Array(w.w.paths().into_iter().map(Value::Str).collect()),
            );
        }
        m
    }

    fn close_stdin(&mut self, cx: &mut Cx, why: &'static str) {
        if let Some(mut s) = self.stdin.take() {
            cx.reactor.deregister(&mut s.tx, s.token);
            self.stdin_closed_why = why;
        }
    }

    /// Writes queued stdin bytes until the pipe is full; closes stdin after
    /// an eof request once the queue is empty. Err: the child closed its end.
    fn flush(&mut self, cx: &mut Cx) -> io::Result<()> {
        let Some(s) = &mut self.stdin else {
            return Ok(());
        };
        let tx = &mut s.tx;
        let (n, r) = s.queue.write_with(|b| sys::without_sigpipe(|| tx.write(b)));
        cx.core.stats.bytes_out += n as u64;
        if let Err(e) = r {
            self.close_stdin(cx, "the process closed its stdin");
            return Err(e);
        }
        if s.queue.is_empty() && s.eof {
            self.close_stdin(cx, "stdin was closed with ([ \"eof\": 1 ])");
        }
        Ok(())
    }

    fn check_drained(&mut self, cx: &mut Cx) {
        if !self.write_owed {
            return;
        }
        let pending = self.stdin.as_ref().map_or(0, |s| s.queue.len());
        if pending <= self.max_buffered / 2 {
            self.write_owed = false;
            cx.emit(EventKind::Write, None, None);
        }
    }
}

/// An option's refusal, as external_set_resource_limits's error (EEBADDATA).
/// Watches `key` (a canonical watch path) if the policy's `watch_dirs`
/// allow it, from the canonical path it allowed. Err((true, why)): the
/// policy refused; Err((false, why)): it cannot be watched.
fn add_watch(
    w: &mut Watches,
    key: &str,
    bits: u32,
    what: &str,
) -> std::result::Result<i64, (bool, String)> {
    use crate::policy::{gate, Denied};
    match gate::watch(what, gate::watch_base(key)) {
        Ok((real, confine)) => w
            .add_checked(key, bits, real, confine)
            .map_err(|e| (false, e)),
        Err(Denied::Policy(m)) => Err((true, m)),
        Err(Denied::Io(..)) => Err((false, Watches::unresolved(key))),
    }
}

fn as_limits_error(e: Error) -> Error {
    ExternalError::LimitsOption {
        option_error: e.message,
    }
    .into()
}

/// Keeps `ev` for external_get_file_events, at most `max` held: past it
/// the oldest event goes, and one "overflow" event at the front (made the
/// first time) says events were lost.
fn hold(q: &mut VecDeque<Value>, ev: Value, max: usize) {
    if q.len() >= max {
        if q.front().is_some_and(is_overflow) {
            q.remove(1);
        } else {
            // the marker takes a place too
            q.pop_front();
            q.pop_front();
            q.push_front(Value::mapping([
                ("type", Value::str("file_event")),
                ("events", Value::Array(vec![Value::str("overflow")])),
                ("path", Value::str("")),
            ]));
        }
    }
    q.push_back(ev);
}

fn is_overflow(v: &Value) -> bool {
    matches!(v.get("events"), Some(Value::Array(a)) if a.first().and_then(Value::as_str) == Some("overflow"))
}

/// EXTERNAL_RESTART_POLICY as stored (the catalog normalised it).
struct RestartPolicy {
    policy: String,
    max_restarts: u64,
    backoff_ms: u64,
    window: u64,
    /// kill_mode "process": keep what the child leaves (KillMode=process).
    keep: bool,
}

impl From<Option<&Value>> for RestartPolicy {
    fn from(v: Option<&Value>) -> RestartPolicy {
        let int = |k: &str, d: i64| {
            v.and_then(|v| v.get(k))
                .and_then(Value::as_int)
                .unwrap_or(d)
        };
        let policy = match v {
            Some(Value::Str(s)) => s.clone(),
            Some(m) => m
                .get("policy")
                .and_then(Value::as_str)
                .unwrap_or("never")
                .to_string(),
            None => "never".to_string(),
        };
        RestartPolicy {
            policy,
            max_restarts: int("max_restarts", 0).max(0) as u64,
            backoff_ms: int("backoff_ms", 1000).max(0) as u64,
            window: int("window", 0).max(0) as u64,
            keep: v.and_then(|v| v.get("kill_mode")).and_then(Value::as_str) == Some("process"),
        }
    }
}

/// Splits off an incomplete UTF-8 character at the end of `bytes` (valid
/// text before it), so a character cut by a read waits for the next one and
/// text stays text; a chunk is then still at most EXTERNAL_BUFFER_SIZE bytes.
/// Bytes that are not UTF-8 anyway are left alone (delivered as a buffer).
/// (legacy::framing's Utf8Chunker is lossy, replacing bad bytes with U+FFFD,
/// which would corrupt binary output; this keeps every byte.)
fn cut_incomplete_char(bytes: &mut Vec<u8>) -> Vec<u8> {
    match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_none() => bytes.split_off(e.valid_up_to()),
        _ => Vec::new(),
    }
}

impl Endpoint for Process {
    fn bind(&mut self, cx: &mut Cx, addr: SocketAddr) -> Result<()> {
        if addr.port() != 0 {
            return Err(ExternalError::BindNeedsZero.into());
        }
        // The core retries a bind error on the IPv4 wildcard: same answer, no second spawn.
        if addr.is_ipv4() {
            if let Some(e) = self.spawn_error.take() {
                return Err(e);
            }
        }
        match self.start(cx) {
            Err(e) if e.code == ResultCode::EeBind => {
                self.spawn_error = Some(e.clone());
                Err(e)
            }
            r => r,
        }
    }

    fn ready(&mut self, cx: &mut Cx, r: Readiness) {
        if self.kept.watch.as_ref().is_some_and(|w| w.token == r.token) {
            return self.read_watches(cx);
        }
        if self.pidfd.as_ref().is_some_and(|(_, t)| *t == r.token) {
            return self.reap(cx);
        }
        for i in 0..2 {
            if self.out[i].as_ref().is_some_and(|o| o.token == r.token) {
                if self.read_out(cx, i) && !self.read_more_armed {
                    self.read_more_armed = true;
                    cx.timer(Duration::ZERO, TIMER_READ_MORE);
                }
                return self.check_done(cx);
            }
        }
        if self.stdin.as_ref().is_some_and(|s| s.token == r.token) {
            if self.flush(cx).is_err() {
                cx.core.stats.errors += 1;
            }
            self.check_drained(cx);
        }
    }

    fn completed(&mut self, cx: &mut Cx, kind: CompletionKind) {
        // From this run's exit-watch thread (an earlier run's child was reaped
        // already, and reap checks with WNOHANG anyway).
        if let CompletionKind::Exited(pid) = kind {
            if pid == self.pid && self.pidfd.is_none() {
                self.reap(cx);
            }
        }
    }

    fn timer(&mut self, cx: &mut Cx, key: u64) {
        match key {
            TIMER_TIMEOUT if self.running() => {
                self.timed_out = true;
                self.signal_running(cx, libc::SIGTERM);
                cx.timer(KILL_GRACE, TIMER_KILL);
            }
            TIMER_KILL if self.running() => self.signal_running(cx, libc::SIGKILL),
            TIMER_SWEEP => self.sweep(cx),
            TIMER_READ_MORE => {
                self.read_more_armed = false;
                self.read_all(cx);
                self.check_done(cx);
            }
            TIMER_DRAIN if self.ended.is_some() => self.finish(cx),
            TIMER_RESTART => self.restart(cx),
            TIMER_LIMITS => {
                self.ticking = false;
                if !self.running() {
                    return;
                }
                if let Some(d) = self.limits.as_mut().and_then(Limits::tick) {
                    self.ticking = true;
                    cx.timer(d, TIMER_LIMITS);
                }
            }
            TIMER_WATCH_MORE => {
                self.kept.watch_more_armed = false;
                self.read_watches(cx);
            }
            _ => {}
        }
    }

    fn write(&mut self, cx: &mut Cx, data: &Value, target: Option<&str>) -> Result<ResultCode> {
        if target.is_some_and(|t| !t.is_empty()) {
            return Err(ExternalError::WriteTakesNoTarget.into());
        }
        let bytes: &[u8] = match data {
            Value::Str(s) => s.as_bytes(),
            Value::Buffer(b) => b,
            Value::Mapping(_)
                if data
                    .get("eof")
                    .and_then(Value::as_int)
                    .is_some_and(|i| i != 0) =>
            {
                &[]
            }
            _ => {
                return Err(ExternalError::WriteWrongType {
                    got: data.type_name(),
                }
                .into())
            }
        };
        let eof = matches!(data, Value::Mapping(_));
        let Some(s) = &mut self.stdin else {
            return Err(ExternalError::StdinNotOpen {
                why: self.stdin_closed_why,
            }
            .into());
        };
        if s.eof {
            return Err(ExternalError::StdinNotOpen {
                why: "stdin was closed with ([ \"eof\": 1 ])",
            }
            .into());
        }
        if eof {
            s.eof = true;
            self.flush(cx).ok();
            return Ok(ResultCode::Ok);
        }
        let pending = s.queue.len();
        if pending > 0 && pending + bytes.len() > self.max_buffered {
            self.write_owed = true;
            return Err(ExternalError::StdinFull {
                pending,
                max: self.max_buffered,
            }
            .into());
        }
        s.queue.push(bytes);
        cx.core.stats.messages_out += 1;
        if let Err(e) = self.flush(cx) {
            return Err(ExternalError::StdinClosed { why: e.to_string() }.into());
        }
        if self.stdin.as_ref().is_some_and(|s| !s.queue.is_empty()) {
            self.write_owed = true;
            Ok(ResultCode::EeCallback)
        } else {
            Ok(ResultCode::Ok)
        }
    }

    fn option_set(&mut self, cx: &mut Cx, id: u16) -> Result<()> {
        super::option_set(id, cx.core.options.raw(id))?;
        if id == opt::EXTERNAL_WATCH_PATH {
            self.watch_option(cx)?;
        }
        Ok(())
    }

    fn close(&mut self, cx: &mut Cx) -> bool {
        self.closing = true;
        self.drop_watches(cx);
        if self.pid <= 0 || (self.finished && self.hold.is_none()) {
            return true;
        }
        self.close_stdin(cx, "the socket was closed");
        if self.running() {
            self.signal_running(cx, libc::SIGTERM);
            cx.timer(KILL_GRACE, TIMER_KILL);
        }
        // Kept without an id until reaped and its group is clean (finish →
        // end_run → settled → die → the core drops it).
        false
    }

    fn abort(&mut self, cx: &mut Cx) {
        // Shutdown, or the core dropping the socket: everything at once.
        let keep = self.keeps_leftovers(cx) && !self.sweeping;
        if self.running() {
            self.signal_running(cx, libc::SIGKILL);
            // The child was just sent SIGKILL: this wait is short.
            let _ = sys::wait4(self.pid, true);
            self.ended = Some(Ended::default());
        }
        if self.hold.is_some() && !keep {
            self.signal_leftovers(libc::SIGKILL);
        }
        // Also the cgroup: removed, or with the rest kept, left until empty.
        self.let_go(!keep);
        self.child = None;
        self.drop_watches(cx);
        if let Some((fd, token)) = self.pidfd.take() {
            cx.reactor.deregister(&mut SourceFd(&fd.as_raw_fd()), token);
        }
        self.close_stdin(cx, "the socket was closed");
        for o in self.out.iter_mut() {
            if let Some(mut o) = o.take() {
                cx.reactor.deregister(&mut o.rx, o.token);
            }
        }
    }

    fn status(&self, out: &mut Value) {
        out.insert(Value::str("pid"), Value::Int(self.pid as i64));
        out.insert(Value::str("running"), Value::Int(self.running() as i64));
        out.insert(Value::str("restarts"), Value::Int(self.kept.restarts));
        if self.pid > 0 {
            out.insert(Value::str("exit_watch"), Value::str(self.exit_watch));
        }
    }

    fn raw_fd(&self) -> i32 {
        self.out[0].as_ref().map_or(-1, |o| o.rx.as_raw_fd())
    }
}

impl Process {
    /// The external_* efuns (`super::call` brings them here).
    pub(super) fn efun(&mut self, cx: &mut Cx, call: Call) -> Result<Value> {
        match call {
            Call::Write(data) => {
                if !matches!(data, Value::Str(_) | Value::Buffer(_)) {
                    return Err(ExternalError::WriteProcessWrongType {
                        got: data.type_name(),
                    }
                    .into());
                }
                let n = data.as_bytes().map_or(0, <[u8]>::len);
                self.write(cx, data, None)
                    .map(|_| Value::Int(n as i64))
                    .map_err(|e| {
                        Error::new(
                            e.code,
                            e.message.replace("socket_write", "external_write_process"),
                        )
                    })
            }
            Call::Read(max) => Ok(self.pull_output(max)),
            Call::Monitor(path, events) => {
                let bits = u32::try_from(events)
                    .ok()
                    .filter(|b| *b <= 0xff)
                    .ok_or(ExternalError::MonitorEvents { events })?;
                let w = self.watch(cx)?;
                let added = Watches::key(path)
                    .map_err(|why| (false, why))
                    .and_then(|key| {
                        let id = add_watch(&mut w.w, &key, bits, "external_monitor_path")?;
                        if !w.from_efun.contains(&key) {
                            w.from_efun.push(key);
                        }
                        Ok(id)
                    });
                added.map(Value::Int).map_err(|(policy, why)| {
                    if policy {
                        let verb = "external_monitor_path";
                        PolicyError::Refused { verb, why }.into()
                    } else {
                        ExternalError::Monitor { why }.into()
                    }
                })
            }
            Call::StopMonitoring(path) => {
                let removed = match &mut self.kept.watch {
                    Some(w) => Watches::key(path).and_then(|key| {
                        w.from_option.retain(|p| *p != key);
                        w.from_efun.retain(|p| *p != key);
                        w.w.remove(&key)
                    }),
                    None => Err(format!("{path} is not watched")),
                };
                removed
                    .map(|_| Value::Int(0))
                    .map_err(|why| ExternalError::StopMonitoring { why }.into())
            }
            Call::FileEvents => Ok(Value::Array(self.kept.pulled.drain(..).collect())),
            Call::SetLimits(limits) => self.set_limits(cx, limits).map(|_| Value::Int(0)),
            Call::Stats => Ok(self.stats()),
            Call::Spawn => {
                if cx.core.state != State::Unbound {
                    return Err(ExternalError::AlreadyStarted.into());
                }
                self.bind(cx, SocketAddr::from(([0u16; 8], 0)))
                    .map(|_| Value::Int(0))
            }
        }
    }
}

/// The socket closes after its last run ended `why` (the exit mapping's
/// reason): "exited" is a normal end, anything else an abnormal one.
fn close_after_run(cx: &mut Cx, why: &str) {
    if why == "exited" {
        cx.end("the process exited");
    } else {
        cx.die(Some(format!("the process ended: {why}")));
    }
}

#[cfg(test)]
mod tests {
    use super::{cut_incomplete_char, hold, is_overflow};
    use crate::value::Value;
    use std::collections::VecDeque;

    #[test]
    fn a_character_cut_at_the_end_waits() {
        let text = "aé€😀".as_bytes();
        for cut in 0..=text.len() {
            let mut head = text[..cut].to_vec();
            let carry = cut_incomplete_char(&mut head);
            assert!(std::str::from_utf8(&head).is_ok(), "cut at {cut}");
            assert!(carry.len() <= 3);
            let mut rest = carry;
            rest.extend_from_slice(&text[cut..]);
            head.extend(rest);
            assert_eq!(head, text);
        }
    }

    #[test]
    fn held_events_keep_the_newest_behind_one_overflow_marker() {
        let ev =
            |i: i64| Value::mapping([("type", Value::str("file_event")), ("n", Value::Int(i))]);
        let mut q = VecDeque::new();
        for i in 0..4 {
            hold(&mut q, ev(i), 4);
        }
        assert_eq!(q.len(), 4);
        hold(&mut q, ev(4), 4); // full: the marker and the newest
        assert!(is_overflow(&q[0]));
        let n = |q: &VecDeque<Value>| -> Vec<i64> {
            q.iter()
                .skip(1)
                .map(|v| v.get("n").and_then(Value::as_int).unwrap())
                .collect()
        };
        assert_eq!(n(&q), vec![2, 3, 4]);
        for i in 5..9 {
            hold(&mut q, ev(i), 4); // one out per one in, the marker stays
        }
        assert_eq!(q.len(), 4);
        assert!(is_overflow(&q[0]) && !is_overflow(&q[1]));
        assert_eq!(n(&q), vec![6, 7, 8]);
    }

    #[test]
    fn binary_is_left_whole() {
        let mut b = vec![0xff, b'a', 0xc3];
        assert!(cut_incomplete_char(&mut b).is_empty());
        assert_eq!(b, vec![0xff, b'a', 0xc3]);
    }
}
