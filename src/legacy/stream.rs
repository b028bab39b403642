//! MUD, STREAM, STREAM_BINARY, STREAM_TLS and STREAM_TLS_BINARY: TCP (or TLS)
//! sockets with upstream FluffOS semantics.
//!
//! - connect returns at once; the write callback says when writing may start
//!   (after the TCP connect, and after the TLS handshake for TLS modes);
//! - a write that cannot go out whole keeps the rest, answers EECALLBACK and
//!   fires the write callback once drained; writes meanwhile get EEALREADY;
//! - reads deliver strings (valid UTF-8, ≤ 65535 bytes), buffers for binary
//!   modes, and MUD frames' text for the shim to restore;
//! - close_cb only on remote close or error; socket_close flushes quietly;
//! - queued output of which the peer takes no byte for SO_SEND_TIMEOUT is
//!   such an error ("too slow"; 0: never, as upstream), and the connections
//!   of a listener queue at most 16 × its SO_MAX_BUFFERED together
//!   (`transport::output`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::error::LegacyError;
use super::framing::{mud_frame, split_text, MudDecoder, Utf8Chunker, MAX_CHUNK};
use crate::core::addr::{self, Target};
use crate::core::{Accepted, Cx, Endpoint, EventKind, State};
use crate::error::{Error, Result, ResultCode};
use crate::modes;
use crate::options::ids::{SO_MAX_BUFFERED, SO_SEND_TIMEOUT};
use crate::options::store::OptionStore;
use crate::reactor::{CompletionKind, Readiness};
use crate::transport::listener::{Incoming, Listener, Ticket};
use crate::transport::{tcp, Conn, ConnConfig, Connecting, Deadline, ReadEnd, Sock};
use crate::value::Value;

/// Most bytes read from one connection per reactor round before others get a turn.
const READ_ROUND: usize = 1 << 20;

const TIMER_READ_MORE: u64 = 1;
const TIMER_IDLE: u64 = 2;
const TIMER_FLUSH: u64 = 3;
/// The no-progress deadline of queued output (SO_SEND_TIMEOUT), or the listener's budget.
const TIMER_SEND: u64 = 4;

pub struct Stream {
    mode: u8,
    /// The transport options it acts on: read when the endpoint is made
    /// (defaults), the listener's for an accepted connection (the core gives
    /// it a copy of the listener's options), updated in `option_set`.
    cfg: ConnConfig,
    sock: Sock,
    text: Utf8Chunker,
    mud: MudDecoder,
    /// TCP connect in progress.
    connecting: bool,
    /// Host given to socket_connect (SNI, verification, messages).
    host: String,
    /// An accepted connection: counted among its listener's live ones.
    _ticket: Option<Ticket>,
    last_activity: Instant,
    /// SO_IDLE_TIMEOUT's timer (accepted connections).
    idle_timer: Deadline,
    closing: bool,
    /// Handed over by the driver: may be a Unix socketpair, so TCP options are best effort.
    adopted: bool,
}

impl Stream {
    pub fn new(mode: u8) -> Stream {
        Stream {
            mode,
            cfg: ConnConfig::read(&OptionStore::default(), mode),
            sock: Sock::None,
            text: Utf8Chunker::default(),
            mud: MudDecoder::default(),
            connecting: false,
            host: String::new(),
            _ticket: None,
            last_activity: Instant::now(),
            idle_timer: Deadline::default(),
            closing: false,
            adopted: false,
        }
    }

    /// An already connected stream handed over by the driver (external_start).
    pub fn adopted(mode: u8, stream: std::net::TcpStream) -> Stream {
        let mut s = Stream::new(mode);
        s.sock = Sock::Accepted(Incoming::adopted(TcpStream::from_std(stream)));
        s.adopted = true;
        s
    }

    fn tls(&self) -> bool {
        modes::is_legacy_tls(self.mode)
    }

