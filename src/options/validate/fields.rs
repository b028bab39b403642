//! Small helpers shared by the families' custom checks: fields of a
//! mapping, strings or arrays of strings, host names and ports, HTTP methods,
//! literal paths.

use super::{parse_route_pattern, RouteSegment, HTTP_METHODS};
use crate::value::Value;

pub(crate) fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

pub(crate) fn boolean(v: &Value) -> Value {
    Value::Int((v.as_int().unwrap_or(0) != 0) as i64)
}

/// The strings of an array, or which element is not a string.
pub(crate) fn strings(v: &Value) -> Result<Vec<&str>, String> {
    match v {
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, e)| {
                e.as_str()
                    .ok_or_else(|| format!("element {i} is {}, not a string", e.describe()))
            })
            .collect(),
        Value::Str(s) => Ok(vec![s.as_str()]),
        other => Err(format!("{} is not an array of strings", other.describe())),
    }
}

/// A string, or an array of strings, each passing `each`.
pub(crate) fn string_or_strings(
    v: &Value,
    each: impl Fn(&str) -> Result<(), String>,
) -> Result<Value, String> {
    for (i, s) in strings(v)?.into_iter().enumerate() {
        each(s).map_err(|e| match v {
            Value::Array(_) => format!("element {i}: {e}"),
            _ => e,
        })?;
    }
    Ok(v.clone())
}

pub(crate) fn int_field(
    v: &Value,
    key: &str,
    lo: i64,
    hi: i64,
    unit: &str,
) -> Result<Option<i64>, String> {
    match v.get(key) {
        None => Ok(None),
        Some(Value::Int(i)) if (lo..=hi).contains(i) => Ok(Some(*i)),
        Some(x) => Err(format!(
            "\"{key}\" is {}, wants an int in {lo}..{hi}{unit}",
            x.describe()
        )),
    }
}

pub(crate) fn str_field<'a>(v: &'a Value, key: &str) -> Result<Option<&'a str>, String> {
    match v.get(key) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(x) => Err(format!("\"{key}\" is {}, not a string", x.describe())),
    }
}

pub(crate) fn required_str<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    str_field(v, key)?.ok_or_else(|| format!("\"{key}\" is missing"))
}

pub(crate) fn bool_field(v: &Value, key: &str) -> Result<Option<i64>, String> {
    match v.get(key) {
        None => Ok(None),
        Some(Value::Int(i)) => Ok(Some((*i != 0) as i64)),
        Some(x) => Err(format!("\"{key}\" is {}, not an int 0/1", x.describe())),
    }
}

pub(crate) fn hostname_detail(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 253 {
        return Err(format!("{} chars long", s.len()));
    }
    for l in s.split('.') {
        if l.is_empty() {
            return Err("empty label (\"..\" or a leading/trailing dot)".into());
        }
        if l.len() > 63 {
            return Err(format!("label of {} chars (at most 63)", l.len()));
        }
        if let Some(c) = l
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("character {c:?} in label {l:?}"));
        }
    }
    Ok(())
}

/// A host name, an IPv4 address, or an IPv6 address.
pub(crate) fn host_or_ip(s: &str) -> Result<(), String> {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    hostname_detail(s)
}

/// "host:port" with host a name, an IPv4 address or "[IPv6]".
pub(crate) fn host_port(s: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| "an IPv6 host must be \"[addr]:port\"".to_string())?;
        h.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{h:?} is not an IPv6 address"))?;
        (None, p)
    } else {
        let (h, p) = s
            .rsplit_once(':')
            .ok_or_else(|| "the port is missing (\"host:port\")".to_string())?;
        (Some(h), p)
    };
    if let Some(h) = host {
        hostname_detail(h).map_err(|e| format!("bad host {h:?}: {e}"))?;
    }
    match port.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) && !port.starts_with('+') => Ok(()),
        _ => Err(format!("bad port {port:?} (1..65535)")),
    }
}

pub(crate) fn http_method(s: &str) -> Result<String, String> {
    let up = s.to_ascii_uppercase();
    if HTTP_METHODS.contains(&up.as_str()) {
        Ok(up)
    } else {
        Err(format!(
            "method {s:?} is not one of {}",
            HTTP_METHODS.join(" ")
        ))
    }
}

pub(crate) fn http_methods(v: &Value) -> Result<Value, String> {
    let mut out = Vec::new();
    for (i, s) in strings(v)?.into_iter().enumerate() {
        out.push(Value::Str(
            http_method(s).map_err(|e| format!("element {i}: {e}"))?,
        ));
    }
    Ok(Value::Array(out))
}

/// A "/"-rooted path of literal segments ("/docs", "/api/v1").
pub(crate) fn literal_path(s: &str, what: &str) -> Result<(), String> {
    let p = parse_route_pattern(s).map_err(|e| format!("{what}: {e}"))?;
    if p.segments
        .iter()
        .any(|s| !matches!(s, RouteSegment::Literal(_)))
    {
        return Err(format!(
            "{what} {s:?} has a parameter or \"*\"; only a plain path is allowed"
        ));
    }
    Ok(())
}
