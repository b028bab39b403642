//! The MUD-frame input path.
//!
//! 1. Pure and fast: `MudDecoder::push` and `Utf8Chunker::push` are fed the
//!    payload cut at fuzzer-chosen split points; the frames (and text) must
//!    not depend on where the cuts are.
//! 2. End to end through the C ABI: a MUD listener on 127.0.0.1 (created once
//!    per process) and a std TcpStream client; the payload is written in the
//!    same chunks (dispatching between them, so the cuts really reach the
//!    decoder), and the READ events must be exactly the frames an independent
//!    reference decoder finds, each delivered as a string; a bad length must
//!    close the socket with a CLOSE event. The connection is re-made whenever
//!    it closed or a partial frame was left over, so every input starts from
//!    a clean decoder and crashes reproduce from one input.
//!
//! Input layout: byte 0 = number of cuts (mod 5), then 2 bytes per cut
//! (little endian, taken modulo the payload length + 1), then the payload.
#![no_main]

use std::ffi::c_char;
use std::io::Write;
use std::net::TcpStream;
use std::ptr;
use std::sync::Mutex;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

use unisock::ffi::sockets::{
    socket_set_option, unisock_accept, unisock_address, unisock_bind, unisock_close,
    unisock_create, unisock_listen, unisock_socket_count,
};
use unisock::ffi::values::{unisock_value_new_int, UnisockValue};
use unisock::legacy::framing::{split_text, MudDecoder, Utf8Chunker, MAX_CHUNK};
use unisock::{ResultCode, Value};
use unisock_fuzz::*;

const LISTENER: i32 = 10;
const CONN: i32 = 11;
/// SO_MAX_BUFFERED on the listener (inherited by accepted sockets): the
/// largest MUD frame accepted. The option's minimum, so both the accepting
/// and the refusing paths are reachable with small inputs.
const MAX_FRAME: usize = 4096;

struct Link {
    port: u16,
    client: Option<TcpStream>,
    /// Bytes written on the current connection.
    written: u64,
}

static LINK: Mutex<Option<Link>> = Mutex::new(None);

fn setup() -> Link {
    ignore_sigpipe();
    check_result(unisock_create(LISTENER, 0), "create listener");
    let addr = b"127.0.0.1 0\0";
    let rc = unisock_bind(LISTENER, 0, addr.as_ptr() as *const c_char);
    assert_eq!(rc, ResultCode::Ok, "bind: {}", last_error());
    let mut v: *mut UnisockValue = ptr::null_mut();
    assert_eq!(
        unisock_value_new_int(MAX_FRAME as i64, &mut v),
        ResultCode::Ok
    );
    let v = Owned(v);
    assert_eq!(socket_set_option(LISTENER, 17, v.as_ptr()), ResultCode::Ok);
    assert_eq!(
        unisock_listen(LISTENER),
        ResultCode::Ok,
        "listen: {}",
        last_error()
    );
    let mut a: *mut UnisockValue = ptr::null_mut();
    assert_eq!(unisock_address(LISTENER, 1, &mut a), ResultCode::Ok);
    let Value::Str(local) = read_value(Owned(a).as_ptr()) else {
        panic!("no local address")
    };
    let port: u16 = local.rsplit(' ').next().unwrap().parse().unwrap();
    Link {
        port,
        client: None,
        written: 0,
    }
}

fn connect(link: &mut Link) {
    let c = TcpStream::connect(("127.0.0.1", link.port)).expect("connect to the listener");
    c.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    c.set_nodelay(true).unwrap();
    dispatch_until("listen event", 200, 10, |evs| {
        evs.iter()
            .any(|e| e.kind == EV_LISTEN && e.socket == LISTENER)
    });
    let rc = unisock_accept(LISTENER, CONN);
    check_result(rc, "accept");
    assert_eq!(rc, ResultCode::Ok, "accept: {}", last_error());
    assert_eq!(
        get_option(CONN, 17),
        Ok(Value::Int(MAX_FRAME as i64)),
        "options inherited"
    );
    link.client = Some(c);
    link.written = 0;
}

fn disconnect(link: &mut Link, server_alive: bool) {
    if server_alive {
        assert_eq!(unisock_close(CONN), ResultCode::Ok);
    } else {
        assert_eq!(
            unisock_close(CONN),
            ResultCode::EeBadf,
            "socket outlived its CLOSE"
        );
    }
    link.client = None;
    // Drain whatever the old connection still produced (none may be for CONN).
    for e in dispatch() {
        assert_ne!(e.socket, CONN, "event for a closed socket: {e:?}");
    }
}

/// Independent reference: the frames of `stream` and whether a bad length
/// comes up (with the number of bytes consumed when it does).
fn reference(stream: &[u8]) -> (Vec<Vec<u8>>, Option<usize>, usize) {
    let mut frames = Vec::new();
    let mut at = 0;
    while stream.len() - at >= 4 {
        let len = u32::from_be_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 || len > MAX_FRAME {
            return (frames, Some(at + 4), at);
        }
        if stream.len() - at - 4 < len {
            break;
        }
        frames.push(stream[at + 4..at + 4 + len].to_vec());
        at += 4 + len;
    }
    (frames, None, at)
}

