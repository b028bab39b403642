//! HTTP_CLIENT and HTTPS_CLIENT (modes 11 and 13).
//!
//! socket_connect(id, address): `address` is the URL (http:// or https://),
//! or "" to use SO_HTTP_URL, or "host port" to reach SO_HTTP_URL's origin
//! through that address (the Host header, SNI and certificate check still
//! use the URL's host). The first request is built from the options
//! (method, URL, headers, body, user agent) and sent once connected; the URL
//! given there is the socket's home origin. socket_write(id, ([ "method",
//! "url"|"path", "headers", "body" ])) sends another request to home ("path"
//! is relative to it; a "url" of another origin is refused); it is queued
//! while one is in flight and answered in order. A write that cannot be sent
//! (unknown key, bad header, ...) is that call's error; the connection is
//! unaffected.
//!
//! Each response reaches read_cb as a mapping (callbacks.md); a failure
//! (DNS, refused, TLS, timeout, bad response) as `([ "error", "error_code" ])`
//! with a negative EE code (EECONNREFUSED -23, ...) followed by close_cb. The
//! connection stays open for more requests while the server keeps it alive
//! (HTTP/1.1 without "Connection: close" on either side); close_cb fires,
//! without an error, when it ends between requests (a server closing an idle
//! connection, a response framed by the close or marked "Connection: close"
//! with nothing queued). A queued request then gets a new connection. An
//! idempotent request (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) sent on a
//! connection that had carried a response, which ends before any byte of the
//! answer, is sent again once (per redirect hop) on a new connection.
//!
//! Redirects (SO_HTTP_FOLLOW_REDIRECTS 1, at most SO_HTTP_MAX_REDIRECTS): 303
//! turns the request into a GET (HEAD stays HEAD), 301 and 302 turn only a
//! POST into a GET, 307 and 308 repeat it; a GET drops the body and its
//! Content-Length/-Type. Another origin gets a new connection and no
//! Authorization, Proxy-Authorization, Cookie or Host header; requests queued
//! meanwhile still go home (reconnecting, through "host port" if given).
//! HTTPS_CLIENT never follows a redirect to http://; HTTP_CLIENT may follow
//! one to https:// and then verifies as HTTPS_CLIENT does.
//!
//! Deadlines: SO_HTTP_CONNECT_TIMEOUT (resolve + connect + TLS handshake),
//! SO_HTTP_READ_TIMEOUT (between bytes, either way, while a request is out;
//! and queued request bytes none of which the server takes, on their own),
//! SO_HTTP_TIMEOUT (a whole request, redirects included); the error names
//! the option.
//!
//! `messages.rs`: the requests built from the options and from LPC's
//! mappings, and the response mapping LPC receives.

mod messages;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use self::messages::response_value;
use super::config::ClientConfig;
use super::error::HttpError;
use super::opt;
use super::request_writer::Outgoing;
use super::response_parser::{Response, ResponseParser};
use super::target::Target;
use crate::core::addr::{self, Target as Address};
use crate::core::{Cx, Endpoint, EventKind, State};
use crate::error::{Error, Result, ResultCode};
use crate::modes;
use crate::options::store::OptionStore;
use crate::reactor::{CompletionKind, Readiness};
use crate::transport::{tcp, Conn, Connecting, Deadline, ReadEnd, Sock};
use crate::value::Value;

const READ_ROUND: usize = 1 << 20;
/// Most requests queued behind the one in flight.
const MAX_QUEUED: usize = 64;

const TIMER_CHECK: u64 = 1;
const TIMER_READ_MORE: u64 = 2;
const TIMER_FLUSH: u64 = 3;
/// The no-progress deadline of the queued request (SO_HTTP_READ_TIMEOUT).
const TIMER_SEND: u64 = 4;

/// The request being answered.
struct InFlight {
    req: Outgoing,
    started: Instant,
    redirects: i64,
    sent: bool,
    /// Sent on a connection that had already carried a response.
    reused: bool,
    /// A byte of its response has come back.
    answering: bool,
    /// Already sent again on a new connection (once per redirect hop).
    resent: bool,
}

