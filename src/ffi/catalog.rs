//! Names and numbers of modes and options, for hosts that take them as text
//! (the unisock-host harness, consoles, tests).

use std::ffi::{c_char, CString};
use std::sync::OnceLock;

use super::{boundary, boundary_value, c_str, put, FfiError};
use crate::error::ResultCode;
use crate::modes;
use crate::options::catalog;

fn number_or<T>(
    name: &str,
    lookup: impl Fn(&str) -> Option<T>,
    what: &'static str,
) -> crate::Result<T>
where
    T: Copy,
{
    Ok(lookup(name).ok_or_else(|| FfiError::UnknownName {
        what,
        name: name.to_string(),
    })?)
}

/// The number of the option named `name` (canonical name or alias,
/// NUL-terminated) into `*out`; PARSE if there is none.
#[no_mangle]
pub extern "C" fn unisock_option_id(name: *const c_char, out: *mut i64) -> ResultCode {
    boundary(|| {
        let name = c_str(name, "name")?;
        let id = number_or(name, |n| catalog::by_name(n).map(|d| d.id as i64), "option")?;
        put(out, id, "out").map(|_| ResultCode::Ok)
    })
}

/// The name of mode `mode` ("STREAM", "HTTP_CLIENT", ...), NUL-terminated
/// and static; NULL for a number that is no mode.
#[no_mangle]
pub extern "C" fn unisock_mode_name(mode: i64) -> *const c_char {
    static NAMES: OnceLock<Vec<(i64, CString)>> = OnceLock::new();
    boundary_value(std::ptr::null(), || {
        let names = NAMES.get_or_init(|| {
            modes::MODES
                .iter()
                .map(|m| (m.number as i64, CString::new(m.name).unwrap_or_default()))
                .collect()
        });
        names
            .iter()
            .find(|(n, _)| *n == mode)
            .map_or(std::ptr::null(), |(_, name)| name.as_ptr())
    })
}

/// The number of the mode named `name` (e.g. "STREAM", "SOCKET_STREAM",
/// "REST_SERVER") into `*out`; PARSE if there is none.
#[no_mangle]
pub extern "C" fn unisock_mode_number(name: *const c_char, out: *mut i64) -> ResultCode {
    boundary(|| {
        let name = c_str(name, "name")?;
        let n = number_or(name, |n| modes::by_name(n).map(|m| m.number as i64), "mode")?;
        put(out, n, "out").map(|_| ResultCode::Ok)
    })
}