    fn conn(&mut self) -> Option<&mut Conn> {
        self.sock.conn()
    }

    /// SO_SEND_TIMEOUT: how long queued output may make no progress (None:
    /// no deadline, as upstream). A stream handed over by the driver
    /// (external_start) talks to a local child, not a remote peer: none.
    fn send_limit(&self) -> Option<Duration> {
        self.cfg.send_limit().filter(|_| !self.adopted)
    }

    /// Arms the no-progress deadline while output is queued (runs after
    /// every readiness).
    fn arm_send(&mut self, cx: &mut Cx) {
        let limit = self.send_limit();
        if let (Sock::Connected(c), false) = (&mut self.sock, cx.core.dead) {
            c.arm_send(cx, TIMER_SEND, limit);
        }
    }

    /// Opens the TCP connection to `addr` (after resolution, if any).
    fn start_connect(&mut self, cx: &mut Cx, addr: SocketAddr) -> Result<()> {
        let socket = match std::mem::replace(&mut self.sock, Sock::None) {
            Sock::Bound(s) => s,
            _ => tcp::new_socket(&addr, false)?,
        };
        let host = if self.host.is_empty() {
            addr.ip().to_string()
        } else {
            self.host.clone()
        };
        let conn = Conn::connect(cx, socket, addr, self.mode, host, |e| {
            Error::io(
                &format!("socket_connect to {}", addr::format(&addr)),
                ResultCode::EeConnect,
                &e,
            )
        })?;
        self.sock = Sock::Connected(conn);
        self.connecting = true;
        cx.core.peer = Some(addr);
        cx.core.state = State::Connecting;
        Ok(())
    }

    /// The TCP connect finished (or failed).
    fn finish_connect(&mut self, cx: &mut Cx) {
        let mode = self.mode;
        let tls = self.tls();
        let Sock::Connected(conn) = &mut self.sock else {
            return;
        };
        match conn.connect_result(cx) {
            Connecting::Pending => return,
            Connecting::Failed(e) | Connecting::Lost(e) => {
                let msg = format!("connect {}: {e}", peer_text(cx));
                return cx.die(Some(msg));
            }
            Connecting::Done => {}
        }
        self.connecting = false;
        if tls {
            let host = conn.host.clone();
            match conn.start_tls_client(&cx.core.options, mode, &[], &host) {
                Ok(()) => {
                    cx.core.state = State::Handshake;
                    self.pump(cx, true, true);
                }
                Err(e) => cx.die(Some(e.message)),
            }
        } else {
            cx.core.state = State::DataXfer;
            // Upstream: the write callback says the connection is ready.
            cx.emit(EventKind::Write, None, None);
        }
    }

    /// Reads, delivers and flushes as readiness allows.
    fn pump(&mut self, cx: &mut Cx, readable: bool, writable: bool) {
        let max_frame = self.cfg.max_buffered as usize;
        let mode = self.mode;
        let Sock::Connected(conn) = &mut self.sock else {
            return;
        };
        if readable {
            let mut data = Vec::new();
            let end = conn.read(&mut data, READ_ROUND);
            if !data.is_empty() {
                self.last_activity = Instant::now();
                cx.core.stats.bytes_in += data.len() as u64;
                if !self.closing {
                    if let Err(msg) =
                        deliver(cx, mode, &mut self.text, &mut self.mud, &data, max_frame)
                    {
                        return cx.die(Some(msg));
                    }
                }
            }
            match end {
                ReadEnd::Open => {}
                ReadEnd::Limit => cx.timer(Duration::ZERO, TIMER_READ_MORE),
                ReadEnd::Eof => {
                    let rest = self.text.finish();
                    if !rest.is_empty() && !modes::is_binary(mode) && mode != modes::MUD {
                        cx.emit(EventKind::Read, Some(Value::Str(rest)), None);
                    }
                    return cx.die(None);
                }
                ReadEnd::Error(msg) => return cx.die(Some(msg)),
            }
        }
        let Sock::Connected(conn) = &mut self.sock else {
            return;
        };
        let handshaking = cx.core.state == State::Handshake;
        if writable || readable || conn.is_blocked() || handshaking {
            // The write callback once everything is out.
            match conn.flush_out(cx, 1) {
                Ok(n) => {
                    if n > 0 {
                        self.last_activity = Instant::now();
                    }
                    if handshaking && !conn.is_handshaking() {
                        // Upstream fires the write callback when the handshake completes.
                        cx.core.state = State::DataXfer;
                        if conn.pending() == 0 {
                            cx.emit(EventKind::Write, None, None);
                        } else {
                            conn.block();
                        }
                        self.pump(cx, false, true);
                    }
                }
                Err(e) => {
                    let msg = format!("write: {e}");
                    cx.die(Some(msg))
                }
            }
        }
    }

