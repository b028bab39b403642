//! Connections a server turns away with a last message (HTTP's 503, the IPC
//! bus's ERROR): the message is written, the write side shut, and the input
//! drained until the peer closes or LINGER passes, so the kernel does not
//! reset the connection (and discard the message) while the peer still sends.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::{Interest, Token};

use crate::core::Cx;

/// How long a turned-away connection may take to read its last message.
pub const LINGER: Duration = Duration::from_secs(2);
/// At most this many linger at once; beyond, they are closed at once.
pub const MAX_LINGERING: usize = 64;

struct Item<S> {
    stream: S,
    token: Token,
    since: Instant,
}

/// One server's turned-away connections; `timer_key` is the endpoint's timer
/// for expiring them.
pub struct Lingering<S> {
    items: Vec<Item<S>>,
    timer_key: u64,
}

impl<S: Read + Write + Source> Lingering<S> {
    pub fn new(timer_key: u64) -> Self {
        Lingering {
            items: Vec::new(),
            timer_key,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Writes `last` (best effort), shuts the write side with `shutdown`,
    /// and keeps the stream draining; when too many linger it is dropped.
    pub fn add(&mut self, cx: &mut Cx, mut stream: S, last: Option<&[u8]>, shutdown: fn(&S)) {
        if let Some(bytes) = last {
            let _ = stream.write(bytes);
        }
        shutdown(&stream);
        if self.items.len() >= MAX_LINGERING {
            return; // dropped: closed at once
        }
        if let Ok(token) = cx.register(&mut stream, Interest::READABLE) {
            if self.items.is_empty() {
                cx.timer(LINGER, self.timer_key);
            }
            self.items.push(Item {
                stream,
                token,
                since: Instant::now(),
            });
        }
    }

    /// Readiness for `token`: drains it, and drops it at EOF or error.
    /// False when the token is not one of these connections.
    pub fn ready(&mut self, cx: &mut Cx, token: Token) -> bool {
        let Some(i) = self.items.iter().position(|l| l.token == token) else {
            return false;
        };
        let mut buf = [0u8; 4096];
        let done = loop {
            match self.items[i].stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        if done {
            let mut l = self.items.swap_remove(i);
            cx.reactor.deregister(&mut l.stream, l.token);
        }
        true
    }

    /// The timer: closes those that lingered LINGER; re-arms for the rest.
    pub fn expire(&mut self, cx: &mut Cx) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.items.len() {
            if now.duration_since(self.items[i].since) >= LINGER {
                let mut l = self.items.swap_remove(i);
                cx.reactor.deregister(&mut l.stream, l.token);
            } else {
                i += 1;
            }
        }
        if !self.items.is_empty() {
            cx.timer(LINGER, self.timer_key);
        }
    }

    /// Closes them all now.
    pub fn clear(&mut self, cx: &mut Cx) {
        for mut l in self.items.drain(..) {
            cx.reactor.deregister(&mut l.stream, l.token);
        }
    }
}
