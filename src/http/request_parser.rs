//! Server side: bytes from a connection → complete requests, one at a time,
//! with httparse for the head and strict framing for the body.
//!
//! Limits (options.md "Server limits"): request line ≤ 8 KiB (414), header
//! block ≤ 16 KiB and ≤ 100 fields (431), body ≤ 8 MiB (413). Smuggling
//! defences, each a 400 and a closed connection: Content-Length together with
//! Transfer-Encoding, Content-Lengths that differ, a malformed Content-Length,
//! a Transfer-Encoding other than "chunked" (501), Transfer-Encoding on
//! HTTP/1.0, bad chunk framing, obs-fold, and a bare LF anywhere in the head.

use super::chunked::{ChunkError, ChunkedDecoder};
use crate::http_util::headers::Headers;

pub const MAX_REQUEST_LINE: usize = 8 * 1024;
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 100;
pub const MAX_REQUEST_BODY: usize = 8 * 1024 * 1024;

/// A request the server must refuse: the status to answer with, and why.
/// The connection is closed after the answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Reject {
    pub status: u16,
    pub why: String,
}

fn reject(status: u16, why: impl Into<String>) -> Reject {
    Reject {
        status,
        why: why.into(),
    }
}

/// One complete request.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub target: String,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub headers: Headers,
    pub body: Vec<u8>,
    /// Whether the connection may stay open after the response.
    pub keep_alive: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
    }
}

/// What the parser found.
#[derive(Debug)]
pub enum Parsed {
    /// The client sent `Expect: 100-continue` and its head is acceptable.
    Continue,
    Request(Request),
}

enum Body {
    Length(usize),
    Chunked(ChunkedDecoder),
}

struct Pending {
    req: Request,
    body: Body,
}

#[derive(Default)]
pub struct RequestParser {
    pending: Option<Pending>,
}

impl RequestParser {
    /// True while a request has been started but not completed (head or body).
    pub fn in_progress(&self, buf: &[u8]) -> bool {
        self.pending.is_some() || buf.iter().any(|&b| b != b'\r' && b != b'\n')
    }

    /// Takes the next complete request (or a 100-continue signal) from the
    /// front of `buf`, removing the bytes it used. Ok(None): need more bytes.
    pub fn next(&mut self, buf: &mut Vec<u8>) -> Result<Option<Parsed>, Reject> {
        if self.pending.is_none() {
            let Some((used, req, body, expect)) = parse_head(buf)? else {
                return Ok(None);
            };
            buf.drain(..used);
            self.pending = Some(Pending { req, body });
            if expect {
                return Ok(Some(Parsed::Continue));
            }
        }
        let p = self.pending.as_mut().expect("pending request");
        let complete = match &mut p.body {
            Body::Length(n) => {
                if buf.len() >= *n {
                    p.req.body = buf.drain(..*n).collect();
                    true
                } else {
                    false
                }
            }
            Body::Chunked(dec) => {
                let used =
                    dec.feed(buf, &mut p.req.body, MAX_REQUEST_BODY)
                        .map_err(|e| match e {
                            ChunkError::TooLarge => {
                                reject(413, format!("request body over {MAX_REQUEST_BODY} bytes"))
                            }
                            ChunkError::Bad(why) => reject(400, why),
                        })?;
                buf.drain(..used);
                dec.is_done()
            }
        };
        if complete {
            let p = self.pending.take().expect("pending request");
            Ok(Some(Parsed::Request(p.req)))
        } else {
            Ok(None)
        }
    }
}

