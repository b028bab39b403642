//! IPC_SERVER (mode 29): one LPC socket for the whole bus. Clients are
//! accepted by unisock itself and named by a client id; LPC hears of them as
//! `client_connected` / `client_disconnected` messages and their messages
//! arrive with `"client_id"` added. socket_write broadcasts (or queues while
//! nobody is connected); socket_write(id, msg, client_id) sends to one.

use std::time::{Duration, Instant};

use mio::{Interest, Token};
use socket2::SockRef;

use super::link::{Backlog, Link};
use super::message::{self, Stamp};
use super::transport::{self, Listener, Stream};
use super::{opt, IpcError, MODE_SERVER};
use crate::core::{Accepted, Cx, Endpoint, EventKind, State};
use crate::error::{Error, Result, ResultCode};
use crate::policy::PolicyError;
use crate::reactor::Readiness;
use crate::transport::linger::Lingering;
use crate::transport::{Deadline, ReadEnd, FLUSH_DEADLINE};
use crate::value::Value;

const TIMER_FLUSH: u64 = 1;
const TIMER_IDLE: u64 = 2;
const TIMER_LINGER: u64 = 3;
/// A client's queued output may have passed SO_SEND_TIMEOUT without progress.
const TIMER_SEND: u64 = 4;
/// The write callback is owed and a client holding it back may have stalled.
const TIMER_OWED: u64 = 5;
/// TIMER_READ_MORE + token: a client that hit READ_ROUND is read again.
const TIMER_READ_MORE: u64 = 1 << 32;

/// A client above half of SO_MAX_BUFFERED holds the write callback back only
/// while it reads: once it has written nothing for this long, LPC writes on at
/// the pace of the others (docs/modes/ipc.md "Slow clients").
pub const STALLED: Duration = Duration::from_secs(1);

/// The clients of one server together queue at most this many times
/// SO_MAX_BUFFERED (the rule every listener follows); beyond it the one that
/// has written nothing for longest goes.
pub use crate::transport::output::LISTENER_FACTOR as TOTAL_FACTOR;

struct Client {
    link: Link,
    id: String,
    addr: String,
    connected_at: i64,
    last_active: Instant,
}

pub struct IpcServer {
    listener: Option<(Listener, Option<Token>)>,
    /// A TCP socket bound but not yet listening.
    bound_tcp: Option<socket2::Socket>,
    clients: Vec<Client>,
    /// Refused or dropped clients reading their ERROR message before the close.
    lingering: Lingering<Stream>,
    backlog: Backlog,
    stamp: Option<Stamp>,
    next_client: u64,
    write_owed: bool,
    idle_armed: bool,
    closing: bool,
    /// SO_MAX_BUFFERED and whether SO_IDLE_TIMEOUT is on, read once per
    /// change rather than per client per message.
    max_buffered: usize,
    idle_on: bool,
    /// SO_SEND_TIMEOUT (None: 0, no deadline).
    send_timeout: Option<Duration>,
    /// TIMER_SEND: while a client has output queued, armed no later than
    /// its SO_SEND_TIMEOUT deadline.
    send_timer: Deadline,
    /// TIMER_OWED: when a client holding the write callback back counts as stalled.
    owed_timer: Deadline,
    /// The socket path (unix) or "ip port" (tcp): the addr of every read.
    where_: String,
}

impl IpcServer {
    pub fn new() -> IpcServer {
        IpcServer {
            listener: None,
            bound_tcp: None,
            clients: Vec::new(),
            lingering: Lingering::new(TIMER_LINGER),
            backlog: Backlog::default(),
            stamp: None,
            next_client: 1,
            write_owed: false,
            idle_armed: false,
            closing: false,
            max_buffered: 4 << 20,
            idle_on: false,
            send_timeout: Some(Duration::from_secs(60)),
            send_timer: Deadline::default(),
            owed_timer: Deadline::default(),
            where_: String::new(),
        }
    }

