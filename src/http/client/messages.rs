//! The requests an HTTP client sends (from its options at socket_connect,
//! from LPC's socket_write mappings) and the response mapping LPC receives.

use super::{HttpClient, InFlight};
use crate::core::Cx;
use crate::error::{Error, Result};
use crate::http::error::HttpError;
use crate::http::opt;
use crate::http::request_writer::Outgoing;
use crate::http::response_parser::Response;
use crate::http::target::Target;
use crate::value::Value;

impl HttpClient {
    /// The first request, from the socket's options.
    pub(super) fn request_from_options(&self, cx: &Cx, target: Target) -> Result<Outgoing> {
        let o = &cx.core.options;
        let method = o.string(opt::SO_HTTP_METHOD).unwrap_or("GET").to_string();
        let headers = match self.cfg.http.headers.as_deref() {
            Some(h) => crate::http_util::headers::pairs_from_value(h)
                .map_err(|why| HttpError::BadHeadersOption { why })?,
            None => Vec::new(),
        };
        let body = o
            .raw(opt::SO_HTTP_BODY)
            .and_then(Value::as_bytes)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        let req = Outgoing {
            method,
            target,
            headers,
            body,
        };
        req.render("")
            .map_err(|e| HttpError::BadRequestOptions { why: e.to_string() })?;
        Ok(req)
    }

    /// A request LPC wrote: ([ "method", "url"|"path", "headers", "body" ]).
    pub(super) fn request_from_write(&self, data: &Value) -> Result<Outgoing> {
        let bad = |why: String| Error::from(HttpError::BadWrite { why });
        let Value::Mapping(m) = data else {
            return Err(bad(format!(
                "an HTTP client writes a request mapping ([ \"method\", \"url\" or \"path\", \"headers\", \"body\" ]), got {}",
                data.describe()
            )));
        };
        for (k, _) in m {
            if !matches!(
                k.as_str(),
                Some("method" | "url" | "path" | "headers" | "body")
            ) {
                return Err(bad(format!(
                    "unknown request key {} (use method, url, path, headers, body)",
                    k.describe()
                )));
            }
        }
        let origin = self.home.as_ref().ok_or(HttpError::ConnectFirst)?;
        let target = match (data.get("url"), data.get("path")) {
            (Some(_), Some(_)) => return Err(bad("give url or path, not both".into())),
            (Some(Value::Str(u)), None) => Target::parse(u).map_err(bad)?,
            (None, Some(Value::Str(p))) if p.starts_with('/') => origin.join(p).map_err(bad)?,
            (None, None) => origin.clone(),
            (Some(v), None) | (None, Some(v)) => {
                return Err(bad(format!(
                    "url/path must be a string (a path starts with /), got {}",
                    v.describe()
                )))
            }
        };
        if !target.same_origin(origin) {
            return Err(HttpError::OtherOrigin {
                url: target.url.to_string(),
                host: origin.host.clone(),
                port: origin.port,
            }
            .into());
        }
        let method = match data.get("method") {
            None => "GET".to_string(),
            Some(Value::Str(s)) => {
                let up = s.to_ascii_uppercase();
                if !crate::http_util::is_token(&up) {
                    return Err(bad(format!("bad method {s:?}")));
                }
                up
            }
            Some(v) => {
                return Err(bad(format!(
                    "method must be a string, got {}",
                    v.describe()
                )))
            }
        };
        let mut headers = match self.cfg.http.headers.as_deref() {
            Some(h) => crate::http_util::headers::pairs_from_value(h).map_err(bad)?,
            None => Vec::new(),
        };
        if let Some(h) = data.get("headers") {
            let given = crate::http_util::headers::pairs_from_value(h).map_err(bad)?;
            headers.retain(|(n, _)| !given.iter().any(|(g, _)| g.eq_ignore_ascii_case(n)));
            headers.extend(given);
        }
        let body = match data.get("body") {
            None => Vec::new(),
            Some(v) => v.as_bytes().map(<[u8]>::to_vec).ok_or_else(|| {
                bad(format!(
                    "body must be a string or a buffer, got {}",
                    v.describe()
                ))
            })?,
        };
        let req = Outgoing {
            method,
            target,
            headers,
            body,
        };
        // A header that cannot be sent is this write's error, not the connection's.
        req.render("").map_err(bad)?;
        Ok(req)
    }
}

/// The response mapping of callbacks.md.
pub(super) fn response_value(resp: Response, f: &InFlight) -> Value {
    let body = Value::from_bytes_lossless(resp.body);
    let binary = matches!(body, Value::Buffer(_)) as i64;
    Value::Mapping(vec![
        (Value::str("status"), Value::Int(resp.status as i64)),
        (Value::str("reason"), Value::Str(resp.reason)),
        (
            Value::str("version"),
            Value::Str(format!("HTTP/1.{}", resp.minor)),
        ),
        (
            Value::str("headers"),
            crate::http_util::headers::to_value(resp.headers),
        ),
        (Value::str("body"), body),
        (Value::str("body_is_binary"), Value::Int(binary)),
        (Value::str("url"), Value::str(f.req.target.url.as_str())),
        (Value::str("redirects"), Value::Int(f.redirects)),
        (
            Value::str("elapsed_ms"),
            Value::Int(f.started.elapsed().as_millis() as i64),
        ),
    ])
}
