//! Server side: LPC replies → response bytes (callbacks.md "Reply").
//!
//! A reply is a plain string (200 text/plain), a buffer (200
//! application/octet-stream), or a mapping with "status", "headers" and one of
//! "body" (string|buffer), "json" (any value, sent as application/json) or
//! "stream": 1 (chunked; later writes are chunks, `([ "end": 1 ])` ends it).
//! Content-Length, Date and Connection are added unless given; the listener's
//! SO_HTTP_HEADERS are added unless the reply names the same field, except
//! Content-Length and Transfer-Encoding there, which are ignored: framing
//! belongs to each response, and a server-wide value would misframe it. A
//! "Connection: close" from either source closes the connection after the
//! response.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result, ResultCode};
use crate::http_util;
use crate::value::Value;

/// What the request being answered needs from the response.
#[derive(Clone, Copy, Debug)]
pub struct Answering {
    pub head_only: bool,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub keep_alive: bool,
}

/// A rendered response (or the head of a streamed one).
#[derive(Debug)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    /// The connection closes once this response is out.
    pub close: bool,
    /// A streamed response was opened: chunks follow.
    pub streaming: bool,
    /// HTTP/1.0 streaming has no chunked coding: raw bytes, then close.
    pub raw_stream: bool,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::new(
        ResultCode::EeBaddata,
        format!("socket_write: {}", msg.into()),
    )
}

/// The IMF-fixdate of now, formatted at most once per second.
fn date_now() -> String {
    thread_local! {
        static CACHE: RefCell<(i64, String)> = const { RefCell::new((-1, String::new())) };
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != now {
            *c = (now, http_util::http_date(now).unwrap_or_default());
        }
        c.1.clone()
    })
}

/// Header pairs from an LPC mapping (string → string|int|array of those).
fn header_pairs(v: &Value, what: &str) -> Result<Vec<(String, String)>> {
    http_util::headers::pairs_from_value(v).map_err(|e| bad(format!("{what}: {e}")))
}

