//! `ws_client`: a WEBSOCKET_CLIENT (mode 17) through the C ABI, one per input
//! (unisock_create, options, unisock_connect to "ws://127.0.0.1:<port>/chat?x=1"),
//! against a std TcpListener of the target's own. The input's
//! WS_MAX_MESSAGE_SIZE and WS_FRAME_SIZE_LIMIT (128..4096), WS_AUTO_PING and
//! WS_COMPRESSION are set before connecting. The target reads the client's
//! request (checked: GET of the path, Host, Upgrade, Connection, version 13,
//! a 16-byte key in base64, permessage-deflate offered exactly with
//! WS_COMPRESSION 1) and answers with the fuzzer's head or a valid 101
//! (Sec-WebSocket-Accept from the key by tungstenite's derive_accept_key;
//! with WS_COMPRESSION 1 it also agrees permessage-deflate), followed by
//! frames as a server sends them, in the fuzzer's pieces; it dispatches until
//! the client has every byte (SO_STATISTICS bytes_in) or has closed
//! (bounded: 5 s per input).
//!
//! Checks: every event is for the client; READs have the documented keys and
//! types (`ws::got`); a valid 101 gives the one "open" first (path
//! "/chat?x=1", no subprotocol) and then exactly the messages, failure code
//! (a masked frame from the server: 1002) and replies (masked frames: pongs,
//! the close) of the reference model; a bad head gives exactly one
//! `([ "error", "error_code" ])` mapping, then the CLOSE, never "open";
//! nothing after the CLOSE; the client only ever sends well-formed masked
//! frames after its request.
//!
//! Input: as `ws_server`'s: byte 0: bit 0 the fuzzer's head, bit 1
//! WS_COMPRESSION, bit 2 WS_AUTO_PING, bit 3 raw frames, bits 4–6 the number
//! of cuts; the limits; the cuts; the head (if the fuzzer's) and the frames.
#![no_main]

use std::ffi::{c_char, CString};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;

use unisock::ffi::events::unisock_reactor_fd;
use unisock::ffi::sockets::{
    socket_set_option_int, unisock_close, unisock_connect, unisock_create,
};
use unisock::{ResultCode, Value};
use unisock_fuzz::ws::{self, End, Got, Item, Lim};
use unisock_fuzz::*;

const CLIENT: i32 = 50;
const WEBSOCKET_CLIENT: i64 = 17;
const WS_MAX_MESSAGE_SIZE: i64 = 123;
const WS_PING_INTERVAL: i64 = 124;
const WS_COMPRESSION: i64 = 126;
const WS_FRAME_SIZE_LIMIT: i64 = 128;
const WS_AUTO_PING: i64 = 129;
const BUDGET: Duration = Duration::from_secs(5);

static LISTENER: Mutex<Option<TcpListener>> = Mutex::new(None);

fn set(opt: i64, v: i64) {
    let rc = socket_set_option_int(CLIENT, opt, v);
    check_result(rc, "socket_set_option_int");
    assert_eq!(rc, ResultCode::Ok, "set {opt} = {v}: {}", last_error());
}

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

struct St {
    stream: TcpStream,
    reads: Vec<Value>,
    closed: bool,
    cbuf: Vec<u8>,
    eof: bool,
    reset: bool,
    start: Instant,
}

impl St {
    fn step(&mut self) -> bool {
        let mut busy = false;
        for e in dispatch() {
            busy = true;
            assert_eq!(e.socket, CLIENT, "event for another socket: {e:?}");
            assert!(!self.closed, "event after the CLOSE: {e:?}");
            match e.kind {
                EV_READ => self.reads.push(e.data.expect("READ without data")),
                EV_CLOSE => self.closed = true,
                EV_WRITE => {}
                k => panic!("event kind {k} on a WebSocket connection: {e:?}"),
            }
        }
        while !self.eof {
            let mut tmp = [0u8; 16384];
            match self.stream.read(&mut tmp) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    busy = true;
                    self.cbuf.extend_from_slice(&tmp[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    self.eof = true;
                    self.reset = true;
                }
                Err(e) => panic!("client read: {e}"),
            }
        }
        busy
    }

    fn until(&mut self, what: &str, mut done: impl FnMut(&Self) -> bool) {
        loop {
            let busy = self.step();
            if done(self) {
                return;
            }
            assert!(
                self.start.elapsed() < BUDGET,
                "{what}: not reached in {BUDGET:?}; reads {:?}, closed {}, client {:?}",
                self.reads,
                self.closed,
                String::from_utf8_lossy(&self.cbuf)
            );
            if !busy {
                wait(self.stream.as_raw_fd(), 5);
            }
        }
    }
}

