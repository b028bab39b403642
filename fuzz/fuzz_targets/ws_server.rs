//! `ws_server`: a WEBSOCKET_SERVER (mode 16) through the C ABI, made once
//! per process (unisock_create / unisock_bind / unisock_listen, the default
//! policy), and a std TcpStream client per input, accepted with
//! unisock_accept. Before each connection the listener gets the input's
//! WS_MAX_MESSAGE_SIZE and WS_FRAME_SIZE_LIMIT (128..4096), WS_AUTO_PING and
//! WS_COMPRESSION (copied to the connection it accepts). The client writes a
//! handshake head (a fixed valid one, offering permessage-deflate when
//! WS_COMPRESSION is 1, or the fuzzer's bytes) and then frames, in the
//! fuzzer's pieces, and the target dispatches until the server has every
//! byte (SO_STATISTICS bytes_in) or has closed (bounded: 5 s per input).
//!
//! Checks, through the C getters: every event is for the connection; READs
//! are mappings of the documented keys and types (`ws::got`), the first is
//! the one "open" (with the fixed head always, with the path and no
//! subprotocol), none without it, no ping/pong with WS_AUTO_PING 1, no
//! message over WS_MAX_MESSAGE_SIZE, close codes in the allowed set, a close
//! mapping last before the CLOSE event and nothing after that; with the fixed
//! head the messages, the failure code and the frames the server sends
//! (pongs, the close) are exactly what the reference model (fuzz/src/ws.rs)
//! says; the client reads a 101 with the right Sec-WebSocket-Accept (or, for a
//! refused head, an HTTP 4xx and EOF) and then only well-formed unmasked
//! frames.
//!
//! Input: byte 0: bit 0 the fuzzer's head (up to its first CRLFCRLF), bit 1
//! WS_COMPRESSION, bit 2 WS_AUTO_PING, bit 3 raw frames (else
//! `ws::build_frames`), bits 4–6 the number of cuts; bytes 1–2 and 3–4 the
//! limits (128 + n % 3969); 2 bytes per cut (over head + frames); then the
//! head (if the fuzzer's) and the frames.
#![no_main]

use std::ffi::c_char;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;

use unisock::ffi::events::unisock_reactor_fd;
use unisock::ffi::sockets::{
    socket_set_option_int, unisock_accept, unisock_bind, unisock_close, unisock_create,
    unisock_listen,
};
use unisock::{ResultCode, Value};
use unisock_fuzz::ws::{self, End, Got, Item, Lim};
use unisock_fuzz::*;

/// The first listener's id (the second is 42).
const LISTENER: i32 = 40;
const CONN: i32 = 41;
const WEBSOCKET_SERVER: i64 = 16;
const WS_MAX_MESSAGE_SIZE: i64 = 123;
const WS_PING_INTERVAL: i64 = 124;
const WS_COMPRESSION: i64 = 126;
const WS_FRAME_SIZE_LIMIT: i64 = 128;
const WS_AUTO_PING: i64 = 129;
/// The statuses a refused handshake may get: the HTTP parser's rejects,
/// 403 (Origin) and 426 (version).
const REFUSALS: [u16; 9] = [400, 403, 413, 414, 417, 426, 431, 501, 505];
const BUDGET: Duration = Duration::from_secs(5);
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// RFC 6455 §1.3's accept value for KEY.
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The ports of the two listeners: WS_COMPRESSION 0 (id 40) and 1 (id 42),
/// which can only be set before listening.
static PORTS: Mutex<Option<[u16; 2]>> = Mutex::new(None);

fn listener(compress: bool) -> i32 {
    LISTENER + 2 * compress as i32
}

