//! The driver's side of the reactor: one fd to watch, a dispatch call when it
//! is readable, and the events to turn into LPC callbacks.

use std::ffi::{c_char, CString};

use super::castable::{
    free_box, to_boxed_mut_ptr, to_const_ptr, try_ref_from_ptr, Castable, OwnershipBox,
};
use super::values::UnisockValue;
use super::{boundary, boundary_value, null, put, with_context};
use crate::core::{Event, EventKind};
use crate::error::ResultCode;

/// One event (opaque to C); owned by the caller of unisock_next_event.
pub struct UnisockEvent {
    event: Event,
    addr: Option<CString>,
}

impl Castable for UnisockEvent {
    type Ownership = OwnershipBox;
    type RustType = UnisockEvent;
}

fn event_ref<'a>(e: *const UnisockEvent) -> Option<&'a UnisockEvent> {
    try_ref_from_ptr(e)
}

/// The reactor's file descriptor into `*out` (non-blocking): add it to the
/// driver's event loop for reading once; when readable call
/// unisock_dispatch. Never close it.
#[no_mangle]
pub extern "C" fn unisock_reactor_fd(out: *mut i32) -> ResultCode {
    boundary(|| {
        let fd = with_context(|u| Ok(u.reactor_fd()))?;
        put(out, fd, "out")?;
        Ok(ResultCode::Ok)
    })
}

/// Handles everything ready now without blocking; `*queued` (may be NULL)
/// receives the number of new events. Then drain unisock_next_event.
#[no_mangle]
pub extern "C" fn unisock_dispatch(queued: *mut usize) -> ResultCode {
    boundary(|| {
        let n = with_context(|u| u.dispatch())?;
        if !queued.is_null() {
            put(queued, n, "queued")?;
        }
        Ok(ResultCode::Ok)
    })
}

/// The next event into `*out`, or NULL when there is none. The caller owns
/// it and frees it with unisock_event_free.
#[no_mangle]
pub extern "C" fn unisock_next_event(out: *mut *mut UnisockEvent) -> ResultCode {
    boundary(|| {
        if out.is_null() {
            return Err(null("out"));
        }
        let ev = with_context(|u| Ok(u.next_event()))?;
        let p = match ev {
            Some(event) => {
                let addr = event
                    .addr
                    .as_ref()
                    .map(|a| CString::new(a.replace('\0', "")).unwrap_or_default());
                to_boxed_mut_ptr::<UnisockEvent>(UnisockEvent { event, addr })
            }
            None => std::ptr::null_mut(),
        };
        put(out, p, "out")?;
        Ok(ResultCode::Ok)
    })
}

/// The event's kind (READ, WRITE, CLOSE, LISTEN); 0 for NULL.
#[no_mangle]
pub extern "C" fn unisock_event_get_kind(e: *const UnisockEvent) -> u32 {
    boundary_value(0, || event_ref(e).map_or(0, |e| e.event.kind as u32))
}

/// The LPC socket number the event is for; -1 for NULL.
#[no_mangle]
pub extern "C" fn unisock_event_socket(e: *const UnisockEvent) -> i32 {
    boundary_value(-1, || event_ref(e).map_or(-1, |e| e.event.socket))
}

/// The event's data (READ: the data; CLOSE: the reason, a non-empty string
/// such as "closed by the peer" or "tls: certificate not valid for host x"),
/// borrowed from the event; NULL when there is none.
#[no_mangle]
pub extern "C" fn unisock_event_data(e: *const UnisockEvent) -> *const UnisockValue {
    boundary_value(std::ptr::null(), || {
        event_ref(e)
            .and_then(|e| e.event.data.as_ref())
            .map_or(std::ptr::null(), to_const_ptr::<UnisockValue>)
    })
}

/// 1 when a CLOSE event reports an abnormal end (a failed connect or TLS
/// handshake, a timeout, a protocol or I/O error, a peer too slow to read),
/// 0 for a normal end (the peer closed, the exchange ended, the process
/// exited), for other kinds and for NULL. The driver logs abnormal ends.
#[no_mangle]
pub extern "C" fn unisock_event_abnormal(e: *const UnisockEvent) -> i32 {
    boundary_value(0, || {
        event_ref(e).map_or(0, |e| {
            i32::from(e.event.kind == EventKind::Close && e.event.abnormal)
        })
    })
}

/// The peer address "ip port" for datagram reads (NUL-terminated, borrowed
/// from the event); NULL when there is none.
#[no_mangle]
pub extern "C" fn unisock_event_addr(e: *const UnisockEvent) -> *const c_char {
    boundary_value(std::ptr::null(), || {
        event_ref(e)
            .and_then(|e| e.addr.as_ref())
            .map_or(std::ptr::null(), |a| a.as_ptr())
    })
}

/// Frees an event (NULL is ignored).
#[no_mangle]
pub extern "C" fn unisock_event_free(e: *mut UnisockEvent) {
    let _ = boundary(|| {
        free_box(e);
        Ok(ResultCode::Ok)
    });
}

/// Name of an event kind ("read", "write", "close", "listen"), static.
#[no_mangle]
pub extern "C" fn unisock_event_kind_name(kind: u32) -> *const c_char {
    let name: &'static [u8] = match kind {
        k if k == EventKind::Read as u32 => b"read\0",
        k if k == EventKind::Write as u32 => b"write\0",
        k if k == EventKind::Close as u32 => b"close\0",
        k if k == EventKind::Listen as u32 => b"listen\0",
        _ => b"unknown\0",
    };
    name.as_ptr() as *const c_char
}
