//! DATAGRAM (2) and DATAGRAM_BINARY (4) through the C ABI.
//!
//! Once per process: one socket of each mode bound on 127.0.0.1 port 0, and a
//! std UdpSocket peer on 127.0.0.1. Each input is sent as one datagram to
//! both; dispatching (bounded) must give exactly one READ per socket whose
//! data is the input (a string when it is valid UTF-8 in mode 2, else a
//! buffer; always a buffer in mode 4) and whose address is "127.0.0.1 <peer
//! port>". The input then goes back the other way with unisock_write (as a
//! buffer, and as a string when valid UTF-8) and must arrive unchanged.
//! All traffic stays on 127.0.0.1.
#![no_main]

use std::ffi::{c_char, CString};
use std::net::UdpSocket;
use std::ptr;
use std::sync::Mutex;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

use unisock::ffi::sockets::{unisock_address, unisock_bind, unisock_create, unisock_write};
use unisock::ffi::values::{unisock_value_new_buffer, unisock_value_new_string, UnisockValue};
use unisock::{ResultCode, Value};
use unisock_fuzz::*;

const TEXT: i32 = 20;
const BINARY: i32 = 21;

struct Setup {
    peer: UdpSocket,
    peer_addr: String,
    /// (socket id, mode, port)
    socks: [(i32, i64, u16); 2],
}

static SETUP: Mutex<Option<Setup>> = Mutex::new(None);

fn local_port(id: i32) -> u16 {
    let mut a: *mut UnisockValue = ptr::null_mut();
    assert_eq!(unisock_address(id, 1, &mut a), ResultCode::Ok);
    let Value::Str(s) = read_value(Owned(a).as_ptr()) else {
        panic!("no local address")
    };
    assert!(s.starts_with("127.0.0.1 "), "{s}");
    s.rsplit(' ').next().unwrap().parse().unwrap()
}

fn setup() -> Setup {
    ignore_sigpipe();
    let mut socks = [(TEXT, 2i64, 0u16), (BINARY, 4, 0)];
    for (id, mode, port) in socks.iter_mut() {
        assert_eq!(
            unisock_create(*id, *mode),
            ResultCode::Ok,
            "create: {}",
            last_error()
        );
        let addr = b"127.0.0.1 0\0";
        let rc = unisock_bind(*id, 0, addr.as_ptr() as *const c_char);
        assert_eq!(rc, ResultCode::Ok, "bind: {}", last_error());
        *port = local_port(*id);
    }
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let peer_addr = format!("127.0.0.1 {}", peer.local_addr().unwrap().port());
    Setup {
        peer,
        peer_addr,
        socks,
    }
}

fn expected(mode: i64, data: &[u8]) -> Value {
    match (mode, std::str::from_utf8(data)) {
        (2, Ok(s)) => Value::Str(s.to_string()),
        _ => Value::Buffer(data.to_vec()),
    }
}

fn send_back(s: &Setup, id: i32, value: *const UnisockValue, data: &[u8]) {
    let target = CString::new(s.peer_addr.clone()).unwrap();
    let rc = unisock_write(id, value, target.as_ptr());
    check_result(rc, "datagram write");
    assert_eq!(rc, ResultCode::Ok, "datagram write: {}", last_error());
    let mut buf = vec![0u8; 70000];
    let (n, from) = s.peer.recv_from(&mut buf).expect("datagram from unisock");
    assert_eq!(from.port(), s.socks.iter().find(|x| x.0 == id).unwrap().2);
    assert_eq!(&buf[..n], data, "datagram written by unisock differs");
}

fuzz_target!(|data: &[u8]| {
    // The largest UDP payload over IPv4.
    let data = &data[..data.len().min(65507)];
    let mut guard = SETUP.lock().unwrap();
    let s = guard.get_or_insert_with(setup);

    for &(_, _, port) in &s.socks {
        let n = s
            .peer
            .send_to(data, ("127.0.0.1", port))
            .expect("send to unisock");
        assert_eq!(n, data.len());
    }
    let evs = dispatch_until("datagram reads", 500, 10, |evs| {
        s.socks
            .iter()
            .all(|(id, _, _)| evs.iter().any(|e| e.socket == *id && e.kind == EV_READ))
    });
    for (id, mode, _) in &s.socks {
        let mine: Vec<&Ev> = evs.iter().filter(|e| e.socket == *id).collect();
        assert_eq!(mine.len(), 1, "socket {id}: events {mine:?}");
        let e = mine[0];
        assert_eq!(e.kind, EV_READ, "{e:?}");
        let want = expected(*mode, data);
        assert_eq!(e.data.as_ref(), Some(&want), "mode {mode} READ data");
        assert_eq!(e.addr.as_deref(), Some(s.peer_addr.as_str()), "READ addr");
    }
    for e in &evs {
        assert!(e.socket == TEXT || e.socket == BINARY, "stray event {e:?}");
    }

    // And back: a buffer from each socket, a string from the text one.
    let p = if data.is_empty() {
        ptr::null()
    } else {
        data.as_ptr()
    };
    let mut b: *mut UnisockValue = ptr::null_mut();
    assert_eq!(
        unisock_value_new_buffer(p, data.len(), &mut b),
        ResultCode::Ok
    );
    let b = Owned(b);
    send_back(s, TEXT, b.as_ptr(), data);
    send_back(s, BINARY, b.as_ptr(), data);
    if std::str::from_utf8(data).is_ok() {
        let mut v: *mut UnisockValue = ptr::null_mut();
        assert_eq!(
            unisock_value_new_string(p as *const c_char, data.len(), &mut v),
            ResultCode::Ok
        );
        let v = Owned(v);
        send_back(s, TEXT, v.as_ptr(), data);
    }
    // Sends count in the statistics; nothing else may be queued.
    for (id, _, _) in &s.socks {
        let st = get_option(*id, 18).expect("SO_STATISTICS");
        assert!(field_int(&st, "messages_out").unwrap_or(0) > 0);
    }
    assert!(dispatch().is_empty());
});