fn setup() -> [u16; 2] {
    ignore_sigpipe();
    [false, true].map(|compress| {
        let id = listener(compress);
        let rc = unisock_create(id, WEBSOCKET_SERVER);
        check_result(rc, "create");
        assert_eq!(
            rc,
            ResultCode::Ok,
            "create WEBSOCKET_SERVER: {}",
            last_error()
        );
        set(id, WS_PING_INTERVAL, 0);
        set(id, WS_COMPRESSION, compress as i64);
        let addr = b"127.0.0.1 0\0";
        assert_eq!(
            unisock_bind(id, 0, addr.as_ptr() as *const c_char),
            ResultCode::Ok,
            "bind: {}",
            last_error()
        );
        assert_eq!(
            unisock_listen(id),
            ResultCode::Ok,
            "listen: {}",
            last_error()
        );
        let mut a: *mut unisock::ffi::values::UnisockValue = std::ptr::null_mut();
        let rc = unisock::ffi::sockets::unisock_address(id, 1, &mut a);
        assert_eq!(rc, ResultCode::Ok, "address: {}", last_error());
        let Value::Str(local) = read_value(Owned(a).as_ptr()) else {
            panic!("no local address")
        };
        local.rsplit(' ').next().unwrap().parse().unwrap()
    })
}

fn set(id: i32, opt: i64, v: i64) {
    let rc = socket_set_option_int(id, opt, v);
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
            assert_eq!(e.socket, CONN, "event for another socket: {e:?}");
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

fn fixed_head(compress: bool) -> Vec<u8> {
    let mut h = format!(
        "GET /chat?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if compress {
        h.push_str("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
    }
    h.push_str("\r\n");
    h.into_bytes()
}

/// Whether the 101 `h` agrees permessage-deflate.
fn agreed(h: &str) -> bool {
    h.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("sec-websocket-extensions:")
            && l.contains("permessage-deflate")
    })
}

