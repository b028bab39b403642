//! Header blocks (RFC 9110 §5, RFC 9112 §5) for `http_parse_headers` /
//! `http_format_headers`.

use std::collections::HashMap;

use crate::value::Value;

/// Parsed header block: lower-cased names in order of first appearance, each
/// with all its values in the order they appeared.
pub type Headers = Vec<(String, Vec<String>)>;

/// RFC 9110 §5.6.2 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// RFC 9110 §5.6.2 `token = 1*tchar`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// RFC 9110 §5.6.3 `OWS = *( SP / HTAB )`.
fn trim_ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// A byte that may not appear in a field value: every CTL but HTAB
/// (`field-vchar = VCHAR / obs-text`, with SP / HTAB only between them).
/// Non-ASCII bytes are obs-text and allowed.
fn is_bad_value_byte(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// Describes a bad value byte for an error message.
fn describe_byte(b: u8) -> String {
    match b {
        b'\r' => "CR".to_string(),
        b'\n' => "LF".to_string(),
        0 => "NUL".to_string(),
        _ => format!("control character 0x{b:02X}"),
    }
}

/// Parses a block of header lines (no request or status line first).
///
/// Lines end in CRLF or LF; parsing stops at the first empty line or at the
/// end of the text (the last line needs no line end). Names are lower-cased
/// and must be RFC 9110 tokens; values are trimmed of OWS and may not contain
/// control characters other than HTAB. Errors: obs-fold (a line starting with
/// SP or HTAB), a line without a colon, a bad name character (including
/// whitespace before the colon, RFC 9112 §5.1), a bare CR, a control character
/// in a value.
pub fn parse_headers(text: &str) -> Result<Headers, String> {
    let mut out: Headers = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut rest = text;
    let mut line_no = 0usize;
    while !rest.is_empty() {
        line_no += 1;
        let line = match rest.find('\n') {
            Some(nl) => {
                let line = &rest[..nl];
                rest = &rest[nl + 1..];
                line.strip_suffix('\r').unwrap_or(line)
            }
            None => std::mem::take(&mut rest),
        };
        if line.is_empty() {
            break;
        }
        if line.contains('\r') {
            return Err(format!(
                "http_parse_headers: line {line_no}: bare CR (not followed by LF)"
            ));
        }
        if line.starts_with([' ', '\t']) {
            return Err(format!(
                "http_parse_headers: line {line_no}: line starts with whitespace \
                 (obs-fold line folding is not allowed)"
            ));
        }
        let Some(colon) = line.find(':') else {
            return Err(format!("http_parse_headers: line {line_no}: missing ':'"));
        };
        let name = &line[..colon];
        if name.is_empty() {
            return Err(format!(
                "http_parse_headers: line {line_no}: empty header name"
            ));
        }
        if let Some(b) = name.bytes().find(|&b| !is_tchar(b)) {
            return Err(format!(
                "http_parse_headers: line {line_no}: invalid character {} in header name",
                describe_name_byte(b)
            ));
        }
        let value = trim_ows(&line[colon + 1..]);
        if let Some(b) = value.bytes().find(|&b| is_bad_value_byte(b)) {
            return Err(format!(
                "http_parse_headers: line {line_no}: {} in the value of header '{name}'",
                describe_byte(b)
            ));
        }
        let lname = name.to_ascii_lowercase();
        match index.get(&lname) {
            Some(&i) => out[i].1.push(value.to_string()),
            None => {
                index.insert(lname.clone(), out.len());
                out.push((lname, vec![value.to_string()]));
            }
        }
    }
    Ok(out)
}

fn describe_name_byte(b: u8) -> String {
    match b {
        b' ' => "space".to_string(),
        b'\t' => "tab".to_string(),
        0x21..=0x7e => format!("'{}'", b as char),
        _ => format!("byte 0x{b:02X}"),
    }
}

/// Formats `Name: value\r\n` for each pair, in order (no final empty line).
///
/// Names must be RFC 9110 tokens and keep their case. Values are trimmed of
/// OWS (a field value has no leading or trailing whitespace, RFC 9110 §5.5);
/// CR, LF, NUL and every other control character but HTAB are rejected, so no
/// header can be injected.
pub fn format_headers<N: AsRef<str>, V: AsRef<str>>(pairs: &[(N, V)]) -> Result<String, String> {
    let mut out = Vec::new();
    for (name, value) in pairs {
        write_field(&mut out, name.as_ref(), value.as_ref())
            .map_err(|e| format!("http_format_headers: {e}"))?;
    }
    Ok(String::from_utf8(out).expect("names are ASCII and values were UTF-8"))
}

/// Appends one `Name: value\r\n` line to `out` after the checks of
/// `format_headers` (the error text has no function prefix).
pub fn write_field(out: &mut Vec<u8>, name: &str, value: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty header name".to_string());
    }
    if let Some(b) = name.bytes().find(|&b| !is_tchar(b)) {
        return Err(format!(
            "header name {name:?} is not a token (invalid character {})",
            if is_bad_value_byte(b) {
                describe_byte(b)
            } else {
                describe_name_byte(b)
            }
        ));
    }
    let value = trim_ows(value);
    if let Some(b) = value.bytes().find(|&b| is_bad_value_byte(b)) {
        return Err(format!(
            "the value of header '{name}' contains {}",
            describe_byte(b)
        ));
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Calls `f(name, value)` for each header of an LPC mapping of name →
/// string, int or array of strings (one call per array element), without
/// copying; the value is the int's text for ints.
pub fn for_each_in_value(
    v: &Value,
    mut f: impl FnMut(&str, &str) -> Result<(), String>,
) -> Result<(), String> {
    let Value::Mapping(m) = v else {
        return Err(format!("headers must be a mapping, got {}", v.describe()));
    };
    for (k, v) in m {
        let name = k
            .as_str()
            .ok_or_else(|| format!("header names must be strings, got {}", k.describe()))?;
        match v {
            Value::Str(s) => f(name, s)?,
            Value::Int(i) => f(name, &i.to_string())?,
            Value::Array(a) => {
                for item in a {
                    let s = item
                        .as_str()
                        .ok_or_else(|| format!("header {name}: values must be strings"))?;
                    f(name, s)?;
                }
            }
            other => {
                return Err(format!(
                    "header {name}: {} is not a header value",
                    other.describe()
                ))
            }
        }
    }
    Ok(())
}

/// A parsed header block as the LPC mapping callbacks.md describes:
/// lower-case names, one string each, or an array of strings when repeated.
pub fn to_value(headers: Headers) -> Value {
    Value::Mapping(
        headers
            .into_iter()
            .map(|(name, mut values)| {
                let v = if values.len() == 1 {
                    Value::Str(values.remove(0))
                } else {
                    Value::Array(values.into_iter().map(Value::Str).collect())
                };
                (Value::Str(name), v)
            })
            .collect(),
    )
}

/// Header pairs from an LPC mapping of name → string, int or array of
/// strings (one pair per array element). Names and values are checked when
/// formatted, not here.
pub fn pairs_from_value(v: &Value) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for_each_in_value(v, |n, v| {
        pairs.push((n.to_string(), v.to_string()));
        Ok(())
    })?;
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &[&str])]) -> Headers {
        pairs
            .iter()
            .map(|(n, vs)| (n.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect()
    }

    #[test]
    fn parse_empty() {
        assert_eq!(parse_headers("").unwrap(), h(&[]));
        assert_eq!(parse_headers("\r\n").unwrap(), h(&[]));
        assert_eq!(parse_headers("\n").unwrap(), h(&[]));
        assert_eq!(parse_headers("\r\nA: b\r\n").unwrap(), h(&[]));
    }

    #[test]
    fn parse_basic() {
        let text = "Host: example.com\r\nContent-Type:  text/html \t\r\nSet-Cookie: a=1\r\n\
                    X-Empty:\r\nset-cookie: b=2\r\nSET-COOKIE:c=3\r\n\r\nBody: not a header\r\n";
        assert_eq!(
            parse_headers(text).unwrap(),
            h(&[
                ("host", &["example.com"]),
                ("content-type", &["text/html"]),
                ("set-cookie", &["a=1", "b=2", "c=3"]),
                ("x-empty", &[""]),
            ])
        );
    }

    #[test]
    fn parse_lf_and_unterminated() {
        assert_eq!(
            parse_headers("A: 1\nB: 2\r\nC: 3").unwrap(),
            h(&[("a", &["1"]), ("b", &["2"]), ("c", &["3"])])
        );
    }

    #[test]
    fn parse_value_inner_whitespace_and_obs_text() {
        assert_eq!(
            parse_headers("X: a \t b:c\r\nY: grüße\r\n").unwrap(),
            h(&[("x", &["a \t b:c"]), ("y", &["grüße"])])
        );
    }

    #[test]
    fn parse_rejects_obs_fold() {
        let err = parse_headers("A: 1\r\n  continued\r\n").unwrap_err();
        assert!(err.contains("obs-fold"), "{err}");
        let err = parse_headers("A: 1\r\n\tcontinued\r\n").unwrap_err();
        assert!(err.contains("obs-fold"), "{err}");
        assert!(parse_headers(" A: 1\r\n").is_err());
    }

    #[test]
    fn parse_rejects_bad_lines() {
        for bad in [
            "A 1\r\n",
            ": 1\r\n",
            "A : 1\r\n",
            "A\t: 1\r\n",
            "A(b): 1\r\n",
            "A,b: 1\r\n",
            "A\"b: 1\r\n",
            "Grüße: 1\r\n",
            "A: 1\rB: 2\r\n",
            "A: 1\r",
            "A: x\0y\r\n",
            "A: x\x01y\r\n",
            "A: x\x7fy\r\n",
            "A: 1\r\nno colon\r\n",
        ] {
            assert!(parse_headers(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn parse_all_tchars() {
        let name = "!#$%&'*+-.^_`|~09azAZ";
        assert_eq!(
            parse_headers(&format!("{name}: v")).unwrap(),
            h(&[(&name.to_ascii_lowercase(), &["v"])])
        );
    }

    #[test]
    fn format_basic() {
        assert_eq!(format_headers::<&str, &str>(&[]).unwrap(), "");
        assert_eq!(
            format_headers(&[
                ("Content-Type", " text/html "),
                ("Set-Cookie", "a=1"),
                ("X", "")
            ])
            .unwrap(),
            "Content-Type: text/html\r\nSet-Cookie: a=1\r\nX: \r\n"
        );
        let owned = vec![("A".to_string(), "b".to_string())];
        assert_eq!(format_headers(&owned).unwrap(), "A: b\r\n");
    }

    #[test]
    fn format_rejects_injection() {
        for (n, v) in [
            ("A", "1\r\nB: 2"),
            ("A", "1\nB: 2"),
            ("A", "1\rB"),
            ("A", "x\0"),
            ("A", "\x01"),
            ("A\r\nB", "1"),
            ("A:", "1"),
            ("A B", "1"),
            ("", "1"),
            ("A\0", "1"),
            ("Ä", "1"),
        ] {
            assert!(
                format_headers(&[(n, v)]).is_err(),
                "{n:?}: {v:?} should fail"
            );
        }
    }

    #[test]
    fn format_then_parse_round_trip() {
        let pairs = [("Host", "x"), ("Accept", "a, b"), ("accept", " c ")];
        let text = format_headers(&pairs).unwrap();
        assert_eq!(
            parse_headers(&text).unwrap(),
            h(&[("host", &["x"]), ("accept", &["a, b", "c"])])
        );
    }
}
