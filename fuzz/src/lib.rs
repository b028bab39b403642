//! Shared helpers for unisock's fuzz targets (docs/FUZZING.md).
//!
//! Everything here goes through the C entry points (`unisock::ffi::...`), the
//! way a C host (the FluffOS shim) calls them: raw pointers, out-parameters,
//! result codes, `unisock_last_error`. Values read back are rebuilt as
//! `unisock::Value` through the C getters only, so the getters are exercised
//! too; the Rust type is just a convenient thing to compare.

use std::ffi::{c_char, CStr};
use std::ptr;

use arbitrary::{Arbitrary, Unstructured};

pub mod ws;

use unisock::ffi::events::{
    unisock_dispatch, unisock_event_addr, unisock_event_data, unisock_event_free,
    unisock_event_get_kind, unisock_event_socket, unisock_next_event, unisock_reactor_fd,
    UnisockEvent,
};
use unisock::ffi::results::{unisock_last_error, unisock_result_text};
use unisock::ffi::sockets::socket_get_option;
use unisock::ffi::values::*;
use unisock::{ResultCode, Value};

pub const EV_READ: u32 = 1;
pub const EV_WRITE: u32 = 2;
pub const EV_CLOSE: u32 = 3;
pub const EV_LISTEN: u32 = 4;

/// The fixed text of a result code, through unisock_result_text (two calls:
/// one to learn the size, one to copy, as the header describes).
pub fn result_text(code: u32) -> String {
    let mut n = 0usize;
    let rc = unisock_result_text(code, ptr::null_mut(), 0, &mut n);
    assert!(
        rc == ResultCode::BufferTooSmall || (rc == ResultCode::Ok && n == 0),
        "result_text size query gave {rc:?}"
    );
    let mut buf = vec![0u8; n + 1];
    let mut n2 = 0usize;
    let rc = unisock_result_text(code, buf.as_mut_ptr() as *mut c_char, buf.len(), &mut n2);
    assert_eq!(rc, ResultCode::Ok, "result_text copy");
    assert_eq!(n, n2, "result_text length changed");
    assert_eq!(buf[n], 0, "result_text not NUL-terminated");
    String::from_utf8(buf[..n].to_vec()).expect("result text is UTF-8")
}

/// unisock_last_error as a String (sized first, then copied).
pub fn last_error() -> String {
    let mut n = 0usize;
    let _ = unisock_last_error(ptr::null_mut(), 0, &mut n);
    let mut buf = vec![0u8; n + 1];
    let mut n2 = 0usize;
    let rc = unisock_last_error(buf.as_mut_ptr() as *mut c_char, buf.len(), &mut n2);
    assert_eq!(rc, ResultCode::Ok, "last_error copy");
    assert_eq!(n, n2);
    assert_eq!(buf[n], 0, "last_error not NUL-terminated");
    String::from_utf8(buf[..n].to_vec()).expect("last error is UTF-8")
}

/// The invariants every result of every entry point must satisfy: never a
/// caught panic, always a code with a known text, and on failure a non-empty
/// message from unisock_last_error. Returns that message ("" on success).
pub fn check_result(rc: ResultCode, what: &str) -> String {
    let code = rc as u32;
    assert_ne!(
        rc,
        ResultCode::Panic,
        "{what}: caught panic: {}",
        last_error()
    );
    let text = result_text(code);
    assert_ne!(
        text, "unknown result code",
        "{what}: code {code} has no text"
    );
    assert!(!text.is_empty(), "{what}: empty text for code {code}");
    if rc == ResultCode::Ok {
        return String::new();
    }
    let msg = last_error();
    assert!(
        !msg.is_empty(),
        "{what}: failed with {rc:?} but last_error is empty"
    );
    msg
}

/// Puts the open policy in force (`{"open":1}` through unisock_set_policy),
/// once per process: for targets that create modes 22/23/29/30 or use TLS
/// files, which the library's default policy refuses (docs/SECURITY.md).
pub fn open_policy() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let j = br#"{"open":1}"#;
        let rc = unisock::ffi::policy::unisock_set_policy(j.as_ptr() as *const c_char, j.len());
        assert_eq!(rc, ResultCode::Ok, "open policy: {}", last_error());
    });
}

