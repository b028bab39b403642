//! Server side: a parsed request → the mapping LPC receives (callbacks.md
//! "HTTP / HTTPS / REST server").
//!
//! "uri" is the request target as sent; "path" is its path, percent-decoded
//! when that gives UTF-8 (else as sent); "query" is the raw query string and
//! "query_params" its decoded pairs (`+` is a space; a repeated key gives an
//! array; a key without `=` has the value ""). "host" is the Host header's
//! name without the port, or the target's when the target is in absolute
//! form ("http://name:port/p"), whose authority wins over Host (RFC 9112
//! §3.2.2).

use super::request_parser::Request;
use crate::http_util;
use crate::value::Value;

/// Splits a request target into (path, query). Absolute-form targets
/// ("http://host/p?q") give their path; "*" stays "*".
pub fn split_target(target: &str) -> (&str, &str) {
    let rest = ["http://", "https://"]
        .iter()
        .find_map(|scheme| {
            target
                .get(..scheme.len())
                .filter(|p| p.eq_ignore_ascii_case(scheme))
                .map(|_| &target[scheme.len()..])
        })
        .map(|after| after.find('/').map_or("/", |i| &after[i..]))
        .unwrap_or(target);
    let rest = rest.split('#').next().unwrap_or(rest);
    match rest.split_once('?') {
        Some((p, q)) => (p, q),
        None => (rest, ""),
    }
}

fn decode_or_raw(s: &str, plus_is_space: bool) -> String {
    if !(s.contains('%') || (plus_is_space && s.contains('+'))) {
        return s.to_string(); // nothing to decode (the common case)
    }
    if plus_is_space {
        http_util::decode_url(s).unwrap_or_else(|_| s.to_string())
    } else {
        // In a path "+" is a plus sign.
        match http_util::decode_url_bytes(&s.replace('+', "%2B")) {
            Ok(b) => String::from_utf8(b).unwrap_or_else(|_| s.to_string()),
            Err(_) => s.to_string(),
        }
    }
}

/// The decoded pairs of a query string as an LPC mapping.
pub fn query_params(query: &str) -> Value {
    let mut m = Value::Mapping(Vec::new());
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let (k, v) = (decode_or_raw(k, true), decode_or_raw(v, true));
        let key = Value::Str(k);
        let Value::Mapping(pairs) = &mut m else {
            unreachable!()
        };
        match pairs.iter_mut().find(|(existing, _)| *existing == key) {
            Some((_, Value::Array(items))) => items.push(Value::Str(v)),
            Some((_, old)) => {
                let first = std::mem::take(old);
                *old = Value::Array(vec![first, Value::Str(v)]);
            }
            None => pairs.push((key, Value::Str(v))),
        }
    }
    m
}

/// The authority of an absolute-form target ("http://name:port/p" →
/// "name:port"), without any userinfo.
fn target_authority(target: &str) -> Option<&str> {
    let after = ["http://", "https://"].iter().find_map(|scheme| {
        target
            .get(..scheme.len())
            .filter(|p| p.eq_ignore_ascii_case(scheme))
            .map(|_| &target[scheme.len()..])
    })?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let authority = &after[..end];
    Some(authority.rsplit_once('@').map_or(authority, |(_, a)| a))
}

/// The Host header without its port (IPv6 literals keep their brackets).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// Builds the request mapping. The request's body and headers move into it.
pub fn to_value(req: Request, addr: &str, scheme: &str, request_id: i64) -> Value {
    let host = target_authority(&req.target)
        .or_else(|| req.header("host"))
        .map(host_name)
        .unwrap_or("")
        .to_string();
    let (path, query) = split_target(&req.target);
    let path = decode_or_raw(path, false);
    let query = query.to_string();
    let params = query_params(&query);
    let version = format!("HTTP/1.{}", req.minor);
    let body = Value::from_bytes_lossless(req.body);
    let binary = matches!(body, Value::Buffer(_)) as i64;
    Value::Mapping(vec![
        (Value::str("method"), Value::Str(req.method)),
        (Value::str("uri"), Value::Str(req.target)),
        (Value::str("path"), Value::Str(path)),
        (Value::str("query"), Value::Str(query)),
        (Value::str("query_params"), params),
        (Value::str("version"), Value::Str(version)),
        (
            Value::str("headers"),
            http_util::headers::to_value(req.headers),
        ),
        (Value::str("body"), body),
        (Value::str("body_is_binary"), Value::Int(binary)),
        (Value::str("addr"), Value::str(addr)),
        (Value::str("scheme"), Value::str(scheme)),
        (Value::str("host"), Value::Str(host)),
        (Value::str("request_id"), Value::Int(request_id)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split() {
        assert_eq!(split_target("/a/b?x=1&y"), ("/a/b", "x=1&y"));
        assert_eq!(split_target("http://h:1/p?q"), ("/p", "q"));
        assert_eq!(split_target("HTTP://h"), ("/", ""));
        assert_eq!(split_target("*"), ("*", ""));
    }

    #[test]
    fn params_decode_and_repeat() {
        let v = query_params("a=1&b=x+y%21&a=2&c&a=3");
        assert_eq!(
            v.get("a"),
            Some(&Value::Array(vec![
                Value::str("1"),
                Value::str("2"),
                Value::str("3")
            ]))
        );
        assert_eq!(v.get("b"), Some(&Value::str("x y!")));
        assert_eq!(v.get("c"), Some(&Value::str("")));
    }

    #[test]
    fn absolute_targets_name_the_host() {
        assert_eq!(target_authority("http://a.b:8/x?q"), Some("a.b:8"));
        assert_eq!(target_authority("HTTPS://u@[::1]:9?q"), Some("[::1]:9"));
        assert_eq!(target_authority("http://h"), Some("h"));
        assert_eq!(target_authority("/x"), None);
    }

    #[test]
    fn hosts_lose_ports() {
        assert_eq!(host_name("example.org:8080"), "example.org");
        assert_eq!(host_name("[::1]:80"), "[::1]");
        assert_eq!(host_name("x"), "x");
    }
}