    fn stamp(&mut self, cx: &Cx) -> &Stamp {
        if self.stamp.is_none() {
            let name = cx
                .core
                .options
                .string(opt::IPC_EVENT_NAME)
                .unwrap_or("")
                .to_string();
            self.stamp = Some(super::stamp(&cx.core.options, MODE_SERVER, &name));
        }
        self.stamp.as_ref().expect("just set")
    }

    fn read_limits(&mut self, cx: &Cx) {
        let o = &cx.core.options;
        self.max_buffered = o.int(opt::SO_MAX_BUFFERED, MODE_SERVER).max(0) as usize;
        self.idle_on = o.int(opt::SO_IDLE_TIMEOUT, MODE_SERVER) > 0;
        self.send_timeout = super::send_timeout(o, MODE_SERVER);
    }

    fn max_clients(cx: &Cx) -> usize {
        let o = &cx.core.options;
        o.int(opt::IPC_MAX_CONNECTIONS, MODE_SERVER)
            .min(o.int(opt::SO_MAX_CONNECTIONS, MODE_SERVER))
            .max(1) as usize
    }

    fn publish_clients(&self, cx: &mut Cx) {
        let list = self
            .clients
            .iter()
            .map(|c| {
                Value::mapping([
                    ("client_id", Value::str(&c.id)),
                    ("connected_at", Value::Int(c.connected_at)),
                    ("addr", Value::str(&c.addr)),
                ])
            })
            .collect();
        cx.core
            .options
            .set_internal(opt::IPC_CLIENTS, Value::Array(list));
    }