/// Parses a request head at the start of `buf`: Ok(None) if incomplete.
#[allow(clippy::type_complexity)]
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Request, Body, bool)>, Reject> {
    // Skip the empty lines a client may send before a request (RFC 9112 §2.2).
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    // The first problem in byte order decides the answer, however the bytes
    // arrive: httparse sees the head only up to the first limit or bare LF
    // that the bytes so far reach, and running out there is that problem.
    let mut limit = buf.len();
    let mut at_limit: Option<Reject> = None;
    let line_window = start + MAX_REQUEST_LINE + 2; // the line and its CRLF
    if buf.len() >= line_window && !buf[start..line_window].contains(&b'\n') {
        limit = start + MAX_REQUEST_LINE + 1;
        at_limit = Some(reject(414, "request line over 8 KiB"));
    } else if buf.len() > start + MAX_REQUEST_HEAD {
        limit = start + MAX_REQUEST_HEAD;
        at_limit = Some(reject(431, "header block over 16 KiB"));
    }
    if let Some(p) =
        (start..limit).find(|&i| buf[i] == b'\n' && (i == start || buf[i - 1] != b'\r'))
    {
        limit = p;
        at_limit = Some(reject(
            400,
            "bare LF in the request head (lines must end in CRLF)",
        ));
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let used = match req.parse(&buf[..limit]) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return at_limit.map_or(Ok(None), Err),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(reject(
                431,
                format!("more than {MAX_HEADERS} header fields"),
            ))
        }
        Err(httparse::Error::Version) => {
            return Err(reject(505, "only HTTP/1.0 and HTTP/1.1 are served"))
        }
        Err(e) => return Err(reject(400, format!("malformed request: {e}"))),
    };
    let minor = req.version.unwrap_or(1);
    let method = req.method.unwrap_or("GET").to_string();
    let target = req.path.unwrap_or("/").to_string();

    let mut headers: Headers = Vec::new();
    for f in req.headers.iter() {
        let name = f.name.to_ascii_lowercase();
        let value = String::from_utf8_lossy(f.value)
            .trim_matches(|c| c == ' ' || c == '\t')
            .to_string();
        match headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, vs)) => vs.push(value),
            None => headers.push((name, vec![value])),
        }
    }
    let all = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.iter().map(String::as_str))
            .collect()
    };

    let hosts = all("host");
    if hosts.len() > 1 {
        return Err(reject(400, "more than one Host header"));
    }
    if minor == 1 && hosts.is_empty() {
        return Err(reject(400, "HTTP/1.1 request without a Host header"));
    }

    let te = all("transfer-encoding");
    let cl = all("content-length");
    let body = if !te.is_empty() {
        if !cl.is_empty() {
            return Err(reject(
                400,
                "both Content-Length and Transfer-Encoding (request smuggling?)",
            ));
        }
        if minor == 0 {
            return Err(reject(400, "Transfer-Encoding in an HTTP/1.0 request"));
        }
        let codings: Vec<String> = te
            .iter()
            .flat_map(|v| v.split(','))
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        if codings != ["chunked"] {
            return Err(reject(
                501,
                format!("Transfer-Encoding {:?} is not supported", te.join(", ")),
            ));
        }
        Body::Chunked(ChunkedDecoder::default())
    } else if !cl.is_empty() {
        let mut length: Option<u64> = None;
        for v in cl.iter().flat_map(|v| v.split(',')) {
            let v = v.trim();
            if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(reject(400, format!("bad Content-Length {v:?}")));
            }
            let n: u64 = v
                .parse()
                .map_err(|_| reject(400, format!("bad Content-Length {v:?}")))?;
            if length.is_some_and(|l| l != n) {
                return Err(reject(
                    400,
                    "Content-Length values differ (request smuggling?)",
                ));
            }
            length = Some(n);
        }
        let n = length.unwrap_or(0);
        if n > MAX_REQUEST_BODY as u64 {
            return Err(reject(
                413,
                format!("request body over {MAX_REQUEST_BODY} bytes"),
            ));
        }
        Body::Length(n as usize)
    } else {
        Body::Length(0)
    };

    let mut expect_continue = false;
    if let Some(e) = all("expect").first() {
        if e.eq_ignore_ascii_case("100-continue") {
            let has_body = match &body {
                Body::Length(n) => *n > 0,
                Body::Chunked(_) => true,
            };
            expect_continue = minor == 1 && has_body;
        } else {
            return Err(reject(417, format!("Expect {e:?} is not supported")));
        }
    }

    let tokens: Vec<String> = all("connection")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let keep_alive = if tokens.iter().any(|t| t == "close") {
        false
    } else {
        minor == 1 || tokens.iter().any(|t| t == "keep-alive")
    };

    let req = Request {
        method,
        target,
        minor,
        headers,
        body: Vec::new(),
        keep_alive,
    };
    Ok(Some((used, req, body, expect_continue)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<Vec<Parsed>, Reject> {
        let mut p = RequestParser::default();
        let mut buf = input.to_vec();
        let mut out = Vec::new();
        while let Some(x) = p.next(&mut buf)? {
            out.push(x);
        }
        Ok(out)
    }

    fn status(input: &[u8]) -> u16 {
        parse(input).expect_err("should be refused").status
    }

    #[test]
    fn pipelined_requests_and_bodies() {
        let got = parse(
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
              PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        )
        .unwrap();
        let reqs: Vec<_> = got
            .into_iter()
            .map(|p| match p {
                Parsed::Request(r) => (r.method, r.target, r.body),
                Parsed::Continue => panic!("no expect"),
            })
            .collect();
        assert_eq!(
            reqs,
            vec![
                ("GET".into(), "/a".into(), vec![]),
                ("POST".into(), "/b".into(), b"abc".to_vec()),
                ("PUT".into(), "/c".into(), b"hi".to_vec()),
            ]
        );
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |s: &[u8]| match parse(s).unwrap().pop().unwrap() {
            Parsed::Request(r) => r.keep_alive,
            _ => panic!(),
        };
        assert!(ka(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!ka(
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ));
        assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    }

    #[test]
    fn expect_continue_comes_before_the_body() {
        let mut p = RequestParser::default();
        let mut buf =
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
                .to_vec();
        assert!(matches!(p.next(&mut buf), Ok(Some(Parsed::Continue))));
        assert!(matches!(p.next(&mut buf), Ok(None)));
        buf.extend_from_slice(b"ok");
        assert!(matches!(p.next(&mut buf), Ok(Some(Parsed::Request(_)))));
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: dance\r\n\r\n"),
            417
        );
    }

    #[test]
    fn the_answer_does_not_depend_on_how_bytes_arrive() {
        // Fuzzing finding F5: a limit passed before a syntax error gave 414/431
        // when a read ended between the two and 400 when both came together.
        let cases: Vec<Vec<u8>> = vec![
            [
                b"GET /".as_slice(),
                &[b'a'; 8640],
                b"\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
            ]
            .concat(),
            [
                b"GET / HTTP/1.1\r\nHost: x\r\nX: ".as_slice(),
                &[b'v'; 16448],
                b"\x01\r\n\r\n",
            ]
            .concat(),
            [[b'g'; 16320].as_slice(), b"\n"].concat(),
            [b"GET / HTTP/1.1\r\nA: 1\nB: ".as_slice(), &[b'v'; 17000]].concat(),
        ];
        for input in cases {
            let whole = status(&input);
            for cut in [1, 100, 2663, 8446, 8500, 16460, input.len() - 1] {
                let cut = cut.min(input.len());
                let mut p = RequestParser::default();
                let mut buf = input[..cut].to_vec();
                let first = p.next(&mut buf);
                let got = match first {
                    Err(r) => r.status,
                    Ok(_) => {
                        buf.extend_from_slice(&input[cut..]);
                        p.next(&mut buf).expect_err("refused").status
                    }
                };
                assert_eq!(got, whole, "cut at {cut}");
            }
        }
    }

    #[test]
    fn smuggling_and_limits_are_refused() {
        assert_eq!(status(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            501
        );
        assert_eq!(
            status(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n"),
            400
        );
        assert_eq!(status(b"GET / HTTP/1.1\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999999\r\n\r\n"),
            413
        );
        let long_line = [b"GET /".as_slice(), &[b'a'; 9000]].concat();
        assert_eq!(status(&long_line), 414);
        let mut big_head = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..400 {
            big_head.extend_from_slice(format!("X-{i}: {}\r\n", "v".repeat(40)).as_bytes());
        }
        assert_eq!(status(&big_head), 431);
        let mut many = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..101 {
            many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(status(&many), 431);
    }
}
