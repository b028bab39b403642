//! Result codes as text, the last error message, EE codes, the version.

use std::ffi::c_char;

use super::{boundary_value, put};
use crate::error::{last_error, ResultCode};

fn copy_out(text: &str, buf: *mut c_char, len: usize, out_n: *mut usize) -> ResultCode {
    let bytes = text.as_bytes();
    if !out_n.is_null() {
        // SAFETY: checked non-null; caller provides storage for one size_t.
        unsafe { out_n.write(bytes.len()) };
    }
    if buf.is_null() || len == 0 {
        return if bytes.is_empty() {
            ResultCode::Ok
        } else {
            ResultCode::BufferTooSmall
        };
    }
    let n = bytes.len().min(len - 1);
    // SAFETY: `buf` is non-null with room for `len` bytes (caller's promise);
    // we write n + 1 <= len bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf as *mut u8, n);
        *buf.add(n) = 0;
    }
    if n < bytes.len() {
        ResultCode::BufferTooSmall
    } else {
        ResultCode::Ok
    }
}

/// Copies the fixed description of `code` into `buf` (NUL-terminated,
/// truncated to `len - 1` bytes). `*out_n` (if not NULL) receives the full
/// length. Returns BUFFER_TOO_SMALL when truncated. `buf` is caller-owned.
#[no_mangle]
pub extern "C" fn unisock_result_text(
    code: u32,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> ResultCode {
    boundary_value(ResultCode::Panic, || {
        let text = ResultCode::from_u32(code).map_or("unknown result code", |c| c.text());
        copy_out(text, buf, len, out_n)
    })
}

/// Copies the message of the last failed call on this thread into `buf`, as
/// unisock_result_text does. The message names what was wrong, e.g.
/// "socket_set_option: SO_HTTP_TIMEOUT (104) wants an int in 1000..300000 (ms), got 5".
#[no_mangle]
pub extern "C" fn unisock_last_error(
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> ResultCode {
    boundary_value(ResultCode::Panic, || {
        copy_out(&last_error(), buf, len, out_n)
    })
}

/// The LPC EE code (socket_err.h) for a result: 1 (EESUCCESS) for OK, -1..-32 otherwise.
#[no_mangle]
pub extern "C" fn unisock_result_ee(code: u32) -> i32 {
    boundary_value(-1, || {
        ResultCode::from_u32(code).map_or(-1, |c| c.ee_code())
    })
}

/// The library version as a static NUL-terminated string (never freed).
#[no_mangle]
pub extern "C" fn unisock_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// Stores the library's ABI version number in `*out` (bumped on incompatible changes).
#[no_mangle]
pub extern "C" fn unisock_abi_version(out: *mut u32) -> ResultCode {
    super::boundary(|| put(out, 1, "out").map(|_| ResultCode::Ok))
}
