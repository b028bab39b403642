//! The negotiation of permessage-deflate (RFC 7692 §7.1) and the header
//! grammar it needs (RFC 6455 §9.1); re-exported by `deflate`.

use super::{Params, ServerPrefs, NAME};

// ---------------------------------------------------------------------------
// The header grammar (RFC 6455 §9.1, RFC 7230 §3.2.6)

/// One element of an extension list: its name and parameters in order
/// (a parameter without a value has `None`; a quoted value is unquoted).
#[derive(Debug, PartialEq, Eq)]
struct Element {
    name: String,
    params: Vec<(String, Option<String>)>,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Splits one header value at the commas that are not inside a quoted
/// string; empty elements (`a,,b`, a trailing comma) are dropped, as the
/// `#rule` allows.
fn split_list(value: &str) -> Vec<&str> {
    let bytes = value.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => quoted = !quoted,
            b'\\' if quoted => i += 1,
            b',' if !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&value[start..]);
    parts.retain(|p| !p.trim_matches([' ', '\t']).is_empty());
    parts
}

/// A small cursor over one list element.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn ows(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t') {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.i < self.s.len() && is_tchar(self.s[self.i]) {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn quoted(&mut self) -> Option<String> {
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        let mut v = Vec::new();
        loop {
            match *self.s.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(String::from_utf8_lossy(&v).into_owned());
                }
                b'\\' => {
                    v.push(*self.s.get(self.i + 1)?);
                    self.i += 2;
                }
                b => {
                    v.push(b);
                    self.i += 1;
                }
            }
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
}

/// Parses one element: `token *( OWS ";" OWS token [ OWS "=" OWS (token |
/// quoted-string) ] )`. None: it does not follow the grammar (a quoted value
/// must unquote to a token, RFC 6455 §9.1).
fn parse_element(text: &str) -> Option<Element> {
    let mut c = Cursor {
        s: text.as_bytes(),
        i: 0,
    };
    c.ows();
    let name = c.token()?;
    let mut params = Vec::new();
    loop {
        c.ows();
        if c.i == c.s.len() {
            return Some(Element { name, params });
        }
        if !c.eat(b';') {
            return None;
        }
        c.ows();
        let key = c.token()?;
        c.ows();
        let value = if c.eat(b'=') {
            c.ows();
            let v = match c.token() {
                Some(t) => t,
                None => c.quoted()?,
            };
            if v.is_empty() || !v.bytes().all(is_tchar) {
                return None;
            }
            Some(v)
        } else {
            None
        };
        params.push((key, value));
    }
}

/// Every element of every value, in order; None for an element that does
/// not parse.
fn parse_lists(values: &[&str]) -> Vec<Option<Element>> {
    values
        .iter()
        .flat_map(|v| split_list(v))
        .map(parse_element)
        .collect()
}

/// A window-bits value: "8" to "15", no leading zero.
fn window_bits(v: &str) -> Option<u8> {
    match v.parse::<u8>() {
        Ok(n @ 8..=15) if !v.starts_with('0') => Some(n),
        _ => None,
    }
}

/// The permessage-deflate parameters of one offer or answer, each seen at
/// most once. `client_max_window_bits` is `Some(None)` when given without a
/// value.
#[derive(Default)]
struct Seen {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: Option<Option<u8>>,
}

/// Reads the parameters of a permessage-deflate element: a duplicate, an
/// unknown name or a bad value is an error (the reason).
fn read_params(el: &Element) -> Result<Seen, String> {
    let mut seen = Seen::default();
    let mut names: Vec<String> = Vec::new();
    for (key, value) in &el.params {
        let key = key.to_ascii_lowercase();
        if names.contains(&key) {
            return Err(format!("{key} given twice"));
        }
        names.push(key.clone());
        match (key.as_str(), value) {
            ("server_no_context_takeover", None) => seen.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => seen.client_no_context_takeover = true,
            ("server_max_window_bits", Some(v)) => {
                seen.server_max_window_bits =
                    Some(window_bits(v).ok_or_else(|| format!("bad {key} {v:?}"))?)
            }
            ("client_max_window_bits", None) => seen.client_max_window_bits = Some(None),
            ("client_max_window_bits", Some(v)) => {
                seen.client_max_window_bits = Some(Some(
                    window_bits(v).ok_or_else(|| format!("bad {key} {v:?}"))?,
                ))
            }
            ("server_no_context_takeover" | "client_no_context_takeover", Some(v)) => {
                return Err(format!("{key} takes no value (got {v:?})"))
            }
            ("server_max_window_bits", None) => return Err(format!("{key} needs a value")),
            _ => return Err(format!("unknown parameter {key}")),
        }
    }
    Ok(seen)
}