/// Methods whose request may be sent twice to the same effect (RFC 9110 9.2.2).
fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
    )
}

pub struct HttpClient {
    mode: u8,
    /// The options it acts on (`config`), updated in `option_set`.
    cfg: ClientConfig,
    sock: Sock,
    /// Where the current connection goes (the origin of the requests on it).
    origin: Option<Target>,
    /// The origin socket_connect named: socket_write's requests go there.
    home: Option<Target>,
    /// "host port" given to socket_connect: how `home` is reached.
    via: Option<(String, u16)>,
    /// Counts connections opened, so a read round notices it was replaced.
    generation: u64,
    /// Responses received on the current connection.
    answered_here: u64,
    /// The server ended the current connection (EOF or an error seen).
    peer_gone: bool,
    in_flight: Option<InFlight>,
    queue: VecDeque<Outgoing>,
    parser: ResponseParser,
    inbuf: Vec<u8>,
    /// TCP connect or TLS handshake in progress, since when.
    connecting: Option<Instant>,
    tcp_pending: bool,
    last_byte: Instant,
    /// TIMER_CHECK, armed for the earliest of the deadlines.
    timer: Deadline,
    /// The connection that owed the write callback was replaced: the next
    /// one owes it.
    write_owed: bool,
    closing: bool,
}

/// The EE number LPC sees in "error_code" (EESOCKET is -1 ...).
fn ee(code: ResultCode) -> i64 {
    code.ee_code() as i64
}

/// A connect to `to` that failed with `e`.
fn connect_failed(to: String, e: &std::io::Error) -> Error {
    HttpError::ConnectFailed {
        to,
        kind: e.kind(),
        why: e.to_string(),
    }
    .into()
}

impl HttpClient {
    pub fn new(mode: u8) -> HttpClient {
        HttpClient {
            mode,
            cfg: ClientConfig::read(&OptionStore::default(), mode),
            sock: Sock::None,
            origin: None,
            home: None,
            via: None,
            generation: 0,
            answered_here: 0,
            peer_gone: false,
            in_flight: None,
            queue: VecDeque::new(),
            parser: ResponseParser::default(),
            inbuf: Vec::new(),
            connecting: None,
            tcp_pending: false,
            last_byte: Instant::now(),
            timer: Deadline::default(),
            write_owed: false,
            closing: false,
        }
    }

    fn conn(&mut self) -> Option<&mut Conn> {
        self.sock.conn()
    }

    /// Reports a failure to LPC (error mapping, then close_cb).
    fn fail(&mut self, cx: &mut Cx, e: impl Into<Error>) {
        if cx.core.dead {
            return;
        }
        let Error { code, message } = e.into();
        cx.core.stats.errors += 1;
        let v = Value::mapping([
            ("error", Value::Str(message.clone())),
            ("error_code", Value::Int(ee(code))),
        ]);
        cx.emit(EventKind::Read, Some(v), self.addr_text(cx));
        cx.die(Some(message));
    }

    fn addr_text(&self, cx: &Cx) -> Option<String> {
        cx.core.peer.as_ref().map(addr::format)
    }

    /// Checks that `t` may be fetched by this mode.
    fn check_scheme(&self, t: &Target, redirect: bool) -> std::result::Result<(), String> {
        match (self.mode, t.tls) {
            (modes::HTTP_CLIENT, true) if !redirect => Err(format!(
                "{} is an https:// URL; use an HTTPS_CLIENT (13) socket",
                t.url
            )),
            (modes::HTTPS_CLIENT, false) if !redirect => Err(format!(
                "{} is an http:// URL; HTTPS_CLIENT only speaks TLS (use HTTP_CLIENT, 11)",
                t.url
            )),
            (modes::HTTPS_CLIENT, false) => Err(format!(
                "refusing to follow a redirect from https to {}",
                t.url
            )),
            _ => Ok(()),
        }
    }

