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
//!
//! Files: `mod.rs` (the `Process` endpoint's state and `impl Endpoint`:
//! bind, readiness, the timers (the timeout among them), socket_write to
//! stdin, close, abort, status), `run.rs` (a run: start, reap, the end
//! mapping), `stdio.rs` (the pipes: output read and delivered or collected,
//! stdin written), `leftovers.rs` (what the child leaves: signals, the hold,
//! the sweep), `restart.rs` (EXTERNAL_RESTART_POLICY: restart, or close after
//! the last run), `watches.rs` (inotify watches, file events held for
//! pulling), `efuns.rs` (the external_* efuns: `Process::efun`, limits set
//! while running, stats), `tests.rs`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Child;
use std::time::{Duration, Instant};

use mio::unix::pipe::{Receiver, Sender};
use mio::unix::SourceFd;
use mio::Token;

use super::limits::Limits;
use super::sandbox::Sandbox;
use super::sys::{self, Ended};
use super::{opt, ExternalError};
use crate::core::{Cx, Endpoint};
use crate::error::{Error, Result, ResultCode};
use crate::modes;
use crate::reactor::{CompletionKind, Readiness};
use crate::transport::OutQueue;
use crate::value::Value;

mod efuns;
mod leftovers;
mod restart;
mod run;
mod stdio;
#[cfg(test)]
mod tests;
mod watches;

use watches::Watch;

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

    fn running(&self) -> bool {
        self.pid > 0 && self.ended.is_none()
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
        cx.core.stats.messages_out += 1;
        if let Err(e) = self.send(cx, bytes) {
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