/// Runs a closure after clearing the last-error slot, so that a stale message
/// from an earlier call cannot satisfy the "failure has a message" check.
/// (There is no C call to clear it: a successful call that never fails does
/// not touch it, so we make the slot hold a sentinel by failing on purpose.)
pub fn poison_last_error() {
    // A NULL out-pointer is refused with a fixed message; use a value call
    // that allocates nothing before checking its pointer.
    let rc = unisock_value_new_undefined(ptr::null_mut());
    assert_eq!(rc, ResultCode::NullParameter);
    assert_eq!(last_error(), "out is NULL");
}

// ----------------------------------------------------------------------
// Value trees

/// One node of a value tree to build through the C builders. `Str` carries
/// raw bytes that may be invalid UTF-8 (which must be refused cleanly);
/// `Text` is always valid, so that validators see real strings often.
#[derive(Arbitrary, Debug, Clone)]
pub enum FuzzValue {
    Undefined,
    Int(i64),
    SmallInt(i8),
    Real(f64),
    Text(String),
    Str(Vec<u8>),
    Buffer(Vec<u8>),
    Array(Vec<FuzzValue>),
    Mapping(Vec<(FuzzValue, FuzzValue)>),
    /// A one-element array nesting `n` levels deep (reaches the depth limits
    /// without needing many input bytes).
    Deep(u16, Box<FuzzValue>),
}

/// Deepest nesting the harness builds from the tree shape (the option
/// validator refuses > 32); `Deep` nodes go further, past MAX_NESTING.
pub const MAX_BUILD_DEPTH: usize = 48;

/// The C API's nesting limit (unisock::ffi::values::MAX_NESTING): a tree
/// may be at most this many containers deep.
pub const MAX_NESTING: usize = unisock::ffi::values::MAX_NESTING;

