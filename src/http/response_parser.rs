//! Client side: bytes from the server → complete responses, with httparse for
//! the head. Bodies framed by Content-Length, chunked coding, or the end of
//! the connection; none for HEAD, 204 and 304. Interim 1xx responses are
//! skipped. A head over 64 KiB or a body over 64 MiB is an error.

use super::chunked::{ChunkError, ChunkedDecoder};
use crate::http_util::headers::Headers;

pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;
pub const MAX_RESPONSE_BODY: usize = 64 * 1024 * 1024;
const MAX_HEADERS: usize = 128;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub minor: u8,
    pub headers: Headers,
    pub body: Vec<u8>,
    /// Whether the connection may carry another request.
    pub keep_alive: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
    }
}

enum Body {
    Length(usize),
    Chunked(ChunkedDecoder),
    UntilEof,
}

#[derive(Default)]
pub struct ResponseParser {
    pending: Option<(Response, Body)>,
}

impl ResponseParser {
    /// True once a response head has arrived and its body is awaited.
    pub fn in_body(&self) -> bool {
        self.pending.is_some()
    }

    /// Takes the response to a request (`head_only`: it was HEAD) from the
    /// front of `buf`. `eof`: the server closed; a body framed by the close
    /// ends there. Ok(None): need more bytes.
    pub fn next(
        &mut self,
        buf: &mut Vec<u8>,
        head_only: bool,
        eof: bool,
    ) -> Result<Option<Response>, String> {
        while self.pending.is_none() {
            match parse_head(buf, head_only)? {
                None => {
                    if eof {
                        return Err(if buf.is_empty() {
                            "the server closed the connection without a response".into()
                        } else {
                            "the server closed the connection in the middle of a response head"
                                .into()
                        });
                    }
                    return Ok(None);
                }
                Some((used, None)) => {
                    buf.drain(..used); // interim 1xx
                }
                Some((used, Some(p))) => {
                    buf.drain(..used);
                    self.pending = Some(p);
                }
            }
        }
        let (resp, body) = self.pending.as_mut().expect("pending response");
        let done = match body {
            Body::Length(n) => {
                if buf.len() >= *n {
                    resp.body = buf.drain(..*n).collect();
                    true
                } else if eof {
                    return Err(format!(
                        "the server closed the connection after {} of {} body bytes",
                        buf.len(),
                        n
                    ));
                } else {
                    false
                }
            }
            Body::Chunked(dec) => {
                let used =
                    dec.feed(buf, &mut resp.body, MAX_RESPONSE_BODY)
                        .map_err(|e| match e {
                            ChunkError::TooLarge => {
                                format!("response body over {MAX_RESPONSE_BODY} bytes")
                            }
                            ChunkError::Bad(why) => format!("bad response: {why}"),
                        })?;
                buf.drain(..used);
                if !dec.is_done() && eof {
                    return Err(
                        "the server closed the connection in the middle of a chunked body".into(),
                    );
                }
                dec.is_done()
            }
            Body::UntilEof => {
                if resp.body.len() + buf.len() > MAX_RESPONSE_BODY {
                    return Err(format!("response body over {MAX_RESPONSE_BODY} bytes"));
                }
                resp.body.append(buf);
                eof
            }
        };
        if done {
            Ok(self.pending.take().map(|(r, _)| r))
        } else {
            Ok(None)
        }
    }
}

