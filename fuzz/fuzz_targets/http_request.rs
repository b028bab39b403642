//! The HTTP request path: bytes from a client → request mappings for LPC.
//!
//! 1. Pure and fast: `RequestParser` (src/http/request_parser.rs, with the
//!    chunked decoder of src/http/chunked.rs) is fed the payload whole and
//!    cut at fuzzer-chosen points. Both give the same outcomes: requests
//!    (method, target, minor version, headers, body, keep-alive), 100-continue
//!    signals and the reject status. After the last byte they are in the same
//!    state. Rejects use only 400, 413, 414, 417, 431, 501 or 505. Bodies stay
//!    within 8 MiB. Every request meets the framing rules of RFC 9112:
//!    Content-Length gives the body length, Transfer-Encoding is chunked and
//!    HTTP/1.1 only, never both; an HTTP/1.1 request has exactly one Host;
//!    keep-alive follows the version and the Connection tokens.
//! 2. End to end through the C ABI: an HTTP_SERVER (mode 10) listener on
//!    127.0.0.1, made once per process with unisock_create / unisock_bind /
//!    unisock_listen and all options at their defaults, and a non-blocking std
//!    TcpStream client, accepted with unisock_accept. The client writes the
//!    payload in the same pieces. Between pieces the target dispatches until
//!    the server has every byte, or has closed when the parser says the
//!    stream ends there. Each READ event is checked against the request the
//!    parser produced: a mapping with exactly the keys of the request mapping,
//!    request_id 1, 2, 3 … per connection. It is answered at once with
//!    unisock_write of a reply mapping built with the C builders (status
//!    200 + id % 3, body "r<id>", header X-Fuzz: id). The client must read
//!    exactly those responses in order, with the right version, status, body
//!    (none for HEAD) and Connection: close where the request asked for it.
//!    When the parser rejected the input, the server's own answer follows with
//!    the parser's status, and then the connection ends with a CLOSE event.
//!    The server stops reading after a request that does not keep the
//!    connection alive, so the expected events end there too. 100 Continue
//!    interim responses are allowed only for requests that asked for them.
//!    The connection is made again whenever it closed, something was left
//!    over (a partial request, stray CR/LF), or it is 5 s old. Each input
//!    therefore starts from a clean connection and replays alone. No timer is
//!    relied on: the defaults (30 s) are far beyond any input's run.
//!
//! Input layout: byte 0 = number of cuts (mod 8), then 2 bytes per cut
//! (little endian, taken modulo the payload length + 1), then the payload in
//! a small run-length form, so that the parser's size limits (8 KiB request
//! line, 16 KiB head, 100 fields, 4 KiB chunk lines) are in reach of short
//! inputs. `FF k n s…` stands for the segment `s` (the next n % 32 + 1 bytes)
//! repeated until it covers (k + 1) × 64 bytes; `FF FF` stands for one FF;
//! anything else is itself. The payload is cut off at 64 KiB.
//!
//! `FUZZ_TOLERATE=F5` lets the open finding F5 (docs/FUZZING.md: the reject
//! status of an over-long malformed head depends on the cuts) pass, and
//! nothing else, so that a run can look past it. Strict by default.
#![no_main]

use std::collections::VecDeque;
use std::ffi::c_char;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;

use unisock::ffi::events::unisock_reactor_fd;
use unisock::ffi::sockets::{
    unisock_accept, unisock_address, unisock_bind, unisock_close, unisock_create, unisock_listen,
    unisock_socket_count, unisock_status, unisock_write,
};
use unisock::ffi::values::UnisockValue;
use unisock::http::request_parser::{Parsed, Reject, RequestParser, MAX_REQUEST_BODY};
use unisock::{ResultCode, Value};
use unisock_fuzz::*;