    fn accept_ready(&mut self, cx: &mut Cx) {
        loop {
            let Some((l, _)) = &self.listener else { return };
            let (mut stream, addr) = match l.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    cx.core.stats.errors += 1;
                    return;
                }
            };
            if self.closing {
                continue;
            }
            if self.clients.len() >= Self::max_clients(cx) {
                cx.core.stats.errors += 1;
                let text = format!(
                    "the bus {:?} has its maximum of {} clients (IPC_MAX_CONNECTIONS)",
                    self.stamp(cx).event_name,
                    Self::max_clients(cx)
                );
                let bytes = self.stamp(cx).error("max_connections", &text);
                self.linger(cx, stream, Some(&bytes));
                continue;
            }
            if let Stream::Tcp(s) = &stream {
                let _ = crate::transport::tcp::apply_options(
                    SockRef::from(s),
                    &cx.core.options,
                    MODE_SERVER,
                );
            }
            let token = match cx.register(&mut stream, Interest::READABLE | Interest::WRITABLE) {
                Ok(t) => t,
                Err(_) => {
                    cx.core.stats.errors += 1;
                    continue;
                }
            };
            let id = format!("client-{}", self.next_client);
            self.next_client += 1;
            self.clients.push(Client {
                link: Link::new(stream, token),
                id: id.clone(),
                addr: addr.clone(),
                connected_at: super::now_secs(),
                last_active: Instant::now(),
            });
            self.publish_clients(cx);
            let event = Value::mapping([
                ("type", Value::str("client_connected")),
                ("client_id", Value::str(&id)),
                ("addr", Value::str(&addr)),
            ]);
            cx.emit(EventKind::Read, Some(event), Some(addr));
            // The first message names the bus and the client: a client that
            // looks for its bus in a port range knows it found it.
            let welcome = self.stamp(cx).encode(
                "control",
                &Value::mapping([
                    ("type", Value::str("welcome")),
                    ("client_id", Value::Str(id)),
                ]),
            );
            let i = self.clients.len() - 1;
            if !self.send_to(cx, i, &welcome) {
                continue;
            }
            // What was said while nobody listened goes to the first to come.
            if !self.backlog.is_empty() {
                let queued = self.backlog.take();
                for bytes in queued {
                    if !self.send_to(cx, i, &bytes) {
                        break;
                    }
                }
                self.enforce_total(cx);
            }
            self.arm_idle(cx);
        }
    }

    /// Sends an optional last message, shuts the stream down and drains its
    /// input until the peer closes (or the linger time passes).
    fn linger(&mut self, cx: &mut Cx, stream: Stream, last: Option<&[u8]>) {
        self.lingering.add(cx, stream, last, Stream::shutdown_write);
    }

    /// Removes client `i`: with `error`, it is told why first (an ERROR
    /// message) and lingers; LPC gets client_disconnected with `reason`.
    fn drop_client(&mut self, cx: &mut Cx, i: usize, reason: &str, error: Option<(&str, &str)>) {
        let mut c = self.clients.swap_remove(i);
        cx.reactor.deregister(&mut c.link.stream, c.link.token);
        if self.closing {
            return;
        }
        match error {
            Some((code, text)) => {
                // The ERROR message may only follow whole messages: with part
                // of one still queued, writing it now would land inside it.
                let clean = c.link.flush().is_ok() && c.link.pending() == 0;
                let bytes = clean.then(|| self.stamp(cx).error(code, text));
                self.linger(cx, c.link.stream, bytes.as_deref());
            }
            None => drop(c.link),
        }
        self.publish_clients(cx);
        let event = Value::mapping([
            ("type", Value::str("client_disconnected")),
            ("client_id", Value::Str(c.id)),
            ("reason", Value::str(reason)),
        ]);
        cx.emit(EventKind::Read, Some(event), Some(c.addr));
        self.check_drained(cx);
    }

    /// Queues `bytes` for client `i`; a client that cannot keep up (its
    /// queue would pass SO_MAX_BUFFERED) is dropped. False when it was.
    fn send_to(&mut self, cx: &mut Cx, i: usize, bytes: &[u8]) -> bool {
        let max = self.max_buffered;
        let c = &mut self.clients[i];
        if c.link.pending() + bytes.len() > max && c.link.pending() > 0 {
            let reason = format!(
                "too slow: {} bytes waiting, over SO_MAX_BUFFERED ({max})",
                c.link.pending() + bytes.len()
            );
            self.drop_client(cx, i, &reason, None);
            return false;
        }
        match c.link.send(bytes) {
            Ok(n) => {
                cx.core.stats.bytes_out += n as u64;
                // A client that only listens is not idle (SO_IDLE_TIMEOUT),
                // as with the HTTP server: bytes going out count too.
                if n > 0 && self.idle_on {
                    c.last_active = Instant::now();
                }
                // A queue that just started gets its SO_SEND_TIMEOUT deadline
                // (an armed timer is never later than a new queue's deadline).
                if c.link.pending() > 0 && !self.send_timer.is_armed() {
                    self.arm_send(cx);
                }
                true
            }
            Err(e) => {
                self.drop_client(cx, i, &format!("write: {e}"), None);
                false
            }
        }
    }

    fn client_ready(&mut self, cx: &mut Cx, i: usize, r: Readiness) {
        if self.closing {
            return self.flush_closing(cx, i, r);
        }
        if r.writable {
            match self.clients[i].link.flush() {
                Ok(n) => {
                    cx.core.stats.bytes_out += n as u64;
                    if n > 0 {
                        self.clients[i].last_active = Instant::now();
                    }
                }
                Err(e) => return self.drop_client(cx, i, &format!("write: {e}"), None),
            }
        }
        if r.readable || r.read_closed || r.closed {
            self.read_client(cx, i);
        } else {
            self.check_drained(cx);
        }
    }

    /// After socket_close: a client is dropped once its output is out (or
    /// it went away); the socket is done when none is left.
    fn flush_closing(&mut self, cx: &mut Cx, i: usize, r: Readiness) {
        let c = &mut self.clients[i];
        let failed = c.link.flush().is_err() || r.closed;
        if failed || c.link.pending() == 0 {
            let mut c = self.clients.swap_remove(i);
            cx.reactor.deregister(&mut c.link.stream, c.link.token);
        }
        if self.clients.is_empty() {
            cx.core.state = State::Closed;
        }
    }

    fn read_client(&mut self, cx: &mut Cx, i: usize) {
        let (end, n) = self.clients[i].link.read();
        cx.core.stats.bytes_in += n as u64;
        if n > 0 {
            self.clients[i].last_active = Instant::now();
        }
        let allow = cx.core.options.int(opt::IPC_ALLOW_CLIENT_SEND, MODE_SERVER) != 0;
        loop {
            let c = &mut self.clients[i];
            let (v, _) = match c.link.next_message() {
                None => break,
                Some(Ok(x)) => x,
                Some(Err(why)) => {
                    cx.core.stats.errors += 1;
                    return self.drop_client(cx, i, &why, Some(("bad_message", &why)));
                }
            };
            if self.closing {
                continue;
            }
            if !allow {
                cx.core.stats.errors += 1;
                let bytes = self.stamp(cx).error(
                    "client_send_disabled",
                    "this bus does not take messages from clients (IPC_ALLOW_CLIENT_SEND is 0)",
                );
                if !self.send_to(cx, i, &bytes) {
                    return;
                }
                continue;
            }
            let checked = message::incoming(v, self.stamp(cx));
            let c = &self.clients[i];
            match checked {
                Ok(mut m) => {
                    m.insert(Value::str("client_id"), Value::str(&c.id));
                    cx.core.stats.messages_in += 1;
                    cx.emit(EventKind::Read, Some(m), Some(c.addr.clone()));
                }
                Err(why) => {
                    cx.core.stats.errors += 1;
                    return self.drop_client(cx, i, &why, Some(("bad_message", &why)));
                }
            }
        }
        match end {
            ReadEnd::Open => self.check_drained(cx),
            ReadEnd::Limit => {
                let key = TIMER_READ_MORE + self.clients[i].link.token.0 as u64;
                cx.timer(Duration::ZERO, key);
            }
            ReadEnd::Eof => self.drop_client(cx, i, "closed by the client", None),
            ReadEnd::Error(e) => self.drop_client(cx, i, &e, None),
        }
    }

    /// The write callback is owed: fire it once every client's queue is
    /// below half of SO_MAX_BUFFERED (options.md), leaving out clients that
    /// have written nothing for STALLED: a stuck client must not hold the bus
    /// (it is dropped when its queue passes SO_MAX_BUFFERED, or after
    /// SO_SEND_TIMEOUT), while one that reads, however slowly, still holds
    /// LPC back. After socket_close, the socket is done once every queue is
    /// empty.
    fn check_drained(&mut self, cx: &mut Cx) {
        if self.closing {
            if self.clients.iter().all(|c| c.link.pending() == 0) {
                cx.core.state = State::Closed;
            }
            return;
        }
        if !self.write_owed {
            return;
        }
        let half = self.max_buffered / 2;
        let now = Instant::now();
        // The earliest moment a client holding the callback back counts as stalled.
        let held_until = self
            .clients
            .iter()
            .filter(|c| c.link.pending() > half)
            .filter_map(|c| c.link.waiting_since())
            .map(|t| t + STALLED)
            .filter(|t| *t > now)
            .min();
        match held_until {
            None => {
                self.write_owed = false;
                cx.emit(EventKind::Write, None, None);
            }
            Some(due) => self.owed_timer.arm(cx, due, TIMER_OWED),
        }
    }

    /// Arms TIMER_SEND for the earliest SO_SEND_TIMEOUT deadline of a queue.
    fn arm_send(&mut self, cx: &mut Cx) {
        let Some(limit) = self.send_timeout else {
            return;
        };
        let oldest = self
            .clients
            .iter()
            .filter_map(|c| c.link.waiting_since())
            .min();
        if let Some(t) = oldest {
            self.send_timer.arm(cx, t + limit, TIMER_SEND);
        }
    }

    /// TIMER_SEND: clients whose queued output has made no progress for
    /// SO_SEND_TIMEOUT are dropped as too slow (after socket_close, without
    /// a word); then the timer is armed for the next deadline.
    fn expire_send(&mut self, cx: &mut Cx) {
        self.send_timer.forget();
        let Some(limit) = self.send_timeout else {
            return;
        };
        let now = Instant::now();
        let mut i = 0;
        while i < self.clients.len() {
            let c = &self.clients[i];
            match c.link.waiting_since() {
                Some(t) if now.duration_since(t) >= limit => {
                    if self.closing {
                        let mut c = self.clients.swap_remove(i);
                        cx.reactor.deregister(&mut c.link.stream, c.link.token);
                        continue;
                    }
                    let reason = format!(
                        "too slow: no write progress for {} ms (SO_SEND_TIMEOUT); {} bytes waiting",
                        limit.as_millis(),
                        c.link.pending()
                    );
                    self.drop_client(cx, i, &reason, None);
                }
                _ => i += 1,
            }
        }
        if self.closing {
            return self.check_drained(cx);
        }
        self.arm_send(cx);
    }

    /// Beyond TOTAL_FACTOR × SO_MAX_BUFFERED queued across the clients, the
    /// client that has written nothing for longest is dropped, until the
    /// total is back under it.
    fn enforce_total(&mut self, cx: &mut Cx) {
        let limit = self.max_buffered.saturating_mul(TOTAL_FACTOR);
        loop {
            let total: usize = self.clients.iter().map(|c| c.link.pending()).sum();
            if total <= limit {
                return;
            }
            let Some((i, since)) = self
                .clients
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.link.waiting_since().map(|t| (i, t)))
                .min_by_key(|(_, t)| *t)
            else {
                return;
            };
            let reason = format!(
                "too slow: the bus's clients have {total} bytes waiting, over {TOTAL_FACTOR} × \
                 SO_MAX_BUFFERED ({limit}), and this one has written nothing for longest ({} ms; \
                 {} bytes waiting)",
                since.elapsed().as_millis(),
                self.clients[i].link.pending()
            );
            self.drop_client(cx, i, &reason, None);
        }
    }

    fn arm_idle(&mut self, cx: &mut Cx) {
        let idle = cx.core.options.int(opt::SO_IDLE_TIMEOUT, MODE_SERVER);
        if idle <= 0 || self.idle_armed || self.clients.is_empty() {
            return;
        }
        let oldest = self.clients.iter().map(|c| c.last_active).min();
        let due = oldest.map_or(Duration::ZERO, |t| {
            (t + Duration::from_millis(idle as u64)).saturating_duration_since(Instant::now())
        });
        self.idle_armed = true;
        cx.timer(due, TIMER_IDLE);
    }

    fn expire_idle(&mut self, cx: &mut Cx) {
        self.idle_armed = false;
        let idle = cx.core.options.int(opt::SO_IDLE_TIMEOUT, MODE_SERVER);
        if idle > 0 {
            let limit = Duration::from_millis(idle as u64);
            let now = Instant::now();
            let mut i = 0;
            while i < self.clients.len() {
                if now.duration_since(self.clients[i].last_active) >= limit {
                    let text = format!("idle for {idle} ms (SO_IDLE_TIMEOUT)");
                    self.drop_client(cx, i, &text, Some(("idle_timeout", &text)));
                } else {
                    i += 1;
                }
            }
        }
        self.arm_idle(cx);
    }

    fn release_all(&mut self, cx: &mut Cx) {
        if let Some((mut l, Some(t))) = self.listener.take() {
            cx.reactor.deregister(&mut l, t);
        }
        self.bound_tcp = None;
        for mut c in self.clients.drain(..) {
            cx.reactor.deregister(&mut c.link.stream, c.link.token);
        }
        self.lingering.clear(cx);
    }
}

