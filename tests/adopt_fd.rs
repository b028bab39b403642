//! unisock_adopt_fd: a connected stream fd handed over by the driver
//! (external_start's socketpair end) becomes a STREAM socket on the reactor.

use std::io::{Read, Write};
use std::os::fd::{BorrowedFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use unisock::ffi::events::*;
use unisock::ffi::sockets::*;
use unisock::ffi::values::*;
use unisock::ResultCode;

/// Runs the reactor until an event for `socket` of `kind` arrives (bounded).
fn wait_event(kind: u32, socket: i32) -> Option<Vec<u8>> {
    let mut fd = -1;
    assert_eq!(unisock_reactor_fd(&mut fd), ResultCode::Ok);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        // SAFETY (test): the reactor fd stays open for the life of the library.
        let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
        let _ = poll(
            &mut [PollFd::new(bfd, PollFlags::POLLIN)],
            PollTimeout::from(100u16),
        );
        assert_eq!(unisock_dispatch(std::ptr::null_mut()), ResultCode::Ok);
        loop {
            let mut ev = std::ptr::null_mut();
            assert_eq!(unisock_next_event(&mut ev), ResultCode::Ok);
            if ev.is_null() {
                break;
            }
            let found = unisock_event_get_kind(ev) == kind && unisock_event_socket(ev) == socket;
            let mut bytes = Vec::new();
            let data = unisock_event_data(ev);
            if !data.is_null() {
                let (mut p, mut n) = (std::ptr::null(), 0usize);
                if unisock_value_bytes(data, &mut p, &mut n) == ResultCode::Ok {
                    // SAFETY (test): p/n describe the event's data, alive until the free below.
                    bytes = unsafe { std::slice::from_raw_parts(p, n) }.to_vec();
                }
            }
            unisock_event_free(ev);
            if found {
                return Some(bytes);
            }
        }
    }
    None
}

#[test]
fn adopted_fd_reads_writes_and_closes() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let id = 77;
    assert_eq!(unisock_adopt_fd(id, ours.into_raw_fd(), 1), ResultCode::Ok);
    let mut peer = theirs;
    peer.write_all(b"from the child").unwrap();
    assert_eq!(wait_event(1, id).as_deref(), Some(&b"from the child"[..]));

    let mut v = std::ptr::null_mut();
    assert_eq!(
        unisock_value_new_string(b"to the child".as_ptr().cast(), 12, &mut v),
        ResultCode::Ok
    );
    assert_eq!(unisock_write(id, v, std::ptr::null()), ResultCode::Ok);
    unisock_value_free(v);
    let mut buf = [0u8; 12];
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    peer.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"to the child");

    drop(peer);
    assert!(
        wait_event(3, id).is_some(),
        "close event after the peer went"
    );
    assert_eq!(unisock_close(id), ResultCode::EeBadf);
    // Modes that cannot adopt are refused (and the fd is closed, as documented).
    let (a, _b) = UnixStream::pair().unwrap();
    assert_eq!(
        unisock_adopt_fd(78, a.into_raw_fd(), 2),
        ResultCode::EeModenotsupp
    );
}
