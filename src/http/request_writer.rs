//! Client side: an outgoing request → bytes. Host, User-Agent, Accept and
//! Content-Length are added unless the request's headers give them; a header
//! that would break the framing (CR/LF, Transfer-Encoding) is an error.

use super::target::Target;
use crate::http_util;

/// One request the client sends.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub method: String,
    pub target: Target,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Outgoing {
    fn has(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The request says "Connection: close": no request may follow it on the
    /// same connection, whatever the response says (RFC 9112, 9.6).
    pub fn closes(&self) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("close"))
    }

    /// Drops every header named `name`.
    pub fn remove(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn render(&self, user_agent: &str) -> Result<Vec<u8>, String> {
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(self.headers.len() + 4);
        if !self.has("host") {
            pairs.push(("Host".into(), self.target.host_header()));
        }
        if !user_agent.is_empty() && !self.has("user-agent") {
            pairs.push(("User-Agent".into(), user_agent.into()));
        }
        if !self.has("accept") {
            pairs.push(("Accept".into(), "*/*".into()));
        }
        pairs.extend(self.headers.iter().cloned());
        if self.has("transfer-encoding") {
            return Err("Transfer-Encoding is managed by unisock".into());
        }
        let wants_length =
            !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH");
        if wants_length && !self.has("content-length") {
            pairs.push(("Content-Length".into(), self.body.len().to_string()));
        }
        let head = http_util::format_headers(&pairs)
            .map_err(|e| e.replace("http_format_headers: ", ""))?;
        let mut out = Vec::with_capacity(64 + head.len() + self.body.len());
        out.extend_from_slice(
            format!(
                "{} {} HTTP/1.1\r\n",
                self.method,
                self.target.path_and_query()
            )
            .as_bytes(),
        );
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_defaults() {
        let o = Outgoing {
            method: "POST".into(),
            target: Target::parse("http://h:81/p?q=1").unwrap(),
            headers: vec![("X-A".into(), "1".into())],
            body: b"hi".to_vec(),
        };
        let t = String::from_utf8(o.render("UA/1").unwrap()).unwrap();
        assert_eq!(
            t,
            "POST /p?q=1 HTTP/1.1\r\nHost: h:81\r\nUser-Agent: UA/1\r\nAccept: */*\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nhi"
        );
    }

    #[test]
    fn connection_close_is_seen() {
        let mut o = Outgoing {
            method: "GET".into(),
            target: Target::parse("http://h/").unwrap(),
            headers: vec![("connection".into(), "Upgrade, Close".into())],
            body: vec![],
        };
        assert!(o.closes());
        o.headers[0].1 = "keep-alive".into();
        assert!(!o.closes());
    }

    #[test]
    fn refuses_injection() {
        let o = Outgoing {
            method: "GET".into(),
            target: Target::parse("http://h/").unwrap(),
            headers: vec![("X".into(), "a\r\nEvil: 1".into())],
            body: vec![],
        };
        assert!(o.render("").is_err());
    }
}