fn head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
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
    let (head, frames_in) = if fuzzed_head {
        body.split_at(head_end(body).unwrap_or(body.len()))
    } else {
        (&[][..], body)
    };
    let head = if fuzzed_head {
        head.to_vec()
    } else {
        fixed_head(compress)
    };
    let frames = if flags & 8 != 0 {
        frames_in.to_vec()
    } else {
        ws::build_frames(
            frames_in,
            true,
            &Lim {
                max_message,
                max_frame,
                auto,
                deflate: false,
            },
        )
    };
    let payload = [head.clone(), frames.clone()].concat();
    let cuts = cut_positions(spec, payload.len());

    let ports = *PORTS.lock().unwrap().get_or_insert_with(setup);
    let (lid, port) = (listener(compress), ports[compress as usize]);
    set(lid, WS_MAX_MESSAGE_SIZE, max_message as i64);
    set(lid, WS_FRAME_SIZE_LIMIT, max_frame as i64);
    set(lid, WS_AUTO_PING, auto as i64);

    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_nodelay(true).unwrap();
    let evs = dispatch_until("listen event", 500, 10, |evs| {
        evs.iter().any(|e| e.kind == EV_LISTEN)
    });
    for e in &evs {
        assert!(e.kind == EV_LISTEN && e.socket == lid, "unexpected {e:?}");
    }
    let rc = unisock_accept(lid, CONN);
    check_result(rc, "accept");
    assert_eq!(rc, ResultCode::Ok, "accept: {}", last_error());
    stream.set_nonblocking(true).unwrap();
    let mut st = St {
        stream,
        reads: Vec::new(),
        closed: false,
        cbuf: Vec::new(),
        eof: false,
        reset: false,
        start: Instant::now(),
    };

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
                    assert!(st.start.elapsed() < BUDGET, "client write stalled");
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) =>
                {
                    st.reset = true;
                    break 'pieces;
                }
                Err(e) => panic!("client write: {e}"),
            }
        }
        let target = written;
        st.until("piece taken", |st| {
            st.closed || bytes_in(CONN) == Some(target)
        });
        if st.closed {
            break;
        }
    }
    // With the fixed head the model knows how the stream ends: a failure or
    // the peer's close ends the connection (a failure behind messages on a
    // later dispatch, once LPC had them).
    let mut fixed_model = None;
    if !fuzzed_head {
        st.until("the 101 reaches the client", |st| {
            st.eof || head_end(&st.cbuf).is_some()
        });
        let h = String::from_utf8_lossy(&st.cbuf[..head_end(&st.cbuf).unwrap_or(0)]).to_string();
        let lim = Lim {
            max_message,
            max_frame,
            auto,
            deflate: agreed(&h),
        };
        let m = ws::model(&frames, true, &lim);
        if matches!(m.end, End::Fail(_) | End::Closed) {
            st.until("the end the model says", |st| st.closed);
        }
        fixed_model = Some(m);
    }
    if st.closed {
        st.until("the server's end reaches the client", |st| st.eof);
    }

    // The READ mappings.
    let head_lim = Lim {
        max_message,
        max_frame,
        auto,
        deflate: false,
    };
    let gots: Vec<Got> = st.reads.iter().map(|v| ws::got(v, &head_lim)).collect();
    let opened = matches!(gots.first(), Some(Got::Open { .. }));
    if !fuzzed_head {
        assert!(opened, "the fixed head gave no open: {gots:?}");
    }
    if !opened {
        assert!(gots.is_empty(), "READs without an open: {gots:?}");
    }
    if let Some(Got::Open { subprotocol, path }) = gots.first() {
        assert_eq!(subprotocol, "", "a subprotocol nobody asked for");
        if !fuzzed_head {
            assert_eq!(path, "/chat?x=1");
        }
    }
    let items: Vec<Item> = gots
        .iter()
        .skip(opened as usize)
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
        assert!(
            matches!(items.last(), Some(Item::Close(..))),
            "after the close mapping: {items:?}"
        );
        // The CLOSE event follows (it may still be on its way).
        st.until("CLOSE after the close mapping", |st| st.closed);
    }
    if opened && st.closed {
        assert_eq!(
            closes, 1,
            "an open connection ended without a close mapping: {items:?}"
        );
    }

    // What the client received: the answer to the handshake, then frames.
    if opened {
        st.until("the 101 reaches the client", |st| {
            st.eof || head_end(&st.cbuf).is_some()
        });
    }
    let end = head_end(&st.cbuf);
    if opened {
        let end = end.expect("open, but no complete 101 at the client");
        let h = String::from_utf8_lossy(&st.cbuf[..end]).to_string();
        assert!(h.starts_with("HTTP/1.1 101 "), "open but {h:?}");
        let agreed = agreed(&h);
        assert!(
            compress || !agreed,
            "compression without WS_COMPRESSION: {h:?}"
        );
        if !fuzzed_head {
            assert!(
                h.contains(&format!("\r\nSec-WebSocket-Accept: {ACCEPT}\r\n")),
                "accept key: {h:?}"
            );
            let m = fixed_model.expect("the model of the fixed head");
            let all_taken = !st.closed;
            ws::check_items(&items, &m, all_taken);
            if !st.closed && m.end == End::Open {
                // The pongs due reach the client.
                let want = m.replies.len();
                st.until("the pongs due", |st| {
                    st.eof || ws::parse_sent(&st.cbuf[end..], false, agreed).0.len() >= want
                });
            }
            let (sent, _) = ws::parse_sent(&st.cbuf[end..], false, agreed);
            ws::check_replies(&sent, &m, !st.reset);
        } else {
            let (_, used) = ws::parse_sent(&st.cbuf[end..], false, agreed);
            if st.eof && !st.reset {
                assert_eq!(end + used, st.cbuf.len(), "a partial frame before EOF");
            }
        }
    } else if st.closed && !st.reset {
        let end = end.expect("a refused handshake without a complete response");
        let h = String::from_utf8_lossy(&st.cbuf[..end]).to_string();
        let status: u16 = h.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!(
            h.starts_with("HTTP/1.1 ") && REFUSALS.contains(&status),
            "a refusal with another status: {h:?}"
        );
    } else {
        assert!(
            st.cbuf.is_empty(),
            "bytes before the handshake was answered: {:?}",
            st.cbuf
        );
    }

    // Done with this connection.
    let rc = unisock_close(CONN);
    if st.closed {
        assert_eq!(rc, ResultCode::EeBadf, "socket outlived its CLOSE");
    } else {
        assert_eq!(rc, ResultCode::Ok, "close: {}", last_error());
    }
    drop(st.stream);
    for e in dispatch() {
        assert_ne!(e.socket, CONN, "event for a closed socket: {e:?}");
    }
});
