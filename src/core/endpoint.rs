//! The seam between the core and the mode families: every family implements
//! [`Endpoint`] for its sockets, and gets a [`Cx`] to reach the reactor, the
//! event queue and the socket's own state and options.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio::{event::Source, Interest, Token};

use super::event::{Event, EventKind, CLOSED_BY_PEER};
use super::family::AsAny;
use crate::error::{Error, Result, ResultCode};
use crate::options::store::OptionStore;
use crate::reactor::{Completion, CompletionKind, Reactor, Readiness};
use crate::value::Value;

/// Socket states, named as upstream's `socket_status` shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Unbound,
    Bound,
    Listen,
    /// Resolving a host name or waiting for the TCP connect to finish.
    Connecting,
    Handshake,
    DataXfer,
    /// Closed by LPC with output still queued; finishing in the background.
    Flushing,
    Closed,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Unbound => "UNBOUND",
            State::Bound => "BOUND",
            State::Listen => "LISTEN",
            State::Connecting => "CONNECTING",
            State::Handshake => "HANDSHAKE",
            State::DataXfer => "DATA_XFER",
            State::Flushing => "FLUSHING",
            State::Closed => "CLOSED",
        }
    }
}

/// Counters behind SO_STATISTICS.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub errors: u64,
    pub connected_at: i64,
}

/// What the core keeps for every socket, whatever its family.
#[derive(Debug)]
pub struct SocketCore {
    pub id: i32,
    /// Unique for the life of the library; stale timers and completions carry an old one.
    pub serial: u64,
    pub mode: u8,
    pub state: State,
    pub options: OptionStore,
    pub local: Option<SocketAddr>,
    pub peer: Option<SocketAddr>,
    pub stats: Stats,
    pub released: bool,
    /// Set by the endpoint when the socket is finished (peer closed, fatal error).
    pub dead: bool,
}

impl SocketCore {
    pub fn new(id: i32, serial: u64, mode: u8) -> SocketCore {
        SocketCore {
            id,
            serial,
            mode,
            state: State::Unbound,
            options: OptionStore::default(),
            local: None,
            peer: None,
            stats: Stats::default(),
            released: false,
            dead: false,
        }
    }

    pub fn mark_connected(&mut self) {
        self.stats.connected_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
    }

    pub fn statistics(&self) -> Value {
        let s = &self.stats;
        Value::mapping([
            ("bytes_in", Value::Int(s.bytes_in as i64)),
            ("bytes_out", Value::Int(s.bytes_out as i64)),
            ("messages_in", Value::Int(s.messages_in as i64)),
            ("messages_out", Value::Int(s.messages_out as i64)),
            ("errors", Value::Int(s.errors as i64)),
            ("connected_at", Value::Int(s.connected_at)),
            ("state", Value::str(self.state.name())),
        ])
    }
}

/// What an endpoint can reach while it handles a call or an event.
pub struct Cx<'a> {
    pub core: &'a mut SocketCore,
    pub reactor: &'a mut Reactor,
    /// None while the socket is flushing after LPC closed it: nothing is reported then.
    pub events: Option<&'a mut VecDeque<Event>>,
}

impl Cx<'_> {
    /// Queues an event for LPC (dropped when the socket no longer has an LPC id).
    pub fn emit(&mut self, kind: EventKind, data: Option<Value>, addr: Option<String>) {
        if let Some(q) = self.events.as_deref_mut() {
            q.push_back(Event {
                kind,
                socket: self.core.id,
                data,
                addr,
                abnormal: false,
            });
        }
    }

    /// The socket is finished and the core drops it; LPC gets close_cb with a
    /// reason. `Some(error)`: it failed (an abnormal end, logged by the
    /// driver); `None`: the peer closed it ("closed by the peer").
    pub fn die(&mut self, reason: Option<String>) {
        match reason {
            Some(error) => self.finish(error, true),
            None => self.finish(CLOSED_BY_PEER.to_string(), false),
        }
    }

    /// The socket is finished by a normal end other than the peer closing
    /// (e.g. after the last reply of a "Connection: close" exchange).
    pub fn end(&mut self, reason: &str) {
        self.finish(reason.to_string(), false);
    }

    fn finish(&mut self, mut reason: String, abnormal: bool) {
        if self.core.dead {
            return;
        }
        if reason.is_empty() {
            reason = if abnormal { "error" } else { CLOSED_BY_PEER }.to_string();
        }
        self.core.dead = true;
        self.core.state = State::Closed;
        if let Some(q) = self.events.as_deref_mut() {
            q.push_back(Event {
                kind: EventKind::Close,
                socket: self.core.id,
                data: Some(Value::Str(reason)),
                addr: None,
                abnormal,
            });
        }
    }

    pub fn register<S: Source + ?Sized>(
        &mut self,
        src: &mut S,
        interest: Interest,
    ) -> io::Result<Token> {
        self.reactor.register(src, self.core.serial, interest)
    }

    /// For a thread of the endpoint's own: posts one completion that reaches
    /// the endpoint's `completed` (see `Reactor::notifier`).
    pub fn notifier(&self) -> crate::reactor::Notifier {
        self.reactor.notifier(self.core.serial)
    }

    pub fn timer(&mut self, delay: Duration, key: u64) {
        self.reactor.add_timer(delay, self.core.serial, key);
    }

    /// Resolves `host` on a helper thread; the endpoint's `completed` gets the answer.
    pub fn resolve(&mut self, host: String, port: u16) {
        let serial = self.core.serial;
        self.reactor.spawn(Box::new(move || {
            use std::net::ToSocketAddrs;
            let result = (host.as_str(), port)
                .to_socket_addrs()
                .map(|it| it.collect::<Vec<_>>());
            Completion {
                serial,
                kind: CompletionKind::Resolved(result),
            }
        }));
    }
}