/// Ok(None): incomplete. Ok(Some((used, None))): an interim 1xx to skip.
#[allow(clippy::type_complexity)]
fn parse_head(
    buf: &[u8],
    head_only: bool,
) -> Result<Option<(usize, Option<(Response, Body)>)>, String> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut fields);
    // httparse sees at most the limit, so a head over it is refused however
    // the bytes arrive (in one read or many).
    let window = &buf[..buf.len().min(MAX_RESPONSE_HEAD)];
    let used = match r.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_RESPONSE_HEAD {
                return Err(format!("response head over {MAX_RESPONSE_HEAD} bytes"));
            }
            return Ok(None);
        }
        Err(e) => return Err(format!("bad response: {e}")),
    };
    let status = r.code.unwrap_or(0);
    if (100..200).contains(&status) {
        if status == 101 {
            return Err(
                "the server switched protocols (101), which HTTP modes do not follow".into(),
            );
        }
        return Ok(Some((used, None)));
    }
    let minor = r.version.unwrap_or(1);
    let mut headers: Headers = Vec::new();
    for f in r.headers.iter() {
        let name = f.name.to_ascii_lowercase();
        let value = String::from_utf8_lossy(f.value).trim().to_string();
        match headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, vs)) => vs.push(value),
            None => headers.push((name, vec![value])),
        }
    }
    let get_all = |name: &str| -> Vec<String> {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| {
                v.iter()
                    .flat_map(|x| x.split(','))
                    .map(|t| t.trim().to_ascii_lowercase())
            })
            .collect()
    };
    let connection = get_all("connection");
    let mut keep_alive = if connection.iter().any(|t| t == "close") {
        false
    } else {
        minor == 1 || connection.iter().any(|t| t == "keep-alive")
    };
    let te = get_all("transfer-encoding");
    let body = if head_only || status == 204 || status == 304 {
        Body::Length(0)
    } else if !te.is_empty() {
        if te.last().map(String::as_str) == Some("chunked") && te.len() == 1 {
            Body::Chunked(ChunkedDecoder::default())
        } else {
            return Err(format!(
                "the response uses Transfer-Encoding {:?}, which is not supported",
                te.join(", ")
            ));
        }
    } else if let Some(cl) = headers.iter().find(|(n, _)| n == "content-length") {
        let mut length: Option<usize> = None;
        for v in cl.1.iter().flat_map(|v| v.split(',')) {
            let n: usize = v
                .trim()
                .parse()
                .map_err(|_| format!("bad response Content-Length {v:?}"))?;
            if length.is_some_and(|l| l != n) {
                return Err("the response has differing Content-Length values".into());
            }
            length = Some(n);
        }
        let n = length.unwrap_or(0);
        if n > MAX_RESPONSE_BODY {
            return Err(format!(
                "response body over {MAX_RESPONSE_BODY} bytes ({n})"
            ));
        }
        Body::Length(n)
    } else {
        keep_alive = false;
        Body::UntilEof
    };
    let resp = Response {
        status,
        reason: r.reason.unwrap_or("").to_string(),
        minor,
        headers,
        body: Vec::new(),
        keep_alive,
    };
    Ok(Some((used, Some((resp, body)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_chunked_and_eof_bodies() {
        let mut p = ResponseParser::default();
        let mut buf =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi".to_vec();
        let r = p.next(&mut buf, false, false).unwrap().unwrap();
        assert_eq!(
            (r.status, r.body.as_slice(), r.keep_alive),
            (200, &b"hi"[..], true)
        );
        let mut buf =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n".to_vec();
        let r = p.next(&mut buf, false, false).unwrap().unwrap();
        assert_eq!(r.body, b"ab");
        let mut buf = b"HTTP/1.0 200 OK\r\n\r\nrest".to_vec();
        assert!(p.next(&mut buf, false, false).unwrap().is_none());
        let r = p.next(&mut buf, false, true).unwrap().unwrap();
        assert_eq!((r.body.as_slice(), r.keep_alive), (&b"rest"[..], false));
        let mut buf = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".to_vec();
        let r = p.next(&mut buf, true, false).unwrap().unwrap();
        assert!(r.body.is_empty());
    }

    #[test]
    fn oversized_head_is_refused_even_in_one_read() {
        let mut head = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        head.resize(head.len() + MAX_RESPONSE_HEAD, b'a');
        head.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
        let mut p = ResponseParser::default();
        let e = p.next(&mut head, false, false).unwrap_err();
        assert!(e.contains("response head over"), "{e}");
    }

    #[test]
    fn truncated_is_an_error() {
        let mut p = ResponseParser::default();
        let mut buf = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab".to_vec();
        assert!(p.next(&mut buf, false, false).unwrap().is_none());
        assert!(p.next(&mut buf, false, true).is_err());
    }
}
