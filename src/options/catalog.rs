//! THE option table. Every fact about every option of `spec/options.md` lives
//! in one row here; headers, docs and validation are derived from it
//! (`src/gen.rs`, `tests/generated_files.rs`).
//!
//! Adding an option = one row here + the code in its family that consumes it,
//! then `UNISOCK_BLESS=1 cargo test --test generated_files` to regenerate the
//! headers and docs.
//!
//! The checks below only look at the value itself. Facts that depend on other
//! options or on the system at start time (EXTERNAL_WORKING_DIR exists,
//! MQTT_WILL_MESSAGE needs MQTT_WILL_TOPIC, EXTERNAL_COMMAND is absolute when
//! no shell is used) are checked by the family when the socket starts.

use super::validate::{
    abs_path, is_http_token, is_lpc_identifier, known_keys, no_controls, parse_route_pattern,
    HTTP_METHODS,
};
use super::{Access, Check, Default, Kinds, OptionDef, When};
use crate::modes::ModeSet;
use crate::value::Value;

const I: Kinds = Kinds::INT;
const S: Kinds = Kinds::STRING;
const B: Kinds = Kinds::BUFFER;
const A: Kinds = Kinds::ARRAY;
const M: Kinds = Kinds::MAPPING;

/// TLS client modes (legacy 5/6 plus the new TLS-capable clients).
const TLS_CLIENTS: ModeSet = ModeSet::of(&[5, 6, 13, 15, 19, 21]);
/// Modes that may carry a certificate: legacy TLS (listen), TLS servers, TLS clients (mutual TLS).
const TLS_CERT_MODES: ModeSet = ModeSet::of(&[5, 6, 12, 13, 14, 15, 18, 19, 21]);
/// Every mode that runs over TCP.
const TCP_MODES: ModeSet = ModeSet::of(&[
    0, 1, 3, 5, 6, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 24, 25, 26, 27, 28, 29, 30,
]);
/// Every mode that can listen (legacy stream modes listen too).
const SERVERS: ModeSet = ModeSet::of(&[0, 1, 3, 5, 6, 10, 12, 14, 16, 18, 25, 27, 29]);
/// Every mode unisock serves.
const ALL: ModeSet = ModeSet::ALL;
/// Stream modes whose queued output has a no-progress deadline of SO_SEND_TIMEOUT
/// (HTTP and REST use SO_HTTP_READ_TIMEOUT for it, both directions).
const SEND_DEADLINE: ModeSet = ModeSet::of(&[
    0, 1, 3, 5, 6, 16, 17, 18, 19, 20, 21, 24, 25, 26, 27, 28, 29, 30,
]);
/// HTTP and REST, servers and clients.
const HTTP_ALL: ModeSet = ModeSet::range(10, 15);
/// HTTP and REST clients.
const HTTP_CLIENTS: ModeSet = ModeSet::of(&[11, 13, 15]);
const REST_SERVER: ModeSet = ModeSet::of(&[14]);
const REST_BOTH: ModeSet = ModeSet::of(&[14, 15]);
const WS: ModeSet = ModeSet::range(16, 19);
const MQTT: ModeSet = ModeSet::of(&[20, 21]);
const EXTERNAL: ModeSet = ModeSet::of(&[22, 23]);
const EXTERNAL_LONG: ModeSet = ModeSet::of(&[22]);
/// HTTP/REST servers (the front-server integration options).
const APACHE: ModeSet = ModeSet::of(&[10, 12, 14]);
const IPC: ModeSet = ModeSet::of(&[29, 30]);
const IPC_SERVER: ModeSet = ModeSet::of(&[29]);
const IPC_CLIENT: ModeSet = ModeSet::of(&[30]);

/// Shorthand for a row; keeps the table readable.
#[allow(clippy::too_many_arguments)]
const fn row(
    id: u16,
    name: &'static str,
    kinds: Kinds,
    default: Default,
    default_doc: &'static str,
    check: Check,
    wants: &'static str,
    modes: ModeSet,
    doc: &'static str,
) -> OptionDef {
    OptionDef {
        id,
        name,
        aliases: &[],
        kinds,
        default,
        default_doc,
        check,
        wants,
        modes,
        access: Access::ReadWrite,
        when: When::Anytime,
        append: false,
        doc,
    }
}

const fn with_aliases(mut d: OptionDef, aliases: &'static [&'static str]) -> OptionDef {
    d.aliases = aliases;
    d
}

const fn access(mut d: OptionDef, a: Access) -> OptionDef {
    d.access = a;
    d
}

const fn before_start(mut d: OptionDef) -> OptionDef {
    d.when = When::BeforeStart;
    d
}

const fn append(mut d: OptionDef) -> OptionDef {
    d.append = true;
    d
}

// ---------------------------------------------------------------------------
// Defaults that are values rather than literals.

fn verify_default(mode: u8) -> Value {
    Value::Int(if mode == 5 || mode == 6 { 0 } else { 1 })
}

/// Default REST_ROUTER_CONFIG: the limits the server applies when unset.
fn router_defaults(_: u8) -> Value {
    Value::mapping([
        ("base_path", Value::str("")),
        ("strict_slash", Value::Int(0)),
        ("case_sensitive", Value::Int(1)),
        ("max_body", Value::Int(ROUTER_MAX_BODY)),
    ])
}

const ROUTER_MAX_BODY: i64 = 8 * 1024 * 1024;

/// The child's environment when EXTERNAL_ENV is unset.
fn external_env_default(_: u8) -> Value {
    Value::mapping([
        ("PATH", Value::str(crate::policy::SYSTEM_PATH)),
        ("LANG", Value::str("C.UTF-8")),
    ])
}

fn external_timeout_default(mode: u8) -> Value {
    Value::Int(if mode == 23 { 30 } else { 0 })
}

fn cache_statistics_default(_: u8) -> Value {
    Value::mapping(
        [
            "hits",
            "misses",
            "entries",
            "bytes",
            "evictions",
            "invalidations",
        ]
        .map(|k| (k, Value::Int(0))),
    )
}

// ---------------------------------------------------------------------------
// Small helpers for the custom checks.

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn boolean(v: &Value) -> Value {
    Value::Int((v.as_int().unwrap_or(0) != 0) as i64)
}

