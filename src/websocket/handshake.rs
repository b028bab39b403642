//! The opening handshake (RFC 6455 §4), both sides, sans-IO.
//!
//! Server: the request is read by the HTTP server's parser (the same limits
//! as HTTP_SERVER: 8 KiB request line, 16 KiB head), then `Offer::from_request`
//! checks what makes it an upgrade and `accept` answers 101 after the
//! server's own checks (Origin, subprotocol, compression). The same two
//! functions serve an upgrade LPC accepts on an HTTP_SERVER connection.
//! Client: `request` writes the GET, `read_response` checks the 101.
//! The accept key (SHA-1 + base64) and the client's key come from
//! tungstenite's handshake module.

use tungstenite::handshake::client::generate_key;
use tungstenite::handshake::derive_accept_key;

use super::config::WsConfig;
use super::deflate::{self, Params};
use crate::http::request_mapping::split_target;
use crate::http::request_parser::Request;
use crate::http_util;
use crate::value::Value;

/// A valid upgrade request, kept until it is answered.
#[derive(Debug, Clone)]
pub struct Offer {
    pub key: String,
    /// Subprotocols the client offered, in its order.
    pub protocols: Vec<String>,
    /// The client's Sec-WebSocket-Extensions values.
    pub extensions: Vec<String>,
    pub origin: Option<String>,
    /// The request target's path and query, as sent.
    pub path: String,
    /// The request's headers as LPC gets them in "open".
    pub headers: Value,
}

/// An upgrade refused before LPC hears of it: the HTTP status, why, and
/// extra response headers.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub why: String,
    pub headers: Vec<(&'static str, &'static str)>,
}

fn refuse(status: u16, why: impl Into<String>) -> Refusal {
    Refusal {
        status,
        why: why.into(),
        headers: Vec::new(),
    }
}

/// What both sides agreed.
#[derive(Debug, Clone, Default)]
pub struct Agreed {
    pub subprotocol: String,
    pub deflate: Option<Params>,
    /// Client: the 101 response's headers (lower-case names), for "open".
    pub headers: Option<Value>,
}

/// Whether the comma-separated header `value` lists `token` (case-insensitive).
fn lists(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Every value of header `name` (lower-case), comma lists split.
fn all_values<'a>(req: &'a Request, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    req.headers
        .iter()
        .filter(move |(n, _)| n == name)
        .flat_map(|(_, v)| v.iter())
        .map(String::as_str)
}

impl Offer {
    /// Whether `req` asks for a WebSocket upgrade at all (Upgrade: websocket);
    /// `from_request` then says whether it is a valid one.
    pub fn is_upgrade(req: &Request) -> bool {
        all_values(req, "upgrade").any(|v| lists(v, "websocket"))
    }

    /// The offer in a request that asks for the upgrade, or why it is refused
    /// (400; 426 with `Sec-WebSocket-Version: 13` for another version).
    pub fn from_request(req: &Request) -> Result<Offer, Refusal> {
        if req.method != "GET" {
            return Err(refuse(
                400,
                format!("a WebSocket handshake is a GET, not {}", req.method),
            ));
        }
        if req.minor < 1 {
            return Err(refuse(400, "a WebSocket handshake needs HTTP/1.1"));
        }
        if !Self::is_upgrade(req) {
            return Err(refuse(400, "no \"Upgrade: websocket\" header"));
        }
        if !all_values(req, "connection").any(|v| lists(v, "upgrade")) {
            return Err(refuse(400, "no \"Connection: Upgrade\" header"));
        }
        let versions: Vec<&str> = all_values(req, "sec-websocket-version").collect();
        if versions != ["13"] {
            let mut r = refuse(
                426,
                format!(
                    "Sec-WebSocket-Version {} is not 13",
                    if versions.is_empty() {
                        "missing".to_string()
                    } else {
                        versions.join(", ")
                    }
                ),
            );
            r.headers.push(("Sec-WebSocket-Version", "13"));
            return Err(r);
        }
        let keys: Vec<&str> = all_values(req, "sec-websocket-key").collect();
        let key = match keys.as_slice() {
            [k] if key_is_valid(k) => k.to_string(),
            [] => return Err(refuse(400, "no Sec-WebSocket-Key header")),
            _ => return Err(refuse(400, "Sec-WebSocket-Key is not 16 bytes in base64")),
        };
        let protocols = all_values(req, "sec-websocket-protocol")
            .flat_map(|v| v.split(','))
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        let extensions = all_values(req, "sec-websocket-extensions")
            .map(str::to_string)
            .collect();
        let origin = req.header("origin").map(str::to_string);
        let (path, query) = split_target(&req.target);
        let path = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        Ok(Offer {
            key,
            protocols,
            extensions,
            origin,
            path,
            headers: http_util::headers::to_value(req.headers.clone()),
        })
    }
}

