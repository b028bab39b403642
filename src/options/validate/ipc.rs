//! Checks of the IPC bus options (440–453).

use super::abs_path;
use super::fields::*;
use crate::value::Value;

pub(crate) fn ipc_event_name(v: &Value) -> Result<Value, String> {
    let s = str_of(v);
    if s.is_empty() || s.len() > 64 {
        return Err(format!("{} chars long (1..64)", s.len()));
    }
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        Some(c) => Err(format!("contains {c:?}")),
        None => Ok(v.clone()),
    }
}

pub(crate) fn ipc_socket_dir(v: &Value) -> Result<Value, String> {
    // <dir>/<event_name>.sock must fit sun_path; the whole path is checked at bind.
    abs_path(str_of(v), "the directory", 100)?;
    Ok(v.clone())
}

pub(crate) fn ipc_host(v: &Value) -> Result<Value, String> {
    host_or_ip(str_of(v))?;
    Ok(v.clone())
}

pub(crate) fn port_range(v: &Value) -> Result<Value, String> {
    match v {
        Value::Array(a) => match a.as_slice() {
            [Value::Int(lo), Value::Int(hi)] => {
                if !(1..=65535).contains(lo) || !(1..=65535).contains(hi) {
                    Err("ports must be in 1..65535".into())
                } else if lo > hi {
                    Err(format!("{lo} > {hi}"))
                } else {
                    Ok(v.clone())
                }
            }
            _ => Err("wants exactly two ints".into()),
        },
        _ => Err(String::new()),
    }
}

/// A Unix file mode, 0..0777. LPC has no octal literals: `0660` in LPC is
/// the decimal 660, so a value whose digits read as a mode gets a hint.
pub(crate) fn file_mode(v: &Value) -> Result<Value, String> {
    let n = v.as_int().unwrap_or(-1);
    if (0..=0o777).contains(&n) {
        return Ok(v.clone());
    }
    match i64::from_str_radix(&n.to_string(), 8) {
        Ok(m) if (0..=0o777).contains(&m) => Err(format!(
            "LPC has no octal literals, so 0{n} is the decimal {n}: for mode 0{n} write {m} (or 0x{m:x})"
        )),
        _ => Err(String::new()),
    }
}

pub(crate) fn timezone(v: &Value) -> Result<Value, String> {
    let s = str_of(v);
    if s.is_empty() || s.len() > 64 {
        return Err(format!("{} chars long (1..64)", s.len()));
    }
    for part in s.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(format!("{s:?} has an empty, \".\" or \"..\" part"));
        }
        if let Some(c) = part
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "_+-".contains(*c)))
        {
            return Err(format!("{s:?} contains {c:?}"));
        }
    }
    // Known to the zone database (the system's, else the one built in).
    jiff::tz::TimeZone::get(s).map_err(|_| format!("{s:?} is not a known time zone"))?;
    Ok(v.clone())
}