// ---------------------------------------------------------------------------
// Negotiation (RFC 7692 §7.1)

/// Server: the first acceptable permessage-deflate offer among the
/// client's Sec-WebSocket-Extensions header values; the params and the
/// value of the response header. None: no acceptable offer (the connection
/// opens without compression).
pub fn accept_offers(values: &[&str]) -> Option<(Params, String)> {
    accept_offers_with(values, &ServerPrefs::default())
}

/// `accept_offers` with the server's own limits (see `ServerPrefs`).
///
/// An offer is skipped (the next one is tried) when a parameter is unknown,
/// repeated or has a bad value, or when it asks `server_max_window_bits=8`.
/// The answer names only what was agreed: `server_no_context_takeover` when
/// asked (or preferred), `client_no_context_takeover` when the client offered
/// it (it said it will not use context takeover; agreeing lets us drop the
/// inflater's history), `server_max_window_bits=N` when asked (or lower by
/// preference). `client_max_window_bits` is never answered: the client may
/// then use up to 15 bits, which our inflater takes.
pub fn accept_offers_with(values: &[&str], prefs: &ServerPrefs) -> Option<(Params, String)> {
    let own_bits = prefs.max_window_bits.clamp(9, 15);
    for el in parse_lists(values).into_iter().flatten() {
        if !el.name.eq_ignore_ascii_case(NAME) {
            continue;
        }
        let Ok(seen) = read_params(&el) else {
            continue;
        };
        let server_bits = match seen.server_max_window_bits {
            Some(8) => continue,
            Some(n) => n.min(own_bits),
            None => own_bits,
        };
        let params = Params {
            server_no_context_takeover: seen.server_no_context_takeover
                || prefs.no_context_takeover,
            client_no_context_takeover: seen.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: 15,
        };
        let mut answer = String::from(NAME);
        if params.server_no_context_takeover {
            answer.push_str("; server_no_context_takeover");
        }
        if params.client_no_context_takeover {
            answer.push_str("; client_no_context_takeover");
        }
        if seen.server_max_window_bits.is_some() || server_bits < 15 {
            answer.push_str(&format!("; server_max_window_bits={server_bits}"));
        }
        return Some((params, answer));
    }
    None
}

/// Client: the Sec-WebSocket-Extensions value offered.
pub fn client_offer() -> &'static str {
    "permessage-deflate; client_max_window_bits"
}

/// Client: checks the server's Sec-WebSocket-Extensions answer to our offer.
/// The answer must be exactly one permessage-deflate element with valid,
/// unrepeated parameters; `client_max_window_bits` needs a value (and is
/// allowed because `client_offer` names it). The error is a reason for the
/// failed handshake.
pub fn client_accept(value: &str) -> Result<Params, String> {
    answer_params(value, true)
}

/// `client_accept` for an offer that did (`offered_client_bits`) or did not
/// name client_max_window_bits.
pub(super) fn answer_params(value: &str, offered_client_bits: bool) -> Result<Params, String> {
    let elements = parse_lists(&[value]);
    let el = match elements.as_slice() {
        [Some(el)] => el,
        [None] => return Err(format!("malformed Sec-WebSocket-Extensions {value:?}")),
        [] => return Err("empty Sec-WebSocket-Extensions".into()),
        _ => return Err(format!("more than one extension in {value:?}")),
    };
    if !el.name.eq_ignore_ascii_case(NAME) {
        return Err(format!("extension {:?} was not offered", el.name));
    }
    let seen = read_params(el).map_err(|e| format!("permessage-deflate answer: {e}"))?;
    let client_bits = match seen.client_max_window_bits {
        None => 15,
        Some(_) if !offered_client_bits => {
            return Err("permessage-deflate answer: client_max_window_bits was not offered".into())
        }
        Some(None) => {
            return Err("permessage-deflate answer: client_max_window_bits needs a value".into())
        }
        Some(Some(n)) => n,
    };
    Ok(Params {
        server_no_context_takeover: seen.server_no_context_takeover,
        client_no_context_takeover: seen.client_no_context_takeover,
        server_max_window_bits: seen.server_max_window_bits.unwrap_or(15),
        client_max_window_bits: client_bits,
    })
}
