//! The IPC bus's wire format from C (callbacks.md "IPC message bus"):
//! decoding one message the way IPC_SERVER / IPC_CLIENT read a peer's bytes,
//! and encoding one the way socket_write sends it. They touch no socket; the
//! fuzz target `ipc_frame` and C hosts that want to check bytes use them.

use std::ffi::c_char;

use super::values::{borrow, put_value, UnisockValue};
use super::{boundary, c_bytes, c_str, check_thread, null, put, FfiError};
use crate::error::{Error, Result, ResultCode};
use crate::ipc::codec::{self, Decoded, Scan, Scanner};
use crate::ipc::link::MAX_MESSAGE;
use crate::ipc::message::{self, Stamp};
use crate::value::Value;

/// The zone both entry points stamp in (IPC_TIMEZONE's default).
const ZONE: &str = "UTC";

fn parse(why: String) -> Error {
    FfiError::IpcDecode { why }.into()
}

/// Decodes the first bus message in the `len` bytes at `bytes` (NULL allowed
/// when `len` is 0) as the bus reads a peer's stream: one MessagePack map,
/// checked and completed like a received message (a missing message_type,
/// data, event_name, timestamp_ms or timestamp_iso is filled in, event_name
/// with `event_name` (NUL-terminated UTF-8) and the times with now in UTC).
/// - OK, `*out` a new mapping the caller owns (free it with
///   unisock_value_free) and `*consumed` the bytes it took (more messages may
///   follow them);
/// - OK, `*out` NULL and `*consumed` 0: the bytes are the valid beginning of
///   a message; call again with more;
/// - PARSE: not MessagePack, or not a bus message (not a map, data not a
///   map, an unknown message_type, an extension type, nesting deeper than
///   64); TOO_LARGE: a message of more than 1 MiB (its bytes so far, or a
///   length in them, go past the limit). The reason is in
///   unisock_last_error; `*out` and `*consumed` are not written.
///
/// `bytes` and `event_name` are borrowed for the call.
#[no_mangle]
pub extern "C" fn unisock_ipc_decode(
    bytes: *const u8,
    len: usize,
    event_name: *const c_char,
    out: *mut *mut UnisockValue,
    consumed: *mut usize,
) -> ResultCode {
    boundary(|| {
        check_thread()?;
        if out.is_null() || consumed.is_null() {
            return Err(null("out or consumed"));
        }
        let name = c_str(event_name, "event_name")?;
        let buf = c_bytes(bytes, len, "bytes")?;
        let (v, n) = match decode(buf, name)? {
            Some(x) => x,
            None => {
                put(out, std::ptr::null_mut(), "out")?;
                put(consumed, 0, "consumed")?;
                return Ok(ResultCode::Ok);
            }
        };
        put(consumed, n, "consumed")?;
        put_value(out, v)
    })
}

/// The first message of `buf`, as `ipc::link::Link::next_message` and the
/// endpoints' read loops take it (the scanner finds its end within
/// MAX_MESSAGE, then it is decoded and checked); None when more bytes are
/// needed.
fn decode(buf: &[u8], name: &str) -> Result<Option<(Value, usize)>> {
    let n = match Scanner::default().scan(buf, MAX_MESSAGE) {
        Scan::Complete(n) => n,
        Scan::Incomplete => return Ok(None),
        Scan::Malformed(why) => {
            // The scanner also refuses a message past the limit: bytes in
            // which `decode` finds no fault were refused for that.
            return Err(match codec::decode(buf) {
                Decoded::Malformed(_) => parse(format!("malformed MessagePack: {why}")),
                _ => FfiError::IpcTooLarge { why }.into(),
            });
        }
    };
    let v = match codec::decode(&buf[..n]) {
        Decoded::Value(v, used) if used == n => v,
        Decoded::Malformed(why) => return Err(parse(format!("malformed MessagePack: {why}"))),
        _ => return Err(parse("malformed MessagePack".into())),
    };
    let m = message::incoming(v, &Stamp::new(name, ZONE)).map_err(parse)?;
    Ok(Some((m, n)))
}