    fn encode(&self, data: &Value) -> Result<Vec<u8>> {
        let unsupported = || {
            Error::from(LegacyError::StreamCannotSend {
                mode: self.mode,
                got: data.describe(),
            })
        };
        if self.mode == modes::MUD {
            // The shim has turned the LPC value into save_svalue text.
            return match data {
                Value::Str(s) => Ok(mud_frame(s.as_bytes())),
                Value::Buffer(b) => Ok(mud_frame(b)),
                _ => Err(unsupported()),
            };
        }
        match data {
            Value::Str(s) => Ok(s.as_bytes().to_vec()),
            Value::Buffer(b) => Ok(b.clone()),
            // Upstream sends each element as a native 4-byte int.
            Value::Array(items) => Ok(items
                .iter()
                .flat_map(|v| match v {
                    Value::Int(i) => (*i as i32).to_ne_bytes(),
                    Value::Real(r) => {
                        let b = r.to_ne_bytes();
                        [b[0], b[1], b[2], b[3]]
                    }
                    _ => [0; 4],
                })
                .collect()),
            _ => Err(unsupported()),
        }
    }
}

/// Hands received bytes to LPC in the mode's shape.
/// The address a connect went to, "ip port", for its error text.
fn peer_text(cx: &Cx) -> String {
    cx.core
        .peer
        .as_ref()
        .map_or_else(|| "(no address)".to_string(), addr::format)
}

fn deliver(
    cx: &mut Cx,
    mode: u8,
    text: &mut Utf8Chunker,
    mud: &mut MudDecoder,
    data: &[u8],
    max_frame: usize,
) -> std::result::Result<(), String> {
    if mode == modes::MUD {
        let (frames, bad) = mud.push(data, max_frame);
        for frame in frames {
            cx.core.stats.messages_in += 1;
            let v = Value::Str(String::from_utf8_lossy(&frame).into_owned());
            cx.emit(EventKind::Read, Some(v), None);
        }
        if let Some(msg) = bad {
            return Err(msg);
        }
    } else if modes::is_binary(mode) {
        for chunk in data.chunks(MAX_CHUNK) {
            cx.core.stats.messages_in += 1;
            cx.emit(EventKind::Read, Some(Value::Buffer(chunk.to_vec())), None);
        }
    } else {
        for chunk in split_text(text.push(data)) {
            cx.core.stats.messages_in += 1;
            cx.emit(EventKind::Read, Some(Value::Str(chunk)), None);
        }
    }
    Ok(())
}

impl Endpoint for Stream {
    fn bind(&mut self, cx: &mut Cx, addr: SocketAddr) -> Result<()> {
        self.sock.bind(cx, addr)
    }

    fn listen(&mut self, cx: &mut Cx) -> Result<()> {
        let alpn = self.tls().then_some(&[][..]);
        let max = self.cfg.max_buffered_bytes();
        // Over SO_MAX_CONNECTIONS a connection is closed at once.
        self.sock.listen(cx, self.mode, 128, alpn, max, None)
    }

