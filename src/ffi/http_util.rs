//! The HTTP utility functions (callbacks.md, last section) for the shim's
//! efuns: http_encode_url, http_decode_url, http_parse_headers,
//! http_format_headers, http_date, http_parse_date, http_status_text.
//! Strings in are (pointer, length) UTF-8; results are values the caller owns.

use std::ffi::c_char;

use super::values::{borrow, put_value, UnisockValue};
use super::{boundary, c_bytes, put, FfiError};
use crate::error::{Error, Result, ResultCode};
use crate::http_util;
use crate::value::Value;

fn text<'a>(ptr: *const c_char, len: usize) -> Result<&'a str> {
    let b = c_bytes(ptr as *const u8, len, "ptr")?;
    Ok(std::str::from_utf8(b).map_err(|_| FfiError::InvalidUtf8)?)
}

fn out_value(out: *mut *mut UnisockValue, v: Value) -> Result<ResultCode> {
    put_value(out, v)
}

fn parse_err(why: String) -> Error {
    FfiError::Parse { why }.into()
}

/// http_encode_url: RFC 3986 percent-encoding of all but unreserved bytes.
/// `*out` is a string value the caller owns.
#[no_mangle]
pub extern "C" fn unisock_http_encode_url(
    ptr: *const c_char,
    len: usize,
    out: *mut *mut UnisockValue,
) -> ResultCode {
    boundary(|| out_value(out, Value::Str(http_util::encode_url(text(ptr, len)?))))
}

/// http_decode_url: percent-decoding with "+" as space; bad escapes or a
/// result that is not UTF-8 give PARSE with the reason. `*out` is the caller's.
#[no_mangle]
pub extern "C" fn unisock_http_decode_url(
    ptr: *const c_char,
    len: usize,
    out: *mut *mut UnisockValue,
) -> ResultCode {
    boundary(|| {
        let s = http_util::decode_url(text(ptr, len)?).map_err(parse_err)?;
        out_value(out, Value::Str(s))
    })
}

/// http_parse_headers: a mapping of lower-case names to a string (or an
/// array of strings when repeated). obs-fold and bad names give PARSE.
#[no_mangle]
pub extern "C" fn unisock_http_parse_headers(
    ptr: *const c_char,
    len: usize,
    out: *mut *mut UnisockValue,
) -> ResultCode {
    boundary(|| {
        let headers = http_util::parse_headers(text(ptr, len)?).map_err(parse_err)?;
        let m = http_util::headers::to_value(headers);
        out_value(out, m)
    })
}

/// http_format_headers: "Name: value\r\n" lines from a mapping of string to
/// string (or array of strings); CR/LF in names or values give PARSE.
#[no_mangle]
pub extern "C" fn unisock_http_format_headers(
    headers: *const UnisockValue,
    out: *mut *mut UnisockValue,
) -> ResultCode {
    boundary(|| {
        let pairs = http_util::headers::pairs_from_value(borrow(headers, "headers")?)
            .map_err(|why| FfiError::BadHeaders { why })?;
        let s = http_util::format_headers(&pairs).map_err(parse_err)?;
        out_value(out, Value::Str(s))
    })
}

/// http_date: IMF-fixdate for unix time `t` ("Sun, 06 Nov 1994 08:49:37 GMT").
#[no_mangle]
pub extern "C" fn unisock_http_date(t: i64, out: *mut *mut UnisockValue) -> ResultCode {
    boundary(|| out_value(out, Value::Str(http_util::http_date(t).map_err(parse_err)?)))
}

/// http_parse_date: IMF-fixdate, RFC 850 or asctime into `*out` (unix
/// time), -1 when the text is not a valid HTTP date.
#[no_mangle]
pub extern "C" fn unisock_http_parse_date(
    ptr: *const c_char,
    len: usize,
    out: *mut i64,
) -> ResultCode {
    boundary(|| put(out, http_util::parse_date(text(ptr, len)?), "out").map(|_| ResultCode::Ok))
}

/// http_status_text: the IANA reason phrase of `code` ("" when unregistered).
#[no_mangle]
pub extern "C" fn unisock_http_status_text(code: i64, out: *mut *mut UnisockValue) -> ResultCode {
    boundary(|| out_value(out, Value::str(http_util::status_text(code).unwrap_or(""))))
}