/// Renders a complete response or the head of a streamed one.
pub fn render(reply: &Value, ans: Answering, defaults: &Value) -> Result<Rendered> {
    let (status, given, body, content_type, streaming) = match reply {
        Value::Str(s) => (
            200,
            Vec::new(),
            s.as_bytes().to_vec(),
            "text/plain; charset=utf-8",
            false,
        ),
        Value::Buffer(b) => (
            200,
            Vec::new(),
            b.clone(),
            "application/octet-stream",
            false,
        ),
        Value::Mapping(_) => {
            if let Value::Mapping(m) = reply {
                for (k, _) in m {
                    if !matches!(
                        k.as_str(),
                        Some("status" | "headers" | "body" | "json" | "stream" | "reason")
                    ) {
                        return Err(bad(format!(
                            "unknown reply key {} (use status, headers, body, json, stream)",
                            k.describe()
                        )));
                    }
                }
            }
            let status = match reply.get("status") {
                None => 200,
                Some(Value::Int(s)) if (200..=599).contains(s) => *s as u16,
                Some(other) => {
                    return Err(bad(format!(
                        "reply status must be an int in 200..599, got {}",
                        other.describe()
                    )))
                }
            };
            let given = match reply.get("headers") {
                None => Vec::new(),
                Some(h @ Value::Mapping(_)) => header_pairs(h, "reply headers")?,
                Some(other) => {
                    return Err(bad(format!(
                        "reply headers must be a mapping, got {}",
                        other.describe()
                    )))
                }
            };
            let streaming = reply.get("stream").and_then(Value::as_int).unwrap_or(0) != 0;
            let (body, ct) = match (reply.get("body"), reply.get("json")) {
                (Some(_), Some(_)) => return Err(bad("a reply has either body or json, not both")),
                (Some(Value::Str(s)), None) => (s.as_bytes().to_vec(), "text/plain; charset=utf-8"),
                (Some(Value::Buffer(b)), None) => (b.clone(), "application/octet-stream"),
                (Some(other), None) => {
                    return Err(bad(format!(
                        "reply body must be a string or a buffer, got {}",
                        other.describe()
                    )))
                }
                (None, Some(j)) => (
                    serde_json::to_vec(&j.to_json()).map_err(|e| bad(format!("json: {e}")))?,
                    "application/json",
                ),
                (None, None) => (Vec::new(), "text/plain; charset=utf-8"),
            };
            if streaming && !body.is_empty() {
                return Err(bad(
                    "a streamed reply sends its body in later writes, not in the opening mapping",
                ));
            }
            (status, given, body, ct, streaming)
        }
        other => {
            return Err(bad(format!(
                "an HTTP reply is a mapping, string or buffer, got {}",
                other.describe()
            )))
        }
    };

    let has = |name: &str| given.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if has("transfer-encoding") {
        return Err(bad(
            "Transfer-Encoding is managed by unisock (use \"stream\": 1 for chunked replies)",
        ));
    }
    let no_body_status = status == 204 || status == 304;
    if no_body_status && !body.is_empty() {
        return Err(bad(format!("a {status} reply cannot have a body")));
    }
    if let Some((_, v)) = given
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        if streaming {
            return Err(bad("a streamed reply cannot give Content-Length"));
        }
        if !ans.head_only && v.trim() != body.len().to_string() {
            return Err(bad(format!(
                "Content-Length {v} does not match the body ({} bytes)",
                body.len()
            )));
        }
    }
    let reason = match reply.get("reason").and_then(Value::as_str) {
        Some(r) if !r.bytes().any(|b| b < 0x20 || b == 0x7f) => r.to_string(),
        Some(_) => return Err(bad("reply reason contains control characters")),
        None => http_util::status_text(status as i64)
            .unwrap_or("Unknown")
            .to_string(),
    };

    let mut pairs = given;
    if let Value::Mapping(_) = defaults {
        for (n, v) in header_pairs(defaults, "SO_HTTP_HEADERS")? {
            let framing = n.eq_ignore_ascii_case("content-length")
                || n.eq_ignore_ascii_case("transfer-encoding");
            if !framing && !pairs.iter().any(|(g, _)| g.eq_ignore_ascii_case(&n)) {
                pairs.push((n, v));
            }
        }
    }
    let wants_close = pairs.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("connection")
            && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
    });
    let raw_stream = streaming && ans.minor == 0;
    let close = !ans.keep_alive || wants_close || raw_stream;
    let has = |pairs: &[(String, String)], name: &str| {
        pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if !has(&pairs, "date") {
        pairs.push(("Date".into(), date_now()));
    }
    if !no_body_status && !has(&pairs, "content-type") && (streaming || !body.is_empty()) {
        pairs.push(("Content-Type".into(), content_type.into()));
    }
    if streaming {
        if !raw_stream {
            pairs.push(("Transfer-Encoding".into(), "chunked".into()));
        }
    } else if !no_body_status && !has(&pairs, "content-length") {
        pairs.push(("Content-Length".into(), body.len().to_string()));
    }
    if !has(&pairs, "connection") {
        if close {
            pairs.push(("Connection".into(), "close".into()));
        } else if ans.minor == 0 {
            pairs.push(("Connection".into(), "keep-alive".into()));
        }
    }
    let head = http_util::format_headers(&pairs)
        .map_err(|e| bad(e.replace("http_format_headers: ", "")))?;
    let mut bytes = Vec::with_capacity(32 + head.len() + body.len());
    bytes.extend_from_slice(format!("HTTP/1.{} {status} {reason}\r\n", ans.minor).as_bytes());
    bytes.extend_from_slice(head.as_bytes());
    bytes.extend_from_slice(b"\r\n");
    if !ans.head_only {
        bytes.extend_from_slice(&body);
    }
    Ok(Rendered {
        bytes,
        close,
        streaming,
        raw_stream,
    })
}

/// One write on an open streamed reply: Ok((bytes, ended)).
pub fn stream_piece(data: &Value, raw: bool, head_only: bool) -> Result<(Vec<u8>, bool)> {
    let chunk = |b: &[u8]| -> Vec<u8> {
        if head_only || b.is_empty() {
            Vec::new()
        } else if raw {
            b.to_vec()
        } else {
            let mut out = format!("{:x}\r\n", b.len()).into_bytes();
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
            out
        }
    };
    match data {
        Value::Str(s) => Ok((chunk(s.as_bytes()), false)),
        Value::Buffer(b) => Ok((chunk(b), false)),
        Value::Mapping(_) if data.get("end").and_then(Value::as_int).unwrap_or(0) != 0 => {
            let mut out = match data.get("body") {
                Some(Value::Str(s)) => chunk(s.as_bytes()),
                Some(Value::Buffer(b)) => chunk(b),
                None => Vec::new(),
                Some(other) => {
                    return Err(bad(format!(
                        "the final body must be a string or a buffer, got {}",
                        other.describe()
                    )))
                }
            };
            if !raw && !head_only {
                out.extend_from_slice(b"0\r\n\r\n");
            }
            Ok((out, true))
        }
        other => Err(bad(format!(
            "a streamed reply is open: write strings or buffers, then ([ \"end\": 1 ]); got {}",
            other.describe()
        ))),
    }
}