/// How many containers deep `v` is (0 for a scalar).
pub fn nesting(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(nesting).max().unwrap_or(0),
        Value::Mapping(m) => {
            1 + m
                .iter()
                .map(|(k, x)| nesting(k).max(nesting(x)))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

/// The C handle of an owned value, freed on drop.
pub struct Owned(pub *mut UnisockValue);

impl Owned {
    pub fn as_ptr(&self) -> *const UnisockValue {
        self.0
    }
    /// Hands ownership to a consuming C call.
    pub fn into_raw(self) -> *mut UnisockValue {
        let p = self.0;
        std::mem::forget(self);
        p
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        unisock_value_free(self.0);
    }
}

fn new_with(f: impl FnOnce(*mut *mut UnisockValue) -> ResultCode, what: &str) -> Option<Owned> {
    let mut out: *mut UnisockValue = ptr::null_mut();
    let rc = f(&mut out);
    check_result(rc, what);
    if rc == ResultCode::Ok {
        assert!(!out.is_null(), "{what}: OK but *out is NULL");
        Some(Owned(out))
    } else {
        assert!(out.is_null(), "{what}: failed but wrote *out");
        None
    }
}

/// Mapping insert with the documented semantics ("replacing an equal key"),
/// written independently of the library's `Value::insert`.
fn model_insert(pairs: &mut Vec<(Value, Value)>, k: Value, v: Value) {
    for slot in pairs.iter_mut() {
        if slot.0 == k {
            slot.1 = v;
            return;
        }
    }
    pairs.push((k, v));
}

/// Builds `fv` through the C builders. Returns the handle and the value it
/// must hold, or None when the node was refused (invalid UTF-8 string: then
/// the refusal itself is checked).
pub fn build(fv: &FuzzValue, depth: usize) -> Option<(Owned, Value)> {
    if depth > MAX_BUILD_DEPTH {
        return new_with(|o| unisock_value_new_undefined(o), "new_undefined")
            .map(|o| (o, Value::Undefined));
    }
    match fv {
        FuzzValue::Undefined => new_with(|o| unisock_value_new_undefined(o), "new_undefined")
            .map(|o| (o, Value::Undefined)),
        FuzzValue::Int(i) => {
            new_with(|out| unisock_value_new_int(*i, out), "new_int").map(|o| (o, Value::Int(*i)))
        }
        FuzzValue::SmallInt(i) => new_with(|out| unisock_value_new_int(*i as i64, out), "new_int")
            .map(|o| (o, Value::Int(*i as i64))),
        FuzzValue::Real(r) => new_with(|out| unisock_value_new_real(*r, out), "new_real")
            .map(|o| (o, Value::Real(*r))),
        FuzzValue::Text(s) => new_with(
            |out| unisock_value_new_string(s.as_ptr() as *const c_char, s.len(), out),
            "new_string",
        )
        .map(|o| (o, Value::Str(s.clone()))),
        FuzzValue::Str(b) => {
            poison_last_error();
            // An empty slice is passed as NULL, as a C host may (len 0).
            let p = if b.is_empty() {
                ptr::null()
            } else {
                b.as_ptr() as *const c_char
            };
            let r = new_with(
                |out| unisock_value_new_string(p, b.len(), out),
                "new_string",
            );
            match std::str::from_utf8(b) {
                Ok(s) => Some((
                    r.expect("valid UTF-8 string refused"),
                    Value::Str(s.to_string()),
                )),
                Err(_) => {
                    assert!(r.is_none(), "invalid UTF-8 accepted as a string");
                    let msg = last_error();
                    assert!(msg.contains("UTF-8"), "invalid UTF-8 message: {msg:?}");
                    None
                }
            }
        }
        FuzzValue::Buffer(b) => {
            let p = if b.is_empty() {
                ptr::null()
            } else {
                b.as_ptr()
            };
            new_with(
                |out| unisock_value_new_buffer(p, b.len(), out),
                "new_buffer",
            )
            .map(|o| (o, Value::Buffer(b.clone())))
        }
        FuzzValue::Array(items) => {
            let arr = new_with(|o| unisock_value_new_array(o), "new_array")?;
            let mut model = Vec::new();
            for it in items {
                if let Some((h, v)) = build(it, depth + 1) {
                    let rc = unisock_value_array_push(arr.0, h.into_raw());
                    check_result(rc, "array_push");
                    if nesting(&v) >= MAX_NESTING {
                        assert_eq!(rc, ResultCode::TooLarge, "array_push of a too deep item");
                    } else {
                        assert_eq!(rc, ResultCode::Ok);
                        model.push(v);
                    }
                }
            }
            Some((arr, Value::Array(model)))
        }
        FuzzValue::Mapping(pairs) => {
            let m = new_with(|o| unisock_value_new_mapping(o), "new_mapping")?;
            let mut model = Vec::new();
            for (k, v) in pairs {
                let Some((kh, kv)) = build(k, depth + 1) else {
                    continue;
                };
                let Some((vh, vv)) = build(v, depth + 1) else {
                    // The key alone was built: hand it over with a NULL val;
                    // the call must refuse and still free the key.
                    poison_last_error();
                    let rc = unisock_value_mapping_set(m.0, kh.into_raw(), ptr::null_mut());
                    assert_eq!(rc, ResultCode::NullParameter);
                    check_result(rc, "mapping_set(NULL val)");
                    continue;
                };
                let rc = unisock_value_mapping_set(m.0, kh.into_raw(), vh.into_raw());
                check_result(rc, "mapping_set");
                if nesting(&kv) >= MAX_NESTING || nesting(&vv) >= MAX_NESTING {
                    assert_eq!(
                        rc,
                        ResultCode::TooLarge,
                        "mapping_set of a too deep key/value"
                    );
                } else {
                    assert_eq!(rc, ResultCode::Ok);
                    model_insert(&mut model, kv, vv);
                }
            }
            Some((m, Value::Mapping(model)))
        }
        FuzzValue::Deep(n, inner) => {
            // Up to a bit past the C API's nesting limit (MAX_NESTING).
            let levels = *n as usize % (MAX_NESTING + 8);
            let (mut h, mut v) = build(inner, MAX_BUILD_DEPTH)?;
            let start = nesting(&v);
            for d in start..start + levels {
                let arr = new_with(|o| unisock_value_new_array(o), "new_array")?;
                if d >= MAX_NESTING {
                    // One level too many: a copy is refused (and consumed).
                    let mut c: *mut UnisockValue = ptr::null_mut();
                    assert_eq!(unisock_value_clone(h.as_ptr(), &mut c), ResultCode::Ok);
                    poison_last_error();
                    let rc = unisock_value_array_push(arr.0, c);
                    check_result(rc, "array_push too deep");
                    assert_eq!(rc, ResultCode::TooLarge, "nesting {} accepted", d + 1);
                    break;
                }
                let rc = unisock_value_array_push(arr.0, h.into_raw());
                check_result(rc, "array_push deep");
                assert_eq!(rc, ResultCode::Ok, "nesting {} refused", d + 1);
                h = arr;
                v = Value::Array(vec![v]);
            }
            Some((h, v))
        }
    }
}

/// Reads a value back through the C getters only.
pub fn read_value(p: *const UnisockValue) -> Value {
    assert!(!p.is_null());
    match unisock_value_get_kind(p) {
        ValueKind::Undefined => Value::Undefined,
        ValueKind::Int => {
            let mut i = 0i64;
            assert_eq!(unisock_value_int(p, &mut i), ResultCode::Ok);
            Value::Int(i)
        }
        ValueKind::Real => {
            let mut r = 0f64;
            assert_eq!(unisock_value_real(p, &mut r), ResultCode::Ok);
            Value::Real(r)
        }
        k @ (ValueKind::String | ValueKind::Buffer) => {
            let mut bp: *const u8 = ptr::null();
            let mut n = 0usize;
            assert_eq!(unisock_value_bytes(p, &mut bp, &mut n), ResultCode::Ok);
            let bytes = if n == 0 {
                Vec::new()
            } else {
                assert!(!bp.is_null());
                // SAFETY: the library lends n bytes that live as long as `p`.
                unsafe { std::slice::from_raw_parts(bp, n) }.to_vec()
            };
            if k == ValueKind::String {
                Value::Str(String::from_utf8(bytes).expect("string value is not UTF-8"))
            } else {
                Value::Buffer(bytes)
            }
        }
        ValueKind::Array => {
            let mut n = 0usize;
            assert_eq!(unisock_value_len(p, &mut n), ResultCode::Ok);
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let mut e: *const UnisockValue = ptr::null();
                assert_eq!(unisock_value_array_get(p, i, &mut e), ResultCode::Ok);
                out.push(read_value(e));
            }
            let mut e: *const UnisockValue = ptr::null();
            assert_eq!(
                unisock_value_array_get(p, n, &mut e),
                ResultCode::IndexOutOfRange
            );
            Value::Array(out)
        }
        ValueKind::Mapping => {
            let mut n = 0usize;
            assert_eq!(unisock_value_len(p, &mut n), ResultCode::Ok);
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let mut k: *const UnisockValue = ptr::null();
                let mut v: *const UnisockValue = ptr::null();
                assert_eq!(
                    unisock_value_mapping_get(p, i, &mut k, &mut v),
                    ResultCode::Ok
                );
                out.push((read_value(k), read_value(v)));
            }
            Value::Mapping(out)
        }
    }
}

