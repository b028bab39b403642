//! Building and reading value trees from C. A value handle is owned by
//! whoever the function's comment says; `unisock_value_free` frees an owned
//! one. Borrowed pointers (`const unisock_value *` results) stay valid while
//! their parent is alive and unchanged.

use std::ffi::c_char;

use super::castable::{
    to_boxed_mut_ptr, to_const_ptr, try_box_from_ptr, try_mut_from_ptr, try_ref_from_ptr, Castable,
    OwnershipBox,
};
use super::{boundary, c_bytes, null, put, FfiError};
use crate::error::{Error, Result, ResultCode};
use crate::value::Value;

/// An LPC value owned by Rust (opaque to C). Pointers to it are really
/// pointers to [`Value`]; this zero-sized marker only names the type for C.
pub struct UnisockValue {
    _private: [u8; 0],
}

impl Castable for UnisockValue {
    type Ownership = OwnershipBox;
    type RustType = Value;
}

/// The kind of a value.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    Undefined = 0,
    Int = 1,
    Real = 2,
    String = 3,
    Buffer = 4,
    Array = 5,
    Mapping = 6,
}

/// Most elements a value tree built through the C API may have at one level.
const MAX_ELEMENTS: usize = 1 << 24;
/// Deepest nesting a value tree built through the C API may have; bounds the
/// recursion of everything that walks values (validation, drop, JSON). Below
/// serde_json's limit of 127 levels (a buffer renders as two), so every value
/// the C API accepts survives unisock_value_to_json / from_json.
pub const MAX_NESTING: usize = 120;

/// Is `v` nested deeper than `limit` levels? Stops looking past the limit.
fn deeper_than(v: &Value, limit: usize) -> bool {
    match v {
        Value::Array(a) => limit == 0 || a.iter().any(|x| deeper_than(x, limit - 1)),
        Value::Mapping(m) => {
            limit == 0
                || m.iter()
                    .any(|(k, x)| deeper_than(k, limit - 1) || deeper_than(x, limit - 1))
        }
        _ => false,
    }
}

/// WRONG_VALUE_KIND: "expected an int, got string".
fn wrong_kind(expected: &'static str, got: &Value) -> Error {
    FfiError::WrongKind {
        expected,
        got: got.type_name(),
    }
    .into()
}

fn too_deep() -> Error {
    FfiError::TooDeep.into()
}

fn boxed(v: Value) -> *mut UnisockValue {
    to_boxed_mut_ptr::<UnisockValue>(v)
}

/// Hands `v` to the caller through `out` (checked first, so nothing leaks
/// when `out` is NULL).
pub(crate) fn put_value(out: *mut *mut UnisockValue, v: Value) -> Result<ResultCode> {
    if out.is_null() {
        return Err(null("out"));
    }
    put(out, boxed(v), "out")?;
    Ok(ResultCode::Ok)
}

pub(crate) fn borrow<'a>(p: *const UnisockValue, name: &str) -> Result<&'a Value> {
    try_ref_from_ptr(p).ok_or_else(|| null(name))
}

fn borrow_mut<'a>(p: *mut UnisockValue, name: &str) -> Result<&'a mut Value> {
    try_mut_from_ptr(p).ok_or_else(|| null(name))
}

/// Takes back ownership of a value handed to a consuming function.
fn take(p: *mut UnisockValue, name: &str) -> Result<Value> {
    try_box_from_ptr(p).map(|b| *b).ok_or_else(|| null(name))
}

fn new_value(out: *mut *mut UnisockValue, v: Value) -> ResultCode {
    boundary(|| put_value(out, v))
}

/// New undefined value in `*out` (caller owns it: free with unisock_value_free).
#[no_mangle]
pub extern "C" fn unisock_value_new_undefined(out: *mut *mut UnisockValue) -> ResultCode {
    new_value(out, Value::Undefined)
}