    /// Opens a connection to `target`'s origin (through `via` when that is home).
    fn open(&mut self, cx: &mut Cx, target: &Target) {
        self.drop_connection(cx);
        self.generation += 1;
        self.answered_here = 0;
        self.peer_gone = false;
        self.origin = Some(target.clone());
        self.connecting = Some(Instant::now());
        self.parser = ResponseParser::default();
        self.inbuf.clear();
        cx.core.state = State::Connecting;
        let (host, port) = self
            .via
            .clone()
            .filter(|_| self.home.as_ref().is_some_and(|h| h.same_origin(target)))
            .unwrap_or_else(|| (target.host.clone(), target.port));
        match host.parse::<std::net::IpAddr>() {
            Ok(ip) => self.start_connect(cx, SocketAddr::new(ip, port)),
            Err(_) => {
                self.sock = Sock::Resolving;
                cx.resolve(host, port);
            }
        }
        self.arm(cx);
    }

    fn drop_connection(&mut self, cx: &mut Cx) {
        if let Sock::Connected(c) = std::mem::replace(&mut self.sock, Sock::None) {
            // A write callback owed is still owed on the next connection.
            self.write_owed |= c.is_blocked();
            c.deregister(cx);
        }
    }

    fn start_connect(&mut self, cx: &mut Cx, a: SocketAddr) {
        let r = (|| -> Result<()> {
            let socket = tcp::new_socket(&a, false)?;
            let host = self
                .origin
                .as_ref()
                .map(|t| t.host.clone())
                .unwrap_or_default();
            let mut conn = Conn::connect(cx, socket, a, self.mode, host, |e| {
                connect_failed(addr::format(&a), &e)
            })?;
            if std::mem::take(&mut self.write_owed) {
                conn.block();
            }
            self.sock = Sock::Connected(conn);
            self.tcp_pending = true;
            cx.core.peer = Some(a);
            Ok(())
        })();
        if let Err(e) = r {
            self.fail(cx, e);
        }
    }

    /// The TCP connect finished: start TLS if needed, send the request.
    fn finish_connect(&mut self, cx: &mut Cx) {
        let Sock::Connected(conn) = &mut self.sock else {
            return;
        };
        match conn.connect_result(cx) {
            Connecting::Pending => return,
            Connecting::Failed(e) => {
                let to = cx.core.peer.as_ref().map(addr::format).unwrap_or_default();
                return self.fail(cx, connect_failed(to, &e));
            }
            Connecting::Lost(e) => {
                return self.fail(cx, HttpError::ConnectLost { why: e.to_string() })
            }
            Connecting::Done => {}
        }
        self.tcp_pending = false;
        let target = self.origin.clone().expect("origin while connecting");
        if target.tls {
            // An http:// client that followed a redirect to https:// verifies, as HTTPS_CLIENT does.
            let mode = if self.mode == modes::HTTP_CLIENT {
                modes::HTTPS_CLIENT
            } else {
                self.mode
            };
            let Sock::Connected(conn) = &mut self.sock else {
                return;
            };
            match conn.start_tls_client(&cx.core.options, mode, &[b"http/1.1"], &target.host) {
                Ok(()) => cx.core.state = State::Handshake,
                Err(cause) => return self.fail(cx, HttpError::TlsStart { cause }),
            }
        } else {
            self.connecting = None;
            cx.core.state = State::DataXfer;
        }
        self.send_next(cx);
    }

    /// Puts the next request on the wire if none is in flight.
    fn send_next(&mut self, cx: &mut Cx) {
        if self.in_flight.as_ref().is_some_and(|f| f.sent) {
            return;
        }
        if self.in_flight.is_none() {
            let Some(req) = self.queue.pop_front() else {
                return;
            };
            // A redirect may have left the connection on another origin.
            let elsewhere = self
                .origin
                .as_ref()
                .is_some_and(|o| !o.same_origin(&req.target));
            let target = req.target.clone();
            self.in_flight = Some(InFlight {
                req,
                started: Instant::now(),
                redirects: 0,
                sent: false,
                reused: false,
                answering: false,
                resent: false,
            });
            if elsewhere {
                return self.open(cx, &target);
            }
        }
        if !matches!(self.sock, Sock::Connected(_)) || self.tcp_pending {
            return;
        }
        let f = self.in_flight.as_mut().expect("in flight");
        match f.req.render(self.cfg.user_agent()) {
            Ok(bytes) => {
                f.sent = true;
                f.reused = self.answered_here > 0;
                f.answering = !self.inbuf.is_empty();
                self.last_byte = Instant::now();
                cx.core.stats.messages_out += 1;
                if let Some(c) = self.conn() {
                    c.queue(&bytes);
                }
            }
            Err(e) => self.fail(cx, HttpError::Protocol { why: e.to_string() }),
        }
    }