/// Structural equality where floats compare by bits (NaN == NaN).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Real(x), Value::Real(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Mapping(x), Value::Mapping(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| same(ka, kb) && same(va, vb))
        }
        _ => a == b,
    }
}

/// unisock_value_to_json as a String (the returned C string is freed).
pub fn to_json(p: *const UnisockValue) -> Result<String, ResultCode> {
    let mut s: *mut c_char = ptr::null_mut();
    let rc = unisock_value_to_json(p, &mut s);
    check_result(rc, "value_to_json");
    if rc != ResultCode::Ok {
        return Err(rc);
    }
    assert!(!s.is_null());
    // SAFETY: a NUL-terminated string from the library, freed just below.
    let text = unsafe { CStr::from_ptr(s) }
        .to_str()
        .expect("to_json is UTF-8")
        .to_string();
    unisock::ffi::values::unisock_string_free(s);
    Ok(text)
}

/// unisock_value_from_json of `bytes`.
pub fn from_json(bytes: &[u8]) -> Result<Owned, String> {
    let mut out: *mut UnisockValue = ptr::null_mut();
    let p = if bytes.is_empty() {
        ptr::null()
    } else {
        bytes.as_ptr() as *const c_char
    };
    let rc = unisock_value_from_json(p, bytes.len(), &mut out);
    let msg = check_result(rc, "value_from_json");
    if rc == ResultCode::Ok {
        assert!(!out.is_null());
        Ok(Owned(out))
    } else {
        assert_eq!(rc, ResultCode::Parse, "from_json failed with {rc:?}: {msg}");
        assert!(out.is_null());
        Err(msg)
    }
}

