//! The admin's policy from C (src/policy, docs/SECURITY.md): the host hands
//! it over once at start (the shim from the driver's config file, the
//! harness from its `policy` verb) and may read back what is in force.

use std::ffi::c_char;

use super::values::{put_value, UnisockValue};
use super::{boundary, c_bytes, check_thread};
use crate::error::{Error, ResultCode};
use crate::policy::{self, Policy};
use crate::value::Value;

/// Puts the policy in the `len` bytes at `json` (UTF-8 JSON) in force: an
/// object with the keys `modes`, `commands`, `shell`, `users`, `groups`,
/// `watch_dirs`, `socket_dirs`, `tls_dirs`, `file_dirs` and `open`
/// (docs/SECURITY.md); a
/// key left out allows nothing of its kind, `{"open": 1}` allows everything.
/// Until a host calls this, the default policy holds: modes 0–6 and 10–13,
/// nothing that reaches the host. Checks made from now on use it; sockets
/// already running keep what they were allowed.
/// - OK: in force;
/// - PARSE: not JSON, not an object, an unknown key, a value of the wrong
///   kind, a relative path, a user or group the host does not know; the
///   message (unisock_last_error) names the key and starts with `policy: `;
///   the policy in force is unchanged.
///
/// `json` is borrowed for the call.
#[no_mangle]
pub extern "C" fn unisock_set_policy(json: *const c_char, len: usize) -> ResultCode {
    boundary(|| {
        check_thread()?;
        let bytes = c_bytes(json as *const u8, len, "json")?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Error::new(ResultCode::InvalidUtf8, "policy: the JSON is not UTF-8"))?;
        let p = Policy::from_json(text).map_err(|e| Error::new(ResultCode::Parse, e))?;
        policy::set(p);
        Ok(ResultCode::Ok)
    })
}

/// The policy in force as a mapping (`*out`, the caller's to free with
/// unisock_value_free): every key, paths canonical, `open` 0 or 1.
#[no_mangle]
pub extern "C" fn unisock_get_policy(out: *mut *mut UnisockValue) -> ResultCode {
    boundary(|| {
        check_thread()?;
        put_value(out, Value::from_json(&policy::current().to_json()))
    })
}