/// The response the server sends on its own (limits, timeouts, overload).
pub fn canned(status: u16, why: &str, minor: u8) -> Vec<u8> {
    let reason = http_util::status_text(status as i64).unwrap_or("Error");
    let body = format!("{status} {reason}: {why}\n");
    format!(
        "HTTP/1.{minor} {status} {reason}\r\nDate: {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        date_now(),
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANS: Answering = Answering {
        head_only: false,
        minor: 1,
        keep_alive: true,
    };

    fn text(r: &Rendered) -> String {
        String::from_utf8(r.bytes.clone()).unwrap()
    }

    #[test]
    fn string_reply() {
        let r = render(&Value::str("hi"), ANS, &Value::Undefined).unwrap();
        let t = text(&r);
        assert!(t.starts_with("HTTP/1.1 200 OK\r\n"), "{t}");
        assert!(t.contains("Content-Length: 2\r\n"));
        assert!(t.contains("Content-Type: text/plain; charset=utf-8\r\n"));
        assert!(t.ends_with("\r\n\r\nhi"));
        assert!(!r.close);
    }

    #[test]
    fn mapping_reply_with_json_and_defaults() {
        let reply = Value::mapping([
            ("status", Value::Int(201)),
            ("json", Value::mapping([("a", Value::Int(1))])),
            ("headers", Value::mapping([("X-One", Value::str("1"))])),
        ]);
        let defaults =
            Value::mapping([("X-One", Value::str("default")), ("X-Two", Value::str("2"))]);
        let t = text(&render(&reply, ANS, &defaults).unwrap());
        assert!(t.starts_with("HTTP/1.1 201 Created\r\n"));
        assert!(t.contains("X-One: 1\r\n") && !t.contains("default"));
        assert!(t.contains("X-Two: 2\r\n"));
        assert!(t.contains("Content-Type: application/json\r\n"));
        assert!(t.ends_with("{\"a\":1}"));
    }

    #[test]
    fn listener_defaults_cannot_misframe_and_may_close() {
        let defaults = Value::mapping([
            ("Content-Length", Value::str("5")),
            ("Transfer-Encoding", Value::str("chunked")),
            ("Connection", Value::str("close")),
        ]);
        let r = render(&Value::str("hello world"), ANS, &defaults).unwrap();
        let t = text(&r);
        assert!(t.contains("Content-Length: 11\r\n"), "{t}");
        assert!(!t.contains("Content-Length: 5") && !t.contains("Transfer-Encoding"));
        assert!(t.contains("Connection: close\r\n") && r.close);
    }

    #[test]
    fn head_and_http10() {
        let ans = Answering {
            head_only: true,
            minor: 0,
            keep_alive: false,
        };
        let r = render(&Value::str("hello"), ans, &Value::Undefined).unwrap();
        let t = text(&r);
        assert!(t.starts_with("HTTP/1.0 200 OK\r\n"));
        assert!(t.contains("Content-Length: 5\r\n") && t.contains("Connection: close\r\n"));
        assert!(t.ends_with("\r\n\r\n"));
        assert!(r.close);
    }

    #[test]
    fn streaming() {
        let r = render(
            &Value::mapping([("stream", Value::Int(1))]),
            ANS,
            &Value::Undefined,
        )
        .unwrap();
        assert!(r.streaming && text(&r).contains("Transfer-Encoding: chunked"));
        assert_eq!(
            stream_piece(&Value::str("abc"), false, false).unwrap(),
            (b"3\r\nabc\r\n".to_vec(), false)
        );
        assert_eq!(
            stream_piece(&Value::mapping([("end", Value::Int(1))]), false, false).unwrap(),
            (b"0\r\n\r\n".to_vec(), true)
        );
        assert!(stream_piece(&Value::Int(3), false, false).is_err());
    }

    #[test]
    fn bad_replies_say_why() {
        for (reply, want) in [
            (Value::mapping([("status", Value::Int(99))]), "200..599"),
            (
                Value::mapping([("bogus", Value::Int(1))]),
                "unknown reply key",
            ),
            (
                Value::mapping([("headers", Value::mapping([("X", Value::str("a\r\nb"))]))]),
                "CR",
            ),
            (
                Value::mapping([("status", Value::Int(204)), ("body", Value::str("x"))]),
                "cannot have a body",
            ),
            (Value::Int(5), "mapping, string or buffer"),
        ] {
            let e = render(&reply, ANS, &Value::Undefined).unwrap_err();
            assert_eq!(e.code, ResultCode::EeBaddata);
            assert!(e.message.contains(want), "{}", e.message);
        }
    }
}
