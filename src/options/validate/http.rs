//! Checks of the HTTP options (100–109).

use super::fields::*;
use super::{is_http_token, no_controls};
use crate::value::Value;

pub(crate) fn header_map(v: &Value) -> Result<Value, String> {
    if let Value::Mapping(m) = v {
        for (k, val) in m {
            let (Value::Str(k), Value::Str(val)) = (k, val) else {
                return Err(format!("entry {} is not string → string", k.describe()));
            };
            if !is_http_token(k) {
                return Err(format!("{k:?} is not a valid header name"));
            }
            no_controls(val, &format!("the value of {k:?}"))?;
        }
    }
    Ok(v.clone())
}

pub(crate) fn http_method_value(v: &Value) -> Result<Value, String> {
    http_method(str_of(v)).map(Value::Str)
}

pub(crate) fn http_url(v: &Value) -> Result<Value, String> {
    let s = str_of(v);
    if s.len() > 2048 {
        return Err(format!("{} chars long", s.len()));
    }
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &s[7..]
    } else if lower.starts_with("https://") {
        &s[8..]
    } else {
        return Err("the scheme must be http:// or https://".into());
    };
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("contains {c:?}"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Err("the host is missing".into());
    }
    Ok(v.clone())
}

pub(crate) fn user_agent(v: &Value) -> Result<Value, String> {
    let s = str_of(v);
    if s.len() > 256 {
        return Err(format!("{} chars long", s.len()));
    }
    no_controls(s, "the user agent")?;
    Ok(v.clone())
}
