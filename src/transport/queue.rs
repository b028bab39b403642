//! The byte queue every output path uses: a TCP connection's plaintext
//! (`Conn`), an IPC link's encoded messages, an external process's stdin.
//! Bytes go in at the back and are written from the front with whatever
//! writer the owner has (a socket, rustls, a pipe without SIGPIPE); what the
//! writer does not take stays queued.

use std::collections::VecDeque;
use std::io;

/// An empty queue keeps at most this much capacity: a burst does not pin its
/// memory for the life of the connection.
const KEEP_CAPACITY: usize = 256 * 1024;

#[derive(Default)]
pub struct OutQueue {
    bytes: VecDeque<u8>,
}

impl OutQueue {
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.bytes.extend(data);
    }

    /// The first contiguous run of queued bytes (empty when nothing waits).
    pub fn front(&self) -> &[u8] {
        self.bytes.as_slices().0
    }

    /// Drops `n` bytes from the front (they were written).
    pub fn consume(&mut self, n: usize) {
        self.bytes.drain(..n);
        if self.bytes.is_empty() && self.bytes.capacity() > KEEP_CAPACITY {
            self.bytes = VecDeque::new();
        }
    }

    /// Writes from the front with `write` until the queue is empty, the
    /// writer would block, or it fails (EINTR is retried; a write that takes
    /// nothing of a non-empty slice is WriteZero). Returns the bytes written,
    /// and the failure if there was one.
    pub fn write_with(
        &mut self,
        mut write: impl FnMut(&[u8]) -> io::Result<usize>,
    ) -> (usize, io::Result<()>) {
        let mut written = 0;
        while !self.is_empty() {
            let (n, r) = write_slice(self.front(), &mut write);
            self.consume(n);
            written += n;
            match r {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return (written, Err(e)),
            }
        }
        (written, Ok(()))
    }

    /// Writes `bytes` after what is queued: straight from `bytes` while
    /// nothing is queued (no copy), and what the writer does not take is
    /// queued (on a failure of that direct write, nothing is; behind queued
    /// bytes, `bytes` is queued first). As `write_with`, returns the bytes
    /// written now and the failure.
    pub fn send_with(
        &mut self,
        bytes: &[u8],
        mut write: impl FnMut(&[u8]) -> io::Result<usize>,
    ) -> (usize, io::Result<()>) {
        if !self.is_empty() {
            self.push(bytes);
            return self.write_with(write);
        }
        let (n, r) = write_slice(bytes, &mut write);
        if let Err(e) = r {
            return (n, Err(e));
        }
        self.push(&bytes[n..]);
        (n, Ok(()))
    }
}

/// Writes `buf` until it is all taken (Ok(true)), the writer would block
/// (Ok(false)) or fails; returns how much was taken with that.
fn write_slice(
    buf: &[u8],
    write: &mut impl FnMut(&[u8]) -> io::Result<usize>,
) -> (usize, io::Result<bool>) {
    let mut done = 0;
    while done < buf.len() {
        match write(&buf[done..]) {
            Ok(0) => return (done, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (done, Ok(false)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_the_writer_takes_and_keeps_the_rest() {
        let mut q = OutQueue::default();
        q.push(b"hello ");
        q.push(b"world");
        let mut sink = Vec::new();
        let mut room = 8;
        let (n, r) = q.write_with(|b| {
            if room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let k = b.len().min(room).min(3);
            room -= k;
            sink.extend_from_slice(&b[..k]);
            Ok(k)
        });
        assert!(r.is_ok());
        assert_eq!((n, q.len()), (8, 3));
        assert_eq!(sink, b"hello wo");
        let (n, r) = q.write_with(|_| Ok(0));
        assert_eq!(n, 0);
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::WriteZero);
        let (n, r) = q.write_with(|b| {
            sink.extend_from_slice(b);
            Ok(b.len())
        });
        assert!(r.is_ok() && q.is_empty() && n == 3);
        assert_eq!(sink, b"hello world");
    }

    #[test]
    fn send_writes_directly_only_when_nothing_waits() {
        let mut q = OutQueue::default();
        let mut sink = Vec::new();
        let mut room = 4;
        let (n, r) = q.send_with(b"abcdef", |b| {
            if room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let k = b.len().min(room);
            room -= k;
            sink.extend_from_slice(&b[..k]);
            Ok(k)
        });
        assert!(r.is_ok());
        assert_eq!((n, q.len(), &sink[..]), (4, 2, &b"abcd"[..]));
        let (n, r) = q.send_with(b"gh", |b| {
            sink.extend_from_slice(b);
            Ok(b.len())
        });
        assert!(r.is_ok() && q.is_empty() && n == 4);
        assert_eq!(sink, b"abcdefgh");
    }

    #[test]
    fn a_large_buffer_is_released_once_empty() {
        let mut q = OutQueue::default();
        q.push(&vec![0; KEEP_CAPACITY * 2]);
        q.consume(KEEP_CAPACITY * 2);
        assert!(q.bytes.capacity() <= KEEP_CAPACITY);
    }
}
