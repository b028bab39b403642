//! Checks of the REST options (110–119): router config, routes, OpenAPI, schemas, CORS, rate limits.

use super::fields::*;
use super::{is_http_token, is_lpc_identifier, known_keys, parse_route_pattern};
use crate::value::Value;

/// Default REST_ROUTER_CONFIG: the limits the server applies when unset.
pub(crate) fn router_defaults(_: u8) -> Value {
    Value::mapping([
        ("base_path", Value::str("")),
        ("strict_slash", Value::Int(0)),
        ("case_sensitive", Value::Int(1)),
        ("max_body", Value::Int(ROUTER_MAX_BODY)),
    ])
}

pub(crate) const ROUTER_MAX_BODY: i64 = 8 * 1024 * 1024;

pub(crate) fn router_config(v: &Value) -> Result<Value, String> {
    known_keys(
        v,
        &["base_path", "strict_slash", "case_sensitive", "max_body"],
    )?;
    let mut out = router_defaults(0);
    if let Some(b) = str_field(v, "base_path")? {
        if !b.is_empty() {
            literal_path(b, "base_path")?;
            if b.len() > 1 && b.ends_with('/') {
                return Err(format!("base_path {b:?} must not end in \"/\""));
            }
        }
        out.insert(Value::str("base_path"), Value::str(b));
    }
    for key in ["strict_slash", "case_sensitive"] {
        if let Some(x) = bool_field(v, key)? {
            out.insert(Value::str(key), Value::Int(x));
        }
    }
    if let Some(x) = int_field(v, "max_body", 1024, 1 << 30, " (bytes)")? {
        out.insert(Value::str("max_body"), Value::Int(x));
    }
    Ok(out)
}

pub(crate) fn rest_route(v: &Value) -> Result<Value, String> {
    known_keys(v, &["method", "pattern", "handler", "openapi"])?;
    let method = http_method(required_str(v, "method")?)?;
    let pattern = required_str(v, "pattern")?;
    parse_route_pattern(pattern).map_err(|e| format!("pattern {pattern:?}: {e}"))?;
    let handler = required_str(v, "handler")?;
    if !is_lpc_identifier(handler) {
        return Err(format!("handler {handler:?} is not a function name"));
    }
    let mut out = Value::mapping([
        ("method", Value::Str(method)),
        ("pattern", Value::str(pattern)),
        ("handler", Value::str(handler)),
    ]);
    match v.get("openapi") {
        None => {}
        Some(o @ Value::Mapping(_)) => out.insert(Value::str("openapi"), o.clone()),
        Some(x) => return Err(format!("\"openapi\" is {}, not a mapping", x.describe())),
    }
    Ok(out)
}

pub(crate) fn openapi_info(v: &Value) -> Result<Value, String> {
    known_keys(
        v,
        &[
            "title",
            "version",
            "description",
            "termsOfService",
            "contact",
            "license",
        ],
    )?;
    for key in ["title", "version"] {
        if required_str(v, key)?.is_empty() {
            return Err(format!("\"{key}\" is empty"));
        }
    }
    str_field(v, "description")?;
    str_field(v, "termsOfService")?;
    for key in ["contact", "license"] {
        if let Some(x) = v.get(key) {
            if !matches!(x, Value::Mapping(_)) {
                return Err(format!("\"{key}\" is {}, not a mapping", x.describe()));
            }
        }
    }
    Ok(v.clone())
}

pub(crate) fn docs_path(v: &Value) -> Result<Value, String> {
    let s = str_of(v);
    if !s.is_empty() {
        if s.len() > 256 {
            return Err(format!("{} chars long", s.len()));
        }
        literal_path(s, "the path")?;
    }
    Ok(v.clone())
}

pub(crate) const SCHEMA_TYPES: &[&str] = &[
    "object", "array", "string", "integer", "number", "boolean", "null",
];

pub(crate) fn schema(v: &Value, at: &str) -> Result<(), String> {
    let Value::Mapping(m) = v else {
        return Err(format!("{at}: {} is not a schema mapping", v.describe()));
    };
    for (k, val) in m {
        let key = k.as_str().unwrap_or("");
        let here = format!("{at}.{key}");
        let bad = |what: &str| Err(format!("{here}: {} is not {what}", val.describe()));
        match key {
            "type" => match val {
                Value::Str(t) if SCHEMA_TYPES.contains(&t.as_str()) => {}
                Value::Array(ts)
                    if !ts.is_empty()
                        && ts
                            .iter()
                            .all(|t| t.as_str().is_some_and(|t| SCHEMA_TYPES.contains(&t))) => {}
                _ => return bad(&format!("a type name ({})", SCHEMA_TYPES.join(", "))),
            },
            "properties" => match val {
                Value::Mapping(props) => {
                    for (name, sub) in props {
                        let Some(name) = name.as_str() else {
                            return Err(format!("{here}: property names must be strings"));
                        };
                        schema(sub, &format!("{here}.{name}"))?;
                    }
                }
                _ => return bad("a mapping of property schemas"),
            },
            "required" => {
                if !matches!(val, Value::Array(a) if a.iter().all(|x| x.as_str().is_some())) {
                    return bad("an array of property names");
                }
            }
            "enum" => {
                if !matches!(val, Value::Array(a) if !a.is_empty()) {
                    return bad("a non-empty array");
                }
            }
            "minimum" | "maximum" => {
                if !matches!(val, Value::Int(_) | Value::Real(_)) {
                    return bad("a number");
                }
            }
            "minLength" | "maxLength" => {
                if !matches!(val, Value::Int(i) if *i >= 0) {
                    return bad("an int >= 0");
                }
            }
            "items" => schema(val, &here)?,
            "pattern" | "title" | "description" => {
                if val.as_str().is_none() {
                    return bad("a string");
                }
            }
            _ => {
                return Err(format!(
                    "{at}: unknown keyword {} (supported: type, properties, required, enum, \
                     minimum, maximum, minLength, maxLength, items, pattern, title, description)",
                    k.describe()
                ))
            }
        }
    }
    Ok(())
}