/// New int in `*out` (caller owns it).
#[no_mangle]
pub extern "C" fn unisock_value_new_int(v: i64, out: *mut *mut UnisockValue) -> ResultCode {
    new_value(out, Value::Int(v))
}

/// New float in `*out` (caller owns it).
#[no_mangle]
pub extern "C" fn unisock_value_new_real(v: f64, out: *mut *mut UnisockValue) -> ResultCode {
    new_value(out, Value::Real(v))
}

/// New string from `len` bytes at `ptr` (copied; must be valid UTF-8, else
/// INVALID_UTF8). `*out` is owned by the caller.
#[no_mangle]
pub extern "C" fn unisock_value_new_string(
    ptr: *const c_char,
    len: usize,
    out: *mut *mut UnisockValue,
) -> ResultCode {
    boundary(|| {
        let bytes = c_bytes(ptr as *const u8, len, "ptr")?;
        let s = std::str::from_utf8(bytes).map_err(|e| FfiError::StringNotUtf8 {
            at: e.valid_up_to(),
        })?;
        put_value(out, Value::Str(s.to_string()))
    })
}

/// New buffer from `len` bytes at `ptr` (copied). `*out` is owned by the caller.
#[no_mangle]
pub extern "C" fn unisock_value_new_buffer(
    ptr: *const u8,
    len: usize,
    out: *mut *mut UnisockValue,
) -> ResultCode {
    boundary(|| {
        let bytes = c_bytes(ptr, len, "ptr")?;
        put_value(out, Value::Buffer(bytes.to_vec()))
    })
}

/// New empty array in `*out` (caller owns it).
#[no_mangle]
pub extern "C" fn unisock_value_new_array(out: *mut *mut UnisockValue) -> ResultCode {
    new_value(out, Value::Array(Vec::new()))
}

/// New empty mapping in `*out` (caller owns it).
#[no_mangle]
pub extern "C" fn unisock_value_new_mapping(out: *mut *mut UnisockValue) -> ResultCode {
    new_value(out, Value::Mapping(Vec::new()))
}

/// Appends `item` to the array `array`. Takes ownership of `item` in every
/// case (it is freed if the call fails); `array` stays the caller's.
#[no_mangle]
pub extern "C" fn unisock_value_array_push(
    array: *mut UnisockValue,
    item: *mut UnisockValue,
) -> ResultCode {
    boundary(|| {
        let item = take(item, "item")?;
        if deeper_than(&item, MAX_NESTING - 1) {
            return Err(too_deep());
        }
        match borrow_mut(array, "array")? {
            Value::Array(a) if a.len() < MAX_ELEMENTS => {
                a.push(item);
                Ok(ResultCode::Ok)
            }
            Value::Array(_) => Err(FfiError::TooManyElements.into()),
            other => Err(wrong_kind("an array", other)),
        }
    })
}

/// Shared body of mapping_set and mapping_push: takes ownership of `key` and
/// `val` in every case, checks nesting and size, then `add`s the pair.
fn add_pair(
    mapping: *mut UnisockValue,
    key: *mut UnisockValue,
    val: *mut UnisockValue,
    add: impl FnOnce(&mut Value, Value, Value),
) -> Result<ResultCode> {
    let key = take(key, "key");
    let val = take(val, "val");
    let (key, val) = (key?, val?);
    if deeper_than(&key, MAX_NESTING - 1) || deeper_than(&val, MAX_NESTING - 1) {
        return Err(too_deep());
    }
    match borrow_mut(mapping, "mapping")? {
        Value::Mapping(pairs) if pairs.len() >= MAX_ELEMENTS => {
            Err(FfiError::TooManyElements.into())
        }
        m @ Value::Mapping(_) => {
            add(m, key, val);
            Ok(ResultCode::Ok)
        }
        other => Err(wrong_kind("a mapping", other)),
    }
}