/// A Sec-WebSocket-Key is 16 bytes in base64: 22 characters and "==".
fn key_is_valid(k: &str) -> bool {
    k.len() == 24
        && k.ends_with("==")
        && k[..22]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Server: the checks of `cfg` (Origin → 403, subprotocol, compression) and
/// the 101 response. `chosen`: the subprotocol LPC picked on an upgrade
/// (None: the first of WS_PROTOCOL the client offered); `extra`: LPC's
/// headers for the response.
pub fn accept(
    offer: &Offer,
    cfg: &WsConfig,
    chosen: Option<&str>,
    extra: Option<&Value>,
) -> Result<(Vec<u8>, Agreed), Refusal> {
    if let Some(allowed) = &cfg.origins {
        let origin = offer.origin.as_deref().unwrap_or("");
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
            return Err(refuse(
                403,
                if origin.is_empty() {
                    "no Origin header, and WS_ORIGIN allows only listed origins".to_string()
                } else {
                    format!("Origin {origin} is not allowed (WS_ORIGIN)")
                },
            ));
        }
    }
    let subprotocol = match chosen {
        Some(p) if !p.is_empty() => {
            if !offer.protocols.iter().any(|o| o == p) {
                return Err(refuse(
                    400,
                    format!("the client did not offer the subprotocol {p:?}"),
                ));
            }
            p.to_string()
        }
        Some(_) => String::new(),
        None => cfg
            .protocols
            .iter()
            .find(|p| offer.protocols.iter().any(|o| o == *p))
            .cloned()
            .unwrap_or_default(),
    };
    let agreed_deflate = if cfg.compression {
        let offers: Vec<&str> = offer.extensions.iter().map(String::as_str).collect();
        deflate::accept_offers(&offers)
    } else {
        None
    };
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(derive_accept_key(offer.key.as_bytes()).as_bytes());
    out.extend_from_slice(b"\r\n");
    if !subprotocol.is_empty() {
        push_field(&mut out, "Sec-WebSocket-Protocol", &subprotocol);
    }
    if let Some((_, answer)) = &agreed_deflate {
        push_field(&mut out, "Sec-WebSocket-Extensions", answer);
    }
    if let Some(extra) = extra {
        let mut bad = None;
        let r = http_util::headers::for_each_in_value(extra, |n, v| {
            if is_handshake_field(n) {
                bad = Some(n.to_string());
                return Ok(());
            }
            http_util::headers::write_field(&mut out, n, v)
        });
        if let Err(why) = r {
            return Err(refuse(500, format!("the upgrade reply's headers: {why}")));
        }
        if let Some(n) = bad {
            return Err(refuse(
                500,
                format!("the upgrade reply may not set the handshake header {n}"),
            ));
        }
    }
    out.extend_from_slice(b"\r\n");
    Ok((
        out,
        Agreed {
            subprotocol,
            deflate: agreed_deflate.map(|(p, _)| p),
            headers: None,
        },
    ))
}

