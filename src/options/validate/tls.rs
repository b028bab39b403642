//! Checks of the TLS options (1–4, 10): host names and PEM paths.

use super::fields::*;
use crate::value::Value;

pub(crate) fn hostname(v: &Value) -> Result<Value, String> {
    hostname_detail(str_of(v))?;
    Ok(v.clone())
}

pub(crate) fn pem_path(v: &Value) -> Result<Value, String> {
    let s = str_of(v);
    if s.is_empty() || s.len() > 4096 {
        return Err(format!("{} bytes long", s.len()));
    }
    if s.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    Ok(v.clone())
}