impl Default for IpcServer {
    fn default() -> Self {
        Self::new()
    }
}

impl Endpoint for IpcServer {
    fn bind(&mut self, cx: &mut Cx, addr: std::net::SocketAddr) -> Result<()> {
        let o = &cx.core.options;
        let name = super::event_name(o, "socket_bind")?;
        if !addr.ip().is_unspecified() {
            return Err(IpcError::BindTakesNoAddress.into());
        }
        if super::is_tcp(o, MODE_SERVER) {
            let ip = transport::bind_ip(&super::string(o, opt::IPC_HOST, MODE_SERVER))?;
            let (lo, hi) = match addr.port() {
                0 => super::port_range(o, MODE_SERVER),
                p => (p, p),
            };
            let s = transport::bind_tcp(ip, lo, hi)?;
            let local = s.local_addr().ok().and_then(|a| a.as_socket());
            if let Some(a) = local {
                let p = Value::Int(a.port() as i64);
                cx.core
                    .options
                    .set_internal(opt::IPC_PORT_RANGE, Value::Array(vec![p.clone(), p]));
                self.where_ = crate::core::addr::format(&a);
            }
            cx.core.local = local;
            self.bound_tcp = Some(s);
        } else {
            if addr.port() != 0 {
                return Err(IpcError::BindUnixTakesNoPort.into());
            }
            let path = super::unix_path(o, &name)?;
            let perm = o.int(opt::IPC_PERMISSIONS, MODE_SERVER) as u32;
            let remove = o.int(opt::IPC_AUTO_REMOVE, MODE_SERVER) != 0;
            // The directory as the policy allows it, opened once: the socket
            // file is made, linked and later removed relative to it.
            let dir = path.parent().unwrap_or(std::path::Path::new("/"));
            let dir =
                crate::policy::gate::dir(crate::policy::Dirs::Socket, super::dir_option(o), dir)
                    .map_err(PolicyError::at_bind)?;
            let l = transport::bind_unix(&path, dir, perm, remove)?;
            self.where_ = path.display().to_string();
            self.listener = Some((l, None));
        }
        self.stamp = None;
        cx.core.state = State::Bound;
        Ok(())
    }