    fn pump(&mut self, cx: &mut Cx, readable: bool) {
        let Sock::Connected(conn) = &mut self.sock else {
            return;
        };
        let generation = self.generation;
        let mut eof = false;
        let mut broken: Option<String> = None;
        if readable {
            let before = self.inbuf.len();
            let end = conn.read(&mut self.inbuf, READ_ROUND);
            let got = self.inbuf.len() - before;
            if got > 0 {
                cx.core.stats.bytes_in += got as u64;
                self.last_byte = Instant::now();
                if let Some(f) = self.in_flight.as_mut().filter(|f| f.sent) {
                    f.answering = true;
                }
            }
            match end {
                ReadEnd::Open => {}
                ReadEnd::Limit => cx.timer(Duration::ZERO, TIMER_READ_MORE),
                ReadEnd::Eof => eof = true,
                // What arrived before the failure is still read first: a TLS
                // peer that closes without close_notify right after a
                // complete response has answered.
                ReadEnd::Error(msg) => broken = Some(msg),
            }
            self.peer_gone = eof || broken.is_some();
        }
        if cx.core.state == State::Handshake {
            let done = matches!(&self.sock, Sock::Connected(c) if !c.is_handshaking());
            if done {
                self.connecting = None;
                cx.core.state = State::DataXfer;
            }
        }
        // Responses.
        while let Some(f) = &self.in_flight {
            if !f.sent {
                break;
            }
            let head_only = f.req.method == "HEAD";
            match self.parser.next(&mut self.inbuf, head_only, eof) {
                Ok(Some(resp)) => {
                    cx.core.stats.messages_in += 1;
                    self.answered(cx, resp);
                    if cx.core.dead {
                        return;
                    }
                    if self.generation != generation {
                        // A redirect or the next request opened another
                        // connection; this one's end is no longer news.
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) if self.resend(cx) => return,
                Err(why) => return self.fail(cx, HttpError::Protocol { why }),
            }
        }
        if let Some(msg) = broken {
            if self.in_flight.is_none() {
                // The server went away between requests.
                return cx.die(Some(msg));
            }
            if self.resend(cx) {
                return;
            }
            return self.fail(cx, HttpError::Broken { why: msg });
        }
        if eof {
            if self.in_flight.is_some() {
                // The request was not out yet (TLS handshake): the same error,
                // and the same code, as the response parser gives once it is.
                return self.fail(cx, HttpError::NoResponse);
            }
            return cx.die(None);
        }
        self.flush(cx);
        if !cx.core.dead {
            self.arm(cx);
        }
    }

    fn flush(&mut self, cx: &mut Cx) {
        let Sock::Connected(conn) = &mut self.sock else {
            return;
        };
        // The write callback once everything is out.
        match conn.flush_out(cx, 1) {
            Ok(n) => {
                if n > 0 {
                    // An upload in progress is not a silent server.
                    self.last_byte = Instant::now();
                }
            }
            Err(_) if self.resend(cx) => {}
            Err(e) => self.fail(cx, HttpError::Send { why: e.to_string() }),
        }
    }

    /// The connection ended before any byte of the response came back to a
    /// request sent on it after an earlier response (the server closed the
    /// kept-alive connection, maybe just as the request arrived): an
    /// idempotent request is sent again, once per redirect hop, on a new
    /// connection, as curl and browsers do. False: the failure is LPC's.
    fn resend(&mut self, cx: &mut Cx) -> bool {
        if self.closing || cx.core.dead {
            return false; // LPC closed the socket: nothing more goes out
        }
        let Some(f) = self.in_flight.as_mut() else {
            return false;
        };
        if !f.sent || !f.reused || f.answering || f.resent || !idempotent(&f.req.method) {
            return false;
        }
        f.sent = false;
        f.resent = true;
        let target = f.req.target.clone();
        self.open(cx, &target);
        true
    }

    /// A complete response: follow a redirect or hand it to LPC.
    fn answered(&mut self, cx: &mut Cx, resp: Response) {
        let f = self.in_flight.take().expect("in flight");
        self.answered_here += 1;
        let keep_alive = resp.keep_alive && !f.req.closes();
        // Kept alive, but the server has already hung up: nothing more goes on it.
        let reusable = keep_alive && !self.peer_gone;
        let follow = self.cfg.follow_redirects;
        let location = resp.header("location").map(str::to_string);
        if follow && matches!(resp.status, 301 | 302 | 303 | 307 | 308) {
            if let Some(loc) = location {
                return self.redirect(cx, f, resp.status, &loc, reusable);
            }
        }
        let v = response_value(resp, &f);
        cx.emit(EventKind::Read, Some(v), self.addr_text(cx));
        if !reusable {
            if let Some(next) = self.queue.front() {
                let t = next.target.clone();
                self.open(cx, &t);
                return;
            }
            if !keep_alive {
                self.drop_connection(cx);
                return cx.end("closed after the response (Connection: close)");
            }
            // Kept alive but gone: the read round ends it (close_cb).
        }
        self.send_next(cx);
    }

    fn redirect(&mut self, cx: &mut Cx, mut f: InFlight, status: u16, loc: &str, reusable: bool) {
        let max = self.cfg.max_redirects;
        if f.redirects >= max {
            return self.fail(
                cx,
                HttpError::TooManyRedirects {
                    max,
                    to: loc.to_string(),
                },
            );
        }
        let next = match f.req.target.join(loc) {
            Ok(t) => t,
            Err(e) => return self.fail(cx, HttpError::Protocol { why: e.to_string() }),
        };
        if let Err(e) = self.check_scheme(&next, true) {
            return self.fail(cx, HttpError::RedirectRefused { why: e });
        }
        // As browsers and curl do: 303 fetches the result with GET (HEAD stays
        // HEAD); 301 and 302 turn only a POST into a GET; 307 and 308 repeat
        // the request as it was.
        let to_get = match status {
            303 => f.req.method != "HEAD",
            301 | 302 => f.req.method == "POST",
            _ => false,
        };
        if to_get {
            f.req.method = "GET".into();
            f.req.body.clear();
            f.req.remove("content-length");
            f.req.remove("content-type");
        }
        if !f.req.target.same_origin(&next) {
            // Credentials are for the origin they were given for.
            f.req.remove("authorization");
            f.req.remove("proxy-authorization");
            f.req.remove("cookie");
            f.req.remove("host");
        }
        let reuse = reusable && self.origin.as_ref().is_some_and(|o| o.same_origin(&next));
        f.req.target = next.clone();
        f.redirects += 1;
        f.sent = false;
        f.resent = false;
        self.in_flight = Some(f);
        if reuse {
            self.send_next(cx);
        } else {
            self.open(cx, &next);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        if self.closing {
            return None;
        }
        let mut at: Option<Instant> = None;
        let mut min = |t: Instant| at = Some(at.map_or(t, |a: Instant| a.min(t)));
        if let Some(c) = self.connecting {
            min(c + self.cfg.connect_timeout);
        }
        if let Some(f) = &self.in_flight {
            min(f.started + self.cfg.http.timeout);
            if f.sent && self.connecting.is_none() {
                min(self.last_byte + self.cfg.http.read_timeout);
            }
        }
        at
    }

    fn arm(&mut self, cx: &mut Cx) {
        // A request the server does not read (only while something is
        // queued: no option is read otherwise).
        if let Sock::Connected(c) = &mut self.sock {
            c.arm_send(cx, TIMER_SEND, self.cfg.http.send_limit());
        }
        if let Some(at) = self.deadline() {
            self.timer.arm(cx, at, TIMER_CHECK);
        }
    }

    fn check_deadlines(&mut self, cx: &mut Cx) {
        self.timer.forget();
        let now = Instant::now();
        let over = |start: Instant, limit: Duration| now.duration_since(start) >= limit;
        let origin = self
            .origin
            .as_ref()
            .map(|t| format!("{}:{}", t.host, t.port))
            .unwrap_or_default();
        if let Some(c) = self.connecting {
            if over(c, self.cfg.connect_timeout) {
                let ms = self.cfg.connect_timeout.as_millis();
                return self.fail(cx, HttpError::ConnectTimeout { ms, origin });
            }
        }
        if let Some(f) = &self.in_flight {
            if over(f.started, self.cfg.http.timeout) {
                let ms = self.cfg.http.timeout.as_millis();
                return self.fail(cx, HttpError::ResponseTimeout { ms, origin });
            }
            if f.sent
                && self.connecting.is_none()
                && over(self.last_byte, self.cfg.http.read_timeout)
            {
                let ms = self.cfg.http.read_timeout.as_millis();
                return self.fail(cx, HttpError::ReadTimeout { ms, origin });
            }
        }
        self.arm(cx);
    }
}

impl Endpoint for HttpClient {
    fn connect(&mut self, cx: &mut Cx, address: &str) -> Result<()> {
        if self.origin.is_some() || cx.core.state != State::Unbound {
            return Err(HttpError::AlreadyConnected.into());
        }
        let address = address.trim();
        let lower = address.get(..8).unwrap_or(address).to_ascii_lowercase();
        let bad = |why: String| Error::from(HttpError::BadConnect { why });
        let mut via = None;
        let url = if lower.starts_with("http://") || lower.starts_with("https://") {
            address.to_string()
        } else {
            if !address.is_empty() {
                via = Some(match addr::parse(address)? {
                    Address::Addr(a) => (a.ip().to_string(), a.port()),
                    Address::Host(h, p) => (h, p),
                });
            }
            cx.core
                .options
                .string(opt::SO_HTTP_URL)
                .ok_or_else(|| {
                    bad(format!(
                        "{} needs a URL: pass \"http://host/path\" or set SO_HTTP_URL (102)",
                        modes::name(self.mode)
                    ))
                })?
                .to_string()
        };
        let target = Target::parse(&url).map_err(bad)?;
        self.check_scheme(&target, false).map_err(bad)?;
        if target.tls {
            // Fail now, not after connecting, when the TLS settings cannot work.
            let o = &cx.core.options;
            use crate::options::ids::{SO_TLS_CERT, SO_TLS_KEY};
            match (o.string(SO_TLS_CERT), o.string(SO_TLS_KEY)) {
                (Some(_), None) | (None, Some(_)) => return Err(HttpError::ClientCertHalf.into()),
                _ => {}
            }
            crate::tls::client_config(&cx.core.options, self.mode, &[])
                .map_err(|cause| HttpError::ConnectTls { cause })?;
        }
        let req = self.request_from_options(cx, target.clone())?;
        self.via = via;
        self.home = Some(target.clone());
        self.queue.push_back(req);
        self.send_next(cx);
        self.open(cx, &target);
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
            .via
            .as_ref()
            .map(|v| v.0.clone())
            .or_else(|| self.origin.as_ref().map(|t| t.host.clone()))
            .unwrap_or_default();
        match result {
            Ok(addrs) if !addrs.is_empty() => {
                self.sock = Sock::None;
                self.start_connect(cx, addrs[0]);
            }
            Ok(_) => self.fail(cx, HttpError::NoAddress { host }),
            Err(e) => self.fail(
                cx,
                HttpError::CannotResolve {
                    host,
                    why: e.to_string(),
                },
            ),
        }
    }

    fn ready(&mut self, cx: &mut Cx, r: Readiness) {
        if !matches!(self.sock, Sock::Connected(_)) {
            return;
        }
        if self.tcp_pending {
            self.finish_connect(cx);
            if self.tcp_pending || cx.core.dead {
                return;
            }
        }
        self.pump(cx, r.readable || r.closed || r.writable);
    }

    fn timer(&mut self, cx: &mut Cx, key: u64) {
        match key {
            TIMER_CHECK => self.check_deadlines(cx),
            TIMER_READ_MORE => self.pump(cx, true),
            TIMER_FLUSH if self.closing => cx.core.state = State::Closed,
            TIMER_SEND => {
                let limit = self.cfg.http.send_limit();
                let Sock::Connected(c) = &mut self.sock else {
                    return;
                };
                let why = c.deadline_fired(cx, limit, TIMER_SEND, "SO_HTTP_READ_TIMEOUT");
                if let Some(why) = why {
                    let to = self
                        .origin
                        .as_ref()
                        .map(|t| format!("{}:{}", t.host, t.port))
                        .unwrap_or_default();
                    self.fail(cx, HttpError::SendStalled { to, why });
                }
            }
            _ => {}
        }
    }

    fn write(&mut self, cx: &mut Cx, data: &Value, target: Option<&str>) -> Result<ResultCode> {
        if target.is_some() {
            return Err(HttpError::RequestTakesNoAddress.into());
        }
        let req = self.request_from_write(data)?;
        if self.queue.len() >= MAX_QUEUED {
            return Err(HttpError::TooManyQueued { max: MAX_QUEUED }.into());
        }
        // SO_MAX_BUFFERED bounds what waits to be sent: queued request bodies
        // and bytes not yet taken by the kernel. One request always fits when
        // nothing waits, whatever its size.
        let max = self.cfg.http.conn.max_buffered_bytes();
        let waiting = self.conn().map_or(0, |c| c.pending())
            + self.queue.iter().map(|r| r.body.len()).sum::<usize>();
        if waiting > 0 && waiting + req.body.len() > max {
            return Err(HttpError::OverMaxBuffered {
                more: req.body.len(),
                max,
                waiting,
            }
            .into());
        }
        self.queue.push_back(req);
        let idle = self.in_flight.is_none();
        self.send_next(cx);
        if idle {
            self.flush(cx);
            self.arm(cx);
        }
        if cx.core.dead {
            return Err(HttpError::ConnectionFailed.into());
        }
        match self.conn() {
            Some(c) if c.pending() > 0 => {
                c.block();
                Ok(ResultCode::EeCallback)
            }
            _ => Ok(ResultCode::Ok),
        }
    }

    fn option_set(&mut self, cx: &mut Cx, id: u16) -> Result<()> {
        let conn = match &self.sock {
            Sock::Connected(c) => Some(&**c),
            _ => None,
        };
        let tls = self.mode == modes::HTTPS_CLIENT;
        super::option_set(cx, id, conn, self.mode, tls)?;
        self.cfg.update(&cx.core.options, self.mode, id);
        if id == opt::SO_HTTP_READ_TIMEOUT {
            // The output deadline may now be sooner than the timer armed for the old value.
            self.arm(cx);
        }
        Ok(())
    }

    fn close(&mut self, cx: &mut Cx) -> bool {
        self.closing = true;
        // (The request deadlines stop with the close; the output's stays.)
        let limit = self.cfg.http.send_limit();
        crate::transport::close_by_lpc(self.conn(), cx, TIMER_FLUSH, TIMER_SEND, limit)
    }

    fn abort(&mut self, cx: &mut Cx) {
        self.drop_connection(cx);
    }

    fn status(&self, out: &mut Value) {
        if let Some(t) = &self.origin {
            out.insert(Value::str("url"), Value::str(t.url.as_str()));
        }
        if let Sock::Connected(c) = &self.sock {
            if let Some(v) = c.tls_version() {
                out.insert(Value::str("tls_version"), Value::Str(v));
            }
        }
        out.insert(
            Value::str("requests_queued"),
            Value::Int(self.queue.len() as i64 + self.in_flight.is_some() as i64),
        );
    }

    fn raw_fd(&self) -> i32 {
        self.sock.raw_fd()
    }
}
