//! Validation of one option value against its catalog row, producing the
//! error text of `spec/options.md`:
//! `socket_set_option: SO_HTTP_TIMEOUT (104) wants an int in 1000..300000 (ms), got 5`.
//!
//! The custom checks the catalog's rows name live one file per family
//! (`tls`, `http`, `rest`, `websocket`, `mqtt`, `external`, `cache`,
//! `apache`, `ipc`), with the helpers they share in `fields`.

pub mod apache;
pub mod cache;
pub mod external;
pub(crate) mod fields;
pub mod http;
pub mod ipc;
pub mod mqtt;
pub mod rest;
pub mod tls;
pub mod websocket;

use super::error::OptionError;
use super::{catalog, Access, Check, OptionDef};
use crate::error::Error;
use crate::value::Value;

/// Deepest nesting accepted in an option value (LPC values are finite trees;
/// this bounds recursion on hostile input).
pub const MAX_DEPTH: usize = 32;

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Mapping(m) => {
            1 + m
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

/// "got 5", "got a string \"abc\"", "got a mapping of 2 pairs".
pub fn got(v: &Value) -> String {
    match v {
        Value::Int(i) => format!("got {i}"),
        Value::Real(r) => format!("got a float {r}"),
        Value::Str(_) => format!("got a string {}", v.describe()),
        Value::Undefined => "got undefined".into(),
        other => format!("got {}", other.describe()),
    }
}

/// Finds the row for `id`, or the "unknown option" error.
pub fn lookup(id: i64, verb: &'static str) -> Result<&'static OptionDef, Error> {
    catalog::find(id).ok_or_else(|| OptionError::Unknown { verb, id }.into())
}

/// The "does not apply" error when the row does not accept `mode`.
pub fn check_mode(def: &OptionDef, mode: u8, verb: &'static str) -> Result<(), Error> {
    if def.modes.contains(mode) {
        Ok(())
    } else {
        Err(OptionError::NotForMode {
            verb,
            name: def.name,
            id: def.id,
            mode,
        }
        .into())
    }
}

/// Checks `value` against the row and returns what to store.
pub fn validate(def: &OptionDef, value: &Value) -> Result<Value, Error> {
    let fail = |detail: Option<String>| -> Error {
        // A secret is never echoed back, not even in an error message.
        let got = match (def.access, value) {
            (Access::Secret, Value::Str(s)) => format!("got a string of {} bytes", s.len()),
            _ => got(value),
        };
        OptionError::BadValue {
            name: def.name,
            id: def.id,
            wants: def.wants,
            got,
            detail,
        }
        .into()
    };
    let (name, id) = (def.name, def.id);
    match def.access {
        Access::Invalid => return Err(OptionError::NotAnOption { name, id }.into()),
        Access::ReadOnly => return Err(OptionError::ReadOnly { name, id }.into()),
        _ => {}
    }
    if !def.kinds.accepts(value) {
        return Err(fail(None));
    }
    if depth(value) > MAX_DEPTH {
        return Err(fail(Some(format!("nested deeper than {MAX_DEPTH} levels"))));
    }
    match def.check {
        Check::Any => Ok(value.clone()),
        Check::Bool => match value {
            Value::Int(i) => Ok(Value::Int((*i != 0) as i64)),
            _ => Err(fail(None)),
        },
        Check::IntRange(lo, hi) => match value {
            Value::Int(i) if (lo..=hi).contains(i) => Ok(value.clone()),
            Value::Int(_) => Err(fail(None)),
            // Other accepted kinds (e.g. string|int) pass through untouched.
            _ => Ok(value.clone()),
        },
        Check::StrLen(lo, hi) => match value {
            Value::Str(s) if (lo..=hi).contains(&s.len()) => Ok(value.clone()),
            // (a secret's length is already in the "got" part)
            Value::Str(s) => Err(fail(
                (def.access != Access::Secret).then(|| format!("{} bytes long", s.len())),
            )),
            _ => Ok(value.clone()),
        },
        Check::OneOf(words) => match value {
            Value::Str(s) if words.contains(&s.as_str()) => Ok(value.clone()),
            Value::Str(_) => Err(fail(None)),
            _ => Ok(value.clone()),
        },
        Check::Custom(f) => f(value).map_err(|d| fail(Some(d).filter(|d| !d.is_empty()))),
    }
}

/// HTTP methods accepted wherever an option names one.
pub const HTTP_METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE",
];

/// An LPC function name: `[A-Za-z_][A-Za-z0-9_]*`, at most 256 bytes.
pub fn is_lpc_identifier(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && s.len() <= 256
}

/// An HTTP token (RFC 9110 `tchar`+), as header names and methods are.
pub fn is_http_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

/// Rejects control characters (NUL, CR, LF, ...); `what` names the value.
pub fn no_controls(s: &str, what: &str) -> Result<(), String> {
    match s.char_indices().find(|(_, c)| c.is_control()) {
        Some((i, c)) => Err(format!(
            "{what} contains the control character {:?} at position {}",
            c,
            s[..i].chars().count() + 1
        )),
        None => Ok(()),
    }
}

/// An absolute path without NUL bytes or ".." components, at most `max` bytes.
/// Whether it exists is not checked here (that is the consumer's job, when
/// the socket starts).
pub fn abs_path(s: &str, what: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if s.len() > max {
        return Err(format!("{what} is {} bytes long (at most {max})", s.len()));
    }
    if s.contains('\0') {
        return Err(format!("{what} contains a NUL byte"));
    }
    if !s.starts_with('/') {
        return Err(format!(
            "{what} {s:?} is not absolute (must start with \"/\")"
        ));
    }
    if s.split('/').any(|c| c == "..") {
        return Err(format!("{what} {s:?} has a \"..\" component"));
    }
    Ok(())
}

/// Refuses mapping keys outside `allowed`; every key must be a string.
pub fn known_keys(v: &Value, allowed: &[&str]) -> Result<(), String> {
    if let Value::Mapping(m) = v {
        for (k, _) in m {
            match k {
                Value::Str(s) if allowed.contains(&s.as_str()) => {}
                other => {
                    return Err(format!(
                        "unknown key {} (allowed: {})",
                        other.describe(),
                        allowed.join(", ")
                    ))
                }
            }
        }
    }
    Ok(())
}

/// What a `{name:type}` route parameter accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// `{name}`: any non-empty segment.
    Any,
    /// `{name:int}`: an optionally signed decimal integer.
    Int,
    /// `{name:uuid}`: 8-4-4-4-12 hex digits.
    Uuid,
    /// `{name:alpha}`: letters only.
    Alpha,
}