    fn listen(&mut self, cx: &mut Cx) -> Result<()> {
        crate::transport::tcp::check_can_listen(cx)?;
        self.read_limits(cx);
        if let Some(s) = self.bound_tcp.take() {
            match crate::transport::tcp::listen_on(cx, s, MODE_SERVER, 128) {
                Ok((l, t)) => self.listener = Some((Listener::Tcp(l), Some(t))),
                Err((s, e)) => {
                    self.bound_tcp = Some(s);
                    return Err(e);
                }
            }
        } else if let Some((l, token)) = &mut self.listener {
            let t = cx
                .register(l, Interest::READABLE)
                .map_err(|e| Error::io("socket_listen", ResultCode::EeListen, &e))?;
            *token = Some(t);
        }
        self.stamp(cx);
        self.publish_clients(cx);
        cx.core.state = State::Listen;
        cx.core.mark_connected();
        Ok(())
    }

    fn option_set(&mut self, cx: &mut Cx, id: u16) -> Result<()> {
        match id {
            // IPC_TIMEZONE may change on a live bus: stamp the next message anew.
            opt::IPC_TIMEZONE => self.stamp = None,
            opt::SO_MAX_BUFFERED => {
                self.read_limits(cx);
                self.check_drained(cx);
            }
            opt::SO_SEND_TIMEOUT => {
                self.read_limits(cx);
                // A shorter deadline may be due before the armed timer.
                self.send_timer.forget();
                self.arm_send(cx);
            }
            opt::SO_IDLE_TIMEOUT => {
                self.read_limits(cx);
                // Activity was not tracked while it was off: count from now.
                let now = Instant::now();
                for c in &mut self.clients {
                    c.last_active = now;
                }
                self.arm_idle(cx);
            }
            _ => {}
        }
        Ok(())
    }