// ----------------------------------------------------------------------
// Sockets, options and events

/// socket_get_option into an owned Rust value.
pub fn get_option(id: i32, opt: i64) -> Result<Value, ResultCode> {
    let mut out: *mut UnisockValue = ptr::null_mut();
    let rc = socket_get_option(id, opt, &mut out);
    check_result(rc, "socket_get_option");
    if rc == ResultCode::Ok {
        assert!(!out.is_null());
        let o = Owned(out);
        Ok(read_value(o.as_ptr()))
    } else {
        assert!(out.is_null());
        Err(rc)
    }
}

/// An int field of a mapping value.
pub fn field_int(m: &Value, key: &str) -> Option<i64> {
    m.get(key).and_then(Value::as_int)
}

/// SO_STATISTICS bytes_in of a socket (None once it is gone).
pub fn bytes_in(id: i32) -> Option<i64> {
    get_option(id, 18)
        .ok()
        .and_then(|m| field_int(&m, "bytes_in"))
}

/// One event, copied out through the C getters and freed.
#[derive(Debug, Clone)]
pub struct Ev {
    pub kind: u32,
    pub socket: i32,
    pub data: Option<Value>,
    pub addr: Option<String>,
}

/// Pops the next event (None when the queue is empty).
pub fn next_event() -> Option<Ev> {
    let mut e: *mut UnisockEvent = ptr::null_mut();
    let rc = unisock_next_event(&mut e);
    check_result(rc, "next_event");
    assert_eq!(rc, ResultCode::Ok);
    if e.is_null() {
        return None;
    }
    let kind = unisock_event_get_kind(e);
    assert!(
        matches!(kind, EV_READ | EV_WRITE | EV_CLOSE | EV_LISTEN),
        "bad event kind {kind}"
    );
    let socket = unisock_event_socket(e);
    assert!(socket >= 0, "event for socket {socket}");
    let d = unisock_event_data(e);
    let data = (!d.is_null()).then(|| read_value(d));
    let a = unisock_event_addr(e);
    let addr = (!a.is_null()).then(|| {
        // SAFETY: NUL-terminated, borrowed from the event (alive until freed below).
        unsafe { CStr::from_ptr(a) }
            .to_str()
            .expect("event addr is UTF-8")
            .to_string()
    });
    unisock_event_free(e);
    Some(Ev {
        kind,
        socket,
        data,
        addr,
    })
}

/// One dispatch round and everything it queued.
pub fn dispatch() -> Vec<Ev> {
    let mut queued = usize::MAX;
    let rc = unisock_dispatch(&mut queued);
    check_result(rc, "dispatch");
    assert_eq!(rc, ResultCode::Ok);
    let mut out = Vec::new();
    while let Some(e) = next_event() {
        out.push(e);
    }
    // Events of earlier rounds may still be queued, never fewer than reported.
    assert!(
        out.len() >= queued,
        "dispatch said {queued}, drained {}",
        out.len()
    );
    out
}

/// Waits up to `ms` for the reactor fd to become readable.
pub fn wait_reactor(ms: i32) {
    let mut fd = -1;
    assert_eq!(unisock_reactor_fd(&mut fd), ResultCode::Ok);
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) };
}

/// Dispatches until `done(&events_so_far)` holds, at most `rounds` waits of
/// `ms` each; returns every event seen. Panics if it never holds.
pub fn dispatch_until(
    what: &str,
    rounds: usize,
    ms: i32,
    mut done: impl FnMut(&[Ev]) -> bool,
) -> Vec<Ev> {
    let mut all = Vec::new();
    for _ in 0..rounds {
        all.extend(dispatch());
        if done(&all) {
            return all;
        }
        wait_reactor(ms);
    }
    all.extend(dispatch());
    assert!(done(&all), "{what}: condition not reached; events: {all:?}");
    all
}

