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

use std::borrow::Cow;
use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::http::error::HttpError;
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
    HttpError::BadWrite { why: msg.into() }.into()
}

/// Calls `f` with the IMF-fixdate of now, formatted at most once per second.
fn with_date<R>(f: impl FnOnce(&str) -> R) -> R {
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
        f(&c.1)
    })
}

fn date_now() -> String {
    with_date(str::to_string)
}

/// Which header fields a response already has (from LPC), as it is written.
#[derive(Default)]
struct Given {
    date: bool,
    content_type: bool,
    content_length: bool,
    connection: bool,
    close: bool,
}

impl Given {
    fn note(&mut self, name: &str, value: &str) {
        if name.eq_ignore_ascii_case("date") {
            self.date = true;
        } else if name.eq_ignore_ascii_case("content-type") {
            self.content_type = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            self.content_length = true;
        } else if name.eq_ignore_ascii_case("connection") {
            self.connection = true;
            self.close |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        }
    }
}

fn is_framing(name: &str) -> bool {
    name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
}

fn names(headers: Option<&Value>, name: &str) -> bool {
    match headers {
        Some(Value::Mapping(m)) => m
            .iter()
            .any(|(k, _)| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case(name))),
        _ => false,
    }
}

/// Renders a complete response or the head of a streamed one.
pub fn render(reply: &Value, ans: Answering, defaults: &Value) -> Result<Rendered> {
    let text = "text/plain; charset=utf-8";
    let (status, given, body, content_type, streaming): (u16, Option<&Value>, Cow<[u8]>, _, _) =
        match reply {
            Value::Str(s) => (200, None, Cow::Borrowed(s.as_bytes()), text, false),
            Value::Buffer(b) => (
                200,
                None,
                Cow::Borrowed(b),
                "application/octet-stream",
                false,
            ),
            Value::Mapping(m) => {
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
                    None => None,
                    Some(h @ Value::Mapping(_)) => Some(h),
                    Some(other) => {
                        return Err(bad(format!(
                            "reply headers must be a mapping, got {}",
                            other.describe()
                        )))
                    }
                };
                let streaming = reply.get("stream").and_then(Value::as_int).unwrap_or(0) != 0;
                let (body, ct): (Cow<[u8]>, _) = match (reply.get("body"), reply.get("json")) {
                    (Some(_), Some(_)) => {
                        return Err(bad("a reply has either body or json, not both"))
                    }
                    (Some(Value::Str(s)), None) => (Cow::Borrowed(s.as_bytes()), text),
                    (Some(Value::Buffer(b)), None) => {
                        (Cow::Borrowed(b.as_slice()), "application/octet-stream")
                    }
                    (Some(other), None) => {
                        return Err(bad(format!(
                            "reply body must be a string or a buffer, got {}",
                            other.describe()
                        )))
                    }
                    (None, Some(j)) => (
                        Cow::Owned(
                            serde_json::to_vec(&j.to_json())
                                .map_err(|e| bad(format!("json: {e}")))?,
                        ),
                        "application/json",
                    ),
                    (None, None) => (Cow::Borrowed(&[][..]), text),
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
    let no_body_status = status == 204 || status == 304;
    if no_body_status && !body.is_empty() {
        return Err(bad(format!("a {status} reply cannot have a body")));
    }
    let reason = match reply.get("reason").and_then(Value::as_str) {
        Some(r) if !r.bytes().any(|b| b < 0x20 || b == 0x7f) => r,
        Some(_) => return Err(bad("reply reason contains control characters")),
        None => http_util::status_text(status as i64).unwrap_or("Unknown"),
    };

    // One pass: the status line, LPC's fields (checked as they are written),
    // the listener's, then what is missing.
    let mut out = Vec::with_capacity(160 + reason.len() + body.len());
    out.extend_from_slice(if ans.minor == 0 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    out.extend_from_slice(&[
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
        b' ',
    ]);
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut seen = Given::default();
    if let Some(h) = given {
        http_util::headers::for_each_in_value(h, |n, v| {
            if n.eq_ignore_ascii_case("transfer-encoding") {
                return Err(
                    "Transfer-Encoding is managed by unisock (use \"stream\": 1 for chunked replies)"
                        .into(),
                );
            }
            if n.eq_ignore_ascii_case("content-length") {
                if streaming {
                    return Err("a streamed reply cannot give Content-Length".into());
                }
                if !ans.head_only && v.trim().parse::<usize>().ok() != Some(body.len()) {
                    return Err(format!(
                        "Content-Length {v} does not match the body ({} bytes)",
                        body.len()
                    ));
                }
            }
            seen.note(n, v);
            http_util::headers::write_field(&mut out, n, v)
        })
        .map_err(bad)?;
    }
    if let Value::Mapping(_) = defaults {
        http_util::headers::for_each_in_value(defaults, |n, v| {
            if is_framing(n) || names(given, n) {
                return Ok(());
            }
            seen.note(n, v);
            http_util::headers::write_field(&mut out, n, v)
        })
        .map_err(|e| bad(format!("SO_HTTP_HEADERS: {e}")))?;
    }
    let raw_stream = streaming && ans.minor == 0;
    let close = !ans.keep_alive || seen.close || raw_stream;
    if !seen.date {
        with_date(|d| {
            out.extend_from_slice(b"Date: ");
            out.extend_from_slice(d.as_bytes());
            out.extend_from_slice(b"\r\n");
        });
    }
    if !no_body_status && !seen.content_type && (streaming || !body.is_empty()) {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(content_type.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if streaming {
        if !raw_stream {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
    } else if !no_body_status && !seen.content_length {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !seen.connection {
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if ans.minor == 0 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    if !ans.head_only {
        out.extend_from_slice(&body);
    }
    Ok(Rendered {
        bytes: out,
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
    use crate::error::ResultCode;

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
