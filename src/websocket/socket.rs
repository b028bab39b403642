//! The WebSocket endpoint: a listener (WEBSOCKET_SERVER, WEBSOCKET_TLS_SERVER),
//! the connections it accepts, a client (WEBSOCKET_CLIENT,
//! WEBSOCKET_TLS_CLIENT), and a connection an HTTP server upgraded
//! (`WsSocket::upgraded`), all on `transport::{Listener, Conn}`.
//!
//! A connection goes: handshake (server: the request, read by the HTTP
//! parser; client: the 101) → open (the "open" mapping; frames through
//! `Session`) → closing (a close frame sent, the peer's awaited) → ended.
//! Reading pauses while more than SO_MAX_BUFFERED bytes wait to go out (the
//! peer's pings and messages cannot make the queue grow while it does not
//! read); LPC's writes past SO_MAX_BUFFERED are refused (EEWOULDBLOCK), and
//! queued output that makes no progress for SO_SEND_TIMEOUT closes the
//! connection (`transport::output`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::config::WsConfig;
use super::deflate::{Deflate, Side};
use super::error::WsError;
use super::handshake::{self, Agreed, Offer};
use super::session::{Incoming, Role, Session};
use crate::core::addr::{self, Target as Address};
use crate::core::{Accepted, Cx, Endpoint, EventKind, State};
use crate::error::{Error, Result, ResultCode};
use crate::http::request_parser::{Parsed, RequestParser};
use crate::modes;
use crate::options::ids::WS_SUBPROTOCOL;
use crate::options::store::OptionStore;
use crate::reactor::CompletionKind;
use crate::reactor::Readiness;
use crate::transport::listener::{Listener, Refusal, Ticket};
use crate::transport::{tcp, Conn, Connecting, Deadline, ReadEnd, Sock};
use crate::value::Value;

const TIMER_CHECK: u64 = 1;
const TIMER_READ_MORE: u64 = 2;
const TIMER_FLUSH: u64 = 3;
const TIMER_REFUSED: u64 = 4;
const TIMER_SEND: u64 = 5;
/// A violation found behind messages LPC has not answered yet.
const TIMER_FAIL: u64 = 6;
/// Timer keys at or above this belong to a WebSocket that took over an HTTP
/// connection (`HttpServer` passes them on).
pub const TIMER_BASE: u64 = 100;

/// Most bytes read from one connection per reactor round.
const READ_ROUND: usize = 256 * 1024;
/// How long the opening handshake may take (connect and TLS included).
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(30);
/// How long the peer's close frame is awaited after ours.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// Not connected (a listener, or a client before socket_connect).
    Idle,
    /// Server: reading the upgrade request.
    ServerHandshake,
    /// Client: connecting (resolve, TCP, TLS) or reading the 101.
    ClientHandshake,
    Open,
    /// Our close frame went out (LPC's or a failure); the peer's is awaited.
    Closing,
    /// Refusing a handshake, or failed: the connection ends once output is out.
    Ending,
}

/// What a client connects to.
struct ClientTarget {
    host: String,
    port: u16,
    tls: bool,
    /// The Host header.
    authority: String,
    /// Path and query.
    path: String,
}

pub struct WsSocket {
    mode: u8,
    /// Server or client (an upgraded HTTP connection is a server).
    role: Role,
    cfg: WsConfig,
    sock: Sock,
    _ticket: Option<Ticket>,
    peer_text: String,
    inbuf: Vec<u8>,
    /// Server: the parser of the upgrade request (boxed: only while handshaking).
    parser: Option<Box<RequestParser>>,
    session: Option<Box<Session>>,
    phase: Phase,
    /// LPC closed the socket: only flushing remains.
    lpc_closed: bool,
    target: Option<Box<ClientTarget>>,
    /// Client: the Sec-WebSocket-Key sent.
    key: String,
    tcp_pending: bool,
    /// Why the connection ends once output is out (Phase::Ending), and
    /// whether that is abnormal.
    end_why: Option<(String, bool)>,
    /// Timer keys are offset by this (an upgraded connection: TIMER_BASE).
    timer_base: u64,
    timer: Deadline,
    handshake_due: Option<Instant>,
    next_ping: Option<Instant>,
    pong_due: Option<Instant>,
    close_due: Option<Instant>,
    /// A violation waits for LPC to answer the messages before it: the
    /// connection is failed on the next dispatch (TIMER_FAIL), so replies to
    /// them go out first; nothing more is read meanwhile.
    failing: Option<(u16, String)>,
    /// The last byte read or written (SO_IDLE_TIMEOUT).
    last_activity: Instant,
}

/// What a connection over SO_MAX_CONNECTIONS is told (plain servers).
fn too_many() -> Vec<u8> {
    crate::http::response_writer::canned(503, "too many connections (SO_MAX_CONNECTIONS)", 1)
}

fn ee(code: ResultCode) -> i64 {
    code.ee_code() as i64
}