/// Sets `key` to `val` in `mapping` (replacing an equal key: O(n) per call;
/// see unisock_value_mapping_push for building large mappings). Takes
/// ownership of `key` and `val` in every case; `mapping` stays the caller's.
#[no_mangle]
pub extern "C" fn unisock_value_mapping_set(
    mapping: *mut UnisockValue,
    key: *mut UnisockValue,
    val: *mut UnisockValue,
) -> ResultCode {
    boundary(|| add_pair(mapping, key, val, |m, k, v| m.insert(k, v)))
}

/// Appends `key` → `val` to `mapping` without looking for an equal key:
/// O(1), for hosts whose keys are unique by construction (converting an LPC
/// mapping). With a duplicate key, lookups find the first pair. Takes
/// ownership of `key` and `val` in every case; `mapping` stays the caller's.
/// (unisock_value_mapping_set checks for an equal key: O(n) per call.)
#[no_mangle]
pub extern "C" fn unisock_value_mapping_push(
    mapping: *mut UnisockValue,
    key: *mut UnisockValue,
    val: *mut UnisockValue,
) -> ResultCode {
    boundary(|| {
        add_pair(mapping, key, val, |m, k, v| {
            if let Value::Mapping(pairs) = m {
                pairs.push((k, v));
            }
        })
    })
}

/// Frees a value the caller owns. NULL is ignored.
#[no_mangle]
pub extern "C" fn unisock_value_free(v: *mut UnisockValue) {
    let _ = boundary(|| {
        if !v.is_null() {
            drop(take(v, "v")?);
        }
        Ok(ResultCode::Ok)
    });
}

/// Deep copy of `v` in `*out` (caller owns the copy).
#[no_mangle]
pub extern "C" fn unisock_value_clone(
    v: *const UnisockValue,
    out: *mut *mut UnisockValue,
) -> ResultCode {
    boundary(|| {
        let copy = borrow(v, "v")?.clone();
        put_value(out, copy)
    })
}

/// The kind of `v` (Undefined for NULL).
#[no_mangle]
pub extern "C" fn unisock_value_get_kind(v: *const UnisockValue) -> ValueKind {
    super::boundary_value(ValueKind::Undefined, || match borrow(v, "v") {
        Ok(Value::Undefined) | Err(_) => ValueKind::Undefined,
        Ok(Value::Int(_)) => ValueKind::Int,
        Ok(Value::Real(_)) => ValueKind::Real,
        Ok(Value::Str(_)) => ValueKind::String,
        Ok(Value::Buffer(_)) => ValueKind::Buffer,
        Ok(Value::Array(_)) => ValueKind::Array,
        Ok(Value::Mapping(_)) => ValueKind::Mapping,
    })
}

/// The int in `v` into `*out` (WRONG_VALUE_KIND if not an int).
#[no_mangle]
pub extern "C" fn unisock_value_int(v: *const UnisockValue, out: *mut i64) -> ResultCode {
    boundary(|| match borrow(v, "v")? {
        Value::Int(i) => put(out, *i, "out").map(|_| ResultCode::Ok),
        other => Err(wrong_kind("an int", other)),
    })
}

/// The float in `v` into `*out` (WRONG_VALUE_KIND if not a float).
#[no_mangle]
pub extern "C" fn unisock_value_real(v: *const UnisockValue, out: *mut f64) -> ResultCode {
    boundary(|| match borrow(v, "v")? {
        Value::Real(r) => put(out, *r, "out").map(|_| ResultCode::Ok),
        other => Err(wrong_kind("a float", other)),
    })
}

/// The bytes of a string or buffer: `*ptr` borrows them (valid while `v` is
/// alive and unchanged; strings are NOT NUL-terminated), `*len` is their count.
#[no_mangle]
pub extern "C" fn unisock_value_bytes(
    v: *const UnisockValue,
    ptr: *mut *const u8,
    len: *mut usize,
) -> ResultCode {
    boundary(|| {
        let bytes = match borrow(v, "v")? {
            Value::Str(s) => s.as_bytes(),
            Value::Buffer(b) => b.as_slice(),
            other => return Err(wrong_kind("a string or buffer", other)),
        };
        if ptr.is_null() || len.is_null() {
            return Err(null("ptr or len"));
        }
        put(ptr, bytes.as_ptr(), "ptr")?;
        put(len, bytes.len(), "len")?;
        Ok(ResultCode::Ok)
    })
}

