//! Sockets and options from C: the efuns' work, keyed by the LPC socket
//! number the caller (the shim's socket table) chose. Results map to LPC EE
//! codes with unisock_result_ee.

use std::ffi::c_char;
use std::os::fd::{FromRawFd, OwnedFd};

use super::error::FfiError;
use super::values::{borrow, put_value, UnisockValue};
use super::{boundary, c_str, null, opt_c_str, put, with_context};
use crate::error::ResultCode;

fn ok<T>(r: crate::Result<T>) -> crate::Result<ResultCode> {
    r.map(|_| ResultCode::Ok)
}

/// socket_create: makes socket `id` of `mode`. A mode not built yet answers
/// EE_MODENOTSUPP and logs one line naming it.
#[no_mangle]
pub extern "C" fn unisock_create(id: i32, mode: i64) -> ResultCode {
    boundary(|| with_context(|u| ok(u.create(id, mode))))
}

/// socket_bind: with `addr` (NUL-terminated "ip port", may be NULL) that
/// whole address is bound and `port` is unused, as upstream; without it,
/// `port` on every address (IPv6 dual-stack, else IPv4).
#[no_mangle]
pub extern "C" fn unisock_bind(id: i32, port: i64, addr: *const c_char) -> ResultCode {
    boundary(|| {
        let addr = opt_c_str(addr, "addr")?;
        with_context(|u| ok(u.bind(id, port, addr)))
    })
}

/// socket_listen. TLS modes read SO_TLS_CERT/SO_TLS_KEY now.
#[no_mangle]
pub extern "C" fn unisock_listen(id: i32) -> ResultCode {
    boundary(|| with_context(|u| ok(u.listen(id))))
}

/// socket_accept: takes one waiting connection of `listener` as socket
/// `new_id` (which inherits a copy of the listener's options).
/// EE_WOULDBLOCK when none is waiting.
#[no_mangle]
pub extern "C" fn unisock_accept(listener: i32, new_id: i32) -> ResultCode {
    boundary(|| with_context(|u| ok(u.accept(listener, new_id))))
}

/// socket_connect: `address` is "host port" (NUL-terminated; a host name is
/// resolved off the driver thread). Returns at once; a WRITE event follows
/// when the connection is ready, a CLOSE event (with a reason) if it fails.
#[no_mangle]
pub extern "C" fn unisock_connect(id: i32, address: *const c_char) -> ResultCode {
    boundary(|| {
        let address = c_str(address, "address")?;
        with_context(|u| ok(u.connect(id, address)))
    })
}

/// Hands a connected stream `fd` to unisock as socket `id` of `mode`
/// (STREAM, STREAM_BINARY or MUD). unisock takes ownership of `fd` in every
/// case and closes it when the socket closes (or now, if the call fails).
#[no_mangle]
pub extern "C" fn unisock_adopt_fd(id: i32, fd: i32, mode: i64) -> ResultCode {
    boundary(|| {
        if fd < 0 {
            return Err(FfiError::NotFd { fd }.into());
        }
        // SAFETY: the caller hands over an open fd it owns (documented); from
        // here on only this OwnedFd closes it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        with_context(|u| ok(u.adopt_fd(id, owned, mode)))
    })
}

/// socket_write: `data` is borrowed (copied as needed). `target` ("ip port",
/// NUL-terminated, may be NULL) is for datagram sockets. Returns OK,
/// EE_CALLBACK (accepted; a WRITE event follows when it has drained) or an error.
#[no_mangle]
pub extern "C" fn unisock_write(
    id: i32,
    data: *const UnisockValue,
    target: *const c_char,
) -> ResultCode {
    boundary(|| {
        let data = borrow(data, "data")?;
        let target = opt_c_str(target, "target")?;
        with_context(|u| u.write(id, data, target))
    })
}

/// socket_close by LPC: no CLOSE event follows; queued output is still sent
/// (up to 30 s) and the id may be reused at once.
#[no_mangle]
pub extern "C" fn unisock_close(id: i32) -> ResultCode {
    boundary(|| with_context(|u| ok(u.close(id))))
}