    fn accept(&mut self, _cx: &mut Cx) -> Result<Accepted> {
        Err(IpcError::NoAccept.into())
    }

    fn ready(&mut self, cx: &mut Cx, r: Readiness) {
        if matches!(&self.listener, Some((_, Some(t))) if *t == r.token) {
            return self.accept_ready(cx);
        }
        if let Some(i) = self.clients.iter().position(|c| c.link.token == r.token) {
            return self.client_ready(cx, i, r);
        }
        self.lingering.ready(cx, r.token);
    }

    fn timer(&mut self, cx: &mut Cx, key: u64) {
        match key {
            TIMER_FLUSH => {
                // LPC closed the socket and a client never took its output.
                self.release_all(cx);
                cx.core.state = State::Closed;
            }
            TIMER_IDLE => self.expire_idle(cx),
            TIMER_LINGER => self.lingering.expire(cx),
            TIMER_SEND => self.expire_send(cx),
            TIMER_OWED => {
                self.owed_timer.forget();
                self.check_drained(cx);
            }
            k if k >= TIMER_READ_MORE => {
                let token = Token((k - TIMER_READ_MORE) as usize);
                if let Some(i) = self.clients.iter().position(|c| c.link.token == token) {
                    self.read_client(cx, i);
                }
            }
            _ => {}
        }
    }

