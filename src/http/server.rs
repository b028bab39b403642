//! HTTP_SERVER and HTTPS_SERVER (modes 10 and 12).
//!
//! The listener works as upstream's: `listen_cb` per connection, LPC takes it
//! with `socket_accept`. Each accepted connection parses requests
//! (request_parser), hands each to LPC as a mapping on its own id, and sends
//! the LPC replies in request order (pipelining): the Nth reply answers the
//! Nth request. Keep-alive per HTTP/1.1 and 1.0 rules.
//!
//! Nothing waits on LPC: while replies are owed the connection keeps its
//! place; reading pauses when 16 requests are unanswered or output passes
//! SO_MAX_BUFFERED, and resumes as replies go out. A `socket_write` that
//! would queue past SO_MAX_BUFFERED writes nothing (EEWOULDBLOCK); one that
//! leaves output queued returns EECALLBACK, and the write callback fires once
//! the queue is below half of SO_MAX_BUFFERED.
//!
//! Deadlines (one timer per connection, re-armed as needed, and when one of
//! the timeout options is set on the connection):
//! - SO_HTTP_TIMEOUT: from the connection's start (first request) or the
//!   first byte of a later request until that request is complete; then
//!   408 and close (or a quiet close if no byte of it arrived);
//! - SO_HTTP_READ_TIMEOUT: between bytes of a request; 408 and close;
//! - SO_IDLE_TIMEOUT: a connection with nothing owed and no byte of a
//!   request read (a keep-alive one between requests, or a new one that has
//!   sent nothing) closes after this long without traffic.
//!
//! Neither request deadline runs while the server itself holds the request
//! up (its 100 Continue waits behind earlier replies, or reading is paused
//! as above); both start again when the hold ends.
//!
//! Output (`transport::output`, its own timer): queued output of which no
//! byte is taken for SO_HTTP_READ_TIMEOUT closes the connection ("too
//! slow"), holds and socket_close included; the connections of a listener
//! queue at most 16 × its SO_MAX_BUFFERED together, a reply that would pass
//! it closing the ones stalled longest first.
//!
//! EOF from the client (a half-close): the replies owed and the output
//! queued still go out, then the connection closes; with nothing owed or
//! queued it closes at once.
//!
//! Over SO_MAX_CONNECTIONS a new connection gets 503 (plain HTTP) or is
//! closed (HTTPS) and never reaches LPC.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::config::HttpConfig;
use super::error::HttpError;
use super::request_parser::{Parsed, Reject, RequestParser};
use super::response_writer::{self, Answering};
use super::{opt, request_mapping};
use crate::core::addr;
use crate::core::{Accepted, Cx, Endpoint, EventKind, State, CLOSED_BY_PEER};
use crate::error::{Result, ResultCode};
use crate::modes;
use crate::options::store::OptionStore;
use crate::reactor::Readiness;
use crate::transport::listener::{Listener, Refusal, Ticket};
use crate::transport::{Conn, Deadline, ReadEnd, Sock};
use crate::value::Value;
use crate::websocket::handshake::Offer;
use crate::websocket::socket::{WsSocket, TIMER_BASE};

/// Most requests a connection may have waiting for LPC replies.
const MAX_PIPELINE: usize = 16;
/// Most bytes read from one connection per reactor round.
const READ_ROUND: usize = 256 * 1024;

const TIMER_CHECK: u64 = 1;
const TIMER_READ_MORE: u64 = 2;
const TIMER_FLUSH: u64 = 3;
const TIMER_REFUSED: u64 = 4;
/// The no-progress deadline of queued output, or the listener's budget.
const TIMER_SEND: u64 = 5;

