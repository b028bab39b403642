//! One run of the child: the start (spawn, pipes and exit watch
//! registered), the reap when it exits, and the end mapping once both
//! pipes are done.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::unix::pipe::{Receiver, Sender};
use mio::unix::SourceFd;
use mio::Interest;

use super::{
    opt, Hold, Input, Output, Process, DRAIN_GRACE, TIMER_DRAIN, TIMER_LIMITS, TIMER_TIMEOUT,
};
use crate::core::{Cx, Endpoint, EventKind, State};
use crate::error::{Error, Result};
use crate::external::limits::Limits;
use crate::external::spawn::Spec;
use crate::external::sys::{self, Ended};
use crate::external::ExternalError;
use crate::modes;
use crate::reactor::CompletionKind;
use crate::transport::OutQueue;
use crate::value::Value;

impl Process {
    pub(super) fn start(&mut self, cx: &mut Cx) -> Result<()> {
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
    pub(super) fn reap(&mut self, cx: &mut Cx) {
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

    pub(super) fn check_done(&mut self, cx: &mut Cx) {
        if self.finished || self.ended.is_none() || self.out.iter().any(Option::is_some) {
            return;
        }
        self.finish(cx);
    }

    /// Both pipes are done and the child is reaped: the final mapping, then close_cb.
    pub(super) fn finish(&mut self, cx: &mut Cx) {
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
}