/// One segment of a parsed REST route pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteSegment {
    /// Matched literally (case per REST_ROUTER_CONFIG's case_sensitive).
    Literal(String),
    /// `{name}`, `{name:int}`, `{name:uuid}`, `{name:alpha}`, `{name?}`.
    Param {
        name: String,
        kind: ParamKind,
        optional: bool,
    },
    /// A trailing `/*`: the rest of the path (possibly empty).
    Rest,
}

/// A parsed REST route pattern (REST_ADD_ROUTE's `pattern`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutePattern {
    pub segments: Vec<RouteSegment>,
    /// The pattern ended in "/" (matters when strict_slash is set).
    pub trailing_slash: bool,
}

/// Longest route pattern accepted, in bytes.
pub const MAX_PATTERN: usize = 2048;

/// Parses a route pattern: "/" followed by "/"-separated segments, each a
/// literal, or a whole-segment parameter `{name}` / `{name:int|uuid|alpha}`
/// with an optional `?` (last segment only), or `*` as the last segment.
/// Errors name the 1-based character position of the problem.
pub fn parse_route_pattern(p: &str) -> Result<RoutePattern, String> {
    let at = |byte: usize| p[..byte].chars().count() + 1;
    if p.len() > MAX_PATTERN {
        return Err(format!(
            "pattern is {} bytes long (at most {MAX_PATTERN})",
            p.len()
        ));
    }
    if !p.starts_with('/') {
        return Err("pattern must start with \"/\" (position 1)".into());
    }
    let mut out = RoutePattern {
        segments: Vec::new(),
        trailing_slash: false,
    };
    if p == "/" {
        return Ok(out);
    }
    let parts: Vec<&str> = p[1..].split('/').collect();
    let mut start = 1; // byte offset of the current segment
    let mut names: Vec<String> = Vec::new();
    for (i, seg) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if let Some(prev) = out.segments.last() {
            let after = match prev {
                RouteSegment::Rest => Some("\"*\""),
                RouteSegment::Param { optional: true, .. } => Some("an optional parameter"),
                _ => None,
            };
            if let Some(what) = after {
                return Err(format!(
                    "{what} must be the last segment, but more follows at position {}",
                    at(start - 1)
                ));
            }
        }
        if seg.is_empty() {
            if last {
                out.trailing_slash = true;
                break;
            }
            return Err(format!("empty segment (\"//\") at position {}", at(start)));
        }
        if *seg == "." || *seg == ".." {
            return Err(format!("{seg:?} segment at position {}", at(start)));
        }
        if *seg == "*" {
            out.segments.push(RouteSegment::Rest);
        } else if let Some(inner) = seg.strip_prefix('{') {
            let Some(inner) = inner.strip_suffix('}') else {
                return Err(match seg.find('}') {
                    Some(j) => format!(
                        "text after \"}}\" at position {}: a parameter must fill its whole segment",
                        at(start + j + 1)
                    ),
                    None => format!("unclosed \"{{\" at position {}", at(start)),
                });
            };
            let (inner, optional) = match inner.strip_suffix('?') {
                Some(x) => (x, true),
                None => (inner, false),
            };
            let (name, kind) = match inner.split_once(':') {
                Some((n, t)) => {
                    let kind = match t {
                        "int" => ParamKind::Int,
                        "uuid" => ParamKind::Uuid,
                        "alpha" => ParamKind::Alpha,
                        _ => {
                            return Err(format!(
                                "unknown parameter type {t:?} at position {} (int, uuid or alpha)",
                                at(start + 2 + n.len())
                            ))
                        }
                    };
                    (n, kind)
                }
                None => (inner, ParamKind::Any),
            };
            if !is_lpc_identifier(name) {
                return Err(format!(
                    "bad parameter name {name:?} at position {} ([A-Za-z_][A-Za-z0-9_]*)",
                    at(start + 1)
                ));
            }
            if names.iter().any(|n| n == name) {
                return Err(format!(
                    "duplicate parameter name {name:?} at position {}",
                    at(start + 1)
                ));
            }
            names.push(name.to_string());
            out.segments.push(RouteSegment::Param {
                name: name.to_string(),
                kind,
                optional,
            });
        } else {
            for (j, c) in seg.char_indices() {
                let ok = c.is_ascii_alphanumeric() || "-._~!$&'()+,;=:@%".contains(c);
                if !ok {
                    let why = match c {
                        '{' | '}' => ": a parameter must fill its whole segment",
                        '*' => ": \"*\" is only allowed as the whole last segment",
                        _ => "",
                    };
                    return Err(format!(
                        "character {c:?} not allowed at position {}{why}",
                        at(start + j)
                    ));
                }
            }
            out.segments.push(RouteSegment::Literal(seg.to_string()));
        }
        start += seg.len() + 1;
    }
    Ok(out)
}