/// Headers the handshake itself writes (LPC's extra headers may not).
fn is_handshake_field(name: &str) -> bool {
    [
        "upgrade",
        "connection",
        "sec-websocket-accept",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "content-length",
        "transfer-encoding",
    ]
    .iter()
    .any(|h| h.eq_ignore_ascii_case(name))
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The HTTP response refusing a handshake (the connection closes after it).
pub fn refusal_response(r: &Refusal) -> Vec<u8> {
    let mut out = crate::http::response_writer::canned(r.status, &r.why, 1);
    if !r.headers.is_empty() {
        // After the status line.
        let at = out
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(0, |i| i + 2);
        let mut extra = Vec::new();
        for (n, v) in &r.headers {
            push_field(&mut extra, n, v);
        }
        out.splice(at..at, extra);
    }
    out
}

/// Client: the key sent and the request, for `host` (the Host header's
/// value) and `path` ("/p?q").
pub fn request(host: &str, path: &str, cfg: &WsConfig) -> (String, Vec<u8>) {
    let key = generate_key();
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    push_field(&mut out, "Host", host);
    out.extend_from_slice(
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
    );
    push_field(&mut out, "Sec-WebSocket-Key", &key);
    if !cfg.protocols.is_empty() {
        push_field(
            &mut out,
            "Sec-WebSocket-Protocol",
            &cfg.protocols.join(", "),
        );
    }
    if cfg.compression {
        push_field(
            &mut out,
            "Sec-WebSocket-Extensions",
            deflate::client_offer(),
        );
    }
    if let Some(origin) = cfg.origins.as_ref().and_then(|o| o.first()) {
        push_field(&mut out, "Origin", origin);
    }
    out.extend_from_slice(b"\r\n");
    (key, out)
}

/// The largest response head a client reads.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Client: checks the server's answer at the front of `buf`. Ok(None): not
/// all there yet; Ok(Some((agreed, used))): open, `used` bytes were the
/// head; Err: the handshake failed (why).
pub fn read_response(
    buf: &[u8],
    key: &str,
    cfg: &WsConfig,
) -> Result<Option<(Agreed, usize)>, String> {
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut fields);
    let used = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_RESPONSE_HEAD => {
            return Err("the handshake response's head is over 16 KiB".into())
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad handshake response: {e}")),
    };
    let code = resp.code.unwrap_or(0);
    if code != 101 {
        return Err(format!(
            "the server answered {code} {} instead of 101 Switching Protocols",
            resp.reason.unwrap_or("")
        ));
    }
    let get = |name: &str| -> Vec<&str> {
        resp.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
            .collect()
    };
    if !get("upgrade").iter().any(|v| lists(v, "websocket")) {
        return Err("the 101 response has no \"Upgrade: websocket\"".into());
    }
    if !get("connection").iter().any(|v| lists(v, "upgrade")) {
        return Err("the 101 response has no \"Connection: Upgrade\"".into());
    }
    let want = derive_accept_key(key.as_bytes());
    if get("sec-websocket-accept") != [want.as_str()] {
        return Err("the 101 response's Sec-WebSocket-Accept does not match the key".into());
    }
    let protocols = get("sec-websocket-protocol");
    let subprotocol = match protocols.as_slice() {
        [] if cfg.protocols.is_empty() => String::new(),
        [] => {
            return Err(format!(
                "the server chose none of the subprotocols offered ({})",
                cfg.protocols.join(", ")
            ))
        }
        [p] if cfg.protocols.iter().any(|o| o == p.trim()) => p.trim().to_string(),
        _ => {
            return Err(format!(
                "the server chose a subprotocol not offered: {}",
                protocols.join(", ")
            ))
        }
    };
    let extensions = get("sec-websocket-extensions");
    let deflate = match extensions.as_slice() {
        [] => None,
        [e] if cfg.compression => Some(deflate::client_accept(e)?),
        _ => {
            return Err(format!(
                "the server answered extensions not offered: {}",
                extensions.join(", ")
            ))
        }
    };
    let mut headers: http_util::headers::Headers = Vec::new();
    for h in resp.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        let value = String::from_utf8_lossy(h.value).into_owned();
        match headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => headers.push((name, vec![value])),
        }
    }
    Ok(Some((
        Agreed {
            subprotocol,
            deflate,
            headers: Some(http_util::headers::to_value(headers)),
        },
        used,
    )))
}