    fn write(&mut self, cx: &mut Cx, data: &Value, target: Option<&str>) -> Result<ResultCode> {
        if cx.core.state == State::Unbound {
            return Err(IpcError::ServerNotBound.into());
        }
        let (kind, body) = message::outgoing(data).map_err(|why| IpcError::BadMessage { why })?;
        let bytes = self.stamp(cx).encode(kind, body);
        cx.core.stats.messages_out += 1;
        match target.filter(|t| !t.is_empty()) {
            Some(t) => {
                let i = self.clients.iter().position(|c| c.id == t).ok_or_else(|| {
                    IpcError::NoSuchClient {
                        client: t.to_string(),
                    }
                })?;
                if !self.send_to(cx, i, &bytes) {
                    return Err(IpcError::ClientLost {
                        client: t.to_string(),
                    }
                    .into());
                }
            }
            None if self.clients.is_empty() => {
                let cap = cx.core.options.int(opt::IPC_QUEUE_SIZE, MODE_SERVER).max(0);
                self.backlog.push(bytes, cap as usize);
                return Ok(ResultCode::Ok);
            }
            None => {
                let mut i = self.clients.len();
                while i > 0 {
                    i -= 1;
                    self.send_to(cx, i, &bytes);
                }
            }
        }
        self.enforce_total(cx);
        if self.clients.iter().any(|c| c.link.pending() > 0) {
            // The callback may be due at once (every queue is below half, or
            // only stalled clients are above it): it is queued now, and the
            // driver is woken for it, rather than waiting for an event that
            // a stalled client will never cause.
            self.write_owed = true;
            self.check_drained(cx);
            Ok(ResultCode::EeCallback)
        } else {
            Ok(ResultCode::Ok)
        }
    }

    fn close(&mut self, cx: &mut Cx) -> bool {
        self.closing = true;
        // Dropping the listener removes the socket file (IPC_AUTO_REMOVE).
        if let Some((mut l, Some(t))) = self.listener.take() {
            cx.reactor.deregister(&mut l, t);
        }
        self.bound_tcp = None;
        self.lingering.clear(cx);
        let mut i = 0;
        while i < self.clients.len() {
            let c = &mut self.clients[i];
            let _ = c.link.flush();
            if c.link.pending() == 0 {
                let mut c = self.clients.swap_remove(i);
                cx.reactor.deregister(&mut c.link.stream, c.link.token);
            } else {
                i += 1;
            }
        }
        if self.clients.is_empty() {
            return true;
        }
        cx.timer(FLUSH_DEADLINE, TIMER_FLUSH);
        false
    }

    fn abort(&mut self, cx: &mut Cx) {
        self.release_all(cx);
    }

    fn status(&self, out: &mut Value) {
        out.insert(Value::str("clients"), Value::Int(self.clients.len() as i64));
        out.insert(Value::str("queued"), Value::Int(self.backlog.len() as i64));
        let waiting: usize = self.clients.iter().map(|c| c.link.pending()).sum();
        out.insert(Value::str("queued_bytes"), Value::Int(waiting as i64));
        out.insert(Value::str("bus"), Value::str(&self.where_));
    }

    fn raw_fd(&self) -> i32 {
        self.listener.as_ref().map_or(-1, |(l, _)| l.raw_fd())
    }
}