impl WsSocket {
    pub fn new(mode: u8) -> WsSocket {
        let role = match mode {
            modes::WEBSOCKET_CLIENT | modes::WEBSOCKET_TLS_CLIENT => Role::Client,
            _ => Role::Server,
        };
        WsSocket::with_config(mode, role, WsConfig::read(&OptionStore::default(), mode))
    }

    fn with_config(mode: u8, role: Role, cfg: WsConfig) -> WsSocket {
        WsSocket {
            mode,
            role,
            cfg,
            sock: Sock::None,
            _ticket: None,
            peer_text: String::new(),
            inbuf: Vec::new(),
            parser: None,
            session: None,
            phase: Phase::Idle,
            lpc_closed: false,
            target: None,
            key: String::new(),
            tcp_pending: false,
            end_why: None,
            timer_base: 0,
            timer: Deadline::default(),
            handshake_due: None,
            next_ping: None,
            pong_due: None,
            close_due: None,
            failing: None,
            last_activity: Instant::now(),
        }
    }

    /// An HTTP server connection LPC upgraded: answers 101 and continues as
    /// an open WebSocket on the same id (`mode` is the HTTP server's; the
    /// WebSocket options are the connection's). `leftover`: bytes read
    /// after the request. A refusal gives the connection back with why.
    #[allow(clippy::too_many_arguments)]
    pub fn upgraded(
        cx: &mut Cx,
        mode: u8,
        conn: Box<Conn>,
        leftover: Vec<u8>,
        offer: &Offer,
        chosen: Option<&str>,
        extra: Option<&Value>,
        peer_text: String,
    ) -> std::result::Result<WsSocket, (Box<Conn>, handshake::Refusal)> {
        let cfg = WsConfig::read(&cx.core.options, mode);
        let (response, agreed) = match handshake::accept(offer, &cfg, chosen, extra) {
            Ok(x) => x,
            Err(r) => return Err((conn, r)),
        };
        let mut ws = WsSocket::with_config(mode, Role::Server, cfg);
        ws.timer_base = TIMER_BASE;
        ws.peer_text = peer_text;
        ws.sock = Sock::Connected(conn);
        ws.inbuf = leftover;
        if let Some(c) = ws.sock.conn() {
            c.queue(&response);
        }
        ws.open(cx, agreed, offer.path.clone(), offer.headers.clone());
        ws.pump(cx, false);
        Ok(ws)
    }

    /// After an upgrade: whether output stays queued (the write callback is
    /// then owed, as for any socket_write that returns EECALLBACK).
    pub fn owes_write_callback(&mut self) -> bool {
        match self.sock.conn() {
            Some(c) if c.pending() > 0 => {
                c.block();
                true
            }
            _ => false,
        }
    }

    fn tls(&self) -> bool {
        matches!(
            self.mode,
            modes::WEBSOCKET_TLS_SERVER | modes::WEBSOCKET_TLS_CLIENT | modes::HTTPS_SERVER
        )
    }

    fn queued(&self) -> usize {
        match &self.sock {
            Sock::Connected(c) => c.pending(),
            _ => 0,
        }
    }

    /// Reading waits while more than SO_MAX_BUFFERED bytes are queued.
    fn paused(&self) -> bool {
        self.queued() > self.cfg.conn.max_buffered_bytes()
    }

    fn emit(&self, cx: &mut Cx, v: Value) {
        cx.emit(EventKind::Read, Some(v), Some(self.peer_text.clone()));
    }

    /// The handshake is done: the session starts and LPC hears "open".
    fn open(&mut self, cx: &mut Cx, agreed: Agreed, path: String, headers: Value) {
        let side = match self.role {
            Role::Server => Side::Server,
            Role::Client => Side::Client,
        };
        let deflate = agreed.deflate.map(|p| Deflate::new(p, side));
        self.session = Some(Box::new(Session::new(
            self.role,
            self.cfg.limits(),
            deflate,
        )));
        self.parser = None;
        self.phase = Phase::Open;
        self.handshake_due = None;
        cx.core.state = State::DataXfer;
        cx.core
            .options
            .set_internal(WS_SUBPROTOCOL, Value::Str(agreed.subprotocol.clone()));
        self.next_ping = self.cfg.pings().map(|i| Instant::now() + i);
        self.emit(
            cx,
            Value::mapping([
                ("type", Value::str("open")),
                ("subprotocol", Value::Str(agreed.subprotocol)),
                ("headers", headers),
                ("path", Value::Str(path)),
            ]),
        );
    }