/// The strings of an array, or which element is not a string.
fn strings(v: &Value) -> Result<Vec<&str>, String> {
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
fn string_or_strings(
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

fn int_field(v: &Value, key: &str, lo: i64, hi: i64, unit: &str) -> Result<Option<i64>, String> {
    match v.get(key) {
        None => Ok(None),
        Some(Value::Int(i)) if (lo..=hi).contains(i) => Ok(Some(*i)),
        Some(x) => Err(format!(
            "\"{key}\" is {}, wants an int in {lo}..{hi}{unit}",
            x.describe()
        )),
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Result<Option<&'a str>, String> {
    match v.get(key) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(x) => Err(format!("\"{key}\" is {}, not a string", x.describe())),
    }
}

fn required_str<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    str_field(v, key)?.ok_or_else(|| format!("\"{key}\" is missing"))
}

fn bool_field(v: &Value, key: &str) -> Result<Option<i64>, String> {
    match v.get(key) {
        None => Ok(None),
        Some(Value::Int(i)) => Ok(Some((*i != 0) as i64)),
        Some(x) => Err(format!("\"{key}\" is {}, not an int 0/1", x.describe())),
    }
}

fn hostname_detail(s: &str) -> Result<(), String> {
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
fn host_or_ip(s: &str) -> Result<(), String> {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    hostname_detail(s)
}

/// "host:port" with host a name, an IPv4 address or "[IPv6]".
fn host_port(s: &str) -> Result<(), String> {
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

fn http_method(s: &str) -> Result<String, String> {
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

fn http_methods(v: &Value) -> Result<Value, String> {
    let mut out = Vec::new();
    for (i, s) in strings(v)?.into_iter().enumerate() {
        out.push(Value::Str(
            http_method(s).map_err(|e| format!("element {i}: {e}"))?,
        ));
    }
    Ok(Value::Array(out))
}

/// A "/"-rooted path of literal segments ("/docs", "/api/v1").
fn literal_path(s: &str, what: &str) -> Result<(), String> {
    let p = parse_route_pattern(s).map_err(|e| format!("{what}: {e}"))?;
    if p.segments
        .iter()
        .any(|s| !matches!(s, super::validate::RouteSegment::Literal(_)))
    {
        return Err(format!(
            "{what} {s:?} has a parameter or \"*\"; only a plain path is allowed"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Core.

fn hostname(v: &Value) -> Result<Value, String> {
    hostname_detail(str_of(v))?;
    Ok(v.clone())
}

fn pem_path(v: &Value) -> Result<Value, String> {
    let s = str_of(v);
    if s.is_empty() || s.len() > 4096 {
        return Err(format!("{} bytes long", s.len()));
    }
    if s.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    Ok(v.clone())
}

// ---------------------------------------------------------------------------
// HTTP.

fn header_map(v: &Value) -> Result<Value, String> {
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

fn http_method_value(v: &Value) -> Result<Value, String> {
    http_method(str_of(v)).map(Value::Str)
}

fn http_url(v: &Value) -> Result<Value, String> {
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

fn user_agent(v: &Value) -> Result<Value, String> {
    let s = str_of(v);
    if s.len() > 256 {
        return Err(format!("{} chars long", s.len()));
    }
    no_controls(s, "the user agent")?;
    Ok(v.clone())
}

// ---------------------------------------------------------------------------
// REST.

fn router_config(v: &Value) -> Result<Value, String> {
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

fn rest_route(v: &Value) -> Result<Value, String> {
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

fn openapi_info(v: &Value) -> Result<Value, String> {
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

fn docs_path(v: &Value) -> Result<Value, String> {
    let s = str_of(v);
    if !s.is_empty() {
        if s.len() > 256 {
            return Err(format!("{} chars long", s.len()));
        }
        literal_path(s, "the path")?;
    }
    Ok(v.clone())
}

const SCHEMA_TYPES: &[&str] = &[
    "object", "array", "string", "integer", "number", "boolean", "null",
];

fn schema(v: &Value, at: &str) -> Result<(), String> {
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

fn validation_schema(v: &Value) -> Result<Value, String> {
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

fn function_names(v: &Value) -> Result<Value, String> {
    string_or_strings(v, |s| {
        if is_lpc_identifier(s) {
            Ok(())
        } else {
            Err(format!("{s:?} is not a function name"))
        }
    })
}

fn function_name(v: &Value) -> Result<Value, String> {
    let s = str_of(v);
    if is_lpc_identifier(s) {
        Ok(v.clone())
    } else {
        Err(format!("{s:?} is not a function name"))
    }
}

fn origin(s: &str) -> Result<(), String> {
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

fn cors_config(v: &Value) -> Result<Value, String> {
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

fn rate_limit(v: &Value) -> Result<Value, String> {
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

// ---------------------------------------------------------------------------
// WebSocket.

fn ws_protocols(v: &Value) -> Result<Value, String> {
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

fn ws_extensions(v: &Value) -> Result<Value, String> {
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

fn ws_origins(v: &Value) -> Result<Value, String> {
    string_or_strings(v, |s| {
        if s.is_empty() || s.len() > 2048 {
            return Err(format!("{s:?} is {} chars long (1..2048)", s.len()));
        }
        no_controls(s, "the origin")
    })
}

// ---------------------------------------------------------------------------
// MQTT.

fn mqtt_broker(v: &Value) -> Result<Value, String> {
    let s = str_of(v);
    let rest = s
        .strip_prefix("mqtt://")
        .or_else(|| s.strip_prefix("mqtts://"))
        .unwrap_or(s);
    if rest.contains("://") {
        return Err("the scheme must be mqtt:// or mqtts://".into());
    }
    host_port(rest)?;
    Ok(v.clone())
}

fn mqtt_string(v: &Value, min: usize) -> Result<Value, String> {
    let s = str_of(v);
    if s.len() < min || s.len() > 65535 {
        return Err(format!("{} bytes long ({min}..65535)", s.len()));
    }
    if s.contains('\0') {
        return Err("contains a NUL character".into());
    }
    Ok(v.clone())
}

fn mqtt_client_id(v: &Value) -> Result<Value, String> {
    mqtt_string(v, 1)?;
    no_controls(str_of(v), "the client id")?;
    Ok(v.clone())
}

fn mqtt_username(v: &Value) -> Result<Value, String> {
    mqtt_string(v, 0)
}

fn mqtt_will_topic(v: &Value) -> Result<Value, String> {
    mqtt_string(v, 1)?;
    let s = str_of(v);
    if let Some(i) = s.find(['+', '#']) {
        return Err(format!(
            "wildcard {:?} at position {}",
            &s[i..i + 1],
            s[..i].chars().count() + 1
        ));
    }
    Ok(v.clone())
}

fn mqtt_payload(v: &Value) -> Result<Value, String> {
    let n = v.as_bytes().map_or(0, <[u8]>::len);
    if n > 65535 {
        return Err(format!("{n} bytes long (at most 65535)"));
    }
    Ok(v.clone())
}

// ---------------------------------------------------------------------------
// External processes.

fn external_command(v: &Value) -> Result<Value, String> {
    let s = str_of(v);
    if s.is_empty() || s.len() > 4096 {
        return Err(format!("{} chars long", s.len()));
    }
    if s.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    Ok(v.clone())
}

fn external_args(v: &Value) -> Result<Value, String> {
    for (i, s) in strings(v)?.into_iter().enumerate() {
        if s.contains('\0') {
            return Err(format!("element {i} contains a NUL byte"));
        }
    }
    Ok(v.clone())
}

fn external_env(v: &Value) -> Result<Value, String> {
    if let Value::Mapping(m) = v {
        for (k, val) in m {
            let (Value::Str(k), Value::Str(val)) = (k, val) else {
                return Err(format!("entry {} is not string → string", k.describe()));
            };
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(format!(
                    "{k:?} is not a variable name (non-empty, no \"=\")"
                ));
            }
            if val.contains('\0') {
                return Err(format!("the value of {k:?} contains a NUL byte"));
            }
        }
    }
    Ok(v.clone())
}

fn watch_paths(v: &Value) -> Result<Value, String> {
    string_or_strings(v, |s| abs_path(s, "the path", 4096))
}

fn working_dir(v: &Value) -> Result<Value, String> {
    abs_path(str_of(v), "the directory", 4096)?;
    Ok(v.clone())
}

const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;

/// Looks a user (`group` false) or group name up; returns its id.
fn lookup_id(name: &str, group: bool) -> Option<u32> {
    if group {
        let g = nix::unistd::Group::from_name(name).ok().flatten()?;
        Some(g.gid.as_raw())
    } else {
        let u = nix::unistd::User::from_name(name).ok().flatten()?;
        Some(u.uid.as_raw())
    }
}

/// EXTERNAL_USER / EXTERNAL_GROUP: resolves the name and checks that the
/// driver may switch to it, so the error comes at set time.
pub(crate) fn run_as(v: &Value, group: bool) -> Result<u32, String> {
    let what = if group { "group" } else { "user" };
    let id = match v {
        Value::Int(i) if (0..i64::from(u32::MAX)).contains(i) => *i as u32,
        Value::Int(i) => return Err(format!("{i} is not a {what} id")),
        Value::Str(s) => lookup_id(s, group).ok_or_else(|| format!("no such {what} {s:?}"))?,
        _ => return Err(String::new()),
    };
    use nix::unistd::{getegid, geteuid, getgid, getuid};
    let (mine, real) = if group {
        (getegid().as_raw(), getgid().as_raw())
    } else {
        (geteuid().as_raw(), getuid().as_raw())
    };
    let root = geteuid().is_root();
    let cap = if group { CAP_SETGID } else { CAP_SETUID };
    if id != mine && id != real && !root && !crate::external::sys::has_cap(cap) {
        return Err(format!(
            "the driver runs as {what} {mine} and may not switch to {what} {id} \
             (needs root or CAP_SET{}ID)",
            if group { "G" } else { "U" }
        ));
    }
    Ok(id)
}

fn external_user(v: &Value) -> Result<Value, String> {
    run_as(v, false).map(|_| v.clone())
}

fn external_group(v: &Value) -> Result<Value, String> {
    run_as(v, true).map(|_| v.clone())
}

fn stdio(v: &Value, words: &[&str]) -> Result<Value, String> {
    let s = str_of(v);
    if let Some(path) = s.strip_prefix("file:") {
        abs_path(path, "the file path", 4096)?;
        return Ok(v.clone());
    }
    if words.contains(&s) {
        Ok(v.clone())
    } else {
        // The words are all in `wants`; nothing to add.
        Err(String::new())
    }
}

fn stdin_mode(v: &Value) -> Result<Value, String> {
    stdio(v, &["pipe", "null"])
}

fn stdout_mode(v: &Value) -> Result<Value, String> {
    stdio(v, &["pipe", "null", "console"])
}

fn stderr_mode(v: &Value) -> Result<Value, String> {
    stdio(v, &["pipe", "merge", "null", "console"])
}

fn external_shell(v: &Value) -> Result<Value, String> {
    match v {
        Value::Int(_) => Ok(boolean(v)),
        Value::Str(s) => {
            abs_path(s, "the shell", 4096)?;
            Ok(v.clone())
        }
        _ => Err(String::new()),
    }
}

fn cores() -> i64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as i64)
}

fn cpu_limit(v: &Value) -> Result<Value, String> {
    let max = 100 * cores();
    match v.as_int() {
        Some(i) if i == 0 || (1..=max).contains(&i) => Ok(v.clone()),
        _ => Err(format!(
            "this machine has {} cores, so at most {max}",
            cores()
        )),
    }
}

fn memory_limit(v: &Value) -> Result<Value, String> {
    match v.as_int() {
        Some(i) if i == 0 || i >= 1_048_576 => Ok(v.clone()),
        _ => Err(String::new()),
    }
}

fn file_limit(v: &Value) -> Result<Value, String> {
    match v.as_int() {
        Some(i) if i == 0 || (3..=1_048_576).contains(&i) => Ok(v.clone()),
        _ => Err(String::new()),
    }
}

fn sandbox(v: &Value) -> Result<Value, String> {
    match v {
        Value::Int(_) => Ok(boolean(v)),
        Value::Mapping(_) => {
            known_keys(v, &["paths", "read", "network", "processes"])?;
            let mut out = Value::Mapping(vec![]);
            let paths = |key: &str| -> Result<Option<Value>, String> {
                let Some(p) = v.get(key) else { return Ok(None) };
                let Value::Array(_) = p else {
                    return Err(format!("\"{key}\" is {}, not an array", p.describe()));
                };
                for (i, s) in strings(p)?.into_iter().enumerate() {
                    abs_path(s, &format!("\"{key}\" element {i}"), 4096)?;
                }
                Ok(Some(p.clone()))
            };
            let rw = paths("paths")?.unwrap_or(Value::Array(vec![]));
            out.insert(Value::str("paths"), rw);
            // "read" limits reads to the system directories and the paths
            // named; absent, reads are allowed everywhere, so it is kept
            // only when given.
            if let Some(read) = paths("read")? {
                out.insert(Value::str("read"), read);
            }
            let net = bool_field(v, "network")?.unwrap_or(0);
            out.insert(Value::str("network"), Value::Int(net));
            let procs = int_field(v, "processes", 0, 1_000_000, " (0 = no limit)")?.unwrap_or(0);
            out.insert(Value::str("processes"), Value::Int(procs));
            Ok(out)
        }
        _ => Err(String::new()),
    }
}

const RESTART_WORDS: &[&str] = &["never", "on-failure", "always"];
/// EXTERNAL_RESTART_POLICY's "kill_mode": what is ended when a run ends
/// (systemd's KillMode): "group", every process left in the process group
/// and the cgroup; "process", only the main process (the rest are kept).
const KILL_MODES: &[&str] = &["group", "process"];

fn restart_policy(v: &Value) -> Result<Value, String> {
    let word = |s: &str| {
        if RESTART_WORDS.contains(&s) {
            Ok(())
        } else {
            Err(format!(
                "policy {s:?} is not \"never\", \"on-failure\" or \"always\""
            ))
        }
    };
    match v {
        Value::Str(s) => {
            word(s)?;
            Ok(v.clone())
        }
        Value::Mapping(_) => {
            known_keys(
                v,
                &[
                    "policy",
                    "max_restarts",
                    "backoff_ms",
                    "window",
                    "kill_mode",
                ],
            )?;
            let policy = required_str(v, "policy")?;
            word(policy)?;
            let max = int_field(v, "max_restarts", 0, 1_000_000, " (0 = no limit)")?.unwrap_or(0);
            let backoff =
                int_field(v, "backoff_ms", 0, 60_000, " (ms, 0 = at once)")?.unwrap_or(1000);
            let window = int_field(v, "window", 0, 86_400, " (s, 0 = forever)")?.unwrap_or(0);
            let kill_mode = str_field(v, "kill_mode")?.unwrap_or("group");
            if !KILL_MODES.contains(&kill_mode) {
                return Err(format!(
                    "\"kill_mode\" {kill_mode:?} is not \"group\" (end every process left in \
                     the process group and cgroup when a run ends; the default) or \"process\" \
                     (end only the main process and keep the rest)"
                ));
            }
            Ok(Value::mapping([
                ("policy", Value::str(policy)),
                ("max_restarts", Value::Int(max)),
                ("backoff_ms", Value::Int(backoff)),
                ("window", Value::Int(window)),
                ("kill_mode", Value::str(kill_mode)),
            ]))
        }
        _ => Err(String::new()),
    }
}

// ---------------------------------------------------------------------------
// Cache.

fn cache_key_pattern(v: &Value) -> Result<Value, String> {
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

fn header_names(v: &Value) -> Result<Value, String> {
    string_or_strings(v, |s| {
        if is_http_token(s) {
            Ok(())
        } else {
            Err(format!("{s:?} is not a header name"))
        }
    })
}

fn globs(v: &Value) -> Result<Value, String> {
    string_or_strings(v, |s| {
        if s.is_empty() || s.len() > 2048 {
            return Err(format!("{s:?} is {} chars long (1..2048)", s.len()));
        }
        no_controls(s, "the pattern")
    })
}

// ---------------------------------------------------------------------------
// Apache / nginx.

fn unix_socket_path(v: &Value) -> Result<Value, String> {
    // sun_path holds 108 bytes including the terminating NUL.
    abs_path(str_of(v), "the socket path", 107)?;
    Ok(v.clone())
}

fn cidr(s: &str) -> Result<(), String> {
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

fn proxy_upstream(v: &Value) -> Result<Value, String> {
    string_or_strings(v, cidr)
}

fn static_handoff(v: &Value) -> Result<Value, String> {
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

fn path_prefixes(v: &Value) -> Result<Value, String> {
    string_or_strings(v, |s| literal_path(s, "the prefix"))
}

fn load_balance(v: &Value) -> Result<Value, String> {
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

// ---------------------------------------------------------------------------
// IPC.

fn ipc_event_name(v: &Value) -> Result<Value, String> {
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

fn ipc_socket_dir(v: &Value) -> Result<Value, String> {
    // <dir>/<event_name>.sock must fit sun_path; the whole path is checked at bind.
    abs_path(str_of(v), "the directory", 100)?;
    Ok(v.clone())
}

fn ipc_host(v: &Value) -> Result<Value, String> {
    host_or_ip(str_of(v))?;
    Ok(v.clone())
}

fn port_range(v: &Value) -> Result<Value, String> {
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
fn file_mode(v: &Value) -> Result<Value, String> {
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

fn timezone(v: &Value) -> Result<Value, String> {
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

// ---------------------------------------------------------------------------
// The table.

/// Every option of the spec, in id order.
#[rustfmt::skip]
pub static OPTIONS: &[OptionDef] = &[
    // ----- Core 0–19 -----
    access(
        row(0, "SO_INVALID", Kinds::NONE, Default::Unset, "—", Check::Any, "nothing (always rejected)", ModeSet::NONE,
            "Always rejected."),
        Access::Invalid,
    ),
    before_start(row(1, "SO_TLS_VERIFY_PEER", I, Default::ByMode(verify_default), "0 on 5/6, 1 on 13,15,19,21",
        Check::Bool, "an int 0/1", TLS_CLIENTS,
        "Verify the server certificate (chain and host name) against the system trust store or SO_TLS_CA.")),
    before_start(row(2, "SO_TLS_SNI_HOSTNAME", S, Default::Unset, "host of the connect address",
        Check::Custom(hostname), "a hostname of 1..253 chars", TLS_CLIENTS,
        "Server name sent in the TLS handshake (and checked when verifying).")),
    before_start(row(3, "SO_TLS_CERT", S, Default::Unset, "—", Check::Custom(pem_path),
        "a path of 1..4096 bytes to a PEM certificate chain", TLS_CERT_MODES,
        "PEM certificate chain; required for TLS servers; client certificate for mutual TLS on clients.")),
    before_start(row(4, "SO_TLS_KEY", S, Default::Unset, "—", Check::Custom(pem_path),
        "a path of 1..4096 bytes to the PEM private key", TLS_CERT_MODES,
        "PEM private key matching SO_TLS_CERT.")),
    before_start(row(10, "SO_TLS_CA", S, Default::Unset, "system store", Check::Custom(pem_path),
        "a path of 1..4096 bytes to a PEM bundle of trusted roots", TLS_CLIENTS,
        "PEM bundle of trusted roots used instead of the system store; a certificate in it that is exactly the server's own (self-signed, CA:TRUE or not) is accepted as pinned, its host name and validity still checked.")),
    row(11, "SO_KEEPALIVE", I, Default::Int(0), "0", Check::Bool, "an int 0/1", TCP_MODES, "TCP keep-alive."),
    row(12, "SO_NODELAY", I, Default::Int(1), "1", Check::Bool, "an int 0/1", TCP_MODES, "TCP_NODELAY."),
    row(13, "SO_RCVBUF", I, Default::Unset, "kernel", Check::IntRange(1024, 16777216),
        "an int in 1024..16777216 (bytes)", TCP_MODES, "Kernel receive buffer size."),
    row(14, "SO_SNDBUF", I, Default::Unset, "kernel", Check::IntRange(1024, 16777216),
        "an int in 1024..16777216 (bytes)", TCP_MODES, "Kernel send buffer size."),
    row(15, "SO_IDLE_TIMEOUT", I, Default::Int(0), "0", Check::IntRange(0, 86_400_000),
        "an int in 0..86400000 (ms, 0 = none)", SERVERS, "Close a connection idle this long."),
    row(16, "SO_MAX_CONNECTIONS", I, Default::Int(1024), "1024", Check::IntRange(1, 1_000_000),
        "an int in 1..1000000 (connections per listener)", SERVERS,
        "Most open connections per listener; beyond it new ones are refused (HTTP: 503)."),
    row(17, "SO_MAX_BUFFERED", I, Default::Int(4_194_304), "4194304", Check::IntRange(4096, 1_073_741_824),
        "an int in 4096..1073741824 (bytes)", ALL,
        "Bytes queued for write; beyond it socket_write writes nothing and returns EEWOULDBLOCK; \
         the write callback fires once the queue has drained below half."),
    access(
        row(18, "SO_STATISTICS", M, Default::EmptyMapping, "—", Check::Any, "nothing (read-only)", ALL,
            "Read-only: bytes_in, bytes_out, messages_in, messages_out, errors, connected_at, state."),
        Access::ReadOnly,
    ),
    row(19, "SO_SEND_TIMEOUT", I, Default::Int(60000), "60000", Check::IntRange(0, 86_400_000),
        "an int in 0..86400000 (ms, 0 = none)", SEND_DEADLINE,
        "A connection whose queued output makes no progress for this long is closed (\"too slow\"); \
         HTTP and REST use SO_HTTP_READ_TIMEOUT for this."),

    // ----- HTTP 100–109 -----
    with_aliases(
        row(100, "SO_HTTP_HEADERS", M, Default::EmptyMapping, "([])", Check::Custom(header_map),
            "a mapping of header name → string value (no control characters)", HTTP_ALL,
            "Client: request headers; server: headers added to every response."),
        &["HTTP_HEADERS"],
    ),
    with_aliases(
        row(101, "SO_HTTP_METHOD", S, Default::Str("GET"), "\"GET\"", Check::Custom(http_method_value),
            "one of \"GET\" \"POST\" \"PUT\" \"DELETE\" \"PATCH\" \"HEAD\" \"OPTIONS\" \"TRACE\" (any case, stored upper-case)",
            HTTP_CLIENTS, "Request method."),
        &["HTTP_METHOD"],
    ),
    with_aliases(
        row(102, "SO_HTTP_URL", S, Default::Unset, "—", Check::Custom(http_url),
            "an http:// or https:// URL of at most 2048 chars", HTTP_CLIENTS,
            "The request target (socket_connect's address may give it instead)."),
        &["HTTP_URL"],
    ),
    with_aliases(
        row(103, "SO_HTTP_BODY", S.or(B), Default::Str(""), "\"\"", Check::Any,
            "a string or a buffer (the request body)", HTTP_CLIENTS, "Request body."),
        &["HTTP_BODY"],
    ),
    with_aliases(
        row(104, "SO_HTTP_TIMEOUT", I, Default::Int(30000), "30000", Check::IntRange(1000, 300_000),
            "an int in 1000..300000 (ms)", HTTP_ALL,
            "Whole request deadline (client) / request deadline (server), in ms."),
        &["HTTP_TIMEOUT"],
    ),
    with_aliases(
        row(105, "SO_HTTP_USER_AGENT", S, Default::Str("FluffOS/3.0"), "\"FluffOS/3.0\"", Check::Custom(user_agent),
            "a string of at most 256 chars without control characters", HTTP_CLIENTS,
            "User-Agent header sent with requests (\"\" sends none)."),
        &["HTTP_USER_AGENT"],
    ),
    with_aliases(
        row(106, "SO_HTTP_FOLLOW_REDIRECTS", I, Default::Int(0), "0", Check::Bool, "an int 0/1", HTTP_CLIENTS,
            "Follow 3xx redirects (at most SO_HTTP_MAX_REDIRECTS)."),
        &["HTTP_FOLLOW_REDIRECTS"],
    ),
    with_aliases(
        row(107, "SO_HTTP_MAX_REDIRECTS", I, Default::Int(5), "5", Check::IntRange(0, 20),
            "an int in 0..20 (redirects)", HTTP_CLIENTS, "Most redirects followed for one request."),
        &["HTTP_MAX_REDIRECTS"],
    ),
    with_aliases(
        row(108, "SO_HTTP_CONNECT_TIMEOUT", I, Default::Int(30000), "30000", Check::IntRange(1000, 300_000),
            "an int in 1000..300000 (ms)", HTTP_CLIENTS, "Deadline for the TCP (and TLS) connection, in ms."),
        &["HTTP_CONNECT_TIMEOUT"],
    ),
    with_aliases(
        row(109, "SO_HTTP_READ_TIMEOUT", I, Default::Int(30000), "30000", Check::IntRange(1000, 300_000),
            "an int in 1000..300000 (ms)", HTTP_ALL, "Longest wait between received bytes, in ms."),
        &["HTTP_READ_TIMEOUT"],
    ),

    // ----- REST 110–119 -----
    row(110, "REST_ROUTER_CONFIG", M, Default::ByMode(router_defaults),
        "([ \"base_path\": \"\", \"strict_slash\": 0, \"case_sensitive\": 1, \"max_body\": 8388608 ])",
        Check::Custom(router_config),
        "a mapping with any of base_path (string \"/...\"), strict_slash (int 0/1), case_sensitive (int 0/1), max_body (int 1024..1073741824 bytes)",
        REST_BOTH,
        "Router settings; keys not given keep their defaults (get returns the merged mapping). max_body raises the 8 MiB body limit (413)."),
    append(row(111, "REST_ADD_ROUTE", M, Default::EmptyArray, "({}) (no routes)", Check::Custom(rest_route),
        "a mapping with method, pattern and handler strings (and an optional openapi mapping)", REST_SERVER,
        "Setting appends one route; getting returns the array of routes. pattern: /literal, {name}, {name:int}, \
         {name:uuid}, {name:alpha}, {name?} (last segment), trailing /*; handler: a function in the socket's owner. \
         A bad pattern is refused naming the position.")),
    row(112, "REST_OPENAPI_INFO", M, Default::Unset, "—", Check::Custom(openapi_info),
        "a mapping with title and version strings (description, termsOfService, contact, license optional)", REST_SERVER,
        "The OpenAPI document's info object."),
    access(
        row(113, "REST_JWT_SECRET", S, Default::Unset, "—", Check::StrLen(32, 65536),
            "a string of 32..65536 bytes", REST_BOTH,
            "HS256 secret; bearer tokens are verified before the handler runs and their claims reach LPC as \
             request[\"auth\"]. Reads back \"<set>\"."),
        Access::Secret,
    ),
    row(114, "REST_DOCS_PATH", S, Default::Str("/docs"), "\"/docs\"", Check::Custom(docs_path),
        "a plain path \"/...\" of at most 256 chars, or \"\" for none", REST_SERVER,
        "Serves <path>/openapi.json (OpenAPI 3.0.3) and a human page at <path>; \"\" serves neither."),
    row(115, "REST_VALIDATION_SCHEMA", M, Default::Unset, "—", Check::Custom(validation_schema),
        "a mapping of \"METHOD /pattern\" → JSON-Schema subset mapping", REST_SERVER,
        "Request bodies checked before the handler (type, properties, required, enum, minimum, maximum, \
         minLength, maxLength, items, pattern); failures answer 422 with the list of violations."),
    row(116, "REST_MIDDLEWARE", A, Default::EmptyArray, "({})", Check::Custom(function_names),
        "an array of function names", REST_SERVER,
        "Functions in the owner called in order with the request before the handler; one returning a \
         response mapping ends the chain."),
    row(117, "REST_ERROR_HANDLER", S, Default::Unset, "built-in JSON", Check::Custom(function_name),
        "a function name", REST_SERVER,
        "Function called for 404/405/413/422/429/500 to shape the response."),
    row(118, "REST_CORS_CONFIG", M, Default::Unset, "off", Check::Custom(cors_config),
        "a mapping with origins (non-empty array, \"*\" allowed) and optional methods (array), headers (array), \
         credentials (int 0/1), max_age (int 0..86400 s)", REST_SERVER,
        "CORS; preflight requests are answered without reaching LPC."),
    row(119, "REST_RATE_LIMIT", M, Default::Unset, "off", Check::Custom(rate_limit),
        "a mapping with requests (int 1..1000000), window (int 1..86400 s) and optional key (\"ip\" or \"token\", default \"ip\")",
        REST_SERVER,
        "Over the limit → 429 with Retry-After, without reaching LPC."),

    // ----- WebSocket 120–129 -----
    before_start(row(120, "WS_PROTOCOL", S.or(A), Default::Unset, "—", Check::Custom(ws_protocols),
        "a subprotocol token or a non-empty array of them (1..64 chars of [A-Za-z0-9.-])", WS,
        "Subprotocols offered (client) or supported in preference order (server).")),
    before_start(row(121, "WS_EXTENSIONS", A, Default::EmptyArray, "({})", Check::Custom(ws_extensions),
        "an array of extension names (\"permessage-deflate\")", WS,
        "Extensions to negotiate; permessage-deflate is the one supported.")),
    row(122, "WS_ORIGIN", S.or(A), Default::Unset, "any", Check::Custom(ws_origins),
        "a string or an array of strings (1..2048 chars each)", WS,
        "Server: allowed Origin values (others get 403); client: Origin header sent."),
    row(123, "WS_MAX_MESSAGE_SIZE", I, Default::Int(65536), "65536", Check::IntRange(128, 16_777_216),
        "an int in 128..16777216 (bytes)", WS, "Largest message; a larger one closes with 1009."),
    row(124, "WS_PING_INTERVAL", I, Default::Int(30), "30", Check::IntRange(0, 3600),
        "an int in 0..3600 (s, 0 = no pings)", WS, "Seconds between pings."),
    row(125, "WS_PONG_TIMEOUT", I, Default::Int(10), "10", Check::IntRange(1, 3600),
        "an int in 1..3600 (s)", WS, "No pong in time → close 1011 and close_cb."),
    before_start(row(126, "WS_COMPRESSION", I, Default::Int(0), "0", Check::Bool, "an int 0/1", WS,
        "Negotiate permessage-deflate (RFC 7692).")),
    access(
        row(127, "WS_SUBPROTOCOL", S, Default::Unset, "—", Check::Any, "nothing (read-only)", WS,
            "Read-only after the handshake: the negotiated subprotocol (0 when none)."),
        Access::ReadOnly,
    ),
    row(128, "WS_FRAME_SIZE_LIMIT", I, Default::Int(16_777_216), "16777216", Check::IntRange(128, 16_777_216),
        "an int in 128..16777216 (bytes)", WS, "Largest frame accepted."),
    row(129, "WS_AUTO_PING", I, Default::Int(1), "1", Check::Bool, "an int 0/1", WS,
        "Answer pings and send WS_PING_INTERVAL pings without LPC."),

    // ----- MQTT 130–139 -----
    before_start(row(130, "MQTT_BROKER", S, Default::Unset, "—", Check::Custom(mqtt_broker),
        "\"host:port\", \"mqtt://host:port\" or \"mqtts://host:port\"", MQTT,
        "The broker to connect to (an IPv6 host is written [addr]).")),
    before_start(row(131, "MQTT_CLIENT_ID", S, Default::Unset, "generated, unique per driver", Check::Custom(mqtt_client_id),
        "a string of 1..65535 bytes (1..23 of [0-9A-Za-z] for strict MQTT 3.1.1 brokers)", MQTT,
        "Client identifier; longer or other characters are accepted here and may be refused by a strict broker.")),
    before_start(row(132, "MQTT_USERNAME", S, Default::Unset, "—", Check::Custom(mqtt_username),
        "a string of at most 65535 bytes", MQTT, "User name sent in CONNECT.")),
    before_start(access(
        row(133, "MQTT_PASSWORD", S, Default::Unset, "—", Check::StrLen(0, 65535),
            "a string of at most 65535 bytes", MQTT,
            "Password sent in CONNECT (reads back \"<set>\")."),
        Access::Secret,
    )),
    before_start(row(134, "MQTT_KEEP_ALIVE", I, Default::Int(60), "60", Check::IntRange(10, 3600),
        "an int in 10..3600 (s)", MQTT, "Keep-alive interval sent in CONNECT.")),
    row(135, "MQTT_QOS", I, Default::Int(0), "0", Check::IntRange(0, 2), "an int in 0..2", MQTT,
        "Default QoS for publish and subscribe."),
    row(136, "MQTT_RETAIN", I, Default::Int(0), "0", Check::Bool, "an int 0/1", MQTT,
        "Default retain flag for publish."),
    before_start(row(137, "MQTT_CLEAN_SESSION", I, Default::Int(1), "1", Check::Bool, "an int 0/1", MQTT,
        "Clean session flag sent in CONNECT.")),
    before_start(row(138, "MQTT_WILL_TOPIC", S, Default::Unset, "—", Check::Custom(mqtt_will_topic),
        "a topic of 1..65535 bytes without wildcards (+ #)", MQTT, "Topic of the last-will message.")),
    before_start(row(139, "MQTT_WILL_MESSAGE", S.or(B), Default::Unset, "—", Check::Custom(mqtt_payload),
        "a string or buffer of at most 65535 bytes", MQTT,
        "Last-will payload; needs MQTT_WILL_TOPIC (checked at connect).")),

    // ----- External processes 140–159 -----
    before_start(row(140, "EXTERNAL_COMMAND", S, Default::Unset, "—", Check::Custom(external_command),
        "a string of 1..4096 chars (an absolute executable path, or a command line with EXTERNAL_SHELL)", EXTERNAL,
        "What to run; absolute when EXTERNAL_SHELL is 0 (checked at start).")),
    before_start(row(141, "EXTERNAL_ARGS", A, Default::EmptyArray, "({})", Check::Custom(external_args),
        "an array of strings", EXTERNAL, "Arguments after the command (argv[1..]).")),
    before_start(row(142, "EXTERNAL_ENV", M, Default::ByMode(external_env_default),
        "([ \"PATH\": \"/usr/local/bin:/usr/bin:/bin\", \"LANG\": \"C.UTF-8\" ])", Check::Custom(external_env),
        "a mapping of string → string (names without \"=\")", EXTERNAL,
        "The child's whole environment; the driver's is never leaked.")),
    before_start(row(143, "EXTERNAL_WATCH_PATH", S.or(A), Default::Unset, "—", Check::Custom(watch_paths),
        "an absolute path or an array of them (no \"..\"; \"/**\" at the end watches recursively)", EXTERNAL,
        "Paths watched with inotify; events reach read_cb as file_event mappings.")),
    before_start(row(144, "EXTERNAL_WORKING_DIR", S, Default::Unset, "driver's cwd", Check::Custom(working_dir),
        "an absolute directory path without \"..\" components", EXTERNAL,
        "The child's working directory; that it exists is checked when the process starts.")),
    before_start(row(145, "EXTERNAL_USER", S.or(I), Default::Unset, "—", Check::Custom(external_user),
        "a user name or uid the driver may switch to", EXTERNAL,
        "User to run as; refused at set time when the driver lacks the privilege.")),
    before_start(row(146, "EXTERNAL_GROUP", S.or(I), Default::Unset, "—", Check::Custom(external_group),
        "a group name or gid the driver may switch to", EXTERNAL,
        "Group to run as; refused at set time when the driver lacks the privilege.")),
    before_start(row(147, "EXTERNAL_TIMEOUT", I, Default::ByMode(external_timeout_default), "0 for 22, 30 for 23",
        Check::IntRange(0, 86400), "an int in 0..86400 (s, 0 = none)", EXTERNAL,
        "Run time limit: SIGTERM, then SIGKILL after 5 s; the result says \"timeout\".")),
    before_start(row(148, "EXTERNAL_BUFFER_SIZE", I, Default::Int(65536), "65536", Check::IntRange(1024, 1_048_576),
        "an int in 1024..1048576 (bytes)", EXTERNAL, "Most bytes per output delivery and per pipe read.")),
    before_start(row(149, "EXTERNAL_ASYNC", I, Default::Int(1), "1", Check::Bool, "an int 0/1", EXTERNAL,
        "1: output streams to read_cb as it comes; 0: one result mapping at exit (mode 23 always delivers one result).")),
    before_start(row(150, "EXTERNAL_STDIN_MODE", S, Default::Str("pipe"), "\"pipe\"", Check::Custom(stdin_mode),
        "\"pipe\", \"null\" or \"file:<absolute path>\"", EXTERNAL,
        "The child's stdin; with \"pipe\" socket_write feeds it.")),
    before_start(row(151, "EXTERNAL_STDOUT_MODE", S, Default::Str("pipe"), "\"pipe\"", Check::Custom(stdout_mode),
        "\"pipe\", \"null\", \"console\" or \"file:<absolute path>\"", EXTERNAL,
        "The child's stdout; file: appends; console is the driver's stdout.")),
    before_start(row(152, "EXTERNAL_STDERR_MODE", S, Default::Str("pipe"), "\"pipe\"", Check::Custom(stderr_mode),
        "\"pipe\", \"merge\", \"null\", \"console\" or \"file:<absolute path>\"", EXTERNAL,
        "The child's stderr; pipe delivers it as stderr, merge sends it into stdout.")),
    before_start(row(153, "EXTERNAL_SHELL", S.or(I), Default::Int(0), "0", Check::Custom(external_shell),
        "an int 0/1 or an absolute shell path", EXTERNAL,
        "0 = exec directly; 1 = \"/bin/sh -c\"; a path = that shell with -c.")),
    before_start(row(154, "EXTERNAL_PRIORITY", I, Default::Int(0), "0", Check::IntRange(-20, 19),
        "an int in -20..19 (nice value)", EXTERNAL, "Nice value; a negative one needs privilege (checked when set).")),
    before_start(row(155, "EXTERNAL_CPU_LIMIT", I, Default::Int(0), "0", Check::Custom(cpu_limit),
        "an int, 0 (off) or 1..(100 × cores) (percent of one core)", EXTERNAL,
        "CPU cap via a cgroup (v2 cpu.max or v1 cfs quota), else an RLIMIT_CPU fallback; which one applied is reported.")),
    before_start(row(156, "EXTERNAL_MEMORY_LIMIT", I, Default::Int(0), "0", Check::Custom(memory_limit),
        "an int, 0 (off) or at least 1048576 (bytes)", EXTERNAL,
        "Memory cap via cgroup v2 memory.max or v1 memory.limit_in_bytes, else RLIMIT_AS.")),
    before_start(row(157, "EXTERNAL_FILE_LIMIT", I, Default::Int(0), "0", Check::Custom(file_limit),
        "an int, 0 (off) or 3..1048576 (open files)", EXTERNAL, "RLIMIT_NOFILE for the child.")),
    before_start(row(158, "EXTERNAL_SANDBOX", I.or(M), Default::Int(0), "0", Check::Custom(sandbox),
        "an int 0/1 or a mapping with paths and read (arrays of absolute paths), network (int 0/1) and processes (int 0..1000000)", EXTERNAL,
        "1 = no_new_privs + landlock (read-only everywhere, read-write in the working dir) + seccomp deny-list + \
         no network; a mapping turns it on and adds read-write paths (paths), limits reads to the system directories and the paths named (read), allows the network (network 1) and caps the number of processes (processes). What was applied is reported.")),
    row(159, "EXTERNAL_RESTART_POLICY", S.or(M), Default::Str("never"), "\"never\"", Check::Custom(restart_policy),
        "\"never\", \"on-failure\", \"always\" or a mapping with policy, max_restarts (int, 0 = no limit), \
         backoff_ms (int 0..60000, 0 = at once), window (int s), kill_mode (\"group\" or \"process\")", EXTERNAL_LONG,
        "Restart the process when it exits; backoff doubles each time, capped at 60 s; restarts are counted over window seconds (0 = forever). \
         kill_mode \"group\" (default) ends every process left in the process group and cgroup when a run ends (SIGTERM, SIGKILL 5 s later); \
         \"process\" ends only the main process and keeps the rest (a restart still starts from a clean group)."),

    // ----- Cache 200–209 -----
    with_aliases(
        row(200, "SO_CACHE_ENABLE", I, Default::Int(0), "0", Check::Bool, "an int 0/1", HTTP_ALL,
            "Cache responses (servers answer cached ones without reaching LPC)."),
        &["CACHE_ENABLE"],
    ),
    with_aliases(
        row(201, "SO_CACHE_TTL", I, Default::Int(300), "300", Check::IntRange(1, 86400),
            "an int in 1..86400 (s)", HTTP_ALL,
            "Lifetime of an entry; a response's own Cache-Control max-age / no-store wins."),
        &["CACHE_TTL"],
    ),
    with_aliases(
        row(202, "SO_CACHE_MAX_SIZE", I, Default::Int(1_048_576), "1048576", Check::IntRange(1024, 1_073_741_824),
            "an int in 1024..1073741824 (bytes)", HTTP_ALL, "Total cache size; LRU eviction beyond it."),
        &["CACHE_MAX_SIZE"],
    ),
    with_aliases(
        row(203, "SO_CACHE_KEY_PATTERN", S, Default::Str("{method} {path}?{query}"), "\"{method} {path}?{query}\"",
            Check::Custom(cache_key_pattern),
            "a template of 1..1024 chars over {method} {path} {query} {host} {header:Name}", HTTP_ALL,
            "How the cache key is built."),
        &["CACHE_KEY_PATTERN"],
    ),
    with_aliases(
        row(204, "SO_CACHE_HEADERS", A, Default::EmptyArray, "({})", Check::Custom(header_names),
            "an array of header names", HTTP_ALL, "Request headers that vary the key."),
        &["CACHE_HEADERS"],
    ),
    with_aliases(
        row(205, "SO_CACHE_METHODS", A, Default::StrList(&["GET", "HEAD"]), "({ \"GET\", \"HEAD\" })",
            Check::Custom(http_methods), "an array of HTTP methods", HTTP_ALL, "Methods that may be cached."),
        &["CACHE_METHODS"],
    ),
    with_aliases(
        row(206, "SO_CACHE_EXCLUDE_PATTERNS", A, Default::EmptyArray, "({})", Check::Custom(globs),
            "an array of path globs (1..2048 chars each)", HTTP_ALL, "Paths never cached."),
        &["CACHE_EXCLUDE_PATTERNS"],
    ),
    with_aliases(
        before_start(row(207, "SO_CACHE_THREAD_POOL_SIZE", I, Default::Int(0), "0", Check::IntRange(0, 64),
            "an int in 0..64 (threads)", HTTP_ALL,
            "0 = all cache work on the driver thread; accepted and reported, never a silent no-op.")),
        &["CACHE_THREAD_POOL_SIZE"],
    ),
    with_aliases(
        access(
            row(208, "SO_CACHE_INVALIDATE_PATTERN", S, Default::Unset, "—", Check::StrLen(1, 2048),
                "a glob of 1..2048 chars", HTTP_ALL,
                "Write-only action: drops every entry whose key matches the glob now."),
            Access::WriteOnly,
        ),
        &["CACHE_INVALIDATE_PATTERN"],
    ),
    with_aliases(
        access(
            row(209, "SO_CACHE_STATISTICS", M, Default::ByMode(cache_statistics_default),
                "all counters 0", Check::Any, "nothing (read-only)", HTTP_ALL,
                "Read-only: hits, misses, entries, bytes, evictions, invalidations."),
            Access::ReadOnly,
        ),
        &["CACHE_STATISTICS"],
    ),

    // ----- Apache / nginx integration 300–309 -----
    before_start(row(300, "SO_APACHE_FASTCGI_ENABLE", I, Default::Int(0), "0", Check::Bool, "an int 0/1", APACHE,
        "Listen as a FastCGI responder instead of HTTP; requests reach LPC as the same request mapping.")),
    before_start(row(301, "SO_APACHE_FASTCGI_SOCKET", S, Default::Unset, "—", Check::Custom(unix_socket_path),
        "an absolute path of at most 107 bytes without \"..\"", APACHE,
        "Unix socket to listen on for FastCGI (mode 0660) instead of a TCP port.")),
    row(302, "SO_APACHE_PROXY_ENABLE", I, Default::Int(0), "0", Check::Bool, "an int 0/1", APACHE,
        "Honour Forwarded / X-Forwarded-For / -Proto / -Host from trusted proxies."),
    row(303, "SO_APACHE_PROXY_UPSTREAM", S.or(A), Default::StrList(&["127.0.0.1", "::1"]), "({ \"127.0.0.1\", \"::1\" })",
        Check::Custom(proxy_upstream), "an IP address or CIDR, or an array of them", APACHE,
        "Trusted proxy addresses."),
    row(304, "SO_APACHE_STATIC_HANDOFF", M, Default::Unset, "off", Check::Custom(static_handoff),
        "a mapping with prefix (path), root (absolute directory) and optional header (\"X-Sendfile\" or \"X-Accel-Redirect\", default \"X-Sendfile\")",
        APACHE,
        "Matching requests are answered with the hand-off header so the front server sends the file; traversal refused."),
    row(305, "SO_APACHE_DYNAMIC_HANDOFF", A, Default::Unset, "all", Check::Custom(path_prefixes),
        "an array of path prefixes (\"/...\")", APACHE,
        "Prefixes that go to LPC; others get the static hand-off or 404 without reaching LPC."),
    row(306, "SO_APACHE_CGI_ENV_VARS", I, Default::Int(0), "0", Check::Bool, "an int 0/1", APACHE,
        "request[\"cgi\"] holds the RFC 3875 meta-variables."),
    row(307, "SO_APACHE_AUTH_PASSTHROUGH", I, Default::Int(0), "0", Check::Bool, "an int 0/1", APACHE,
        "REMOTE_USER (FastCGI) or X-Remote-User from a trusted proxy becomes request[\"remote_user\"]."),
    row(308, "SO_APACHE_SSL_TERMINATION", I, Default::Int(0), "0", Check::Bool, "an int 0/1", APACHE,
        "TLS ends at the front server; HTTPS=on or X-Forwarded-Proto: https marks request[\"scheme\"] = \"https\"."),
    row(309, "SO_APACHE_LOAD_BALANCE", M, Default::Unset, "off", Check::Custom(load_balance),
        "a mapping with backend_id (1..64 chars of [A-Za-z0-9._-]), optional health_path (path, default \"/health\") and sticky_cookie (name)",
        APACHE,
        "Answers health checks without LPC and stamps responses so a balancer can spread requests over several drivers."),

    // ----- IPC message bus 440–453 -----
    before_start(row(440, "IPC_EVENT_NAME", S, Default::Unset, "— (required)", Check::Custom(ipc_event_name),
        "a string of 1..64 chars of [A-Za-z0-9_-]", IPC, "Names the bus; required.")),
    before_start(row(441, "IPC_TRANSPORT", S, Default::Str("unix"), "\"unix\"", Check::OneOf(&["unix", "tcp"]),
        "\"unix\" or \"tcp\"", IPC, "Transport of the bus.")),
    before_start(row(442, "IPC_SOCKET_DIR", S, Default::Unset, "$XDG_RUNTIME_DIR or /tmp", Check::Custom(ipc_socket_dir),
        "an absolute directory path of at most 100 bytes without \"..\"", IPC,
        "unix: the socket is <dir>/<event_name>.sock.")),
    before_start(row(443, "IPC_PERMISSIONS", I, Default::Int(0o600), "0600 (384)", Check::Custom(file_mode),
        "an int in 0..0777 (octal file mode)", IPC_SERVER, "Mode of the unix socket file.")),
    before_start(row(444, "IPC_AUTO_REMOVE", I, Default::Int(1), "1", Check::Bool, "an int 0/1", IPC_SERVER,
        "Remove the socket file on close (and a stale one at bind).")),
    before_start(row(445, "IPC_HOST", S, Default::Str("127.0.0.1"), "\"127.0.0.1\"", Check::Custom(ipc_host),
        "a host name or IP address", IPC, "tcp: bind/connect host.")),
    before_start(row(446, "IPC_PORT_RANGE", A, Default::IntList(&[50000, 50100]), "({ 50000, 50100 })",
        Check::Custom(port_range), "an array of two ints ({ lo, hi }) with 1 <= lo <= hi <= 65535", IPC,
        "tcp: the first free port in the range is used; get reports the one chosen.")),
    row(447, "IPC_MAX_CONNECTIONS", I, Default::Int(10), "10", Check::IntRange(1, 1_000_000),
        "an int in 1..1000000 (clients)", IPC_SERVER,
        "Beyond it a client is refused with an ERROR message, then closed."),
    row(448, "IPC_QUEUE_SIZE", I, Default::Int(100), "100", Check::IntRange(0, 1_000_000),
        "an int in 0..1000000 (messages)", IPC,
        "Messages kept (FIFO, oldest dropped) while no client is connected; delivered on connect."),
    row(449, "IPC_ALLOW_CLIENT_SEND", I, Default::Int(1), "1", Check::Bool, "an int 0/1", IPC_SERVER,
        "0: client messages are refused with an ERROR message."),
    row(450, "IPC_AUTO_RECONNECT", I, Default::Int(1), "1", Check::Bool, "an int 0/1", IPC_CLIENT,
        "Client: reconnect with backoff after loss."),
    row(451, "IPC_RECONNECT_DELAY", I, Default::Int(1000), "1000", Check::IntRange(10, 3_600_000),
        "an int in 10..3600000 (ms)", IPC_CLIENT, "First backoff step, in ms."),
    row(452, "IPC_TIMEZONE", S, Default::Str("UTC"), "\"UTC\"", Check::Custom(timezone),
        "an IANA zone name such as \"UTC\" or \"Europe/Berlin\"", IPC, "Zone for timestamp_iso."),
    access(
        row(453, "IPC_CLIENTS", A, Default::EmptyArray, "({})", Check::Any, "nothing (read-only)", IPC_SERVER,
            "Read-only: connected clients (client_id, connected_at, addr)."),
        Access::ReadOnly,
    ),
];

/// The row for `id`.
pub fn find(id: i64) -> Option<&'static OptionDef> {
    // id → row + 1 (0 = none), built once: one bounds check and one load per lookup.
    static INDEX: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let top = OPTIONS.iter().map(|d| d.id as usize).max().unwrap_or(0);
        let mut ix = vec![0u8; top + 1];
        for (row, d) in OPTIONS.iter().enumerate() {
            ix[d.id as usize] = u8::try_from(row + 1).expect("fewer than 255 options");
        }
        ix
    });
    let slot = *index.get(usize::try_from(id).ok()?)?;
    (slot != 0).then(|| &OPTIONS[slot as usize - 1])
}

/// The row for a canonical name or alias.
pub fn by_name(name: &str) -> Option<&'static OptionDef> {
    OPTIONS
        .iter()
        .find(|d| d.name == name || d.aliases.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::validate::validate;

    fn set(id: i64, v: Value) -> Result<Value, String> {
        validate(find(id).unwrap(), &v).map_err(|e| e.message)
    }

    #[test]
    fn find_and_names() {
        assert_eq!(find(104).unwrap().name, "SO_HTTP_TIMEOUT");
        assert!(find(5).is_none() && find(-1).is_none() && find(70000).is_none());
        assert_eq!(by_name("CACHE_TTL").unwrap().id, 201);
        assert_eq!(by_name("HTTP_HEADERS").unwrap().id, 100);
    }

    #[test]
    fn route_errors_name_the_position() {
        let r = Value::mapping([
            ("method", Value::str("get")),
            ("pattern", Value::str("/users/{id")),
            ("handler", Value::str("h")),
        ]);
        let e = set(111, r).unwrap_err();
        assert!(
            e.ends_with("pattern \"/users/{id\": unclosed \"{\" at position 8"),
            "{e}"
        );
        let ok = set(
            111,
            Value::mapping([
                ("method", Value::str("get")),
                ("pattern", Value::str("/users/{id:int}")),
                ("handler", Value::str("get_user")),
            ]),
        )
        .unwrap();
        assert_eq!(ok.get("method"), Some(&Value::str("GET")));
        assert!(set(111, Value::mapping([("method", Value::str("GET"))])).is_err());
    }

    #[test]
    fn custom_checks() {
        assert!(set(113, Value::str("short")).is_err());
        assert!(set(113, Value::str("x".repeat(32))).is_ok());
        assert!(set(112, Value::mapping([("title", Value::str("t"))])).is_err());
        assert!(set(
            112,
            Value::mapping([("title", Value::str("t")), ("version", Value::str("1"))])
        )
        .is_ok());
        assert!(set(120, Value::str("chat.v1")).is_ok());
        assert!(set(120, Value::str("bad proto")).is_err());
        assert!(set(120, Value::Array(vec![])).is_err());
        for b in ["h:1883", "mqtt://h.example:1883", "mqtts://[::1]:8883"] {
            assert!(set(130, Value::str(b)).is_ok(), "{b}");
        }
        for b in ["h", "http://h:1", "mqtt://h:0", "mqtt://h:x"] {
            assert!(set(130, Value::str(b)).is_err(), "{b}");
        }
        assert!(set(131, Value::str("a".repeat(100))).is_ok());
        assert!(set(131, Value::str("")).is_err());
        assert!(set(138, Value::str("a/+/b"))
            .unwrap_err()
            .contains("position 3"));
        assert!(set(140, Value::str("x".repeat(4097))).is_err());
        assert!(set(141, Value::Array(vec![Value::Int(1)])).is_err());
        assert!(set(142, Value::mapping([("A", Value::Int(1))])).is_err());
        assert!(set(144, Value::str("/tmp/../etc")).is_err());
        assert!(set(144, Value::str("relative")).is_err());
        assert!(set(150, Value::str("file:/tmp/in")).is_ok());
        assert!(set(150, Value::str("console")).is_err());
        assert!(set(152, Value::str("merge")).is_ok());
        assert_eq!(set(153, Value::Int(5)).unwrap(), Value::Int(1));
        assert!(set(153, Value::str("/bin/bash")).is_ok());
        assert!(set(154, Value::Int(-21)).is_err());
        assert!(set(155, Value::Int(0)).is_ok() && set(155, Value::Int(100)).is_ok());
        assert!(set(155, Value::Int(100 * cores() + 1)).is_err());
        assert!(set(156, Value::Int(1000)).is_err());
        assert!(set(157, Value::Int(2)).is_err() && set(157, Value::Int(0)).is_ok());
        assert!(set(158, Value::mapping([("network", Value::Int(1))])).is_ok());
        assert!(set(158, Value::mapping([("net", Value::Int(1))])).is_err());
        let p = set(159, Value::mapping([("policy", Value::str("always"))])).unwrap();
        assert_eq!(p.get("backoff_ms"), Some(&Value::Int(1000)));
        assert_eq!(p.get("kill_mode"), Some(&Value::str("group")));
        let keep = Value::mapping([
            ("policy", Value::str("never")),
            ("kill_mode", Value::str("process")),
        ]);
        assert_eq!(
            set(159, keep).unwrap().get("kill_mode"),
            Some(&Value::str("process"))
        );
        let bad = Value::mapping([
            ("policy", Value::str("never")),
            ("kill_mode", Value::str("none")),
        ]);
        assert!(set(159, bad)
            .unwrap_err()
            .contains("\"kill_mode\" \"none\" is not \"group\""));
        let bad = Value::mapping([
            ("policy", Value::str("never")),
            ("kill_mode", Value::Int(1)),
        ]);
        assert!(set(159, bad).unwrap_err().contains("\"kill_mode\" is"));
        assert!(set(159, Value::str("sometimes")).is_err());
        assert!(set(203, Value::str("{method} {header:X-Id}")).is_ok());
        assert!(set(203, Value::str("{nope}"))
            .unwrap_err()
            .contains("position 1"));
        assert!(set(303, Value::str("10.0.0.0/8")).is_ok());
        assert!(set(303, Value::str("10.0.0.0/33")).is_err());
        assert!(set(440, Value::str("bus-1_a")).is_ok() && set(440, Value::str("a b")).is_err());
        assert!(set(442, Value::str("/run/../x")).is_err());
        assert!(set(443, Value::Int(0o1000)).is_err());
        assert!(set(443, Value::Int(384)).is_ok());
        let hint = set(443, Value::Int(660)).unwrap_err();
        assert!(hint.contains("for mode 0660 write 432"), "{hint}");
        assert!(set(446, Value::Array(vec![Value::Int(5), Value::Int(4)])).is_err());
        assert!(set(446, Value::Array(vec![Value::Int(4)])).is_err());
        assert!(set(452, Value::str("Europe/Berlin")).is_ok());
        assert!(set(452, Value::str("")).is_err() && set(452, Value::str("../x")).is_err());
        assert!(set(100, Value::mapping([("X-A", Value::str("a\r\nb"))])).is_err());
        assert_eq!(set(101, Value::str("post")).unwrap(), Value::str("POST"));
        assert!(set(102, Value::str("ftp://x")).is_err());
        assert!(set(102, Value::str("https://example.com/a?b")).is_ok());
    }

    #[test]
    fn router_config_merges_defaults() {
        let v = set(110, Value::mapping([("max_body", Value::Int(1 << 20))])).unwrap();
        assert_eq!(v.get("max_body"), Some(&Value::Int(1 << 20)));
        assert_eq!(v.get("case_sensitive"), Some(&Value::Int(1)));
        assert!(set(110, Value::mapping([("max_bdy", Value::Int(1))]))
            .unwrap_err()
            .contains("unknown key \"max_bdy\""));
    }

    #[test]
    fn run_as_self_is_allowed() {
        let uid = i64::from(nix::unistd::geteuid().as_raw());
        assert!(set(145, Value::Int(uid)).is_ok());
        assert!(set(145, Value::str("no-such-user-unisock"))
            .unwrap_err()
            .contains("no such user"));
    }
}