pub(crate) fn validation_schema(v: &Value) -> Result<Value, String> {
    if let Value::Mapping(m) = v {
        for (k, s) in m {
            let Some(key) = k.as_str() else {
                return Err(format!("key {} is not a string", k.describe()));
            };
            let Some((method, pattern)) = key.split_once(' ') else {
                return Err(format!("key {key:?} is not \"METHOD /pattern\""));
            };
            http_method(method).map_err(|e| format!("key {key:?}: {e}"))?;
            parse_route_pattern(pattern).map_err(|e| format!("key {key:?}: {e}"))?;
            schema(s, &format!("{key:?}"))?;
        }
    }
    Ok(v.clone())
}

pub(crate) fn function_names(v: &Value) -> Result<Value, String> {
    string_or_strings(v, |s| {
        if is_lpc_identifier(s) {
            Ok(())
        } else {
            Err(format!("{s:?} is not a function name"))
        }
    })
}

pub(crate) fn function_name(v: &Value) -> Result<Value, String> {
    let s = str_of(v);
    if is_lpc_identifier(s) {
        Ok(v.clone())
    } else {
        Err(format!("{s:?} is not a function name"))
    }
}

pub(crate) fn origin(s: &str) -> Result<(), String> {
    if s == "*" {
        return Ok(());
    }
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| format!("origin {s:?} is not \"*\" or http(s)://host[:port]"))?;
    if rest.is_empty() || rest.contains('/') || rest.chars().any(|c| c.is_whitespace()) {
        return Err(format!(
            "origin {s:?} is not \"*\" or http(s)://host[:port]"
        ));
    }
    Ok(())
}

pub(crate) fn cors_config(v: &Value) -> Result<Value, String> {
    known_keys(
        v,
        &["origins", "methods", "headers", "credentials", "max_age"],
    )?;
    let mut out = Value::Mapping(vec![]);
    match v.get("origins") {
        Some(o @ Value::Array(a)) if !a.is_empty() => {
            for s in strings(o).map_err(|e| format!("\"origins\": {e}"))? {
                origin(s)?;
            }
            out.insert(Value::str("origins"), o.clone());
        }
        Some(x) => {
            return Err(format!(
                "\"origins\" is {}, wants a non-empty array",
                x.describe()
            ))
        }
        None => return Err("\"origins\" is missing".into()),
    }
    if let Some(m) = v.get("methods") {
        let m = match m {
            Value::Array(_) => http_methods(m).map_err(|e| format!("\"methods\": {e}"))?,
            x => return Err(format!("\"methods\" is {}, not an array", x.describe())),
        };
        out.insert(Value::str("methods"), m);
    }
    if let Some(h) = v.get("headers") {
        let Value::Array(_) = h else {
            return Err(format!("\"headers\" is {}, not an array", h.describe()));
        };
        for s in strings(h).map_err(|e| format!("\"headers\": {e}"))? {
            if !is_http_token(s) && s != "*" {
                return Err(format!("\"headers\": {s:?} is not a header name"));
            }
        }
        out.insert(Value::str("headers"), h.clone());
    }
    if let Some(c) = bool_field(v, "credentials")? {
        out.insert(Value::str("credentials"), Value::Int(c));
    }
    if let Some(a) = int_field(v, "max_age", 0, 86400, " (s)")? {
        out.insert(Value::str("max_age"), Value::Int(a));
    }
    Ok(out)
}

pub(crate) fn rate_limit(v: &Value) -> Result<Value, String> {
    known_keys(v, &["requests", "window", "key"])?;
    let requests = int_field(v, "requests", 1, 1_000_000, "")?
        .ok_or_else(|| "\"requests\" is missing".to_string())?;
    let window = int_field(v, "window", 1, 86400, " (s)")?
        .ok_or_else(|| "\"window\" is missing".to_string())?;
    let key = str_field(v, "key")?.unwrap_or("ip");
    if key != "ip" && key != "token" {
        return Err(format!("\"key\" is {key:?}, wants \"ip\" or \"token\""));
    }
    Ok(Value::mapping([
        ("requests", Value::Int(requests)),
        ("window", Value::Int(window)),
        ("key", Value::str(key)),
    ]))
}
