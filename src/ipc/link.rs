//! One bus connection as both ends see it: bytes in, whole MessagePack
//! messages out of them; messages in, bytes out with a bounded queue (the
//! transport's `OutQueue`, its no-progress clock a `transport::output::Watch`
//! outside any listener's budget: the bus keeps its own).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::Instant;

use mio::Token;

use super::codec::{self, Decoded, Scan, Scanner};
use super::transport::Stream;
use crate::transport::output::Watch;
use crate::transport::OutQueue;
use crate::transport::ReadEnd;
use crate::value::Value;

/// Largest message accepted from a peer (bytes of MessagePack).
pub const MAX_MESSAGE: usize = 1 << 20;

/// Bytes read for one connection per readiness before the others get a turn.
pub const READ_ROUND: usize = 256 * 1024;

pub struct Link {
    pub stream: Stream,
    pub token: Token,
    inbuf: Vec<u8>,
    /// Start of the first undecoded byte in `inbuf`.
    start: usize,
    /// How far into the message at `start` the bytes have been checked.
    scanner: Scanner,
    out: OutQueue,
    /// Since when the queued output has waited without a byte of it going
    /// out (SO_SEND_TIMEOUT counts from here).
    watch: Watch,
}

impl Link {
    pub fn new(stream: Stream, token: Token) -> Link {
        Link {
            stream,
            token,
            inbuf: Vec::new(),
            start: 0,
            scanner: Scanner::default(),
            out: OutQueue::default(),
            watch: Watch::default(),
        }
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// With output queued: since when none of it has been written (the last
    /// write that took bytes, or when the queue started). None when nothing
    /// waits.
    pub fn waiting_since(&self) -> Option<Instant> {
        self.watch.since()
    }

    /// Reads what the kernel has (at most READ_ROUND); returns how it ended
    /// and the bytes read.
    pub fn read(&mut self) -> (ReadEnd, usize) {
        let mut buf = [0u8; 32 * 1024];
        let mut total = 0;
        loop {
            if total >= READ_ROUND {
                return (ReadEnd::Limit, total);
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return (ReadEnd::Eof, total),
                Ok(n) => {
                    self.inbuf.extend_from_slice(&buf[..n]);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (ReadEnd::Open, total),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (ReadEnd::Error(format!("read: {e}")), total),
            }
        }
    }

    /// The next whole message read so far: None when more bytes are needed,
    /// Err when the peer sent something that is not a message we take.
    pub fn next_message(&mut self) -> Option<Result<(Value, usize), String>> {
        let rest = &self.inbuf[self.start..];
        if rest.is_empty() {
            self.compact();
            return None;
        }
        match self.scanner.scan(rest, MAX_MESSAGE) {
            Scan::Complete(n) => {
                self.scanner.reset();
                let decoded = codec::decode(&rest[..n]);
                self.start += n;
                match decoded {
                    Decoded::Value(v, used) if used == n => Some(Ok((v, n))),
                    Decoded::Malformed(why) => Some(Err(format!("malformed MessagePack: {why}"))),
                    _ => Some(Err("malformed MessagePack".into())),
                }
            }
            Scan::Incomplete => {
                self.compact();
                None
            }
            Scan::Malformed(why) => Some(Err(format!("malformed MessagePack: {why}"))),
        }
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.inbuf.drain(..self.start);
            self.start = 0;
        }
        if self.inbuf.is_empty() && self.inbuf.capacity() > 64 * 1024 {
            self.inbuf = Vec::new();
        }
    }

    /// Writes `bytes` after whatever is queued; what the kernel does not
    /// take now is queued. Ok(bytes written now).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let stream = &mut self.stream;
        let (n, r) = self.out.send_with(bytes, |b| stream.write(b));
        r?;
        self.watch.note(self.out.len(), n > 0);
        Ok(n)
    }

    /// Writes queued bytes until the kernel stops taking them; Ok(bytes written).
    pub fn flush(&mut self) -> io::Result<usize> {
        let stream = &mut self.stream;
        let (n, r) = self.out.write_with(|b| stream.write(b));
        r?;
        self.watch.note(self.out.len(), n > 0);
        Ok(n)
    }
}

/// A bounded FIFO of encoded messages: the oldest goes when it is full.
#[derive(Default)]
pub struct Backlog {
    items: VecDeque<Vec<u8>>,
    pub dropped: u64,
}

impl Backlog {
    pub fn push(&mut self, bytes: Vec<u8>, cap: usize) {
        if cap == 0 {
            self.dropped += 1;
            return;
        }
        while self.items.len() >= cap {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(bytes);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn take(&mut self) -> VecDeque<Vec<u8>> {
        std::mem::take(&mut self.items)
    }
}