/// Encodes `message` as IPC socket_write sends it: `message` is a mapping
/// with "data" (a mapping) and an optional "message_type" ("data", "error"
/// or "control"), stamped with `event_name` (NUL-terminated UTF-8) and now
/// in UTC. The other keys a received message carries (event_name,
/// timestamp_ms, timestamp_iso, client_id) are allowed and replaced.
/// `*out` is a new buffer value holding the MessagePack bytes, owned by the
/// caller (read it with unisock_value_bytes, free it with
/// unisock_value_free). A message socket_write would refuse gives EE_BADDATA
/// with the reason in unisock_last_error. `message` and `event_name` are
/// borrowed for the call.
#[no_mangle]
pub extern "C" fn unisock_ipc_encode(
    event_name: *const c_char,
    message: *const UnisockValue,
    out: *mut *mut UnisockValue,
) -> ResultCode {
    boundary(|| {
        check_thread()?;
        if out.is_null() {
            return Err(null("out"));
        }
        let name = c_str(event_name, "event_name")?;
        let m = borrow(message, "message")?;
        let (kind, data) = message::outgoing(m).map_err(|why| FfiError::IpcEncode { why })?;
        let bytes = Stamp::new(name, ZONE).encode(kind, data);
        put_value(out, Value::Buffer(bytes))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::castable::{to_const_ptr, try_box_from_ptr};
    use std::ptr;

    const BUS: *const c_char = b"bus\0".as_ptr() as *const c_char;

    fn dec(b: &[u8]) -> (ResultCode, Option<Value>, usize) {
        let mut out: *mut UnisockValue = ptr::null_mut();
        let mut n = usize::MAX;
        let rc = unisock_ipc_decode(b.as_ptr(), b.len(), BUS, &mut out, &mut n);
        let v = try_box_from_ptr(out).map(|b| *b);
        (rc, v, n)
    }

    fn enc(m: &Value) -> (ResultCode, Option<Value>) {
        let mut out: *mut UnisockValue = ptr::null_mut();
        let rc = unisock_ipc_encode(BUS, to_const_ptr::<UnisockValue>(m), &mut out);
        let v = try_box_from_ptr(out).map(|b| *b);
        (rc, v)
    }

    /// One test: the entry points check the thread, and the first thread
    /// that calls unisock owns the library for the whole test binary.
    #[test]
    fn decode_and_encode_through_the_c_entry_points() {
        // {"data": {"a": 1}}, then a second message's first byte.
        let mut wire = vec![0x81, 0xa4, b'd', b'a', b't', b'a', 0x81, 0xa1, b'a', 0x01];
        let (rc, v, n) = dec(&wire);
        assert_eq!((rc, n), (ResultCode::Ok, wire.len()));
        let v = v.unwrap();
        assert_eq!(v.get("event_name"), Some(&Value::str("bus")));
        assert_eq!(v.get("message_type"), Some(&Value::str("data")));
        wire.push(0x81);
        assert_eq!(dec(&wire).2, wire.len() - 1);
        assert_eq!(dec(&wire[..5]), (ResultCode::Ok, None, 0));
        assert_eq!(dec(&[]), (ResultCode::Ok, None, 0));
        assert_eq!(dec(&[0xc1]).0, ResultCode::Parse);
        assert_eq!(dec(&[0x01]).0, ResultCode::Parse); // not a map
        assert!(crate::error::last_error().contains("must be a map"));

        let m = Value::mapping([
            ("message_type", Value::str("Control")),
            ("data", Value::mapping([("x", Value::Real(1.5))])),
        ]);
        let (rc, b) = enc(&m);
        assert_eq!(rc, ResultCode::Ok);
        let Some(Value::Buffer(b)) = b else {
            panic!("not a buffer")
        };
        let (rc, v, n) = dec(&b);
        assert_eq!((rc, n), (ResultCode::Ok, b.len()));
        let v = v.unwrap();
        assert_eq!(v.get("message_type"), Some(&Value::str("control")));
        assert_eq!(v.get("data"), m.get("data"));
        let (rc, out) = enc(&Value::mapping([("data", Value::Int(1))]));
        assert_eq!((rc, out), (ResultCode::EeBaddata, None));
    }
}