fn cuts(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let (spec, payload) = cut_spec(data, 5);
    (cut_positions(spec, payload.len()), payload)
}

/// Part 1: the pure decoders.
fn pure(payload: &[u8], cuts: &[usize]) {
    // MudDecoder: whole vs cut.
    let (want, bad, _) = reference(payload);
    let mut whole = MudDecoder::default();
    let (whole_frames, whole_err) = whole.push(payload, MAX_FRAME);
    assert_eq!(whole_frames, want, "whole push frames");
    assert_eq!(whole_err.is_some(), bad.is_some(), "whole push bad-length detection");
    // Cut anywhere: the same frames, and the bad length (if any) found all the same.
    let mut d = MudDecoder::default();
    let mut got = Vec::new();
    let mut failed = false;
    for p in pieces(payload, cuts) {
        let (f, err) = d.push(p, MAX_FRAME);
        got.extend(f);
        if err.is_some() {
            failed = true;
            break;
        }
    }
    assert_eq!(failed, bad.is_some(), "bad length detection depends on cuts");
    assert_eq!(got, want, "frames depend on where the stream is cut");

    // Utf8Chunker: concatenated output equals the lossy decoding of the whole.
    let mut c = Utf8Chunker::default();
    let mut text = String::new();
    for p in pieces(payload, cuts) {
        let s = c.push(p);
        text.push_str(&s);
    }
    text.push_str(&c.finish());
    let lossy = String::from_utf8_lossy(payload);
    if std::str::from_utf8(payload).is_ok() {
        assert_eq!(text, lossy, "valid UTF-8 changed by chunking");
    } else {
        assert_eq!(text, lossy, "invalid UTF-8 replaced differently when cut");
    }
    // split_text: bounded chunks on character boundaries, nothing lost.
    let parts = split_text(text.clone());
    assert!(parts.iter().all(|p| !p.is_empty() && p.len() <= MAX_CHUNK));
    assert_eq!(parts.concat(), text);
}

/// Part 2: end to end through the reactor.
fn end_to_end(payload: &[u8], cuts: &[usize]) {
    let mut guard = LINK.lock().unwrap();
    let link = guard.get_or_insert_with(setup);
    if link.client.is_none() {
        connect(link);
    }
    let (want, bad, _) = reference(payload);
    let want: Vec<String> = want
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();

    let mut reads: Vec<String> = Vec::new();
    let mut closed = false;
    let mut fed = 0usize;
    for p in pieces(payload, cuts) {
        if p.is_empty() {
            continue;
        }
        let client = link.client.as_mut().unwrap();
        client.write_all(p).expect("write to the MUD socket");
        link.written += p.len() as u64;
        fed += p.len();
        let target = link.written as i64;
        // Dispatch until the server has taken every byte (or closed).
        let evs = dispatch_until("mud bytes_in", 500, 10, |evs| {
            evs.iter().any(|e| e.kind == EV_CLOSE) || bytes_in(CONN) == Some(target)
        });
        for e in evs {
            assert_eq!(e.socket, CONN, "event for another socket: {e:?}");
            assert!(e.addr.is_none(), "stream event with an address: {e:?}");
            match e.kind {
                EV_READ => {
                    assert!(!closed, "READ after CLOSE");
                    match e.data {
                        Some(Value::Str(s)) => reads.push(s),
                        other => panic!("MUD READ data is not a string: {other:?}"),
                    }
                }
                EV_CLOSE => {
                    assert!(!closed, "two CLOSE events");
                    match &e.data {
                        None | Some(Value::Str(_)) => {}
                        other => panic!("CLOSE reason is not a string: {other:?}"),
                    }
                    closed = true;
                }
                EV_WRITE => {}
                k => panic!("unexpected event kind {k} on a MUD connection"),
            }
        }
        if closed {
            break;
        }
        if let Some(b) = bad {
            assert!(fed < b, "bad length fed but no CLOSE");
        }
    }
    match bad {
        None => {
            assert!(!closed, "closed without a bad length; frames {reads:?}");
            assert_eq!(reads, want, "delivered frames differ from the reference");
        }
        Some(_) => {
            assert!(closed, "bad MUD length did not close the socket");
            assert_eq!(reads, want, "frames before the bad length were lost");
        }
    }
    if closed {
        // CLOSE ends the socket: the id is free, operations answer EEBADF.
        assert_eq!(get_option(CONN, 17), Err(ResultCode::EeBadf));
        disconnect(link, false);
    } else if reference(payload).2 != payload.len() {
        // A partial frame is buffered: start the next input afresh.
        disconnect(link, true);
    }
}

fuzz_target!(|data: &[u8]| {
    let (cuts, payload) = cuts(data);
    pure(payload, &cuts);
    end_to_end(payload, &cuts);
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
});