    fn accept(&mut self, _cx: &mut Cx) -> Result<Accepted> {
        let (mode, cfg) = (self.mode, self.cfg);
        Listener::accept(self.sock.listener(), |incoming, ticket| {
            let mut child = Stream::new(mode);
            // The core gives the child a copy of the listener's options.
            child.cfg = cfg;
            child._ticket = Some(ticket);
            child.sock = Sock::Accepted(incoming);
            Box::new(child)
        })
    }

    fn attach(&mut self, cx: &mut Cx) -> Result<()> {
        let Some(incoming) = self.sock.take_accepted() else {
            return Ok(());
        };
        if cx.core.peer.is_none() {
            cx.core.peer = incoming.stream.peer_addr().ok();
            cx.core.local = incoming.stream.local_addr().ok();
        }
        // A stream the driver handed over may be a socketpair: TCP options
        // are best effort there.
        let strict = !self.adopted;
        let conn = Conn::accepted(cx, incoming, self.mode, strict)?;
        self.sock = Sock::Connected(conn);
        let idle = self.cfg.idle();
        if !idle.is_zero() {
            let at = self.last_activity + idle;
            self.idle_timer.arm(cx, at, TIMER_IDLE);
        }
        // Data may have arrived before the registration; read it now.
        self.pump(cx, true, true);
        self.arm_send(cx);
        Ok(())
    }

    fn connect(&mut self, cx: &mut Cx, address: &str) -> Result<()> {
        match cx.core.state {
            State::Listen => return Err(LegacyError::ConnectListening.into()),
            State::Connecting | State::Handshake | State::DataXfer => {
                return Err(LegacyError::ConnectConnected.into())
            }
            _ => {}
        }
        match addr::parse(address)? {
            Target::Addr(a) => {
                self.host = a.ip().to_string();
                self.start_connect(cx, a)
            }
            Target::Host(host, port) => {
                self.host = host.clone();
                if let Sock::Bound(_) = self.sock {
                    // Keep the bound socket; resolution result connects it.
                } else {
                    self.sock = Sock::Resolving;
                }
                cx.core.state = State::Connecting;
                self.connecting = true;
                cx.resolve(host, port);
                Ok(())
            }
        }
    }

    fn completed(&mut self, cx: &mut Cx, kind: CompletionKind) {
        let CompletionKind::Resolved(result) = kind else {
            return;
        };
        let resolving = matches!(self.sock, Sock::Resolving);
        match result {
            Ok(addrs) if !addrs.is_empty() => {
                // Prefer IPv4 on a bound IPv6 dual-stack socket and alike: first answer wins.
                let a = addrs[0];
                if resolving {
                    self.sock = Sock::None;
                }
                if let Err(e) = self.start_connect(cx, a) {
                    cx.die(Some(e.message));
                }
            }
            Ok(_) => cx.die(Some(format!("connect: {} has no address", self.host))),
            Err(e) => cx.die(Some(format!("connect: cannot resolve {}: {e}", self.host))),
        }
    }

    fn ready(&mut self, cx: &mut Cx, r: Readiness) {
        match &mut self.sock {
            Sock::Listening(l) => {
                l.ready(cx, r.token, self.cfg.connection_limit());
            }
            Sock::Connected(_) => {
                if self.connecting {
                    self.finish_connect(cx);
                    if self.connecting || cx.core.dead {
                        return;
                    }
                }
                self.pump(cx, r.readable || r.closed, r.writable);
                self.arm_send(cx);
            }
            _ => {}
        }
    }

