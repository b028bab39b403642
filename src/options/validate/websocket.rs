//! Checks of the WebSocket options (120–129).

use super::fields::*;
use super::no_controls;
use crate::value::Value;

pub(crate) fn ws_protocols(v: &Value) -> Result<Value, String> {
    if matches!(v, Value::Array(a) if a.is_empty()) {
        return Err("the array is empty".into());
    }
    string_or_strings(v, |s| {
        if s.is_empty() || s.len() > 64 {
            return Err(format!("{s:?} is {} chars long (1..64)", s.len()));
        }
        match s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-'))
        {
            Some(c) => Err(format!("{s:?} contains {c:?}")),
            None => Ok(()),
        }
    })
}

pub(crate) fn ws_extensions(v: &Value) -> Result<Value, String> {
    string_or_strings(v, |s| {
        if s == "permessage-deflate" {
            Ok(())
        } else {
            Err(format!(
                "{s:?} is not supported (supported: \"permessage-deflate\")"
            ))
        }
    })
}

pub(crate) fn ws_origins(v: &Value) -> Result<Value, String> {
    string_or_strings(v, |s| {
        if s.is_empty() || s.len() > 2048 {
            return Err(format!("{s:?} is {} chars long (1..2048)", s.len()));
        }
        no_controls(s, "the origin")
    })
}
