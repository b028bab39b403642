//! The C ABI: the only place with `extern "C"`, raw pointers and
//! `catch_unwind`. One file per C surface (values, sockets and options,
//! events, HTTP utilities, the IPC wire format); one boundary function for
//! panics and errors.
//!
//! Rules every entry point follows (architecture.md):
//! - it runs inside [`boundary`]: a panic becomes `UNISOCK_PANIC`, an error
//!   its code plus a message for `unisock_last_error`;
//! - NULL pointers give `NullParameter`, unknown socket ids `EeBadf`;
//! - ownership of every pointer is written in the function's doc comment,
//!   which cbindgen copies into include/unisock.h;
//! - it is called from the driver thread only (checked: other threads get
//!   `WrongThread`).
//!
//! The entry points take raw pointers but are not `unsafe fn`: each one
//! checks its pointers for NULL before use and documents the remaining
//! contract (validity, lifetime) for C callers, for whom `unsafe` means nothing.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod castable;
pub mod catalog;
mod error;
pub mod events;
pub mod external;
pub mod http_util;
pub mod ipc;
pub mod policy;
pub mod results;
pub mod sockets;
pub mod values;

use std::cell::{Cell, UnsafeCell};
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

pub use error::FfiError;

use crate::core::Unisock;
use crate::error::{set_last_error, Error, Result, ResultCode};

/// The library's state. Only the driver thread touches it: the first thread
/// that calls unisock becomes the driver thread (`DRIVER`, compared with
/// `pthread_self`, a register read), any other gets WrongThread. `busy`
/// refuses re-entry. No lock and no TLS lookup sit on the hot path.
struct Context {
    state: UnsafeCell<Option<Unisock>>,
    busy: Cell<bool>,
}

// SAFETY: `state` and `busy` are only touched by the one driver thread:
// `with_context` checks the caller's pthread id against DRIVER first.
unsafe impl Sync for Context {}

static CONTEXT: Context = Context {
    state: UnsafeCell::new(None),
    busy: Cell::new(false),
};

/// pthread id of the driver thread + 1 (0 = no call yet).
static DRIVER: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn check_thread() -> Result<()> {
    // SAFETY: pthread_self has no preconditions and cannot fail.
    let me = unsafe { libc::pthread_self() } as usize + 1;
    // The common case is a plain load; the compare-exchange runs once.
    if DRIVER.load(Ordering::Acquire) == me {
        return Ok(());
    }
    match DRIVER.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Ok(()),
        Err(owner) if owner == me => Ok(()),
        Err(_) => Err(FfiError::WrongThread.into()),
    }
}

/// Runs `f` with the library context, creating it on first use.
pub(crate) fn with_context<R>(f: impl FnOnce(&mut Unisock) -> Result<R>) -> Result<R> {
    check_thread()?;
    if CONTEXT.busy.replace(true) {
        return Err(FfiError::Reentered.into());
    }
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            CONTEXT.busy.set(false);
        }
    }
    let _release = Release;
    // SAFETY: only the driver thread gets here (check_thread), and `busy`
    // guarantees this is the only live reference to the state.
    let state = unsafe { &mut *CONTEXT.state.get() };
    if state.is_none() {
        *state = Some(Unisock::new(crate::registry::FAMILIES)?);
    }
    f(state.as_mut().expect("initialised above"))
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("unisock internal error (panic): {what}")
}

/// Runs an entry point's body: errors become their code (message kept for
/// `unisock_last_error`), panics become `Panic`. `Ok(code)` lets a call
/// succeed with a non-zero code (EeCallback from a write).
pub(crate) fn boundary(f: impl FnOnce() -> Result<ResultCode>) -> ResultCode {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            set_last_error(&e.message);
            e.code
        }
        Err(p) => {
            set_last_error(&panic_message(p.as_ref()));
            ResultCode::Panic
        }
    }
}

/// Like [`boundary`] for functions returning a plain value: `fallback` on panic.
pub(crate) fn boundary_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        set_last_error(&panic_message(p.as_ref()));
        fallback
    })
}

/// NullParameter: the required pointer argument `name` was NULL.
pub(crate) fn null(name: &str) -> Error {
    FfiError::Null {
        name: name.to_string(),
    }
    .into()
}

/// Borrows a NUL-terminated UTF-8 string argument.
pub(crate) fn c_str<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(null(name));
    }
    // SAFETY: non-null; the caller promises a NUL-terminated string that
    // stays valid for the duration of the call (documented per function).
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| {
        FfiError::NotUtf8 {
            name: name.to_string(),
        }
        .into()
    })
}

/// Like [`c_str`] but NULL means "not given".
pub(crate) fn opt_c_str<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        c_str(p, name).map(Some)
    }
}

/// Borrows `len` bytes at `p` (NULL allowed when `len` is 0).
pub(crate) fn c_bytes<'a>(p: *const u8, len: usize, name: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(null(name));
    }
    if len > isize::MAX as usize {
        return Err(FfiError::LengthTooLarge {
            name: name.to_string(),
            len,
        }
        .into());
    }
    // SAFETY: non-null, length bounded; the caller promises `len` readable
    // bytes that stay valid and unmodified for the duration of the call.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Writes through an out-pointer after checking it.
pub(crate) fn put<T>(out: *mut T, value: T, name: &str) -> Result<()> {
    if out.is_null() {
        return Err(null(name));
    }
    // SAFETY: non-null; the caller promises `out` points to writable storage
    // for one T (documented per function).
    unsafe { out.write(value) };
    Ok(())
}