    fn timer(&mut self, cx: &mut Cx, key: u64) {
        match key {
            TIMER_READ_MORE => self.pump(cx, true, false),
            TIMER_IDLE => {
                self.idle_timer.forget();
                let idle = self.cfg.idle();
                if idle.is_zero() {
                    return;
                }
                if self.last_activity.elapsed() >= idle {
                    cx.die(Some("idle timeout".into()));
                } else {
                    self.idle_timer
                        .arm(cx, self.last_activity + idle, TIMER_IDLE);
                }
            }
            TIMER_FLUSH if self.closing => cx.core.state = State::Closed,
            TIMER_SEND => {
                let limit = self.send_limit();
                if let Sock::Connected(c) = &mut self.sock {
                    if let Some(why) = c.deadline_fired(cx, limit, TIMER_SEND, "SO_SEND_TIMEOUT") {
                        cx.die(Some(why));
                    }
                }
            }
            _ => {}
        }
    }

    fn write(&mut self, cx: &mut Cx, data: &Value, target: Option<&str>) -> Result<ResultCode> {
        match cx.core.state {
            State::DataXfer => {}
            State::Connecting => return Err(LegacyError::StillConnecting.into()),
            _ => return Err(LegacyError::StreamNotConnected.into()),
        }
        if target.is_some() {
            return Err(LegacyError::StreamTakesNoAddress.into());
        }
        if self.conn().is_some_and(|c| c.is_blocked()) {
            return Err(LegacyError::OutputPending.into());
        }
        let bytes = self.encode(data)?;
        if bytes.is_empty() {
            return Ok(ResultCode::Ok);
        }
        let max = self.cfg.max_buffered_bytes();
        let Some(conn) = self.conn() else {
            return Err(LegacyError::NoConnection.into());
        };
        // SO_MAX_BUFFERED, then the listener's budget: the connections
        // stalled longest make room (this one too, if it is among them).
        conn.admit(cx, bytes.len(), max, false, TIMER_SEND)?;
        cx.core.stats.messages_out += 1;
        conn.queue(&bytes);
        match conn.flush_out(cx, 1) {
            Ok(_) => {
                self.last_activity = Instant::now();
                let conn = self.conn().expect("connected");
                if conn.pending() == 0 {
                    Ok(ResultCode::Ok)
                } else {
                    conn.block();
                    self.arm_send(cx);
                    Ok(ResultCode::EeCallback)
                }
            }
            Err(e) => {
                let e = Error::from(LegacyError::SendFailed { why: e.to_string() });
                cx.die(Some(e.message.clone()));
                Err(e)
            }
        }
    }

    fn option_set(&mut self, cx: &mut Cx, id: u16) -> Result<()> {
        self.cfg.update(&cx.core.options, self.mode, id);
        match (&self.sock, id) {
            (Sock::Connected(conn), _) => conn.option_changed(id, &cx.core.options, self.mode),
            (Sock::Listening(l), SO_MAX_BUFFERED) => {
                l.set_max_buffered(self.cfg.max_buffered_bytes())
            }
            _ => {}
        }
        if id == SO_SEND_TIMEOUT {
            // The deadline may now be sooner than the timer armed for the old value.
            self.arm_send(cx);
        }
        Ok(())
    }

    fn close(&mut self, cx: &mut Cx) -> bool {
        self.closing = true;
        let limit = self.send_limit();
        crate::transport::close_by_lpc(self.conn(), cx, TIMER_FLUSH, TIMER_SEND, limit)
    }

    fn abort(&mut self, cx: &mut Cx) {
        self.sock.deregister(cx);
    }

    fn status(&self, out: &mut Value) {
        if let Sock::Connected(c) = &self.sock {
            if let Some(v) = c.tls_version() {
                out.insert(Value::str("tls_version"), Value::Str(v));
            }
            out.insert(Value::str("queued"), Value::Int(c.pending() as i64));
        }
        if let Sock::Listening(l) = &self.sock {
            out.insert(Value::str("waiting"), Value::Int(l.waiting() as i64));
            out.insert(Value::str("queued"), Value::Int(l.queued() as i64));
        }
    }

    fn raw_fd(&self) -> i32 {
        self.sock.raw_fd()
    }
}