    /// Reads what the kernel has (unless `read` is false or reading is
    /// paused), acts on it, writes what is due, and arms the deadlines.
    fn pump(&mut self, cx: &mut Cx, read: bool) {
        let Sock::Connected(conn) = &mut self.sock else {
            return;
        };
        let mut eof = false;
        let paused = conn.pending() > self.cfg.conn.max_buffered_bytes();
        if read && !paused && self.phase != Phase::Ending {
            let before = self.inbuf.len();
            match conn.read(&mut self.inbuf, READ_ROUND) {
                ReadEnd::Open => {}
                ReadEnd::Limit => cx.timer(Duration::ZERO, self.timer_base + TIMER_READ_MORE),
                ReadEnd::Eof => eof = true,
                ReadEnd::Error(msg) => {
                    // What arrived before the error (the peer's close frame,
                    // before a TLS connection dropped without close_notify)
                    // is read first.
                    if matches!(self.phase, Phase::Open | Phase::Closing) {
                        self.frames(cx);
                        if cx.core.dead {
                            return;
                        }
                        if self.phase == Phase::Ending {
                            return self.eof(cx);
                        }
                    }
                    if self.phase == Phase::ClientHandshake {
                        // As the HTTP client: a TLS failure is EESECURITY.
                        return if msg.starts_with("tls:") {
                            self.fail(cx, WsError::TlsFailed { why: msg })
                        } else {
                            self.fail(cx, WsError::Handshake { why: msg })
                        };
                    }
                    return self.lost(cx, msg);
                }
            }
            let got = self.inbuf.len() - before;
            if got > 0 {
                cx.core.stats.bytes_in += got as u64;
                self.last_activity = Instant::now();
            }
        }
        match self.phase {
            Phase::ServerHandshake => self.server_handshake(cx),
            Phase::ClientHandshake => self.client_handshake(cx),
            Phase::Open | Phase::Closing if self.failing.is_some() => self.inbuf.clear(),
            Phase::Open | Phase::Closing => self.frames(cx),
            Phase::Idle | Phase::Ending => self.inbuf.clear(),
        }
        if cx.core.dead {
            return;
        }
        if eof {
            return self.eof(cx);
        }
        self.flush(cx);
        if cx.core.dead {
            return;
        }
        if paused && !self.paused() {
            // Bytes may wait in the kernel with no new readiness edge.
            cx.timer(Duration::ZERO, self.timer_base + TIMER_READ_MORE);
        }
        if self.inbuf.is_empty() && self.inbuf.capacity() > 4096 {
            self.inbuf = Vec::new();
        }
        if let Some(s) = self.session.as_mut() {
            s.trim();
        }
        self.arm(cx);
    }

    fn server_handshake(&mut self, cx: &mut Cx) {
        let parser = self.parser.get_or_insert_with(Default::default);
        let refusal = match parser.next(&mut self.inbuf) {
            Ok(None) => return,
            Ok(Some(Parsed::Continue)) => handshake::Refusal {
                status: 417,
                why: "a WebSocket handshake expects no 100-continue".into(),
                headers: Vec::new(),
            },
            Ok(Some(Parsed::Request(req))) => {
                match Offer::from_request(&req).and_then(|offer| {
                    Ok((handshake::accept(&offer, &self.cfg, None, None)?, offer))
                }) {
                    Ok(((response, agreed), offer)) => {
                        if let Some(c) = self.sock.conn() {
                            c.queue(&response);
                        }
                        let headers = offer.headers;
                        self.open(cx, agreed, offer.path, headers);
                        return self.frames(cx);
                    }
                    Err(r) => r,
                }
            }
            Err(reject) => handshake::Refusal {
                status: reject.status,
                why: reject.why,
                headers: Vec::new(),
            },
        };
        cx.core.stats.errors += 1;
        if let Some(c) = self.sock.conn() {
            c.queue(&handshake::refusal_response(&refusal));
        }
        self.end_after_output(
            format!(
                "websocket handshake refused: {} {}",
                refusal.status, refusal.why
            ),
            true,
        );
    }

    fn client_handshake(&mut self, cx: &mut Cx) {
        if self.tcp_pending {
            return;
        }
        match handshake::read_response(&self.inbuf, &self.key, &self.cfg) {
            Ok(None) => {}
            Ok(Some((agreed, used))) => {
                self.inbuf.drain(..used);
                let path = self
                    .target
                    .as_ref()
                    .map(|t| t.path.clone())
                    .unwrap_or_default();
                let headers = agreed.headers.clone().unwrap_or(Value::Mapping(Vec::new()));
                self.open(cx, agreed, path, headers);
                self.frames(cx);
            }
            Err(why) => self.fail(cx, WsError::Handshake { why }),
        }
    }

