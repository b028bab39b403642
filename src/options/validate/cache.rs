//! Checks of the response-cache options (200–209).

use super::fields::*;
use super::{is_http_token, no_controls};
use crate::value::Value;

pub(crate) fn cache_key_pattern(v: &Value) -> Result<Value, String> {
    let s = str_of(v);
    if s.is_empty() || s.len() > 1024 {
        return Err(format!("{} chars long (1..1024)", s.len()));
    }
    let pos = |i: usize| s[..i].chars().count() + 1;
    let mut rest = 0;
    while let Some(off) = s[rest..].find(['{', '}']) {
        let i = rest + off;
        if s.as_bytes()[i] == b'}' {
            return Err(format!("unmatched \"}}\" at position {}", pos(i)));
        }
        let Some(len) = s[i..].find('}') else {
            return Err(format!("unclosed \"{{\" at position {}", pos(i)));
        };
        let name = &s[i + 1..i + len];
        let ok = matches!(name, "method" | "path" | "query" | "host")
            || name.strip_prefix("header:").is_some_and(is_http_token);
        if !ok {
            return Err(format!(
                "unknown placeholder {{{name}}} at position {} \
                 ({{method}} {{path}} {{query}} {{host}} {{header:Name}})",
                pos(i)
            ));
        }
        rest = i + len + 1;
    }
    Ok(v.clone())
}

pub(crate) fn header_names(v: &Value) -> Result<Value, String> {
    string_or_strings(v, |s| {
        if is_http_token(s) {
            Ok(())
        } else {
            Err(format!("{s:?} is not a header name"))
        }
    })
}

pub(crate) fn globs(v: &Value) -> Result<Value, String> {
    string_or_strings(v, |s| {
        if s.is_empty() || s.len() > 2048 {
            return Err(format!("{s:?} is {} chars long (1..2048)", s.len()));
        }
        no_controls(s, "the pattern")
    })
}