const LISTENER: i32 = 20;
const CONN: i32 = 21;
const HTTP_SERVER: i64 = 10;
/// The statuses the parser may reject with.
const REJECT_STATUSES: [u16; 7] = [400, 413, 414, 417, 431, 501, 505];
const MAX_PAYLOAD: usize = 64 * 1024;
/// The keys of the request mapping (callbacks.md "HTTP / HTTPS / REST server").
const KEYS: [&str; 13] = [
    "method",
    "uri",
    "path",
    "query",
    "query_params",
    "version",
    "headers",
    "body",
    "body_is_binary",
    "addr",
    "scheme",
    "host",
    "request_id",
];
/// The longest one input may take end to end (it normally takes milliseconds).
const INPUT_BUDGET: Duration = Duration::from_secs(5);
/// Connections older than this are made again, far from the 30 s defaults of
/// SO_HTTP_TIMEOUT / SO_HTTP_READ_TIMEOUT.
const MAX_CONN_AGE: Duration = Duration::from_secs(5);

// ----------------------------------------------------------------------
// Input

fn expand(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() && out.len() < MAX_PAYLOAD {
        if raw[i] == 0xFF && i + 1 < raw.len() {
            let k = raw[i + 1];
            if k == 0xFF {
                out.push(0xFF);
                i += 2;
                continue;
            }
            if i + 3 < raw.len() {
                let n = raw[i + 2] as usize % 32 + 1;
                let seg = &raw[i + 3..(i + 3 + n).min(raw.len())];
                let total = (k as usize + 1) * 64;
                let reps = total.div_ceil(seg.len());
                for _ in 0..reps {
                    out.extend_from_slice(seg);
                }
                i += 3 + seg.len();
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out.truncate(MAX_PAYLOAD);
    out
}

fn decode(data: &[u8]) -> (Vec<usize>, Vec<u8>) {
    let (spec, raw) = cut_spec(data, 8);
    let payload = expand(raw);
    (cut_positions(spec, payload.len()), payload)
}

// ----------------------------------------------------------------------
// Part 1: the parser alone

#[derive(Debug, Clone, PartialEq)]
struct Req {
    method: String,
    target: String,
    minor: u8,
    headers: Vec<(String, Vec<String>)>,
    body: Vec<u8>,
    keep_alive: bool,
}

impl Req {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.iter().map(String::as_str))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Out {
    Continue,
    Req(Req),
    Reject(u16),
}

/// What the parser did with a sequence of pieces.
struct Run {
    outs: Vec<Out>,
    /// `outs.len()` after each piece.
    marks: Vec<usize>,
    /// A request was started and not finished (head or body).
    pending: bool,
    /// Bytes still buffered at the end.
    leftover: Vec<u8>,
}

fn run(pieces: &[&[u8]]) -> Run {
    let mut p = RequestParser::default();
    let mut buf = Vec::new();
    let mut outs = Vec::new();
    let mut marks = Vec::new();
    let mut rejected = false;
    for piece in pieces {
        if !rejected {
            buf.extend_from_slice(piece);
            // Every outcome uses up bytes (a 100-continue the head's); bound the loop.
            let mut budget = buf.len() + 2;
            loop {
                assert!(
                    budget > 0,
                    "RequestParser::next keeps answering without input"
                );
                budget -= 1;
                let before = buf.len();
                match p.next(&mut buf) {
                    Ok(None) => break,
                    Ok(Some(Parsed::Continue)) => {
                        assert!(buf.len() < before, "100-continue without consuming a head");
                        outs.push(Out::Continue);
                    }
                    Ok(Some(Parsed::Request(r))) => outs.push(Out::Req(Req {
                        method: r.method,
                        target: r.target,
                        minor: r.minor,
                        headers: r.headers,
                        body: r.body,
                        keep_alive: r.keep_alive,
                    })),
                    Err(Reject { status, why }) => {
                        assert!(!why.is_empty(), "reject {status} without a reason");
                        outs.push(Out::Reject(status));
                        rejected = true;
                        break;
                    }
                }
            }
        }
        marks.push(outs.len());
    }
    Run {
        outs,
        marks,
        pending: p.in_progress(&[]),
        leftover: buf,
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9112 rules every accepted request meets, whatever the parser's code.
fn check_request(r: &Req) {
    assert!(r.body.len() <= MAX_REQUEST_BODY, "body over 8 MiB");
    assert!(r.minor <= 1, "HTTP/1.{} accepted", r.minor);
    assert!(
        !r.method.is_empty() && r.method.bytes().all(is_tchar),
        "method {:?} is not a token",
        r.method
    );
    assert!(!r.target.is_empty(), "empty request target");
    for (i, (name, values)) in r.headers.iter().enumerate() {
        assert!(
            !name.is_empty() && name.bytes().all(|b| is_tchar(b) && !b.is_ascii_uppercase()),
            "header name {name:?} is not a lower-case token"
        );
        assert!(!values.is_empty(), "header {name:?} without a value");
        assert!(
            r.headers[..i].iter().all(|(n, _)| n != name),
            "header {name:?} listed twice"
        );
        for v in values {
            assert!(
                !v.starts_with([' ', '\t']) && !v.ends_with([' ', '\t']),
                "header value {v:?} not trimmed"
            );
            assert!(
                !v.contains(['\r', '\n']),
                "header value {v:?} holds CR or LF"
            );
        }
    }
    let hosts = r.all("host");
    assert!(hosts.len() <= 1, "more than one Host accepted");
    if r.minor == 1 {
        assert_eq!(hosts.len(), 1, "HTTP/1.1 request without Host accepted");
    }
    let te = r.all("transfer-encoding");
    let cl = r.all("content-length");
    assert!(
        te.is_empty() || cl.is_empty(),
        "Content-Length and Transfer-Encoding both accepted"
    );
    if !te.is_empty() {
        assert_eq!(r.minor, 1, "Transfer-Encoding accepted in HTTP/1.0");
        let codings: Vec<String> = te
            .iter()
            .flat_map(|v| v.split(','))
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        assert_eq!(codings, ["chunked"], "coding other than chunked accepted");
    }
    if let Some(v) = cl.first() {
        let first = v.split(',').next().unwrap().trim();
        let n: u64 = first.parse().expect("accepted Content-Length is a number");
        assert_eq!(
            r.body.len() as u64,
            n,
            "body length differs from Content-Length"
        );
        for v in cl.iter().flat_map(|v| v.split(',')) {
            assert_eq!(
                v.trim().parse::<u64>().ok(),
                Some(n),
                "differing Content-Lengths accepted"
            );
        }
    } else if te.is_empty() {
        assert!(r.body.is_empty(), "body without Content-Length or chunked");
    }
    let tokens: Vec<String> = r
        .all("connection")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let want = !tokens.iter().any(|t| t == "close")
        && (r.minor == 1 || tokens.iter().any(|t| t == "keep-alive"));
    assert_eq!(r.keep_alive, want, "keep-alive against the rules");
}

/// Whether a request asked for a 100 Continue that the server must honour.
fn wants_continue(r: &Req) -> bool {
    r.minor == 1
        && r.all("expect")
            .first()
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        && (!r.all("transfer-encoding").is_empty() || !r.body.is_empty())
}

/// Known findings a run may be told to let pass until they are fixed
/// (`FUZZ_TOLERATE=F5`; docs/FUZZING.md), so that it can look past them.
/// Nothing is tolerated by default.
fn tolerated(finding: &str) -> bool {
    static LIST: OnceLock<Vec<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        std::env::var("FUZZ_TOLERATE")
            .unwrap_or_default()
            .split(',')
            .map(|f| f.trim().to_string())
            .collect()
    })
    .iter()
    .any(|f| f == finding)
}

/// F5 (docs/FUZZING.md): the same outcomes but for the final reject, where one
/// side found a size limit (414/431) and the other a syntax error first.
fn is_f5(a: &[Out], b: &[Out]) -> Option<u16> {
    let (Some(Out::Reject(x)), Some(Out::Reject(y))) = (a.last(), b.last()) else {
        return None;
    };
    let limit = |s: &u16| *s == 414 || *s == 431;
    (a.len() == b.len() && a[..a.len() - 1] == b[..b.len() - 1] && (limit(x) || limit(y)))
        .then_some(*y)
}

/// Part 1. Returns the run over the cut pieces, and the other status the
/// server may answer with when F5 is tolerated.
fn pure(payload: &[u8], cuts: &[usize]) -> (Run, Option<u16>) {
    let whole = run(&[payload]);
    let cut = run(&pieces(payload, cuts));
    let mut other_status = None;
    match is_f5(&cut.outs, &whole.outs) {
        Some(s) if tolerated("F5") => other_status = Some(s),
        _ => assert_eq!(
            cut.outs, whole.outs,
            "outcomes depend on where the stream is cut (cuts {cuts:?})"
        ),
    }
    let rejected = matches!(whole.outs.last(), Some(Out::Reject(_)));
    if !rejected {
        assert_eq!(
            cut.pending, whole.pending,
            "parser state depends on the cuts"
        );
        if !whole.pending {
            assert_eq!(
                cut.leftover, whole.leftover,
                "left-over bytes depend on the cuts"
            );
        }
    }
    for (i, o) in whole.outs.iter().enumerate() {
        match o {
            Out::Reject(s) => {
                assert!(REJECT_STATUSES.contains(s), "reject with status {s}");
                assert_eq!(i + 1, whole.outs.len(), "outcomes after a reject");
            }
            Out::Req(r) => {
                check_request(r);
                let after_continue = i > 0 && whole.outs[i - 1] == Out::Continue;
                assert_eq!(
                    wants_continue(r),
                    after_continue,
                    "100-continue signalled wrongly for {r:?}"
                );
            }
            Out::Continue => {
                // Followed by its request, by a reject, or by nothing yet.
                match whole.outs.get(i + 1) {
                    None | Some(Out::Reject(_)) => {}
                    Some(Out::Req(r)) => assert!(wants_continue(r), "stray 100-continue"),
                    Some(Out::Continue) => panic!("two 100-continue signals in a row"),
                }
            }
        }
    }
    (cut, other_status)
}

// ----------------------------------------------------------------------
// Part 2: end to end

struct Client {
    stream: TcpStream,
    /// "127.0.0.1 <port>" of the client, as the server sees it.
    peer: String,
    /// The request_id the next request gets.
    next_id: i64,
    since: Instant,
}

struct Link {
    port: u16,
    client: Option<Client>,
}

static LINK: Mutex<Option<Link>> = Mutex::new(None);

fn setup() -> Link {
    ignore_sigpipe();
    let rc = unisock_create(LISTENER, HTTP_SERVER);
    check_result(rc, "create");
    assert_eq!(rc, ResultCode::Ok, "create HTTP_SERVER: {}", last_error());
    let addr = b"127.0.0.1 0\0";
    let rc = unisock_bind(LISTENER, 0, addr.as_ptr() as *const c_char);
    assert_eq!(rc, ResultCode::Ok, "bind: {}", last_error());
    let rc = unisock_listen(LISTENER);
    assert_eq!(rc, ResultCode::Ok, "listen: {}", last_error());
    let Value::Str(local) = address(LISTENER, 1) else {
        panic!("no local address")
    };
    let port: u16 = local.rsplit(' ').next().unwrap().parse().unwrap();
    Link { port, client: None }
}

fn address(id: i32, local: i32) -> Value {
    let mut a: *mut UnisockValue = ptr::null_mut();
    let rc = unisock_address(id, local, &mut a);
    assert_eq!(rc, ResultCode::Ok, "address: {}", last_error());
    read_value(Owned(a).as_ptr())
}

fn status(id: i32) -> Value {
    let mut s: *mut UnisockValue = ptr::null_mut();
    let rc = unisock_status(id, &mut s);
    assert_eq!(rc, ResultCode::Ok, "status: {}", last_error());
    read_value(Owned(s).as_ptr())
}

fn connect(link: &mut Link) {
    let c = TcpStream::connect(("127.0.0.1", link.port)).expect("connect to the listener");
    c.set_nodelay(true).unwrap();
    let evs = dispatch_until("listen event", 200, 10, |evs| {
        evs.iter().any(|e| e.kind == EV_LISTEN)
    });
    for e in &evs {
        assert!(
            e.kind == EV_LISTEN && e.socket == LISTENER,
            "unexpected event while connecting: {e:?}"
        );
    }
    let rc = unisock_accept(LISTENER, CONN);
    check_result(rc, "accept");
    assert_eq!(rc, ResultCode::Ok, "accept: {}", last_error());
    c.set_nonblocking(true).unwrap();
    let peer = format!("127.0.0.1 {}", c.local_addr().unwrap().port());
    assert_eq!(address(CONN, 0), Value::Str(peer.clone()), "peer address");
    link.client = Some(Client {
        stream: c,
        peer,
        next_id: 1,
        since: Instant::now(),
    });
}

fn disconnect(link: &mut Link, server_alive: bool) {
    let rc = unisock_close(CONN);
    if server_alive {
        assert_eq!(rc, ResultCode::Ok, "close: {}", last_error());
    } else {
        assert_eq!(rc, ResultCode::EeBadf, "socket outlived its CLOSE");
    }
    link.client = None;
    for e in dispatch() {
        assert_ne!(e.socket, CONN, "event for a closed socket: {e:?}");
    }
}

/// Waits up to `ms` for the reactor or the client to have something.
fn wait(client: i32, ms: i32) {
    let mut fd = -1;
    assert_eq!(unisock_reactor_fd(&mut fd), ResultCode::Ok);
    let mut p = [
        libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: client,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: two valid pollfds.
    unsafe { libc::poll(p.as_mut_ptr(), 2, ms) };
}

/// One response as the client read it.
#[derive(Debug)]
struct Resp {
    minor: u8,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The reply for request `id`: (status, body).
fn reply_for(id: i64) -> (i64, String) {
    (200 + id % 3, format!("r{id}"))
}

/// The end-to-end state of one input.
struct E2e<'a> {
    /// The requests the server must hand to LPC, in order.
    reqs: Vec<&'a Req>,
    first_id: i64,
    reads: usize,
    closed: bool,
    /// Client side: bytes not yet parsed, responses, interim responses, EOF.
    cbuf: Vec<u8>,
    resps: Vec<Resp>,
    continues: usize,
    eof: bool,
}

impl E2e<'_> {
    fn handle(&mut self, c: &Client, e: Ev) {
        assert_eq!(e.socket, CONN, "event for another socket: {e:?}");
        match e.kind {
            EV_READ => {
                assert!(!self.closed, "READ after CLOSE");
                assert_eq!(
                    e.addr.as_deref(),
                    Some(c.peer.as_str()),
                    "READ event address"
                );
                let Some(r) = self.reqs.get(self.reads) else {
                    panic!(
                        "READ number {} but the parser produced {} requests: {e:?}",
                        self.reads + 1,
                        self.reqs.len()
                    )
                };
                let id = self.first_id + self.reads as i64;
                check_mapping(e.data.as_ref().expect("READ without data"), r, id, &c.peer);
                self.reads += 1;
                // Answer at once, through the C builders and unisock_write.
                let (status, body) = reply_for(id);
                let reply = to_c(&Value::Mapping(vec![
                    (Value::str("status"), Value::Int(status)),
                    (Value::str("body"), Value::Str(body)),
                    (
                        Value::str("headers"),
                        Value::Mapping(vec![(Value::str("X-Fuzz"), Value::Int(id))]),
                    ),
                ]));
                let rc = unisock_write(CONN, reply.as_ptr(), ptr::null());
                assert!(
                    rc == ResultCode::Ok || rc == ResultCode::EeCallback,
                    "unisock_write of the reply to request {id}: {rc:?}: {}",
                    last_error()
                );
            }
            EV_CLOSE => {
                assert!(!self.closed, "two CLOSE events");
                assert!(
                    matches!(e.data, None | Some(Value::Str(_))),
                    "CLOSE reason is not a string: {e:?}"
                );
                self.closed = true;
            }
            EV_WRITE => {}
            k => panic!("unexpected event kind {k} on an HTTP connection: {e:?}"),
        }
    }

    /// Dispatches, answers READs, reads what the client has. True if anything happened.
    fn step(&mut self, c: &mut Client) -> bool {
        let mut busy = false;
        let mut evs: VecDeque<Ev> = dispatch().into();
        // Events queued by unisock_write (more requests read) are drained too.
        while let Some(e) = evs.pop_front().or_else(next_event) {
            busy = true;
            self.handle(c, e);
        }
        if !self.eof {
            let mut tmp = [0u8; 16384];
            loop {
                match c.stream.read(&mut tmp) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(n) => {
                        busy = true;
                        self.cbuf.extend_from_slice(&tmp[..n]);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // The server closed with bytes of ours unread: what it sent
                    // before is still read above; the rest counts as EOF.
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                        self.eof = true;
                        break;
                    }
                    Err(e) => panic!("client read: {e}"),
                }
            }
            self.parse_responses();
        }
        busy
    }

    /// Takes complete responses off the client buffer.
    fn parse_responses(&mut self) {
        loop {
            let Some(end) = self.cbuf.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            let head = std::str::from_utf8(&self.cbuf[..end]).expect("response head is UTF-8");
            let mut lines = head.split("\r\n");
            let line = lines.next().unwrap();
            let mut parts = line.splitn(3, ' ');
            let minor = match parts.next() {
                Some("HTTP/1.0") => 0,
                Some("HTTP/1.1") => 1,
                _ => panic!("bad status line {line:?}"),
            };
            let status: u16 = parts
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("bad status line {line:?}"));
            assert!(
                parts.next().is_some_and(|r| !r.is_empty()),
                "no reason phrase in {line:?}"
            );
            let headers: Vec<(String, String)> = lines
                .map(|l| {
                    let (n, v) = l
                        .split_once(':')
                        .unwrap_or_else(|| panic!("bad header {l:?}"));
                    (n.to_string(), v.trim().to_string())
                })
                .collect();
            if status == 100 {
                assert!(headers.is_empty(), "100 Continue with headers");
                self.cbuf.drain(..end + 4);
                self.continues += 1;
                continue;
            }
            let head_only = self
                .reqs
                .get(self.resps.len())
                .is_some_and(|r| r.method == "HEAD");
            let r = Resp {
                minor,
                status,
                headers,
                body: Vec::new(),
            };
            let len: usize = if head_only {
                0
            } else {
                r.header("content-length")
                    .unwrap_or_else(|| panic!("response without Content-Length: {r:?}"))
                    .parse()
                    .expect("Content-Length is a number")
            };
            if self.cbuf.len() < end + 4 + len {
                return;
            }
            let body = self.cbuf[end + 4..end + 4 + len].to_vec();
            self.cbuf.drain(..end + 4 + len);
            self.resps.push(Resp { body, ..r });
        }
    }

    /// Steps until `done` holds; panics when the input's time is up.
    fn until(&mut self, c: &mut Client, start: Instant, what: &str, done: impl Fn(&Self) -> bool) {
        let mut rounds = 0usize;
        loop {
            let busy = self.step(c);
            if done(self) {
                return;
            }
            rounds += 1;
            assert!(
                rounds < 100_000 && start.elapsed() < INPUT_BUDGET,
                "{what}: not reached in {rounds} rounds / {:?}; reads {} of {}, closed {}, \
                 responses {}, client eof {}, bytes_in {:?}",
                start.elapsed(),
                self.reads,
                self.reqs.len(),
                self.closed,
                self.resps.len(),
                self.eof,
                bytes_in(CONN)
            );
            if !busy {
                wait(c.stream.as_raw_fd(), 10);
            }
        }
    }
}

/// The READ mapping of request `r`, the `id`-th on the connection.
fn check_mapping(v: &Value, r: &Req, id: i64, peer: &str) {
    let Value::Mapping(pairs) = v else {
        panic!("READ data is not a mapping: {v:?}")
    };
    let mut keys: Vec<&str> = pairs
        .iter()
        .map(|(k, _)| {
            k.as_str()
                .unwrap_or_else(|| panic!("key {k:?} is not a string"))
        })
        .collect();
    keys.sort_unstable();
    let mut want = KEYS.to_vec();
    want.sort_unstable();
    assert_eq!(keys, want, "request mapping keys");
    let s = |k: &str| match v.get(k) {
        Some(Value::Str(s)) => s.as_str(),
        other => panic!("{k} is not a string: {other:?}"),
    };
    assert_eq!(s("method"), r.method, "method");
    assert_eq!(s("uri"), r.target, "uri");
    assert_eq!(s("version"), format!("HTTP/1.{}", r.minor), "version");
    assert_eq!(s("addr"), peer, "addr");
    assert_eq!(s("scheme"), "http", "scheme");
    let query = s("query");
    if !query.is_empty() {
        assert!(
            r.target.contains(&format!("?{query}")),
            "query {query:?} not in the uri"
        );
    }
    let _ = s("path");
    assert!(
        matches!(v.get("query_params"), Some(Value::Mapping(_))),
        "query_params is not a mapping"
    );
    // "host": the name of an absolute-form target's authority (it wins over
    // Host, RFC 9112 §3.2.2), else of the Host header, else "".
    let host = s("host");
    let lower = r.target.to_ascii_lowercase();
    let absolute = lower.starts_with("http://") || lower.starts_with("https://");
    match r.all("host").first() {
        _ if absolute => assert!(
            r.target.contains(host),
            "host {host:?} is not from the target {:?}",
            r.target
        ),
        Some(h) => assert!(h.starts_with(host), "host {host:?} is not from Host {h:?}"),
        None => assert_eq!(host, "", "host without a Host header"),
    }
    let headers = Value::Mapping(
        r.headers
            .iter()
            .map(|(n, vs)| {
                let x = if vs.len() == 1 {
                    Value::Str(vs[0].clone())
                } else {
                    Value::Array(vs.iter().cloned().map(Value::Str).collect())
                };
                (Value::Str(n.clone()), x)
            })
            .collect(),
    );
    assert_eq!(v.get("headers"), Some(&headers), "headers");
    let (body, binary) = match std::str::from_utf8(&r.body) {
        Ok(t) => (Value::str(t), 0),
        Err(_) => (Value::Buffer(r.body.clone()), 1),
    };
    assert_eq!(v.get("body"), Some(&body), "body");
    assert_eq!(
        v.get("body_is_binary"),
        Some(&Value::Int(binary)),
        "body_is_binary"
    );
    assert_eq!(v.get("request_id"), Some(&Value::Int(id)), "request_id");
}

fn end_to_end(payload: &[u8], cuts: &[usize], run: &Run, other_status: Option<u16>) {
    let start = Instant::now();
    let mut guard = LINK.lock().unwrap();
    let link = guard.get_or_insert_with(setup);
    if link
        .client
        .as_ref()
        .is_some_and(|c| c.since.elapsed() > MAX_CONN_AGE)
    {
        disconnect(link, true);
    }
    if link.client.is_none() {
        connect(link);
    }

    // What the server does with the stream: it hands over requests until one
    // that does not keep the connection alive (then stops reading), or until
    // a reject (then answers with the reject status and closes).
    let mut end_at: Option<usize> = None;
    let mut reject: Option<u16> = None;
    for (i, o) in run.outs.iter().enumerate() {
        match o {
            Out::Req(r) if !r.keep_alive => {
                end_at = Some(i);
                break;
            }
            Out::Reject(s) => {
                end_at = Some(i);
                reject = Some(*s);
                break;
            }
            _ => {}
        }
    }
    let served = &run.outs[..end_at.map_or(run.outs.len(), |i| i + 1)];
    let reqs: Vec<&Req> = served
        .iter()
        .filter_map(|o| match o {
            Out::Req(r) => Some(r),
            _ => None,
        })
        .collect();
    let reads_by = |outs: usize| {
        served[..outs.min(served.len())]
            .iter()
            .filter(|o| matches!(o, Out::Req(_)))
            .count()
    };
    let ended_by = |outs: usize| end_at.is_some_and(|i| outs > i);

    let c = link.client.as_mut().unwrap();
    let mut st = E2e {
        reqs: reqs.clone(),
        first_id: c.next_id,
        reads: 0,
        closed: false,
        cbuf: Vec::new(),
        resps: Vec::new(),
        continues: 0,
        eof: false,
    };
    let mut written = bytes_in(CONN).expect("bytes_in of the connection");
    for (k, p) in pieces(payload, cuts).into_iter().enumerate() {
        let ended = ended_by(run.marks[k]);
        let want_reads = reads_by(run.marks[k]);
        let mut off = 0;
        while off < p.len() {
            match c.stream.write(&p[off..]) {
                Ok(n) => {
                    off += n;
                    written += n as i64;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if !st.step(c) {
                        wait(c.stream.as_raw_fd(), 5);
                    }
                    assert!(start.elapsed() < INPUT_BUDGET, "client write stalled");
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e)
                    if ended
                        && matches!(
                            e.kind(),
                            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
                        ) =>
                {
                    break; // the server has finished with this stream
                }
                Err(e) => panic!("client write: {e}"),
            }
        }
        let target = written;
        st.until(c, start, "piece taken", |st| {
            st.reads >= want_reads
                && if ended {
                    st.closed
                } else {
                    bytes_in(CONN) == Some(target)
                }
        });
        assert_eq!(st.reads, want_reads, "READ events after piece {k}");
        if ended {
            break;
        }
    }
    // Every response reaches the client (then the end, if the server closes).
    let want_resps = reqs.len() + reject.is_some() as usize;
    let ended = end_at.is_some();
    st.until(c, start, "responses", |st| {
        st.resps.len() >= want_resps && (!ended || (st.eof && st.closed))
    });

    assert_eq!(
        st.reads,
        reqs.len(),
        "READ events vs requests of the parser"
    );
    assert_eq!(st.resps.len(), want_resps, "responses: {:?}", st.resps);
    for (i, (r, resp)) in reqs.iter().zip(&st.resps).enumerate() {
        let id = st.first_id + i as i64;
        let (status, body) = reply_for(id);
        assert_eq!(resp.status as i64, status, "status of response {id}");
        assert_eq!(resp.minor, r.minor, "version of response {id}");
        let fuzz_id = id.to_string();
        assert_eq!(
            resp.header("x-fuzz"),
            Some(fuzz_id.as_str()),
            "X-Fuzz of response {id}"
        );
        if r.method == "HEAD" {
            assert!(resp.body.is_empty());
        } else {
            assert_eq!(resp.body, body.as_bytes(), "body of response {id}");
        }
        assert_eq!(
            resp.header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close")),
            !r.keep_alive,
            "Connection: close on response {id} iff the request ends the connection"
        );
    }
    if let Some(s) = reject {
        let last = st.resps.last().unwrap();
        if Some(last.status) != other_status {
            assert_eq!(last.status, s, "the server's answer to a rejected request");
        }
        assert_eq!(last.minor, 1);
        assert_eq!(
            last.header("connection"),
            Some("close"),
            "reject without Connection: close"
        );
    }
    let asked = served.iter().filter(|o| **o == Out::Continue).count();
    assert!(
        st.continues <= asked,
        "{} 100 Continue responses for {asked} requests that asked",
        st.continues
    );
    c.next_id += st.reads as i64;

    if ended {
        assert!(st.closed && st.eof);
        assert!(
            st.cbuf.is_empty(),
            "bytes after the last response: {:?}",
            st.cbuf
        );
        disconnect(link, false);
    } else {
        assert!(!st.closed, "CLOSE without a reject or a closing request");
        if run.pending || !run.leftover.is_empty() {
            // A partial request (or stray CR/LF) is buffered: start the next input afresh.
            disconnect(link, true);
        } else {
            assert!(
                st.cbuf.is_empty(),
                "stray bytes from the server: {:?}",
                st.cbuf
            );
            let s = status(CONN);
            assert_eq!(field_int(&s, "requests_waiting"), Some(0), "requests owed");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (cuts, payload) = decode(data);
    let (run, other_status) = pure(&payload, &cuts);
    end_to_end(&payload, &cuts, &run, other_status);
    // State does not grow: the listener, at most one connection, nothing flushing.
    let (mut open, mut flushing) = (usize::MAX, usize::MAX);
    assert_eq!(
        unisock_socket_count(&mut open, &mut flushing),
        ResultCode::Ok
    );
    assert!(
        (1..=2).contains(&open) && flushing == 0,
        "open {open}, flushing {flushing}"
    );
    let l = status(LISTENER);
    assert_eq!(
        field_int(&l, "waiting"),
        Some(0),
        "connections waiting: {l:?}"
    );
    assert!(
        field_int(&l, "connections").is_some_and(|n| n == open as i64 - 1),
        "live connections of the listener: {l:?}"
    );
});
