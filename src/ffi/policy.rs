//! The admin's policy from C (src/policy, docs/SECURITY.md): the host hands
//! it over once at start (the shim from the driver's config file, the
//! harness from its `policy` verb) and may read back what is in force.

use std::ffi::c_char;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use super::values::{put_value, UnisockValue};
use super::{boundary, c_bytes, check_thread, null, FfiError};
use crate::error::ResultCode;
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
        let text = std::str::from_utf8(bytes).map_err(|_| FfiError::PolicyNotUtf8)?;
        let p = Policy::from_json(text).map_err(|why| FfiError::Parse { why })?;
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

/// `path` (the `len` bytes at `path`, UTF-8, no NUL needed) as the policy
/// judges it (docs/SECURITY.md, "Paths as the kernel sees them"), into
/// `*out` as a string (a buffer when it is not UTF-8), the caller's to free
/// with unisock_value_free:
/// - when it resolves: absolute (a relative path is taken from the working
///   directory), symbolic links, `.` and `..` resolved -- what every check
///   compares; with `may_be_new` non-zero the last component need not exist
///   (a file still to be made): its directory is resolved and the name
///   appended;
/// - when it does not (yet): where it would be, absolute with `.` and `..`
///   taken lexically and no link followed -- what the policy compares when
///   an option names a path that does not resolve yet (it resolves and
///   checks it again when it is used).
///
/// A host shows this to whoever judges a path (the FluffOS shim: the
/// master's valid_socket), so that it sees the path the policy checks.
/// - OK;
/// - PARSE: the path is empty or holds a NUL byte (no path of the host);
/// - NULL_PARAMETER (`path` with `len` > 0, or `out`), INVALID_UTF8.
///
/// `path` is borrowed for the call; `*out` is untouched unless OK.
#[no_mangle]
pub extern "C" fn unisock_resolve_path(
    path: *const c_char,
    len: usize,
    may_be_new: i32,
    out: *mut *mut UnisockValue,
) -> ResultCode {
    boundary(|| {
        check_thread()?;
        if out.is_null() {
            return Err(null("out"));
        }
        let bytes = c_bytes(path as *const u8, len, "path")?;
        let text = std::str::from_utf8(bytes).map_err(|_| FfiError::PathNotUtf8)?;
        if text.is_empty() || text.contains('\0') {
            return Err(FfiError::NoPath {
                text: text.to_string(),
            }
            .into());
        }
        let judged = policy::canonical(text, may_be_new != 0)
            .unwrap_or_else(|_| policy::lexical(Path::new(text)));
        let v = match String::from_utf8(judged.into_os_string().into_vec()) {
            Ok(s) => Value::Str(s),
            Err(e) => Value::Buffer(e.into_bytes()),
        };
        put_value(out, v)
    })
}
