//! The chunked transfer coding (RFC 9112 §7.1), decoded incrementally and
//! strictly: sizes are 1–16 hex digits with no sign, space or "0x"; every line
//! ends in CRLF (a bare LF is refused, it is a request-smuggling vector); the
//! data of each chunk is followed by exactly CRLF; trailer fields are read and
//! dropped. Used for request bodies (server) and response bodies (client).

/// Longest chunk-size line (size plus extensions) or trailer line accepted.
const MAX_LINE: usize = 4096;
/// Most bytes of trailer fields accepted.
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum ChunkError {
    /// The decoded body would exceed the limit given to `feed`.
    TooLarge,
    /// Malformed framing; the text says what was wrong.
    Bad(String),
}

#[derive(Debug, Default)]
enum St {
    #[default]
    Size,
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    Trailers,
    Done,
}

#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    st: St,
    trailer_bytes: usize,
}

/// Finds a CRLF-terminated line at the start of `input`: Ok(Some(len of the
/// line without CRLF)), Ok(None) when incomplete, Err on a bare LF or a line
/// longer than MAX_LINE.
fn line(input: &[u8]) -> Result<Option<usize>, ChunkError> {
    match input.iter().position(|&b| b == b'\n') {
        Some(0) => Err(ChunkError::Bad("bare LF in chunked framing".into())),
        Some(i) if input[i - 1] != b'\r' => {
            Err(ChunkError::Bad("bare LF in chunked framing".into()))
        }
        Some(i) if i - 1 > MAX_LINE => Err(ChunkError::Bad("chunk line too long".into())),
        Some(i) => Ok(Some(i - 1)),
        None if input.len() > MAX_LINE + 1 => Err(ChunkError::Bad("chunk line too long".into())),
        None => Ok(None),
    }
}

fn parse_size(line: &[u8]) -> Result<u64, ChunkError> {
    let digits_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let digits = &line[..digits_end];
    let bad = |why: &str| {
        ChunkError::Bad(format!(
            "bad chunk size {:?}: {why}",
            String::from_utf8_lossy(&line[..line.len().min(40)])
        ))
    };
    if digits.is_empty() {
        return Err(bad("no hex digits"));
    }
    if digits.len() > 16 {
        return Err(bad("too many digits"));
    }
    let rest = &line[digits_end..];
    // Extensions: `*( BWS ";" BWS name [ BWS "=" BWS value ] )`; only their bytes are checked.
    if !rest.is_empty() {
        let ext = &rest[rest.iter().take_while(|b| b.is_ascii_whitespace()).count()..];
        if !ext.starts_with(b";") {
            return Err(bad("unexpected characters after the size"));
        }
        if ext.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(bad("control character in a chunk extension"));
        }
    }
    let text = std::str::from_utf8(digits).expect("hex digits are ASCII");
    u64::from_str_radix(text, 16).map_err(|_| bad("too large"))
}

impl ChunkedDecoder {
    pub fn is_done(&self) -> bool {
        matches!(self.st, St::Done)
    }

    /// Decodes from `input`, appending data to `out` (which may not grow past
    /// `max` bytes). Returns how many input bytes were consumed; `is_done`
    /// says whether the body is complete.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<usize, ChunkError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.st {
                St::Done => return Ok(pos),
                St::Size => {
                    let Some(n) = line(rest)? else { return Ok(pos) };
                    let size = parse_size(&rest[..n])?;
                    pos += n + 2;
                    if size == 0 {
                        self.st = St::Trailers;
                    } else {
                        if size > (max - out.len().min(max)) as u64 {
                            return Err(ChunkError::TooLarge);
                        }
                        self.st = St::Data(size);
                    }
                }
                St::Data(left) => {
                    if rest.is_empty() {
                        return Ok(pos);
                    }
                    let take = (left as usize).min(rest.len());
                    out.extend_from_slice(&rest[..take]);
                    pos += take;
                    self.st = if take as u64 == left {
                        St::DataEnd
                    } else {
                        St::Data(left - take as u64)
                    };
                }
                St::DataEnd => {
                    if rest.len() < 2 {
                        if rest.first().is_some_and(|&b| b != b'\r') {
                            return Err(ChunkError::Bad("chunk data not followed by CRLF".into()));
                        }
                        return Ok(pos);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(ChunkError::Bad("chunk data not followed by CRLF".into()));
                    }
                    pos += 2;
                    self.st = St::Size;
                }
                St::Trailers => {
                    let Some(n) = line(rest)? else { return Ok(pos) };
                    pos += n + 2;
                    if n == 0 {
                        self.st = St::Done;
                    } else {
                        let field = &rest[..n];
                        if field[0] == b' ' || field[0] == b'\t' {
                            return Err(ChunkError::Bad("obs-fold in trailer fields".into()));
                        }
                        if !field.contains(&b':') {
                            return Err(ChunkError::Bad("trailer line without a colon".into()));
                        }
                        self.trailer_bytes += n + 2;
                        if self.trailer_bytes > MAX_TRAILERS {
                            return Err(ChunkError::Bad("trailer fields too large".into()));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], step: usize) -> Result<Vec<u8>, ChunkError> {
        let mut d = ChunkedDecoder::default();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for piece in input.chunks(step) {
            buf.extend_from_slice(piece);
            let n = d.feed(&buf, &mut out, 1 << 20)?;
            buf.drain(..n);
        }
        assert!(d.is_done(), "not done");
        Ok(out)
    }

    #[test]
    fn decodes_in_any_split() {
        let body =
            b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n";
        for step in 1..body.len() {
            assert_eq!(
                decode_all(body, step).unwrap(),
                b"Wikipedia in\r\n\r\nchunks.",
                "{step}"
            );
        }
    }

    #[test]
    fn refuses_bad_framing() {
        for bad in [
            &b"4\nWiki\r\n0\r\n\r\n"[..],
            b"x\r\n",
            b"-1\r\n",
            b"0x4\r\nWiki\r\n",
            b" 4\r\nWiki\r\n",
            b"4\r\nWikiXX0\r\n\r\n",
            b"11111111111111111\r\n",
            b"4 4\r\n",
            b"0\r\n bad\r\n\r\n",
        ] {
            let mut d = ChunkedDecoder::default();
            let r = d.feed(bad, &mut Vec::new(), 1 << 20);
            assert!(matches!(r, Err(ChunkError::Bad(_))), "{bad:?}: {r:?}");
        }
    }

    #[test]
    fn limit_is_enforced() {
        let mut d = ChunkedDecoder::default();
        let r = d.feed(b"10\r\n", &mut Vec::new(), 15);
        assert_eq!(r, Err(ChunkError::TooLarge));
        let mut d = ChunkedDecoder::default();
        assert_eq!(
            d.feed(b"ffffffffffffffff\r\n", &mut Vec::new(), 15),
            Err(ChunkError::TooLarge)
        );
    }
}
