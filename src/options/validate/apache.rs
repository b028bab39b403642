//! Checks of the Apache / nginx integration options (300–309).

use super::fields::*;
use super::{abs_path, is_http_token, known_keys};
use crate::value::Value;

pub(crate) fn unix_socket_path(v: &Value) -> Result<Value, String> {
    // sun_path holds 108 bytes including the terminating NUL.
    abs_path(str_of(v), "the socket path", 107)?;
    Ok(v.clone())
}

pub(crate) fn cidr(s: &str) -> Result<(), String> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let ip: std::net::IpAddr = addr
        .parse()
        .map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
    if let Some(b) = bits {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match b.parse::<u32>() {
            Ok(n) if n <= max && !b.starts_with('+') => {}
            _ => return Err(format!("{s:?}: prefix length must be 0..{max}")),
        }
    }
    Ok(())
}

pub(crate) fn proxy_upstream(v: &Value) -> Result<Value, String> {
    string_or_strings(v, cidr)
}

pub(crate) fn static_handoff(v: &Value) -> Result<Value, String> {
    known_keys(v, &["prefix", "root", "header"])?;
    let prefix = required_str(v, "prefix")?;
    literal_path(prefix, "prefix")?;
    let root = required_str(v, "root")?;
    abs_path(root, "root", 4096)?;
    let header = str_field(v, "header")?.unwrap_or("X-Sendfile");
    if header != "X-Sendfile" && header != "X-Accel-Redirect" {
        return Err(format!(
            "\"header\" is {header:?}, wants \"X-Sendfile\" or \"X-Accel-Redirect\""
        ));
    }
    Ok(Value::mapping([
        ("prefix", Value::str(prefix)),
        ("root", Value::str(root)),
        ("header", Value::str(header)),
    ]))
}

pub(crate) fn path_prefixes(v: &Value) -> Result<Value, String> {
    string_or_strings(v, |s| literal_path(s, "the prefix"))
}

pub(crate) fn load_balance(v: &Value) -> Result<Value, String> {
    known_keys(v, &["backend_id", "health_path", "sticky_cookie"])?;
    let id = required_str(v, "backend_id")?;
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
    {
        return Err(format!(
            "\"backend_id\" {id:?} is not 1..64 chars of [A-Za-z0-9._-]"
        ));
    }
    let health = str_field(v, "health_path")?.unwrap_or("/health");
    literal_path(health, "health_path")?;
    let mut out = Value::mapping([
        ("backend_id", Value::str(id)),
        ("health_path", Value::str(health)),
    ]);
    if let Some(c) = str_field(v, "sticky_cookie")? {
        if !is_http_token(c) {
            return Err(format!("\"sticky_cookie\" {c:?} is not a cookie name"));
        }
        out.insert(Value::str("sticky_cookie"), Value::str(c));
    }
    Ok(out)
}
