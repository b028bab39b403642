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

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Child;
use std::time::{Duration, Instant};

use mio::unix::pipe::{Receiver, Sender};
use mio::unix::SourceFd;
use mio::{Interest, Token};

use super::opt;
use super::spawn::Spec;
use super::sys::{self, Ended};
use crate::core::{Cx, Endpoint, EventKind, State};
use crate::error::{Error, Result, ResultCode};
use crate::modes;
use crate::reactor::Readiness;
use crate::value::Value;

const TIMER_TIMEOUT: u64 = 1;
const TIMER_KILL: u64 = 2;
const TIMER_READ_MORE: u64 = 3;
const TIMER_DRAIN: u64 = 4;

/// SIGTERM first; SIGKILL this long after (timeout and socket_close).
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(5);
/// After the child is reaped, how long a pipe a descendant still holds open may delay the end.
pub(crate) const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// Bytes read from one pipe per readiness before the driver gets a turn.
pub(crate) const READ_ROUND: usize = 256 * 1024;

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

struct Input {
    tx: Sender,
    token: Token,
    queue: VecDeque<u8>,
    /// ([ "eof": 1 ]) was written: close after the queue is out.
    eof: bool,
}

pub struct Process {
    mode: u8,
    command: String,
    child: Option<Child>,
    pid: i32,
    /// Readable when the child has exited (a pidfd, or see `sys::exit_watch`).
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
        }
    }

    fn running(&self) -> bool {
        self.pid > 0 && self.ended.is_none()
    }

    fn start(&mut self, cx: &mut Cx) -> Result<()> {
        // A start after a failed one begins from a clean slate.
        *self = Process::new(self.mode);
        let o = &cx.core.options;
        let spec = Spec::from_options(o, self.mode)?;
        self.collect =
            self.mode == modes::EXTERNAL_COMMAND_MODE || o.int(opt::EXTERNAL_ASYNC, self.mode) == 0;
        self.buf_size = o.int(opt::EXTERNAL_BUFFER_SIZE, self.mode).max(1024) as usize;
        self.max_buffered = o.int(opt::SO_MAX_BUFFERED, self.mode).max(0) as usize;
        let timeout = o.int(opt::EXTERNAL_TIMEOUT, self.mode).max(0) as u64;
        let sp = spec.spawn()?;
        self.command = spec.command;
        self.pid = sp.pid;
        self.child = Some(sp.child);
        self.started = Some(Instant::now());
        let fail = |what: &str, e: io::Error| {
            Error::new(ResultCode::EeBind, format!("socket_bind: {what}: {e}"))
        };
        let registered = (|| -> Result<()> {
            let (pidfd, how) =
                sys::exit_watch(self.pid).map_err(|e| fail("watching its exit", e))?;
            self.exit_watch = how;
            let token = cx
                .register(&mut SourceFd(&pidfd.as_raw_fd()), Interest::READABLE)
                .map_err(|e| fail("register", e))?;
            self.pidfd = Some((pidfd, token));
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
                    queue: VecDeque::new(),
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
        cx.core.state = State::DataXfer;
        cx.core.mark_connected();
        Ok(())
    }

    /// The pidfd is readable: reap the child.
    fn reap(&mut self, cx: &mut Cx) {
        if self.ended.is_some() || self.pid <= 0 {
            return;
        }
        match sys::wait4(self.pid, false) {
            Ok(Some(e)) => self.ended = Some(e),
            Ok(None) => return,
            // ECHILD: someone else reaped it (a host with SIGCHLD ignored); report what we know.
            Err(_) => {
                self.ended = Some(Ended {
                    exit_code: -1,
                    ..Ended::default()
                })
            }
        }
        if let Some((fd, token)) = self.pidfd.take() {
            cx.reactor.deregister(&mut SourceFd(&fd.as_raw_fd()), token);
        }
        // Dropping the Child does not wait; it is already reaped.
        self.child = None;
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
                ("restarts", Value::Int(0)),
                ("cpu_ms", Value::Int(e.cpu_ms)),
                ("max_rss_kb", Value::Int(e.max_rss_kb)),
            ])
        };
        cx.emit(EventKind::Read, Some(ev), Some(self.command.clone()));
        cx.die(None);
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
        while !s.queue.is_empty() {
            let (a, _) = s.queue.as_slices();
            match sys::without_sigpipe(|| s.tx.write(a)) {
                Ok(n) => {
                    s.queue.drain(..n);
                    cx.core.stats.bytes_out += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close_stdin(cx, "the process closed its stdin");
                    return Err(e);
                }
            }
        }
        if s.queue.is_empty() && s.queue.capacity() > 256 * 1024 {
            s.queue = VecDeque::new();
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
            return Err(Error::new(
                ResultCode::EeBadaddr,
                "socket_bind: external processes start with socket_bind(id, 0)",
            ));
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

    fn timer(&mut self, cx: &mut Cx, key: u64) {
        match key {
            TIMER_TIMEOUT if self.running() => {
                self.timed_out = true;
                sys::kill_group(self.pid, libc::SIGTERM);
                cx.timer(KILL_GRACE, TIMER_KILL);
            }
            TIMER_KILL if self.running() => sys::kill_group(self.pid, libc::SIGKILL),
            TIMER_READ_MORE => {
                self.read_more_armed = false;
                self.read_all(cx);
                self.check_done(cx);
            }
            TIMER_DRAIN if self.ended.is_some() => self.finish(cx),
            _ => {}
        }
    }

    fn write(&mut self, cx: &mut Cx, data: &Value, target: Option<&str>) -> Result<ResultCode> {
        if target.is_some_and(|t| !t.is_empty()) {
            return Err(Error::new(
                ResultCode::EeBadaddr,
                "socket_write: an external process takes no target",
            ));
        }
        let bytes: &[u8] = match data {
            Value::Str(s) => s.as_bytes(),
            Value::Buffer(b) => b,
            Value::Mapping(_) if data.get("eof").and_then(Value::as_int).is_some_and(|i| i != 0) => &[],
            _ => {
                return Err(Error::new(
                    ResultCode::EeBaddata,
                    format!(
                        "socket_write: an external process takes a string, a buffer or ([ \"eof\": 1 ]), not {}",
                        data.type_name()
                    ),
                ))
            }
        };
        let eof = matches!(data, Value::Mapping(_));
        let Some(s) = &mut self.stdin else {
            return Err(Error::new(
                ResultCode::EeNotconn,
                format!(
                    "socket_write: the process's stdin is not open: {}",
                    self.stdin_closed_why
                ),
            ));
        };
        if s.eof {
            return Err(Error::new(
                ResultCode::EeNotconn,
                "socket_write: the process's stdin is not open: stdin was closed with ([ \"eof\": 1 ])",
            ));
        }
        if eof {
            s.eof = true;
            self.flush(cx).ok();
            return Ok(ResultCode::Ok);
        }
        let pending = s.queue.len();
        if pending > 0 && pending + bytes.len() > self.max_buffered {
            self.write_owed = true;
            return Err(Error::new(
                ResultCode::EeWouldblock,
                format!(
                    "socket_write: {pending} bytes are still waiting for the process's stdin \
                     (SO_MAX_BUFFERED is {}); wait for the write callback",
                    self.max_buffered
                ),
            ));
        }
        s.queue.extend(bytes);
        cx.core.stats.messages_out += 1;
        if let Err(e) = self.flush(cx) {
            return Err(Error::new(
                ResultCode::EeSend,
                format!("socket_write: the process closed its stdin: {e}"),
            ));
        }
        if self.stdin.as_ref().is_some_and(|s| !s.queue.is_empty()) {
            self.write_owed = true;
            Ok(ResultCode::EeCallback)
        } else {
            Ok(ResultCode::Ok)
        }
    }

    fn option_set(&mut self, cx: &mut Cx, id: u16) -> Result<()> {
        super::option_set(id, cx.core.options.raw(id))
    }

    fn may_refuse(&self, id: i64) -> bool {
        super::may_refuse(id)
    }

    fn close(&mut self, cx: &mut Cx) -> bool {
        if self.pid <= 0 || self.finished {
            return true;
        }
        self.closing = true;
        self.close_stdin(cx, "the socket was closed");
        if self.running() {
            sys::kill_group(self.pid, libc::SIGTERM);
            cx.timer(KILL_GRACE, TIMER_KILL);
        }
        // Kept without an id until reaped (finish → die → the core drops it).
        false
    }

    fn abort(&mut self, cx: &mut Cx) {
        if self.running() {
            sys::kill_group(self.pid, libc::SIGKILL);
            // The child was just sent SIGKILL: this wait is short.
            let _ = sys::wait4(self.pid, true);
            self.ended = Some(Ended::default());
        }
        self.child = None;
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
        if self.pid > 0 {
            out.insert(Value::str("exit_watch"), Value::str(self.exit_watch));
        }
    }

    fn raw_fd(&self) -> i32 {
        self.out[0].as_ref().map_or(-1, |o| o.rx.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::cut_incomplete_char;

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
    fn binary_is_left_whole() {
        let mut b = vec![0xff, b'a', 0xc3];
        assert!(cut_incomplete_char(&mut b).is_empty());
        assert_eq!(b, vec![0xff, b'a', 0xc3]);
    }
}