    /// Frames from the peer → LPC; the session's replies are queued.
    fn frames(&mut self, cx: &mut Cx) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let mut events = Vec::new();
        let mut out = Vec::new();
        let mut pos = 0;
        let r = session.feed(&self.inbuf, &mut pos, &mut out, &mut events);
        self.inbuf.drain(..pos);
        if !out.is_empty() {
            if let Some(c) = self.sock.conn() {
                c.queue(&out);
            }
        }
        let answered_first = !events.is_empty();
        for ev in events {
            self.incoming(cx, ev);
        }
        if let Err(f) = r {
            if answered_first && self.phase == Phase::Open {
                self.failing = Some((f.code, f.reason));
                self.inbuf = Vec::new();
                cx.timer(Duration::ZERO, self.timer_base + TIMER_FAIL);
            } else {
                self.violation(cx, f.code, f.reason);
            }
        }
    }

    fn incoming(&mut self, cx: &mut Cx, ev: Incoming) {
        cx.core.stats.messages_in += 1;
        let v = match ev {
            Incoming::Text(s) => {
                Value::mapping([("type", Value::str("text")), ("data", Value::Str(s))])
            }
            Incoming::Binary(b) => {
                Value::mapping([("type", Value::str("binary")), ("data", Value::Buffer(b))])
            }
            Incoming::Ping(p) => {
                Value::mapping([("type", Value::str("ping")), ("data", Value::Buffer(p))])
            }
            Incoming::Pong(p) => {
                self.pong_due = None;
                if self.cfg.auto_ping {
                    return;
                }
                Value::mapping([("type", Value::str("pong")), ("data", Value::Buffer(p))])
            }
            Incoming::Close { code, reason } => {
                let peer_started = self.phase != Phase::Closing;
                // A close unisock started for a violation was reported when it started.
                if self.end_why.is_none() {
                    self.emit(
                        cx,
                        Value::mapping([
                            ("type", Value::str("close")),
                            ("code", Value::Int(code as i64)),
                            ("reason", Value::Str(reason.clone())),
                        ]),
                    );
                }
                let why = match &self.end_why {
                    Some((why, _)) => why.clone(),
                    None if peer_started => format!(
                        "closed by the peer (close {code}{})",
                        if reason.is_empty() {
                            String::new()
                        } else {
                            format!(": {reason}")
                        }
                    ),
                    None => format!("closed (close {code} answered)"),
                };
                let abnormal = self.end_why.as_ref().is_some_and(|(_, a)| *a);
                self.end_after_output(why, abnormal);
                return;
            }
        };
        self.emit(cx, v);
    }

    /// unisock fails the connection: LPC hears the close mapping with our
    /// code, the close frame goes out, then the connection ends.
    fn violation(&mut self, cx: &mut Cx, code: u16, reason: String) {
        cx.core.stats.errors += 1;
        self.emit(
            cx,
            Value::mapping([
                ("type", Value::str("close")),
                ("code", Value::Int(code as i64)),
                ("reason", Value::Str(reason.clone())),
            ]),
        );
        if let Some(s) = self.session.as_mut() {
            let mut out = Vec::new();
            s.close(Some(code), &reason, &mut out);
            if let Some(c) = self.sock.conn() {
                c.queue(&out);
            }
        }
        self.end_after_output(format!("websocket close {code}: {reason}"), true);
    }

    /// The connection ends once the queued output is out.
    fn end_after_output(&mut self, why: String, abnormal: bool) {
        self.phase = Phase::Ending;
        self.inbuf = Vec::new();
        self.end_why = Some((why, abnormal));
    }

    fn eof(&mut self, cx: &mut Cx) {
        match self.phase {
            Phase::Ending => {}
            Phase::ClientHandshake => {
                return self.fail(
                    cx,
                    WsError::Handshake {
                        why: "the server closed the connection before answering".into(),
                    },
                )
            }
            Phase::ServerHandshake => {
                return cx.die(Some("closed by the peer during the handshake".into()))
            }
            Phase::Open | Phase::Closing => {
                self.emit(
                    cx,
                    Value::mapping([
                        ("type", Value::str("close")),
                        ("code", Value::Int(1006)),
                        (
                            "reason",
                            Value::str("connection closed without a close frame"),
                        ),
                    ]),
                );
                return cx.die(Some(
                    "closed by the peer without a close frame (1006)".into(),
                ));
            }
            Phase::Idle => return cx.die(None),
        }
        // Ending: write what is left, then end.
        self.flush(cx);
        self.ended(cx);
    }

    /// The connection ends now, for the reason `end_after_output` kept.
    fn ended(&mut self, cx: &mut Cx) {
        if cx.core.dead {
            return;
        }
        let (why, abnormal) = self.end_why.take().unwrap_or_default();
        if abnormal {
            cx.die(Some(why));
        } else {
            cx.end(&why);
        }
    }

    /// The connection broke.
    fn lost(&mut self, cx: &mut Cx, msg: String) {
        if matches!(self.phase, Phase::Open | Phase::Closing) {
            self.emit(
                cx,
                Value::mapping([
                    ("type", Value::str("close")),
                    ("code", Value::Int(1006)),
                    ("reason", Value::Str(msg.clone())),
                ]),
            );
        }
        cx.die(Some(msg));
    }

    /// A client's failure before "open": the error mapping, then close_cb.
    fn fail(&mut self, cx: &mut Cx, e: impl Into<Error>) {
        if cx.core.dead {
            return;
        }
        let Error { code, message } = e.into();
        cx.core.stats.errors += 1;
        self.emit(
            cx,
            Value::mapping([
                ("error", Value::Str(message.clone())),
                ("error_code", Value::Int(ee(code))),
            ]),
        );
        cx.die(Some(message));
    }

    /// Writes queued output; the write callback fires once it is below half
    /// of SO_MAX_BUFFERED; an ending connection ends once it is all out.
    fn flush(&mut self, cx: &mut Cx) {
        let half = (self.cfg.conn.max_buffered_bytes() / 2).max(1);
        let Sock::Connected(conn) = &mut self.sock else {
            return;
        };
        match conn.flush_out(cx, half) {
            Ok(n) => {
                if n > 0 {
                    self.last_activity = Instant::now();
                }
                if self.lpc_closed || self.phase != Phase::Ending {
                    return;
                }
                if conn.pending() > 0 || conn.is_handshaking() {
                    return;
                }
                conn.send_close_notify();
                let _ = conn.flush();
                let _ = conn.stream.shutdown(std::net::Shutdown::Write);
                self.ended(cx);
            }
            Err(e) => {
                let msg = format!("write: {e}");
                self.lost(cx, msg)
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        [
            self.handshake_due,
            self.next_ping,
            self.pong_due,
            self.close_due,
            self.idle_due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// SO_IDLE_TIMEOUT: an open connection with no byte either way for this
    /// long is closed (1001, "going away").
    fn idle_due(&self) -> Option<Instant> {
        let idle = self.cfg.conn.idle();
        let watched = matches!(self.phase, Phase::Open | Phase::ServerHandshake);
        (watched && !idle.is_zero()).then(|| self.last_activity + idle)
    }

    fn arm(&mut self, cx: &mut Cx) {
        if let Sock::Connected(c) = &mut self.sock {
            c.arm_send(cx, self.timer_base + TIMER_SEND, self.cfg.conn.send_limit());
        }
        if let Some(at) = self.deadline() {
            self.timer.arm(cx, at, self.timer_base + TIMER_CHECK);
        }
    }

    fn check_deadlines(&mut self, cx: &mut Cx) {
        self.timer.forget();
        let now = Instant::now();
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.handshake_due) {
            self.handshake_due = None;
            let why = format!(
                "the opening handshake did not finish within {} s",
                HANDSHAKE_DEADLINE.as_secs()
            );
            return match self.role {
                Role::Client => self.fail(cx, WsError::Handshake { why }),
                Role::Server => cx.die(Some(why)),
            };
        }
        if due(self.close_due) {
            return cx.die(Some(format!(
                "the peer did not answer the close frame within {} s",
                CLOSE_WAIT.as_secs()
            )));
        }
        if due(self.idle_due()) {
            let ms = self.cfg.conn.idle().as_millis();
            if self.phase == Phase::ServerHandshake {
                return cx.die(Some(format!(
                    "no byte of the handshake for SO_IDLE_TIMEOUT ({ms} ms)"
                )));
            }
            self.violation(cx, 1001, format!("idle for SO_IDLE_TIMEOUT ({ms} ms)"));
            self.flush(cx);
            return;
        }
        if due(self.pong_due) {
            self.pong_due = None;
            let secs = self.cfg.pong_timeout.as_secs();
            self.violation(
                cx,
                1011,
                format!("no pong within WS_PONG_TIMEOUT ({secs} s)"),
            );
            self.flush(cx);
            if !cx.core.dead {
                self.arm(cx);
            }
            return;
        }
        if due(self.next_ping) && self.phase == Phase::Open {
            self.next_ping = self.cfg.pings().map(|i| now + i);
            if self.pong_due.is_none() {
                self.pong_due = Some(now + self.cfg.pong_timeout);
            }
            if let Some(s) = self.session.as_mut() {
                let mut out = Vec::new();
                s.ping(b"unisock", &mut out);
                if let Some(c) = self.sock.conn() {
                    c.queue(&out);
                }
            }
            self.flush(cx);
            if cx.core.dead {
                return;
            }
        }
        self.arm(cx);
    }

    /// Parses socket_connect's address: a ws:// or wss:// URL, or "host port".
    fn client_target(&self, address: &str) -> std::result::Result<ClientTarget, String> {
        let address = address.trim();
        let lower = address.get(..6).unwrap_or(address).to_ascii_lowercase();
        if !(lower.starts_with("ws://") || lower.starts_with("wss://")) {
            let tls = self.mode == modes::WEBSOCKET_TLS_CLIENT;
            let (host, port) = match addr::parse(address).map_err(|e| e.message)? {
                Address::Addr(a) => (a.ip().to_string(), a.port()),
                Address::Host(h, p) => (h, p),
            };
            let authority = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            return Ok(ClientTarget {
                host,
                port,
                tls,
                authority,
                path: "/".into(),
            });
        }
        let url = url::Url::parse(address).map_err(|e| format!("bad URL {address:?}: {e}"))?;
        let tls = url.scheme() == "wss";
        match (self.mode, tls) {
            (modes::WEBSOCKET_CLIENT, true) => {
                return Err(format!("{address} is a wss:// URL; use a WEBSOCKET_TLS_CLIENT (19) socket"))
            }
            (modes::WEBSOCKET_TLS_CLIENT, false) => {
                return Err(format!("{address} is a ws:// URL; WEBSOCKET_TLS_CLIENT only speaks TLS (use WEBSOCKET_CLIENT, 17)"))
            }
            _ => {}
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(format!("URL {address} has no host")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err("URLs with user:password are not sent".into());
        }
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or(&host)),
            None => url.host_str().unwrap_or(&host).to_string(),
        };
        let mut path = url.path().to_string();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        Ok(ClientTarget {
            host,
            port,
            tls,
            authority,
            path,
        })
    }

    fn start_connect(&mut self, cx: &mut Cx, a: SocketAddr) {
        let r = (|| -> Result<()> {
            let socket = tcp::new_socket(&a, false)?;
            let host = self
                .target
                .as_ref()
                .map(|t| t.host.clone())
                .unwrap_or_default();
            let to = addr::format(&a);
            let conn = Conn::connect(cx, socket, a, self.mode, host, |e| {
                WsError::ConnectFailed {
                    to,
                    kind: e.kind(),
                    why: e.to_string(),
                }
                .into()
            })?;
            self.sock = Sock::Connected(conn);
            self.tcp_pending = true;
            cx.core.peer = Some(a);
            self.peer_text = addr::format(&a);
            Ok(())
        })();
        if let Err(e) = r {
            self.fail(cx, e);
        }
    }

    fn finish_connect(&mut self, cx: &mut Cx) {
        let Sock::Connected(conn) = &mut self.sock else {
            return;
        };
        match conn.connect_result(cx) {
            Connecting::Pending => return,
            Connecting::Failed(e) | Connecting::Lost(e) => {
                let to = cx.core.peer.as_ref().map(addr::format).unwrap_or_default();
                return self.fail(
                    cx,
                    WsError::ConnectFailed {
                        to,
                        kind: e.kind(),
                        why: e.to_string(),
                    },
                );
            }
            Connecting::Done => {}
        }
        self.tcp_pending = false;
        let t = self.target.as_ref().expect("target while connecting");
        if t.tls {
            let host = t.host.clone();
            let Sock::Connected(conn) = &mut self.sock else {
                return;
            };
            match conn.start_tls_client(&cx.core.options, self.mode, &[b"http/1.1"], &host) {
                Ok(()) => cx.core.state = State::Handshake,
                Err(cause) => return self.fail(cx, WsError::Tls { cause }),
            }
        }
        let (key, request) = handshake::request(&t.authority, &t.path, &self.cfg);
        self.key = key;
        if let Some(c) = self.sock.conn() {
            c.queue(&request);
        }
    }

    /// An outgoing message (socket_write's value) as frames.
    fn send(&mut self, cx: &mut Cx, data: &Value) -> Result<ResultCode> {
        enum Out<'a> {
            Message(bool, &'a [u8]),
            Ping(&'a [u8]),
            Pong(&'a [u8]),
            Close(Option<u16>, &'a str),
        }
        let bad = |why: String| Error::from(WsError::BadMessage { why });
        let out = match data {
            Value::Str(s) => Out::Message(true, s.as_bytes()),
            Value::Buffer(b) => Out::Message(false, b),
            Value::Mapping(_) => {
                let kind = data.get("type").and_then(Value::as_str).unwrap_or("");
                let payload = |required: bool| -> Result<&[u8]> {
                    match data.get("data") {
                        Some(v) => v.as_bytes().ok_or_else(|| {
                            bad(format!(
                                "\"data\" is {}, not a string or buffer",
                                v.describe()
                            ))
                        }),
                        None if required => Err(bad(format!("a {kind:?} mapping needs \"data\""))),
                        None => Ok(&[]),
                    }
                };
                match kind {
                    "text" => {
                        let d = payload(true)?;
                        if std::str::from_utf8(d).is_err() {
                            return Err(bad("a text message must be UTF-8; send a buffer as binary".into()));
                        }
                        Out::Message(true, d)
                    }
                    "binary" => Out::Message(false, payload(true)?),
                    "ping" | "pong" => {
                        let d = payload(false)?;
                        if d.len() > 125 {
                            return Err(bad(format!("a {kind} carries at most 125 bytes, not {}", d.len())));
                        }
                        if kind == "ping" { Out::Ping(d) } else { Out::Pong(d) }
                    }
                    "close" => {
                        let code = match data.get("code") {
                            None => Some(1000),
                            Some(Value::Int(c)) if (1000..=4999).contains(c) && super::session::close_code_allowed(*c as u16) => Some(*c as u16),
                            Some(v) => return Err(bad(format!("close code {} is not one a peer may send (1000-1003, 1007-1013, 3000-4999)", v.describe()))),
                        };
                        let reason = match data.get("reason") {
                            None => "",
                            Some(Value::Str(s)) if s.len() <= 123 => s.as_str(),
                            Some(v) => return Err(bad(format!("a close reason is a string of at most 123 bytes, not {}", v.describe()))),
                        };
                        Out::Close(code, reason)
                    }
                    other => return Err(bad(format!("\"type\" must be \"text\", \"binary\", \"ping\", \"pong\" or \"close\", not {other:?}"))),
                }
            }
            other => {
                return Err(bad(format!(
                    "{} (send a string, a buffer or a mapping)",
                    other.describe()
                )))
            }
        };
        let session = self.session.as_mut().expect("open");
        let mut bytes = Vec::new();
        let mut closing = false;
        match out {
            Out::Message(text, d) => session
                .message(text, d, &mut bytes)
                .map_err(|why| Error::from(WsError::Compress { why }))?,
            Out::Ping(d) => session.ping(d, &mut bytes),
            Out::Pong(d) => session.pong(d, &mut bytes),
            Out::Close(code, reason) => {
                session.close(code, reason, &mut bytes);
                closing = true;
            }
        }
        let max = self.cfg.conn.max_buffered_bytes();
        let Some(conn) = self.sock.conn() else {
            return Err(WsError::NotOpen.into());
        };
        conn.admit(cx, bytes.len(), max, true, self.timer_base + TIMER_SEND)?;
        conn.queue(&bytes);
        cx.core.stats.messages_out += 1;
        if closing {
            self.phase = Phase::Closing;
            self.next_ping = None;
            self.pong_due = None;
            self.close_due = Some(Instant::now() + CLOSE_WAIT);
        }
        self.flush(cx);
        if cx.core.dead {
            return Ok(ResultCode::Ok);
        }
        let result = match self.sock.conn() {
            Some(c) if c.pending() > 0 => {
                c.block();
                ResultCode::EeCallback
            }
            _ => ResultCode::Ok,
        };
        self.arm(cx);
        Ok(result)
    }

    /// Timer `key` (already without the base) of this socket.
    fn on_timer(&mut self, cx: &mut Cx, key: u64) {
        match key {
            TIMER_CHECK => self.check_deadlines(cx),
            TIMER_READ_MORE => self.pump(cx, true),
            TIMER_FAIL => {
                if let Some((code, reason)) = self.failing.take() {
                    if matches!(self.phase, Phase::Open | Phase::Closing) {
                        self.violation(cx, code, reason);
                        self.flush(cx);
                    }
                }
            }
            TIMER_FLUSH if self.lpc_closed => cx.core.state = State::Closed,
            TIMER_SEND => {
                let limit = self.cfg.conn.send_limit();
                if let Sock::Connected(c) = &mut self.sock {
                    let why = c.deadline_fired(
                        cx,
                        limit,
                        self.timer_base + TIMER_SEND,
                        "SO_SEND_TIMEOUT",
                    );
                    if let Some(why) = why {
                        self.lost(cx, why);
                    }
                }
            }
            TIMER_REFUSED => {
                if let Sock::Listening(l) = &mut self.sock {
                    l.expire_refused(cx);
                }
            }
            _ => {}
        }
    }
}

impl Endpoint for WsSocket {
    fn bind(&mut self, cx: &mut Cx, addr: SocketAddr) -> Result<()> {
        self.sock.bind(cx, addr)
    }

    fn listen(&mut self, cx: &mut Cx) -> Result<()> {
        if self.role == Role::Client {
            return Err(crate::core::unsupported("socket_listen"));
        }
        let alpn: Option<&[&[u8]]> = self.tls().then_some(&[b"http/1.1"]);
        let refusal = alpn
            .is_none()
            .then_some((too_many as Refusal, TIMER_REFUSED));
        let max = self.cfg.conn.max_buffered_bytes();
        self.sock.listen(cx, self.mode, 1024, alpn, max, refusal)
    }

    fn accept(&mut self, _cx: &mut Cx) -> Result<Accepted> {
        let mode = self.mode;
        let cfg = self.cfg.clone();
        Listener::accept(self.sock.listener(), |incoming, ticket| {
            let mut child = WsSocket::with_config(mode, Role::Server, cfg);
            child._ticket = Some(ticket);
            child.sock = Sock::Accepted(incoming);
            Box::new(child)
        })
    }

    fn attach(&mut self, cx: &mut Cx) -> Result<()> {
        if !self.sock.attach_accepted(cx, self.mode)? {
            return Ok(());
        }
        self.peer_text = cx.core.peer.as_ref().map(addr::format).unwrap_or_default();
        self.phase = Phase::ServerHandshake;
        self.handshake_due = Some(Instant::now() + HANDSHAKE_DEADLINE);
        self.pump(cx, true);
        Ok(())
    }

    fn connect(&mut self, cx: &mut Cx, address: &str) -> Result<()> {
        if self.role != Role::Client {
            return Err(crate::core::unsupported("socket_connect"));
        }
        if self.target.is_some() || cx.core.state != State::Unbound && cx.core.state != State::Bound
        {
            return Err(WsError::AlreadyConnected.into());
        }
        let t = self
            .client_target(address)
            .map_err(|why| WsError::BadConnect { why })?;
        if t.tls {
            // Fail now, not after connecting, when the TLS settings cannot work.
            crate::tls::client_config(&cx.core.options, self.mode, &[])
                .map_err(|cause| WsError::Tls { cause })?;
        }
        let (host, port) = (t.host.clone(), t.port);
        self.target = Some(Box::new(t));
        self.phase = Phase::ClientHandshake;
        self.handshake_due = Some(Instant::now() + HANDSHAKE_DEADLINE);
        cx.core.state = State::Connecting;
        match host.parse::<std::net::IpAddr>() {
            Ok(ip) => self.start_connect(cx, SocketAddr::new(ip, port)),
            Err(_) => {
                self.sock = Sock::Resolving;
                cx.resolve(host, port);
            }
        }
        if !cx.core.dead {
            self.arm(cx);
        }
        Ok(())
    }

    fn completed(&mut self, cx: &mut Cx, kind: CompletionKind) {
        let CompletionKind::Resolved(result) = kind else {
            return;
        };
        if !matches!(self.sock, Sock::Resolving) {
            return;
        }
        let host = self
            .target
            .as_ref()
            .map(|t| t.host.clone())
            .unwrap_or_default();
        match result {
            Ok(addrs) if !addrs.is_empty() => {
                self.sock = Sock::None;
                self.start_connect(cx, addrs[0]);
            }
            Ok(_) => self.fail(
                cx,
                WsError::CannotResolve {
                    host,
                    why: "no address".into(),
                },
            ),
            Err(e) => self.fail(
                cx,
                WsError::CannotResolve {
                    host,
                    why: e.to_string(),
                },
            ),
        }
    }

    fn ready(&mut self, cx: &mut Cx, r: Readiness) {
        match &mut self.sock {
            Sock::Listening(l) => l.ready(cx, r.token, self.cfg.conn.connection_limit()),
            Sock::Connected(_) => {
                if self.tcp_pending {
                    self.finish_connect(cx);
                    if self.tcp_pending || cx.core.dead {
                        return;
                    }
                }
                self.pump(cx, r.readable || r.read_closed || r.closed || r.writable);
                if !cx.core.dead && cx.core.state == State::Handshake {
                    if let Some(c) = self.sock.conn() {
                        if !c.is_handshaking() {
                            cx.core.state = State::Connecting;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn timer(&mut self, cx: &mut Cx, key: u64) {
        if key >= self.timer_base {
            self.on_timer(cx, key - self.timer_base);
        }
    }

    fn write(&mut self, cx: &mut Cx, data: &Value, target: Option<&str>) -> Result<ResultCode> {
        if matches!(self.sock, Sock::Listening(_)) {
            return Err(WsError::WriteToListener.into());
        }
        if target.is_some() {
            return Err(WsError::TakesNoAddress.into());
        }
        match self.phase {
            Phase::Open => self.send(cx, data),
            Phase::Closing | Phase::Ending => Err(WsError::Closing.into()),
            _ => Err(WsError::NotOpen.into()),
        }
    }

    fn option_set(&mut self, cx: &mut Cx, id: u16) -> Result<()> {
        if let Sock::Connected(c) = &self.sock {
            c.option_changed(id, &cx.core.options, self.mode);
        }
        if self.tls() {
            crate::http::check_tls_files(cx, id)?;
        }
        self.cfg.update(&cx.core.options, self.mode, id);
        if let Some(s) = self.session.as_mut() {
            s.limits = self.cfg.limits();
        }
        if let (Sock::Listening(l), crate::options::ids::SO_MAX_BUFFERED) = (&self.sock, id) {
            l.set_max_buffered(self.cfg.conn.max_buffered_bytes());
        }
        if self.phase == Phase::Open && id == crate::options::ids::SO_IDLE_TIMEOUT {
            // The deadline may now be sooner than the timer armed.
            self.arm(cx);
        }
        if self.phase == Phase::Open
            && matches!(
                id,
                crate::options::ids::WS_PING_INTERVAL | crate::options::ids::WS_AUTO_PING
            )
        {
            self.next_ping = self.cfg.pings().map(|i| Instant::now() + i);
            if self.cfg.pings().is_none() {
                self.pong_due = None;
            }
            self.arm(cx);
        }
        Ok(())
    }

    fn close(&mut self, cx: &mut Cx) -> bool {
        self.lpc_closed = true;
        if self.phase == Phase::Open {
            if let Some(s) = self.session.as_mut() {
                let mut out = Vec::new();
                s.close(Some(1000), "", &mut out);
                if let Some(c) = self.sock.conn() {
                    c.queue(&out);
                }
            }
        }
        let limit = self.cfg.conn.send_limit();
        let base = self.timer_base;
        crate::transport::close_by_lpc(
            self.sock.conn(),
            cx,
            base + TIMER_FLUSH,
            base + TIMER_SEND,
            limit,
        )
    }

    fn abort(&mut self, cx: &mut Cx) {
        self.sock.deregister(cx);
    }

    fn status(&self, out: &mut Value) {
        match &self.sock {
            Sock::Connected(c) => {
                if let Some(v) = c.tls_version() {
                    out.insert(Value::str("tls_version"), Value::Str(v));
                }
                out.insert(Value::str("queued"), Value::Int(c.pending() as i64));
                if let Some(s) = &self.session {
                    out.insert(
                        Value::str("compression"),
                        Value::Int(s.compressing() as i64),
                    );
                }
            }
            Sock::Listening(l) => {
                out.insert(Value::str("waiting"), Value::Int(l.waiting() as i64));
                out.insert(
                    Value::str("connections"),
                    Value::Int(l.connections() as i64),
                );
                out.insert(Value::str("queued"), Value::Int(l.queued() as i64));
            }
            _ => {}
        }
    }

    fn raw_fd(&self) -> i32 {
        self.sock.raw_fd()
    }
}