/// How `pump` reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    No,
    /// What the kernel has now (stop at a short read).
    Available,
    /// Until EAGAIN or EOF.
    Drain,
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A request LPC has been given and must answer (or the server's own answer).
struct Slot {
    ans: Answering,
    /// The server's own response (limits, timeouts); closes the connection.
    canned: Option<Vec<u8>>,
    /// A streamed reply is open: Some(raw) where raw is HTTP/1.0 (no chunks).
    streaming: Option<bool>,
    /// A WebSocket upgrade request: LPC may accept it (callbacks.md).
    upgrade: Option<Box<Offer>>,
}

pub struct HttpServer {
    mode: u8,
    /// The options it acts on (`config`): the listener's for an accepted
    /// connection, updated in `option_set`.
    cfg: HttpConfig,
    sock: Sock,
    /// An accepted connection: counted among its listener's live ones.
    _ticket: Option<Ticket>,
    peer_text: String,
    inbuf: Vec<u8>,
    parser: RequestParser,
    slots: VecDeque<Slot>,
    next_request_id: i64,
    /// A 100 Continue is owed once the replies before it are out.
    continue_owed: bool,
    /// The server will close once its output is out.
    close_after: bool,
    /// Why it will (close_cb's reason): the client closed its side, or the
    /// server refused a request (an abnormal end); neither: "Connection: close".
    close_why: Option<(String, bool)>,
    /// LPC closed the socket; only flushing remains.
    closing: bool,
    /// When the current request's wait started (None: not waiting for one).
    request_started: Option<Instant>,
    /// Whether any byte of the current request arrived.
    request_bytes: bool,
    last_byte: Instant,
    last_activity: Instant,
    /// TIMER_CHECK, armed for the earliest of the deadlines.
    timer: Deadline,
    /// The server was holding the current request up when last looked at.
    held: bool,
    /// An upgrade request waits for LPC's answer: nothing after it is read
    /// as HTTP (once accepted, what follows is WebSocket frames).
    upgrade_waiting: bool,
    /// LPC accepted an upgrade: the connection is a WebSocket now, and every
    /// call goes to it.
    upgraded: Option<Box<WsSocket>>,
}

impl HttpServer {
    pub fn new(mode: u8) -> HttpServer {
        HttpServer::with_config(mode, HttpConfig::read(&OptionStore::default(), mode))
    }

    fn with_config(mode: u8, cfg: HttpConfig) -> HttpServer {
        let now = Instant::now();
        HttpServer {
            mode,
            cfg,
            sock: Sock::None,
            _ticket: None,
            peer_text: String::new(),
            inbuf: Vec::new(),
            parser: RequestParser::default(),
            slots: VecDeque::new(),
            next_request_id: 1,
            continue_owed: false,
            close_after: false,
            close_why: None,
            closing: false,
            request_started: None,
            request_bytes: false,
            last_byte: now,
            last_activity: now,
            timer: Deadline::default(),
            held: false,
            upgrade_waiting: false,
            upgraded: None,
        }
    }

    fn tls(&self) -> bool {
        self.mode == modes::HTTPS_SERVER
    }

    fn conn(&mut self) -> Option<&mut Conn> {
        self.sock.conn()
    }

    fn queued(&self) -> usize {
        match &self.sock {
            Sock::Connected(c) => c.pending(),
            _ => 0,
        }
    }

    fn paused(&self) -> bool {
        self.slots.len() >= MAX_PIPELINE
            || self.queued() > self.cfg.conn.max_buffered_bytes()
            || self.close_after
            || self.closing
            || self.upgrade_waiting
    }

    /// Whether the server, not the client, holds the current request up: its
    /// 100 Continue waits behind earlier replies, or reading is paused for
    /// MAX_PIPELINE or SO_MAX_BUFFERED. No request deadline runs meanwhile.
    fn holding(&self) -> bool {
        !self.close_after
            && !self.closing
            && (self.continue_owed
                || self.slots.len() >= MAX_PIPELINE
                || self.queued() > self.cfg.conn.max_buffered_bytes())
    }

    /// Notes the start and end of a hold; when one ends, the client's
    /// request clocks start again.
    fn note_hold(&mut self) {
        let holding = self.holding();
        if self.held && !holding {
            let now = Instant::now();
            if self.request_started.is_some() {
                self.request_started = Some(now);
            }
            self.last_byte = now;
        }
        self.held = holding;
    }

    /// Reads what the kernel has, hands complete requests to LPC, writes
    /// what is due, and closes when the connection is finished.
    fn pump(&mut self, cx: &mut Cx, read: Read) {
        let mut drain = read == Read::Drain;
        let mut read = read != Read::No;
        // A second round only when this one un-paused reading: bytes may be
        // waiting in the kernel with no new readiness edge to announce them.
        for _ in 0..2 {
            if !matches!(self.sock, Sock::Connected(_)) {
                return;
            }
            let was_paused = self.paused();
            let mut eof = false;
            if read && !was_paused {
                let Sock::Connected(conn) = &mut self.sock else {
                    return;
                };
                let before = self.inbuf.len();
                let end = if drain {
                    conn.read(&mut self.inbuf, READ_ROUND)
                } else {
                    conn.read_available(&mut self.inbuf, READ_ROUND)
                };
                let got = self.inbuf.len() - before;
                if got > 0 {
                    cx.core.stats.bytes_in += got as u64;
                    let now = Instant::now();
                    self.last_byte = now;
                    self.last_activity = now;
                    if self.request_started.is_none() {
                        self.request_started = Some(now);
                    }
                    self.request_bytes = true;
                }
                match end {
                    ReadEnd::Open => {}
                    ReadEnd::Limit => cx.timer(Duration::ZERO, TIMER_READ_MORE),
                    ReadEnd::Eof => eof = true,
                    ReadEnd::Error(msg) => return cx.die(Some(msg)),
                }
            }
            self.parse(cx);
            if eof {
                if self.slots.is_empty() && self.queued() == 0 {
                    // The client is gone and nothing is owed to it.
                    return cx.die(None);
                }
                // Half-closed: the owed replies and queued output still go
                // out, then the end.
                self.close_why
                    .get_or_insert((CLOSED_BY_PEER.to_string(), false));
                self.close_after_replies();
            }
            self.send_due(cx);
            self.flush(cx);
            if cx.core.dead {
                return;
            }
            if !was_paused || self.paused() {
                break;
            }
            read = true;
            drain = true;
        }
        self.arm(cx);
    }

    /// Turns buffered bytes into requests for LPC, as far as limits allow.
    fn parse(&mut self, cx: &mut Cx) {
        while !self.paused() {
            match self.parser.next(&mut self.inbuf) {
                Ok(None) => break,
                Ok(Some(Parsed::Continue)) => {
                    if self.slots.is_empty() {
                        if let Some(c) = self.conn() {
                            c.queue(CONTINUE);
                        }
                    } else {
                        self.continue_owed = true;
                    }
                }
                Ok(Some(Parsed::Request(req))) => {
                    self.continue_owed = false;
                    let ans = Answering {
                        head_only: req.method == "HEAD",
                        minor: req.minor,
                        keep_alive: req.keep_alive,
                    };
                    let scheme = if self.tls() { "https" } else { "http" };
                    let id = self.next_request_id;
                    self.next_request_id += 1;
                    // A valid WebSocket upgrade request is offered to LPC;
                    // an invalid one is an ordinary request (RFC 9110 §7.8
                    // lets a server ignore Upgrade).
                    let upgrade = Offer::is_upgrade(&req)
                        .then(|| Offer::from_request(&req).ok())
                        .flatten()
                        .map(Box::new);
                    let mut v = request_mapping::to_value(req, &self.peer_text, scheme, id);
                    if upgrade.is_some() {
                        v.insert(Value::str("upgrade"), Value::str("websocket"));
                        self.upgrade_waiting = true;
                    }
                    cx.core.stats.messages_in += 1;
                    self.slots.push_back(Slot {
                        ans,
                        canned: None,
                        streaming: None,
                        upgrade,
                    });
                    if !ans.keep_alive {
                        // Nothing after a "close" request is read.
                        self.inbuf.clear();
                        self.close_after_replies();
                    }
                    cx.emit(EventKind::Read, Some(v), Some(self.peer_text.clone()));
                    let more = self.parser.in_progress(&self.inbuf);
                    self.request_started = more.then(Instant::now);
                    self.request_bytes = more;
                }
                Err(reject) => {
                    self.refuse(cx, reject);
                    break;
                }
            }
        }
    }

    /// Stops reading: the connection ends once the owed replies are out.
    fn close_after_replies(&mut self) {
        self.inbuf.clear();
        self.inbuf.shrink_to_fit();
        self.request_started = None;
        self.request_bytes = false;
        // No more of the request is read: a 100 Continue would be a lie (and
        // could follow a final response).
        self.continue_owed = false;
        // Marked on the last slot: `send_due` closes after it.
        self.close_after = true;
    }

    /// Answers a bad request (or a timeout) with `status` after the replies owed before it.
    fn refuse(&mut self, cx: &mut Cx, r: Reject) {
        cx.core.stats.errors += 1;
        if !matches!(self.close_why, Some((_, true))) {
            self.close_why = Some((format!("http: answered {}: {}", r.status, r.why), true));
        }
        let minor = 1;
        self.slots.push_back(Slot {
            ans: Answering {
                head_only: false,
                minor,
                keep_alive: false,
            },
            canned: Some(response_writer::canned(r.status, &r.why, minor)),
            streaming: None,
            upgrade: None,
        });
        self.close_after_replies();
    }

    /// Writes the server's own responses that have reached the front, and a
    /// 100 Continue that is due.
    fn send_due(&mut self, cx: &mut Cx) {
        while self.slots.front().is_some_and(|s| s.canned.is_some()) {
            let slot = self.slots.pop_front().expect("front slot");
            cx.core.stats.messages_out += 1;
            if let Some(c) = self.conn() {
                c.queue(&slot.canned.expect("canned"));
            }
            self.slots.clear();
        }
        if self.continue_owed && self.slots.is_empty() {
            self.continue_owed = false;
            if let Some(c) = self.conn() {
                c.queue(CONTINUE);
            }
        }
    }

    /// Writes queued output; fires the write callback when a blocked queue
    /// is below half of SO_MAX_BUFFERED; ends the connection when it is
    /// finished.
    fn flush(&mut self, cx: &mut Cx) {
        let half = self.cfg.conn.max_buffered_bytes() / 2;
        let Sock::Connected(conn) = &mut self.sock else {
            return;
        };
        match conn.flush_out(cx, half) {
            Ok(n) => {
                if n > 0 {
                    self.last_activity = Instant::now();
                }
                if conn.pending() > 0 || conn.is_handshaking() || self.closing {
                    return;
                }
                if self.close_after && self.slots.is_empty() {
                    conn.send_close_notify();
                    let _ = conn.flush();
                    let _ = conn.stream.shutdown(std::net::Shutdown::Write);
                    match self.close_why.take() {
                        Some((why, true)) => cx.die(Some(why)),
                        Some((why, false)) => cx.end(&why),
                        None => cx.end("closed after the reply (Connection: close)"),
                    }
                }
            }
            Err(e) => cx.die(Some(format!("write: {e}"))),
        }
    }

    /// The next deadline this connection must act on, if any.
    fn deadline(&self) -> Option<Instant> {
        if self.closing {
            return None;
        }
        if let Some(start) = self.request_started {
            if self.holding() {
                return None;
            }
            let total = start + self.cfg.timeout;
            if self.request_bytes {
                let gap = self.last_byte + self.cfg.read_timeout;
                return Some(total.min(gap));
            }
            // Nothing of the request yet: the connection is idle as well.
            return Some(self.idle_deadline().map_or(total, |idle| idle.min(total)));
        }
        self.idle_deadline()
    }

    /// When SO_IDLE_TIMEOUT ends the connection if nothing happens first.
    fn idle_deadline(&self) -> Option<Instant> {
        let idle = self.cfg.conn.idle();
        (self.slots.is_empty() && !idle.is_zero()).then(|| self.last_activity + idle)
    }

    /// Queued output that makes no progress is closed after
    /// SO_HTTP_READ_TIMEOUT, the "between bytes" deadline, applied in this
    /// direction too (as nginx's send_timeout); also while LPC's requests
    /// wait, while reading is held, and after socket_close.
    fn arm_send(&mut self, cx: &mut Cx) {
        // Runs after every readiness: with nothing queued, one comparison.
        if let Sock::Connected(c) = &mut self.sock {
            c.arm_send(cx, TIMER_SEND, self.cfg.send_limit());
        }
    }

    fn arm(&mut self, cx: &mut Cx) {
        self.note_hold();
        self.arm_send(cx);
        if let Some(at) = self.deadline() {
            self.timer.arm(cx, at, TIMER_CHECK);
        }
    }

    fn check_deadlines(&mut self, cx: &mut Cx) {
        self.timer.forget();
        if !matches!(self.sock, Sock::Connected(_)) {
            return;
        }
        self.note_hold();
        let now = Instant::now();
        if self.deadline().is_some_and(|at| at <= now) {
            if self.request_started.is_some() {
                if self.request_bytes {
                    let gap = now.duration_since(self.last_byte);
                    let why = if gap >= self.cfg.read_timeout {
                        "no byte within SO_HTTP_READ_TIMEOUT"
                    } else {
                        "request not complete within SO_HTTP_TIMEOUT"
                    };
                    self.refuse(
                        cx,
                        Reject {
                            status: 408,
                            why: why.into(),
                        },
                    );
                    self.send_due(cx);
                    self.flush(cx);
                    if !cx.core.dead {
                        self.arm_send(cx);
                    }
                    return;
                }
                if self.idle_deadline().is_some_and(|at| at <= now) {
                    return cx.die(Some("idle timeout".into()));
                }
                return cx.die(Some("timeout: no request within SO_HTTP_TIMEOUT".into()));
            }
            return cx.die(Some("idle timeout".into()));
        }
        self.arm(cx);
    }
}

impl HttpServer {
    /// LPC's reply `([ "upgrade": "websocket", "subprotocol", "headers" ])`
    /// to an upgrade request: the connection becomes a WebSocket on the same
    /// id. A mistake in the reply (a subprotocol the client did not offer, a
    /// handshake header) is socket_write's error and the request still
    /// waits; an Origin WS_ORIGIN does not allow is answered 403.
    fn upgrade(&mut self, cx: &mut Cx, reply: &Value) -> Result<ResultCode> {
        let bad = |why: String| crate::error::Error::from(HttpError::BadWrite { why });
        match reply.get("upgrade") {
            Some(Value::Str(s)) if s == "websocket" => {}
            Some(v) => {
                return Err(bad(format!(
                    "\"upgrade\" must be \"websocket\", not {}",
                    v.describe()
                )))
            }
            None => {}
        }
        let chosen = match reply.get("subprotocol") {
            None => None,
            Some(Value::Str(s)) => Some(s.as_str()),
            Some(v) => {
                return Err(bad(format!(
                    "\"subprotocol\" must be a string, not {}",
                    v.describe()
                )))
            }
        };
        let slot = self.slots.front().expect("a request waits");
        let Some(offer) = slot.upgrade.as_deref() else {
            return Err(bad(
                "this request did not ask for a WebSocket upgrade".into()
            ));
        };
        if slot.streaming.is_some() {
            return Err(bad("a streamed reply to this request has started".into()));
        }
        let Sock::Connected(conn) = std::mem::replace(&mut self.sock, Sock::None) else {
            return Err(HttpError::NotConnected.into());
        };
        let leftover = std::mem::take(&mut self.inbuf);
        let peer = self.peer_text.clone();
        let mode = self.mode;
        match WsSocket::upgraded(
            cx,
            mode,
            conn,
            leftover,
            offer,
            chosen,
            reply.get("headers"),
            peer,
        ) {
            Ok(ws) => {
                self.slots.pop_front();
                self.upgrade_waiting = false;
                self.timer.forget();
                cx.core.stats.messages_out += 1;
                let mut ws = Box::new(ws);
                let owed = ws.owes_write_callback();
                self.upgraded = Some(ws);
                Ok(if owed {
                    ResultCode::EeCallback
                } else {
                    ResultCode::Ok
                })
            }
            Err((conn, refusal)) => {
                self.sock = Sock::Connected(conn);
                if refusal.status != 403 {
                    return Err(bad(format!("cannot accept the upgrade: {}", refusal.why)));
                }
                // The Origin is not allowed: the client is refused.
                self.slots.pop_front();
                self.upgrade_waiting = false;
                self.close_why = Some((
                    format!("websocket upgrade refused: 403 {}", refusal.why),
                    true,
                ));
                self.close_after_replies();
                if let Some(c) = self.conn() {
                    c.queue(&crate::websocket::handshake::refusal_response(&refusal));
                }
                self.flush(cx);
                Ok(ResultCode::Ok)
            }
        }
    }
}

/// What a connection over SO_MAX_CONNECTIONS is told.
fn too_many() -> Vec<u8> {
    response_writer::canned(503, "too many connections (SO_MAX_CONNECTIONS)", 1)
}

impl Endpoint for HttpServer {
    fn bind(&mut self, cx: &mut Cx, addr: SocketAddr) -> Result<()> {
        self.sock.bind(cx, addr)
    }

    fn listen(&mut self, cx: &mut Cx) -> Result<()> {
        let alpn: Option<&[&[u8]]> = self.tls().then_some(&[b"http/1.1"]);
        // Over SO_MAX_CONNECTIONS a connection gets 503 (plain HTTP; the
        // 503 is read before the close) or is closed at once (HTTPS).
        let refusal = alpn
            .is_none()
            .then_some((too_many as Refusal, TIMER_REFUSED));
        let max = self.cfg.conn.max_buffered_bytes();
        self.sock.listen(cx, self.mode, 1024, alpn, max, refusal)
    }

    fn accept(&mut self, _cx: &mut Cx) -> Result<Accepted> {
        let mode = self.mode;
        // The core gives the child a copy of the listener's options.
        let cfg = self.cfg.clone();
        Listener::accept(self.sock.listener(), |incoming, ticket| {
            let mut child = HttpServer::with_config(mode, cfg);
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
        // The first request is awaited from now (the TLS handshake included).
        self.request_started = Some(Instant::now());
        self.pump(cx, Read::Drain);
        Ok(())
    }

    fn ready(&mut self, cx: &mut Cx, r: Readiness) {
        if let Some(ws) = self.upgraded.as_mut() {
            return ws.ready(cx, r);
        }
        match &mut self.sock {
            Sock::Listening(l) => {
                l.ready(cx, r.token, self.cfg.conn.connection_limit());
            }
            Sock::Connected(_) => {
                let was_handshaking = cx.core.state == State::Handshake;
                // Stopping at a short read is safe unless the peer's close
                // came with this readiness (it raises no later edge).
                let read = if r.read_closed || r.closed {
                    Read::Drain
                } else if r.readable || r.writable {
                    Read::Available
                } else {
                    Read::No
                };
                self.pump(cx, read);
                if was_handshaking && !cx.core.dead {
                    if let Some(c) = self.conn() {
                        if !c.is_handshaking() {
                            cx.core.state = State::DataXfer;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn timer(&mut self, cx: &mut Cx, key: u64) {
        if let Some(ws) = self.upgraded.as_mut() {
            // The HTTP side's timers still armed are harmless to the
            // WebSocket under its own keys; the listener's budget reaches
            // it with TIMER_SEND.
            let key = if key >= TIMER_BASE {
                key
            } else {
                key + TIMER_BASE
            };
            return ws.timer(cx, key);
        }
        match key {
            TIMER_CHECK => self.check_deadlines(cx),
            TIMER_READ_MORE => self.pump(cx, Read::Drain),
            TIMER_FLUSH if self.closing => cx.core.state = State::Closed,
            TIMER_SEND => {
                let limit = self.cfg.send_limit();
                if let Sock::Connected(c) = &mut self.sock {
                    let why = c.deadline_fired(cx, limit, TIMER_SEND, "SO_HTTP_READ_TIMEOUT");
                    if let Some(why) = why {
                        cx.die(Some(why));
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

    fn write(&mut self, cx: &mut Cx, data: &Value, target: Option<&str>) -> Result<ResultCode> {
        if let Some(ws) = self.upgraded.as_mut() {
            return ws.write(cx, data, target);
        }
        if !matches!(self.sock, Sock::Connected(_)) {
            return Err(if cx.core.state == State::Listen {
                HttpError::WriteToListener
            } else {
                HttpError::NotConnected
            }
            .into());
        }
        if target.is_some() {
            return Err(HttpError::ReplyTakesNoAddress.into());
        }
        let Some(slot) = self.slots.front() else {
            return Err(HttpError::NoRequestWaiting.into());
        };
        if data.get("upgrade").is_some() {
            return self.upgrade(cx, data);
        }
        let was_paused = self.paused();
        let (bytes, done, close, streaming) = match slot.streaming {
            Some(raw) => {
                let (b, ended) = response_writer::stream_piece(data, raw, slot.ans.head_only)?;
                (b, ended, raw && ended, None)
            }
            None => {
                let defaults = self.cfg.headers.as_deref();
                let r =
                    response_writer::render(data, slot.ans, defaults.unwrap_or(&Value::Undefined))?;
                let streaming = r.streaming.then_some(r.raw_stream);
                (r.bytes, !r.streaming, r.close, streaming)
            }
        };
        let max = self.cfg.conn.max_buffered_bytes();
        // SO_MAX_BUFFERED (a reply onto an empty queue always fits), then the
        // listener's budget: the connections stalled longest make room (this
        // one too, if it is among them).
        if let Some(c) = self.conn() {
            c.admit(cx, bytes.len(), max, true, TIMER_SEND)?;
        }
        let slot = self.slots.front_mut().expect("front slot");
        if streaming.is_some() {
            slot.streaming = streaming;
        }
        // A "Connection: close" reply, or a streamed HTTP/1.0 reply, ends the connection.
        let ends_connection = close || (done && !slot.ans.keep_alive);
        if done {
            if self.slots.pop_front().is_some_and(|s| s.upgrade.is_some()) {
                // A refused upgrade: the connection goes on as HTTP.
                self.upgrade_waiting = false;
            }
            cx.core.stats.messages_out += 1;
            if ends_connection && !self.close_after {
                // Requests read after this one get no answer.
                for _ in 0..self.slots.len() {
                    self.slots.pop_back();
                }
                self.close_after_replies();
            }
        } else if close {
            self.close_after_replies();
        }
        if let Some(c) = self.conn() {
            c.queue(&bytes);
        }
        self.last_activity = Instant::now();
        self.send_due(cx);
        self.flush(cx);
        if cx.core.dead {
            return Ok(ResultCode::Ok);
        }
        let result = match self.conn() {
            Some(c) if c.pending() > 0 => {
                c.block();
                ResultCode::EeCallback
            }
            _ => ResultCode::Ok,
        };
        // Replies went out: requests that were held back may be read now
        // (when reading was not held back, everything readable was read).
        if was_paused && !self.paused() {
            self.pump(cx, Read::Drain);
        } else {
            self.arm(cx);
        }
        Ok(result)
    }

    fn option_set(&mut self, cx: &mut Cx, id: u16) -> Result<()> {
        if let Some(ws) = self.upgraded.as_mut() {
            return ws.option_set(cx, id);
        }
        let conn = match &self.sock {
            Sock::Connected(c) => Some(&**c),
            _ => None,
        };
        super::option_set(cx, id, conn, self.mode, self.tls())?;
        self.cfg.update(&cx.core.options, self.mode, id);
        if let (Sock::Listening(l), opt::SO_MAX_BUFFERED) = (&self.sock, id) {
            l.set_max_buffered(self.cfg.conn.max_buffered_bytes());
        }
        if matches!(self.sock, Sock::Connected(_))
            && matches!(
                id,
                opt::SO_IDLE_TIMEOUT | opt::SO_HTTP_TIMEOUT | opt::SO_HTTP_READ_TIMEOUT
            )
        {
            // A deadline may now be sooner than the timer armed for the old value.
            self.arm(cx);
        }
        Ok(())
    }

    fn close(&mut self, cx: &mut Cx) -> bool {
        if let Some(ws) = self.upgraded.as_mut() {
            return ws.close(cx);
        }
        self.closing = true;
        let limit = self.cfg.send_limit();
        crate::transport::close_by_lpc(self.conn(), cx, TIMER_FLUSH, TIMER_SEND, limit)
    }

    fn abort(&mut self, cx: &mut Cx) {
        if let Some(ws) = self.upgraded.as_mut() {
            return ws.abort(cx);
        }
        self.sock.deregister(cx);
    }

    fn status(&self, out: &mut Value) {
        if let Some(ws) = &self.upgraded {
            out.insert(Value::str("upgraded"), Value::str("websocket"));
            return ws.status(out);
        }
        match &self.sock {
            Sock::Connected(c) => {
                if let Some(v) = c.tls_version() {
                    out.insert(Value::str("tls_version"), Value::Str(v));
                }
                out.insert(Value::str("queued"), Value::Int(c.pending() as i64));
                out.insert(
                    Value::str("requests_waiting"),
                    Value::Int(self.slots.len() as i64),
                );
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
        match &self.upgraded {
            Some(ws) => ws.raw_fd(),
            None => self.sock.raw_fd(),
        }
    }
}
