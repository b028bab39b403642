//! The child's pipes: stdout and stderr read, delivered as chunks that never
//! cut a UTF-8 character or collected for the result mapping; stdin written
//! from its queue.

use std::io::{self, Read, Write};
use std::time::Duration;

use super::{Process, READ_ROUND, TIMER_READ_MORE};
use crate::core::{Cx, EventKind};
use crate::external::sys;
use crate::value::Value;

impl Process {
    pub(super) fn read_all(&mut self, cx: &mut Cx) {
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
    pub(super) fn read_out(&mut self, cx: &mut Cx, i: usize) -> bool {
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
    pub(super) fn eof(&mut self, cx: &mut Cx, i: usize) {
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

    /// external_read_process: takes up to `max` bytes of the stdout held
    /// for the result mapping, never cutting a UTF-8 character.
    pub(super) fn pull_output(&mut self, max: Option<usize>) -> Value {
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

    pub(super) fn close_stdin(&mut self, cx: &mut Cx, why: &'static str) {
        if let Some(mut s) = self.stdin.take() {
            cx.reactor.deregister(&mut s.tx, s.token);
            self.stdin_closed_why = why;
        }
    }

    /// Writes queued stdin bytes until the pipe is full; closes stdin after
    /// an eof request once the queue is empty. Err: the child closed its end.
    pub(super) fn flush(&mut self, cx: &mut Cx) -> io::Result<()> {
        self.send(cx, &[])
    }

    /// As `flush`, with `bytes` written after what is queued: straight from
    /// `bytes` while nothing is queued, the rest queued (`OutQueue::send_with`).
    pub(super) fn send(&mut self, cx: &mut Cx, bytes: &[u8]) -> io::Result<()> {
        let Some(s) = &mut self.stdin else {
            return Ok(());
        };
        let tx = &mut s.tx;
        let (n, r) = s
            .queue
            .send_with(bytes, |b| sys::without_sigpipe(|| tx.write(b)));
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

    pub(super) fn check_drained(&mut self, cx: &mut Cx) {
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
pub(super) fn cut_incomplete_char(bytes: &mut Vec<u8>) -> Vec<u8> {
    match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_none() => bytes.split_off(e.valid_up_to()),
        _ => Vec::new(),
    }
}