fn head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Checks the client's request head; returns its Sec-WebSocket-Key.
fn check_request(h: &str, compress: bool) -> String {
    let mut lines = h.split("\r\n");
    assert_eq!(
        lines.next(),
        Some("GET /chat?x=1 HTTP/1.1"),
        "request line of {h:?}"
    );
    let fields: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("bad field {l:?}"));
            (n.to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let one = |n: &str| -> Option<String> {
        let v: Vec<&String> = fields
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v)
            .collect();
        assert!(v.len() <= 1, "{n} twice in {h:?}");
        v.first().map(|s| s.to_string())
    };
    assert!(
        one("host").is_some_and(|v| v.starts_with("127.0.0.1")),
        "host in {h:?}"
    );
    assert!(
        one("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
        "{h:?}"
    );
    assert!(
        one("connection").is_some_and(|v| v.to_ascii_lowercase().contains("upgrade")),
        "{h:?}"
    );
    assert_eq!(one("sec-websocket-version").as_deref(), Some("13"), "{h:?}");
    let key = one("sec-websocket-key").expect("no key");
    assert!(
        key.len() == 24
            && key.ends_with("==")
            && key[..22]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'),
        "key {key:?}"
    );
    let offered = one("sec-websocket-extensions").is_some_and(|v| v.contains("permessage-deflate"));
    assert_eq!(
        offered, compress,
        "permessage-deflate offered iff WS_COMPRESSION: {h:?}"
    );
    assert!(
        one("sec-websocket-protocol").is_none(),
        "a subprotocol offered: {h:?}"
    );
    key
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let flags = data[0];
    let lim16 = |i: usize| 128 + u16::from_le_bytes([data[i], data[i + 1]]) as usize % 3969;
    let (max_message, max_frame) = (lim16(1), lim16(3));
    let fuzzed_head = flags & 1 != 0;
    let compress = flags & 2 != 0;
    let auto = flags & 4 != 0;
    let ncuts = ((flags >> 4) & 7) as usize;
    let rest = &data[5..];
    let (spec, body) = if rest.len() >= 2 * ncuts {
        rest.split_at(2 * ncuts)
    } else {
        (&[][..], rest)
    };
    let (fhead, frames_in) = if fuzzed_head {
        body.split_at(head_end(body).unwrap_or(body.len()))
    } else {
        (&[][..], body)
    };
    let frames = if flags & 8 != 0 {
        frames_in.to_vec()
    } else {
        ws::build_frames(
            frames_in,
            false,
            &Lim {
                max_message,
                max_frame,
                auto,
                deflate: false,
            },
        )
    };

    let port = {
        let mut l = LISTENER.lock().unwrap();
        let l = l.get_or_insert_with(|| {
            ignore_sigpipe();
            let l = TcpListener::bind("127.0.0.1:0").expect("listen");
            l.set_nonblocking(true).unwrap();
            l
        });
        l.local_addr().unwrap().port()
    };
    let rc = unisock_create(CLIENT, WEBSOCKET_CLIENT);
    check_result(rc, "create");
    assert_eq!(
        rc,
        ResultCode::Ok,
        "create WEBSOCKET_CLIENT: {}",
        last_error()
    );
    set(WS_PING_INTERVAL, 0);
    set(WS_MAX_MESSAGE_SIZE, max_message as i64);
    set(WS_FRAME_SIZE_LIMIT, max_frame as i64);
    set(WS_AUTO_PING, auto as i64);
    set(WS_COMPRESSION, compress as i64);
    let url = CString::new(format!("ws://127.0.0.1:{port}/chat?x=1")).unwrap();
    let rc = unisock_connect(CLIENT, url.as_ptr() as *const c_char);
    check_result(rc, "connect");
    assert_eq!(rc, ResultCode::Ok, "connect: {}", last_error());

    let start = Instant::now();
    let stream = loop {
        let early = dispatch();
        assert!(
            early.is_empty(),
            "events before the connection was accepted: {early:?}"
        );
        match LISTENER.lock().unwrap().as_ref().unwrap().accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("accept: {e}"),
        }
        assert!(start.elapsed() < BUDGET, "the client never connected");
        wait_reactor(2);
    };
    stream.set_nodelay(true).unwrap();
    stream.set_nonblocking(true).unwrap();
    let mut st = St {
        stream,
        reads: Vec::new(),
        closed: false,
        cbuf: Vec::new(),
        eof: false,
        reset: false,
        start,
    };
    st.until("the client's request", |st| {
        head_end(&st.cbuf).is_some() || st.eof
    });
    let req_end = head_end(&st.cbuf).expect("the client sent no request head");
    let key = check_request(&String::from_utf8_lossy(&st.cbuf[..req_end]), compress);
    assert!(
        st.reads.is_empty() && !st.closed,
        "events before the answer: {:?}",
        st.reads
    );
    st.cbuf.drain(..req_end);

    let head = if fuzzed_head {
        fhead.to_vec()
    } else {
        let mut h = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
            tungstenite::handshake::derive_accept_key(key.as_bytes())
        );
        if compress {
            h.push_str("Sec-WebSocket-Extensions: permessage-deflate\r\n");
        }
        h.push_str("\r\n");
        h.into_bytes()
    };
    let payload = [head, frames.clone()].concat();
    let cuts = cut_positions(spec, payload.len());
    let mut written = 0i64;
    'pieces: for p in pieces(&payload, &cuts) {
        let mut off = 0;
        while off < p.len() {
            match st.stream.write(&p[off..]) {
                Ok(n) => {
                    off += n;
                    written += n as i64;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if !st.step() {
                        wait(st.stream.as_raw_fd(), 5);
                    }
                    assert!(st.start.elapsed() < BUDGET, "write stalled");
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) =>
                {
                    st.reset = true;
                    break 'pieces;
                }
                Err(e) => panic!("write: {e}"),
            }
        }
        let target = written;
        st.until("piece taken", |st| {
            st.closed || bytes_in(CLIENT) == Some(target)
        });
        if st.closed {
            break;
        }
    }
    // With a valid 101 the model knows how the stream ends: a failure or the
    // peer's close ends the connection (a failure behind messages on a later
    // dispatch, once LPC had them).
    let opened_now = st
        .reads
        .first()
        .is_some_and(|v| v.get("type").and_then(Value::as_str) == Some("open"));
    if !fuzzed_head && opened_now {
        let lim = Lim {
            max_message,
            max_frame,
            auto,
            deflate: compress,
        };
        let m = ws::model(&frames, false, &lim);
        if matches!(m.end, End::Fail(_) | End::Closed) {
            st.until("the end the model says", |st| st.closed);
        }
    }
    if st.closed {
        st.until("the client's end", |st| st.eof);
    }

    let mut lim = Lim {
        max_message,
        max_frame,
        auto,
        deflate: false,
    };
    let gots: Vec<Got> = st.reads.iter().map(|v| ws::got(v, &lim)).collect();
    let opened = matches!(gots.first(), Some(Got::Open { .. }));
    if let Some(Got::Open { subprotocol, path }) = gots.first() {
        assert_eq!(subprotocol, "");
        assert_eq!(path, "/chat?x=1");
    }
    if !fuzzed_head && !compress {
        assert!(opened, "a valid 101 gave no open: {gots:?}");
    }
    if !opened {
        if let Some(g) = gots.first() {
            assert!(matches!(g, Got::Error { .. }), "the first READ is {g:?}");
            assert_eq!(gots.len(), 1, "READs after the error: {gots:?}");
            st.until("CLOSE after the error", |st| st.closed);
        }
        if st.closed {
            assert_eq!(
                gots.len(),
                1,
                "a handshake that failed without an error mapping"
            );
        }
        assert!(
            st.cbuf.is_empty() || !st.closed,
            "bytes after the request of a client that never opened: {:?}",
            st.cbuf
        );
    } else {
        let items: Vec<Item> = gots[1..]
            .iter()
            .map(|g| match g {
                Got::Item(i) => i.clone(),
                g => panic!("{g:?} after the open"),
            })
            .collect();
        let closes = items
            .iter()
            .filter(|i| matches!(i, Item::Close(..)))
            .count();
        assert!(closes <= 1, "more than one close mapping: {items:?}");
        if closes == 1 {
            assert!(matches!(items.last(), Some(Item::Close(..))), "{items:?}");
            st.until("CLOSE after the close mapping", |st| st.closed);
        }
        if st.closed {
            assert_eq!(
                closes, 1,
                "an open connection ended without a close mapping"
            );
        }
        lim.deflate = compress;
        if !fuzzed_head {
            let m = ws::model(&frames, false, &lim);
            ws::check_items(&items, &m, !st.closed);
            if !st.closed && m.end == End::Open {
                let want = m.replies.len();
                st.until("the pongs due", |st| {
                    st.eof || ws::parse_sent(&st.cbuf, true, compress).0.len() >= want
                });
            }
            let (sent, _) = ws::parse_sent(&st.cbuf, true, compress);
            ws::check_replies(&sent, &m, !st.reset);
        } else {
            ws::parse_sent(&st.cbuf, true, compress);
        }
    }

    let rc = unisock_close(CLIENT);
    if st.closed {
        assert_eq!(rc, ResultCode::EeBadf, "socket outlived its CLOSE");
    } else {
        assert_eq!(rc, ResultCode::Ok, "close: {}", last_error());
    }
    drop(st.stream);
    for e in dispatch() {
        assert_ne!(e.socket, CLIENT, "event for a closed socket: {e:?}");
    }
});