/// The error for an option the catalog accepts on a mode whose feature is
/// not built yet: storing it would be a silent no-op. `what` names the feature.
pub fn not_built_yet(id: u16, what: &str) -> Error {
    let name = super::catalog::find(id as i64).map_or("option", |d| d.name);
    OptionError::NotBuiltYet {
        name,
        id,
        what: what.to_string(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ResultCode;

    #[test]
    fn spec_example_message() {
        let def = catalog::find(104).unwrap();
        let e = validate(def, &Value::Int(5)).unwrap_err();
        assert_eq!(
            e.message,
            "socket_set_option: SO_HTTP_TIMEOUT (104) wants an int in 1000..300000 (ms), got 5"
        );
        assert_eq!(e.code, ResultCode::BadOptionValue);
    }

    #[test]
    fn unknown_and_mode_messages() {
        assert_eq!(
            lookup(777, "socket_set_option").unwrap_err().message,
            "socket_set_option: unknown option 777"
        );
        let def = catalog::find(122).unwrap();
        assert_eq!(
            check_mode(def, 11, "socket_set_option")
                .unwrap_err()
                .message,
            "socket_set_option: WS_ORIGIN (122) does not apply to HTTP_CLIENT sockets"
        );
    }

    #[test]
    fn booleans_normalise() {
        let def = catalog::find(11).unwrap();
        assert_eq!(validate(def, &Value::Int(7)).unwrap(), Value::Int(1));
    }

    #[test]
    fn deep_values_are_refused() {
        let mut v = Value::Int(0);
        for _ in 0..100 {
            v = Value::Array(vec![v]);
        }
        let def = catalog::find(100).unwrap();
        assert!(validate(def, &Value::Mapping(vec![(Value::str("a"), v)])).is_err());
    }

    #[test]
    fn route_patterns() {
        let p = parse_route_pattern("/users/{id:int}/files/*").unwrap();
        assert_eq!(p.segments.len(), 4);
        assert_eq!(
            p.segments[1],
            RouteSegment::Param {
                name: "id".into(),
                kind: ParamKind::Int,
                optional: false
            }
        );
        assert_eq!(p.segments[3], RouteSegment::Rest);
        assert!(parse_route_pattern("/").unwrap().segments.is_empty());
        assert!(parse_route_pattern("/a/").unwrap().trailing_slash);
        assert!(parse_route_pattern("/a/{b?}").is_ok());
        let e = |p: &str| parse_route_pattern(p).unwrap_err();
        assert_eq!(e("/users/{id"), "unclosed \"{\" at position 8");
        assert!(e("users").contains("position 1"));
        assert!(e("/a//b").contains("position 4"), "{}", e("/a//b"));
        assert!(e("/a/*/b").contains("position 5"), "{}", e("/a/*/b"));
        assert!(e("/a/{x:float}").contains("unknown parameter type"));
        assert!(e("/a/{x}/{x}").contains("duplicate"));
        assert!(e("/a/{x?}/b").contains("optional"));
        assert!(e("/a/b c").contains("position 5"), "{}", e("/a/b c"));
        assert!(e("/a/x{y}").contains("whole segment"));
        assert!(e("/a/{y}x").contains("whole segment"));
        assert!(e("/a/../b").contains("\"..\""));
    }

    #[test]
    fn path_and_key_helpers() {
        assert!(abs_path("/srv/x", "path", 4096).is_ok());
        assert!(abs_path("srv/x", "path", 4096).is_err());
        assert!(abs_path("/srv/../x", "path", 4096).is_err());
        assert!(is_lpc_identifier("do_get_2") && !is_lpc_identifier("2x"));
        assert!(is_http_token("X-Request-Id") && !is_http_token("X Id"));
        let m = Value::mapping([("a", Value::Int(1)), ("z", Value::Int(1))]);
        assert_eq!(
            known_keys(&m, &["a", "b"]).unwrap_err(),
            "unknown key \"z\" (allowed: a, b)"
        );
        assert!(no_controls("a\r\nb", "value")
            .unwrap_err()
            .contains("position 2"));
    }

    #[test]
    fn secrets_are_not_echoed_in_errors() {
        let def = catalog::find(113).unwrap();
        let e = validate(def, &Value::str("hunter2")).unwrap_err();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
        assert!(
            e.message.contains("got a string of 7 bytes"),
            "{}",
            e.message
        );
    }
}
