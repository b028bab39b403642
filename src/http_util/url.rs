//! Percent-encoding (RFC 3986 §2.1) for `http_encode_url` / `http_decode_url`.

/// Upper-case hex digits, as RFC 3986 §2.1 says producers should use.
const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// RFC 3986 §2.3 `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes every byte of the UTF-8 text except the RFC 3986
/// unreserved characters, with upper-case hex.
///
/// Equal to Python's `urllib.parse.quote(s, safe='')` (Python ≥ 3.7, where
/// `~` is unreserved). Space becomes `%20`, never `+`.
pub fn encode_url(s: &str) -> String {
    encode_url_bytes(s.as_bytes())
}

/// [`encode_url`] over raw bytes (each byte is encoded on its own, so input
/// that is not UTF-8 is fine). Equal to Python's `quote(b, safe='')`.
pub fn encode_url_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0x0f)] as char);
        }
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (either case of hex) and turns `+` into a space, as
/// in the query component of a form submission, into raw bytes.
///
/// Unlike Python's lenient `unquote_plus`, a `%` that is not followed by two
/// hex digits is an error (Python would keep it literally).
pub fn decode_url_bytes(s: &str) -> Result<Vec<u8>, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 3;
                    }
                    _ => {
                        return Err(format!(
                            "http_decode_url: bad percent escape at byte {i} \
                             ('%' must be followed by two hex digits)"
                        ))
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// [`decode_url_bytes`], then the result must be UTF-8 (the efun returns an
/// LPC string). Equal to Python's `urllib.parse.unquote_plus(s,
/// errors='strict')` on every input without a bad escape.
///
/// `%00` decodes to a NUL character; the result is otherwise unrestricted.
pub fn decode_url(s: &str) -> Result<String, String> {
    let bytes = decode_url_bytes(s)?;
    String::from_utf8(bytes).map_err(|_| "http_decode_url: result is not valid UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_empty_and_unreserved() {
        assert_eq!(encode_url(""), "");
        let unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
        assert_eq!(encode_url(unreserved), unreserved);
    }

    #[test]
    fn encode_every_byte() {
        for b in 0u8..=255 {
            let enc = encode_url_bytes(&[b]);
            if is_unreserved(b) {
                assert_eq!(enc, (b as char).to_string());
            } else {
                assert_eq!(enc, format!("%{b:02X}"));
            }
            // Round trip through the decoder.
            assert_eq!(decode_url_bytes(&enc).unwrap(), vec![b]);
        }
    }

    #[test]
    fn encode_reserved_and_unicode() {
        assert_eq!(
            encode_url("a b+c/d?e=f&g#h"),
            "a%20b%2Bc%2Fd%3Fe%3Df%26g%23h"
        );
        assert_eq!(encode_url("é"), "%C3%A9");
        assert_eq!(encode_url("😀"), "%F0%9F%98%80");
        assert_eq!(encode_url("%"), "%25");
    }

    #[test]
    fn decode_basic() {
        assert_eq!(decode_url("").unwrap(), "");
        assert_eq!(decode_url("a+b%20c").unwrap(), "a b c");
        assert_eq!(decode_url("%2B%2b").unwrap(), "++");
        assert_eq!(decode_url("%c3%A9").unwrap(), "é");
        assert_eq!(decode_url("é%41").unwrap(), "éA");
        assert_eq!(decode_url("%00").unwrap(), "\0");
    }

    #[test]
    fn decode_bad_escapes() {
        for bad in ["%", "%4", "a%", "%G0", "%0G", "%%41", "%+1", "% 1", "%é"] {
            let err = decode_url(bad).unwrap_err();
            assert!(err.contains("bad percent escape"), "{bad}: {err}");
        }
    }

    #[test]
    fn decode_invalid_utf8() {
        for bad in ["%FF", "%C3", "%C3A", "%80", "%ED%A0%80", "%C0%AF"] {
            assert_eq!(
                decode_url(bad).unwrap_err(),
                "http_decode_url: result is not valid UTF-8",
                "{bad}"
            );
            assert!(decode_url_bytes(bad).is_ok());
        }
    }

    #[test]
    fn round_trip_text() {
        let s = "grüße + ~tilde~ / 100% \r\n\0 日本";
        assert_eq!(decode_url(&encode_url(s)).unwrap(), s);
    }
}