/// socket_release: marks the socket released (EE_SOCKRLSD if it already is).
#[no_mangle]
pub extern "C" fn unisock_release(id: i32) -> ResultCode {
    boundary(|| with_context(|u| ok(u.release(id))))
}

/// socket_acquire: clears the released mark (EE_SOCKNOTRLSD if not released).
#[no_mangle]
pub extern "C" fn unisock_acquire(id: i32) -> ResultCode {
    boundary(|| with_context(|u| ok(u.acquire(id))))
}

/// socket_status: for `id` >= 0 a mapping (id, fd, mode, mode_name, state,
/// local, remote, released, ...); for `id` < 0 an array of them for every
/// socket. `*out` is owned by the caller.
#[no_mangle]
pub extern "C" fn unisock_status(id: i32, out: *mut *mut UnisockValue) -> ResultCode {
    boundary(|| {
        let v = with_context(|u| u.status(if id >= 0 { Some(id) } else { None }))?;
        put_value(out, v)
    })
}

/// socket_address: "ip port" of the peer (`local` 0) or the local end
/// (`local` 1) as a string, or int 0 when there is none. `*out` is the caller's.
#[no_mangle]
pub extern "C" fn unisock_address(id: i32, local: i32, out: *mut *mut UnisockValue) -> ResultCode {
    boundary(|| {
        let v = with_context(|u| u.address(id, local != 0))?;
        put_value(out, v)
    })
}

/// socket_set_option: validates `value` (borrowed; deep-copied when stored)
/// against the catalog. On failure nothing is stored and unisock_last_error
/// gives the LPC error text, e.g.
/// "socket_set_option: SO_HTTP_TIMEOUT (104) wants an int in 1000..300000 (ms), got 5".
#[no_mangle]
pub extern "C" fn socket_set_option(
    id: i32,
    option: i64,
    value: *const UnisockValue,
) -> ResultCode {
    boundary(|| {
        let value = borrow(value, "value")?;
        with_context(|u| ok(u.set_option(id, option, value)))
    })
}

/// socket_get_option: the stored value or the default into `*out` (owned by
/// the caller); secrets read back as "<set>" or 0.
#[no_mangle]
pub extern "C" fn socket_get_option(
    id: i32,
    option: i64,
    out: *mut *mut UnisockValue,
) -> ResultCode {
    boundary(|| {
        let v = with_context(|u| u.get_option(id, option))?;
        put_value(out, v)
    })
}

/// socket_set_option with an int value, without building a unisock_value
/// (booleans, sizes, timeouts: the common case). Same validation and errors.
#[no_mangle]
pub extern "C" fn socket_set_option_int(id: i32, option: i64, value: i64) -> ResultCode {
    boundary(|| with_context(|u| ok(u.set_option_int(id, option, value))))
}

/// socket_get_option for an option whose value is an int: `*out` receives
/// it with no allocation. WRONG_VALUE_KIND when the value is not an int
/// (then use socket_get_option).
#[no_mangle]
pub extern "C" fn socket_get_option_int(id: i32, option: i64, out: *mut i64) -> ResultCode {
    boundary(|| {
        if out.is_null() {
            return Err(null("out"));
        }
        match with_context(|u| u.get_option_int(id, option))? {
            Some(i) => put(out, i, "out").map(|_| ResultCode::Ok),
            None => Err(FfiError::NotIntOption { option }.into()),
        }
    })
}

/// Number of open sockets in `*open` and of sockets still flushing after
/// socket_close in `*flushing` (either pointer may be NULL).
#[no_mangle]
pub extern "C" fn unisock_socket_count(open: *mut usize, flushing: *mut usize) -> ResultCode {
    boundary(|| {
        let (o, f) = with_context(|u| Ok(u.counts()))?;
        if !open.is_null() {
            put(open, o, "open")?;
        }
        if !flushing.is_null() {
            put(flushing, f, "flushing")?;
        }
        Ok(ResultCode::Ok)
    })
}

/// Closes every socket at once without events or flushing (driver shutdown).
#[no_mangle]
pub extern "C" fn unisock_close_all() -> ResultCode {
    boundary(|| {
        with_context(|u| {
            u.close_all();
            Ok(ResultCode::Ok)
        })
    })
}