/// Ignores SIGPIPE: libFuzzer's C main does not run Rust's runtime setup.
pub fn ignore_sigpipe() {
    // SAFETY: setting a signal disposition to SIG_IGN.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Takes a bounded tree from unstructured bytes.
pub fn arbitrary_value(u: &mut Unstructured) -> arbitrary::Result<FuzzValue> {
    FuzzValue::arbitrary(u)
}

/// Builds `v` through the C builders (`unisock_value_new_*`,
/// `unisock_value_array_push`, `unisock_value_mapping_set`), the way a C
/// host hands a value to `unisock_write`. Strings must be UTF-8; the tree
/// must be within the C API's limits (this is for values a target chose).
pub fn to_c(v: &Value) -> Owned {
    let made = match v {
        Value::Undefined => new_with(|o| unisock_value_new_undefined(o), "new_undefined"),
        Value::Int(i) => new_with(|o| unisock_value_new_int(*i, o), "new_int"),
        Value::Real(r) => new_with(|o| unisock_value_new_real(*r, o), "new_real"),
        Value::Str(s) => new_with(
            |o| unisock_value_new_string(s.as_ptr() as *const c_char, s.len(), o),
            "new_string",
        ),
        Value::Buffer(b) => new_with(
            |o| unisock_value_new_buffer(b.as_ptr(), b.len(), o),
            "new_buffer",
        ),
        Value::Array(items) => {
            let arr = new_with(|o| unisock_value_new_array(o), "new_array").expect("new_array");
            for it in items {
                let rc = unisock_value_array_push(arr.0, to_c(it).into_raw());
                check_result(rc, "array_push");
                assert_eq!(rc, ResultCode::Ok, "array_push: {}", last_error());
            }
            Some(arr)
        }
        Value::Mapping(pairs) => {
            let m = new_with(|o| unisock_value_new_mapping(o), "new_mapping").expect("new_mapping");
            for (k, x) in pairs {
                let rc = unisock_value_mapping_set(m.0, to_c(k).into_raw(), to_c(x).into_raw());
                check_result(rc, "mapping_set");
                assert_eq!(rc, ResultCode::Ok, "mapping_set: {}", last_error());
            }
            Some(m)
        }
    };
    made.expect("value refused by the C builders")
}

/// Splits a fuzz input into (cut spec, payload): byte 0 is the number of cuts
/// (mod `max`), then 2 little-endian bytes per cut, then the payload. An input
/// too short for its cuts has none (the payload is what follows byte 0).
pub fn cut_spec(data: &[u8], max: u8) -> (&[u8], &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (&[], data);
    };
    let n = (n % max) as usize;
    if rest.len() < 2 * n {
        return (&[], rest);
    }
    rest.split_at(2 * n)
}

/// The cut positions a `cut_spec` names within a payload of `len` bytes,
/// sorted and deduplicated (for `pieces`).
pub fn cut_positions(spec: &[u8], len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = spec
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]) as usize % (len + 1))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// `payload` split at the sorted, deduplicated `cuts` (positions within it):
/// the pieces a target writes one by one.
pub fn pieces<'a>(payload: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut from = 0;
    for &c in cuts.iter().chain(std::iter::once(&payload.len())) {
        out.push(&payload[from..c]);
        from = c;
    }
    out
}

/// The directories [`own_dir`] made, removed when the process exits.
static OWN_DIRS: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

extern "C" fn remove_own_dirs() {
    if let Ok(dirs) = OWN_DIRS.lock() {
        for d in dirs.iter() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A directory of this process's own, `base/<pid>`, made empty: those of
/// processes that are gone are removed first (a crash or a kill leaves
/// its own, for the reproduction), and this one when the process exits
/// (libFuzzer ends a run with exit(), which runs atexit handlers).
pub fn own_dir(base: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(base).expect("create the fuzz directory's parent");
    if let Ok(rd) = std::fs::read_dir(base) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.parse::<u32>().is_ok()
                && !std::path::Path::new(&format!("/proc/{name}")).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let d = std::path::PathBuf::from(format!("{base}/{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create the fuzz directory");
    let mut dirs = OWN_DIRS.lock().unwrap();
    if dirs.is_empty() {
        // SAFETY: registers a plain extern "C" function with no arguments;
        // it only takes a lock and removes directories.
        unsafe { libc::atexit(remove_own_dirs) };
    }
    dirs.push(d.clone());
    d
}