/// Number of elements (array) or pairs (mapping) into `*out`.
#[no_mangle]
pub extern "C" fn unisock_value_len(v: *const UnisockValue, out: *mut usize) -> ResultCode {
    boundary(|| {
        let n = match borrow(v, "v")? {
            Value::Array(a) => a.len(),
            Value::Mapping(m) => m.len(),
            other => return Err(wrong_kind("an array or mapping", other)),
        };
        put(out, n, "out").map(|_| ResultCode::Ok)
    })
}

/// Element `index` of array `v` into `*out` (borrowed from `v`).
#[no_mangle]
pub extern "C" fn unisock_value_array_get(
    v: *const UnisockValue,
    index: usize,
    out: *mut *const UnisockValue,
) -> ResultCode {
    boundary(|| match borrow(v, "v")? {
        Value::Array(a) => {
            let item = a.get(index).ok_or(FfiError::IndexOutOfRange)?;
            put(out, to_const_ptr::<UnisockValue>(item), "out").map(|_| ResultCode::Ok)
        }
        other => Err(wrong_kind("an array", other)),
    })
}

/// Pair `index` of mapping `v`: `*key` and `*val` borrow from `v`.
#[no_mangle]
pub extern "C" fn unisock_value_mapping_get(
    v: *const UnisockValue,
    index: usize,
    key: *mut *const UnisockValue,
    val: *mut *const UnisockValue,
) -> ResultCode {
    boundary(|| match borrow(v, "v")? {
        Value::Mapping(m) => {
            let (k, x) = m.get(index).ok_or(FfiError::IndexOutOfRange)?;
            if key.is_null() || val.is_null() {
                return Err(null("key or val"));
            }
            put(key, to_const_ptr::<UnisockValue>(k), "key")?;
            put(val, to_const_ptr::<UnisockValue>(x), "val")?;
            Ok(ResultCode::Ok)
        }
        other => Err(wrong_kind("a mapping", other)),
    })
}

/// Parses JSON text (`len` bytes) into a value in `*out` (caller owns it).
/// null → undefined, true/false → 1/0, {"buffer":[bytes]} → buffer.
#[no_mangle]
pub extern "C" fn unisock_value_from_json(
    ptr: *const c_char,
    len: usize,
    out: *mut *mut UnisockValue,
) -> ResultCode {
    boundary(|| {
        let bytes = c_bytes(ptr as *const u8, len, "ptr")?;
        let j: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| FfiError::BadJson { why: e.to_string() })?;
        put_value(out, Value::from_json(&j))
    })
}

/// Renders `v` as one line of JSON: `*out` is a NUL-terminated string the
/// caller frees with unisock_string_free.
#[no_mangle]
pub extern "C" fn unisock_value_to_json(
    v: *const UnisockValue,
    out: *mut *mut c_char,
) -> ResultCode {
    boundary(|| {
        let text = borrow(v, "v")?.to_json().to_string();
        let c = std::ffi::CString::new(text).map_err(|_| FfiError::Unparsable)?;
        put(out, c.into_raw(), "out")?;
        Ok(ResultCode::Ok)
    })
}

/// Frees a string returned by unisock (NULL is ignored).
#[no_mangle]
pub extern "C" fn unisock_string_free(s: *mut c_char) {
    let _ = boundary(|| {
        if !s.is_null() {
            // SAFETY: `s` came from CString::into_raw in this library (documented).
            drop(unsafe { std::ffi::CString::from_raw(s) });
        }
        Ok(ResultCode::Ok)
    });
}