/// A connection taken from a listener's queue by `socket_accept`.
pub struct Accepted {
    pub endpoint: Box<dyn Endpoint>,
    pub peer: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
    pub state: State,
}

/// EEMODENOTSUPP for an efun the socket's mode does not serve.
pub fn unsupported(what: &str) -> Error {
    Error::new(
        ResultCode::EeModenotsupp,
        format!("{what} is not supported by this mode"),
    )
}

/// One socket's protocol machinery. Every family implements this; the core
/// calls it from the efuns and from reactor events. Defaults say "not supported".
/// A family's own efuns (external_* …) are no methods here: they reach the
/// endpoint through `Unisock::family_call` and `downcast_mut`.
pub trait Endpoint: AsAny + Send {
    /// socket_bind: `addr` is the full local address to bind.
    fn bind(&mut self, _cx: &mut Cx, _addr: SocketAddr) -> Result<()> {
        Err(unsupported("socket_bind"))
    }
    /// socket_listen.
    fn listen(&mut self, _cx: &mut Cx) -> Result<()> {
        Err(unsupported("socket_listen"))
    }
    /// socket_accept: takes one waiting connection.
    fn accept(&mut self, _cx: &mut Cx) -> Result<Accepted> {
        Err(unsupported("socket_accept"))
    }
    /// socket_connect: `address` as LPC gave it.
    fn connect(&mut self, _cx: &mut Cx, _address: &str) -> Result<()> {
        Err(unsupported("socket_connect"))
    }
    /// An accepted socket was given its id: register with the reactor.
    fn attach(&mut self, _cx: &mut Cx) -> Result<()> {
        Ok(())
    }
    /// Readiness of one of the endpoint's registrations.
    fn ready(&mut self, cx: &mut Cx, readiness: Readiness);
    /// A timer the endpoint armed with `Cx::timer`.
    fn timer(&mut self, _cx: &mut Cx, _key: u64) {}
    /// A helper-thread completion.
    fn completed(&mut self, _cx: &mut Cx, _kind: CompletionKind) {}
    /// socket_write; returns Ok (EESUCCESS), EeCallback (queued) or an error.
    fn write(&mut self, cx: &mut Cx, data: &Value, target: Option<&str>) -> Result<ResultCode>;
    /// An option was stored: apply it to a live connection if it can take
    /// effect now. An error (a certificate file that does not load) puts the
    /// previous value back and reaches LPC as socket_set_option's error; it
    /// may only come for options the catalog marks `refusable`.
    fn option_set(&mut self, _cx: &mut Cx, _id: u16) -> Result<()> {
        Ok(())
    }
    /// socket_close by LPC. Returns true when fully closed, false when it must
    /// finish flushing in the background (the core then keeps it without an id).
    fn close(&mut self, cx: &mut Cx) -> bool;
    /// Releases every OS resource now (shutdown, or a flush that cannot finish).
    fn abort(&mut self, cx: &mut Cx);
    /// Extra fields for socket_status (fd, TLS version, ...).
    fn status(&self, _out: &mut Value) {}
    /// The OS fd, or -1.
    fn raw_fd(&self) -> i32 {
        -1
    }
}
