//! socket_close purges queued events of its id, even when the socket died
//! already, so a socket that reuses the number never sees them.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use unisock::core::{EventKind, Unisock};
use unisock::{ResultCode, Value};

fn pump_until(u: &mut Unisock, mut done: impl FnMut(&Unisock) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(u) {
        assert!(Instant::now() < deadline, "timed out");
        u.dispatch().unwrap();
        std::thread::yield_now();
    }
}

#[test]
fn close_purges_events_of_a_dead_socket() {
    let mut u = Unisock::new(unisock::registry::FAMILIES).unwrap();
    u.create(1, 1).unwrap();
    u.bind(1, 0, Some("127.0.0.1 0")).unwrap();
    u.listen(1).unwrap();
    let Value::Str(addr) = u.address(1, true).unwrap() else {
        panic!("no address")
    };
    let port: u16 = addr.split(' ').nth(1).unwrap().parse().unwrap();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"bye").unwrap();
    drop(c);
    pump_until(&mut u, |u| u.pending_events() > 0);
    assert_eq!(u.next_event().unwrap().kind, EventKind::Listen);
    u.accept(1, 2).unwrap(); // data and EOF are already there: READ and CLOSE are queued
    assert!(u.pending_events() >= 1);
    assert_eq!(u.close(2).unwrap_err().code, ResultCode::EeBadf);
    u.create(2, 1).unwrap();
    assert!(
        u.next_event().is_none(),
        "a stale event reached the reused id"
    );
}
