//! WebSocket helpers shared by `ws_frames`, `ws_server` and `ws_client`
//! (docs/FUZZING.md): a frame builder that turns fuzzer bytes into frames
//! that are mostly well-formed, a reference model of what RFC 6455 says the
//! receiving side must make of a frame stream (written from the RFC and
//! docs/modes' rules, not from src/websocket/session.rs), a parser for the
//! frames the other side answers with, and the checks on the mappings LPC
//! gets.

use unisock::Value;

/// The mask every built client frame uses (RFC 6455 §5.7's example key).
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The receiving limits of one run.
#[derive(Clone, Copy, Debug)]
pub struct Lim {
    pub max_message: usize,
    pub max_frame: usize,
    /// WS_AUTO_PING 1: pings are answered and neither pings nor pongs reported.
    pub auto: bool,
    /// permessage-deflate was agreed (compressed messages are accepted).
    pub deflate: bool,
}

/// A message or control frame the receiver reports, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
}

/// A frame the receiver must send back on its own.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Pong(Vec<u8>),
    /// The close frame's code (None: an empty close, answering one).
    Close(Option<u16>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum End {
    /// Every byte was taken; the connection stays open (maybe mid-frame).
    Open,
    /// The peer's close frame came (the close item is the last one).
    Closed,
    /// The receiver fails the connection with this code.
    Fail(u16),
    /// A compressed message came: the model stops there (it does not inflate).
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub items: Vec<Item>,
    pub replies: Vec<Reply>,
    pub end: End,
}

/// Whether a peer may send `code` in a close frame (RFC 6455 §7.4 and the
/// IANA registry as tungstenite's CloseCode reads it: 1000–1003,
/// 1007–1013, 3000–4999).
pub fn peer_code_ok(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1013 | 3000..=4999)
}

/// Codes a close mapping may carry: a peer's, 1005 (none), 1006 (no close
/// frame), and unisock's own.
pub fn event_code_ok(code: i64) -> bool {
    (0..=u16::MAX as i64).contains(&code)
        && (peer_code_ok(code as u16) || code == 1005 || code == 1006)
}

/// One parsed frame header.
#[derive(Clone, Debug)]
pub struct Header {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub len: u64,
    pub size: usize,
}

/// The header at the front of `b` (None: not all there).
pub fn header(b: &[u8]) -> Option<Header> {
    if b.len() < 2 {
        return None;
    }
    let mut at = 2;
    let mut len = (b[1] & 0x7f) as u64;
    if len == 126 {
        len = u16::from_be_bytes(b.get(2..4)?.try_into().unwrap()) as u64;
        at = 4;
    } else if len == 127 {
        len = u64::from_be_bytes(b.get(2..10)?.try_into().unwrap());
        at = 10;
    }
    let mask = if b[1] & 0x80 != 0 {
        let m: [u8; 4] = b.get(at..at + 4)?.try_into().unwrap();
        at += 4;
        Some(m)
    } else {
        None
    };
    Some(Header {
        fin: b[0] & 0x80 != 0,
        rsv: (b[0] >> 4) & 7,
        opcode: b[0] & 0x0f,
        mask,
        len,
        size: at,
    })
}

fn xor(buf: &mut [u8], mask: Option<[u8; 4]>, offset: usize) {
    if let Some(m) = mask {
        for (i, x) in buf.iter_mut().enumerate() {
            *x ^= m[(offset + i) % 4];
        }
    }
}

/// Writes one frame: `mask` Some for a client's.
pub fn put_frame(out: &mut Vec<u8>, first: u8, mask: Option<[u8; 4]>, payload: &[u8]) {
    out.push(first);
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(m | n as u8),
        n if n <= 0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if let Some(k) = mask {
        out.extend_from_slice(&k);
    }
    let at = out.len();
    out.extend_from_slice(payload);
    xor(&mut out[at..], mask, 0);
}

/// Frames from fuzzer bytes, mostly well-formed: per frame a flags byte
/// (bits 0–2: text, binary, continuation, ping, pong, close, the opcode in
/// bits 4–7, text again; bit 3: not final; bit 4: RSV1 (except for the raw
/// opcode); bits 5+6 together: the wrong masking) and a length byte: below
/// 0x80, that many payload bytes follow; else one filler byte follows,
/// repeated (l − 0x7f) × 40 times for l up to 0xBF, `lim.max_frame` + l −
/// 0xD0 times for 0xC0..=0xDF, and `lim.max_message` − `lim.max_frame` + l −
/// 0xF0 times above (after a frame of max_frame bytes, a continuation
/// of that length brings the message to within 16 bytes of the limit), so
/// both limits are hit exactly and by one byte.
/// `masked`: the frames go to a server (a client's frames are masked).
pub fn build_frames(mut b: &[u8], masked: bool, lim: &Lim) -> Vec<u8> {
    let mut out = Vec::new();
    while b.len() >= 2 {
        let (f, l) = (b[0], b[1]);
        b = &b[2..];
        let payload: Vec<u8> = if l < 0x80 {
            let n = (l as usize).min(b.len());
            let p = b[..n].to_vec();
            b = &b[n..];
            p
        } else {
            let Some((&fill, rest)) = b.split_first() else {
                break;
            };
            b = rest;
            let n = match l {
                0x80..=0xbf => (l as usize - 0x7f) * 40,
                0xc0..=0xdf => (lim.max_frame + l as usize).saturating_sub(0xd0),
                _ => (lim.max_message + l as usize).saturating_sub(lim.max_frame + 0xf0),
            };
            vec![fill; n]
        };
        let kind = f & 7;
        let opcode = match kind {
            0 | 7 => 1,
            1 => 2,
            2 => 0,
            3 => 9,
            4 => 10,
            5 => 8,
            _ => f >> 4,
        };
        let mut first = opcode;
        if f & 8 == 0 {
            first |= 0x80;
        }
        if kind != 6 && f & 0x10 != 0 {
            first |= 0x40;
        }
        let wrong = kind != 6 && f & 0x60 == 0x60;
        let mask = (masked != wrong).then_some(MASK);
        put_frame(&mut out, first, mask, &payload);
    }
    out
}

/// What a receiver must make of `input` (RFC 6455 §5–7): `masked` is
/// whether frames must be masked (we are the server).
pub fn model(input: &[u8], masked: bool, lim: &Lim) -> Model {
    let mut m = Model {
        items: Vec::new(),
        replies: Vec::new(),
        end: End::Open,
    };
    let mut pos = 0;
    // The data message being assembled: (text, its payload so far).
    let mut msg: Option<(bool, Vec<u8>)> = None;
    let fail = |m: &mut Model, code| {
        m.replies.push(Reply::Close(Some(code)));
        m.end = End::Fail(code);
    };
    loop {
        let Some(h) = header(&input[pos..]) else {
            return m;
        };
        let control = h.opcode & 8 != 0;
        if matches!(h.opcode, 3..=7 | 11..=15) {
            fail(&mut m, 1002);
            return m;
        }
        if h.mask.is_some() != masked || h.rsv & 3 != 0 {
            fail(&mut m, 1002);
            return m;
        }
        let rsv1 = h.rsv & 4 != 0;
        if control {
            if rsv1 || !h.fin || h.len > 125 {
                fail(&mut m, 1002);
                return m;
            }
        } else {
            let cont = h.opcode == 0;
            if cont != msg.is_some() || (rsv1 && (cont || !lim.deflate)) {
                fail(&mut m, 1002);
                return m;
            }
            if h.len > lim.max_frame as u64 {
                fail(&mut m, 1009);
                return m;
            }
            if rsv1 {
                m.end = End::Unknown;
                return m;
            }
            let so_far = msg.as_ref().map_or(0, |x| x.1.len()) as u64;
            if so_far + h.len > lim.max_message as u64 {
                fail(&mut m, 1009);
                return m;
            }
            if !cont {
                msg = Some((h.opcode == 1, Vec::new()));
            }
        }
        pos += h.size;
        let have = (input.len() - pos).min(h.len as usize);
        let mut payload = input[pos..pos + have].to_vec();
        xor(&mut payload, h.mask, 0);
        pos += have;
        let complete = have as u64 == h.len;
        if !control {
            let (text, data) = msg.as_mut().unwrap();
            data.extend_from_slice(&payload);
            if *text {
                if let Err(e) = std::str::from_utf8(data) {
                    if e.error_len().is_some() || (complete && h.fin) {
                        fail(&mut m, 1007);
                        return m;
                    }
                }
            }
            if !complete {
                return m;
            }
            if h.fin {
                let (text, data) = msg.take().unwrap();
                m.items.push(if text {
                    Item::Text(String::from_utf8(data).unwrap())
                } else {
                    Item::Binary(data)
                });
            }
            continue;
        }
        if !complete {
            return m;
        }
        match h.opcode {
            9 if lim.auto => m.replies.push(Reply::Pong(payload)),
            9 => m.items.push(Item::Ping(payload)),
            10 if lim.auto => {}
            10 => m.items.push(Item::Pong(payload)),
            _ => {
                // Close.
                let (code, reason) = match payload.len() {
                    0 => (1005, String::new()),
                    1 => {
                        fail(&mut m, 1002);
                        return m;
                    }
                    _ => {
                        let code = u16::from_be_bytes([payload[0], payload[1]]);
                        if !peer_code_ok(code) {
                            fail(&mut m, 1002);
                            return m;
                        }
                        match String::from_utf8(payload[2..].to_vec()) {
                            Ok(r) => (code, r),
                            Err(_) => {
                                fail(&mut m, 1007);
                                return m;
                            }
                        }
                    }
                };
                m.items.push(Item::Close(code, reason));
                m.replies.push(Reply::Close((code != 1005).then_some(code)));
                m.end = End::Closed;
                return m;
            }
        }
    }
}

/// A frame the other side sent, unmasked.
#[derive(Clone, Debug)]
pub struct Frame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Parses complete frames off the front of `b` and checks each is
/// well-formed: masked exactly when `masked`, no RSV2/3, RSV1 only on
/// a data frame when `deflate`, a known opcode, control frames final and
/// at most 125 bytes, and nothing after a close frame. Returns the frames
/// and how many bytes they took.
pub fn parse_sent(b: &[u8], masked: bool, deflate: bool) -> (Vec<Frame>, usize) {
    let mut frames: Vec<Frame> = Vec::new();
    let mut pos = 0;
    while let Some(h) = header(&b[pos..]) {
        if ((b.len() - pos - h.size) as u64) < h.len {
            break;
        }
        assert!(
            frames.last().is_none_or(|f| f.opcode != 8),
            "a frame after the close frame: {h:?}"
        );
        assert_eq!(h.mask.is_some(), masked, "masking of a sent frame: {h:?}");
        assert_eq!(h.rsv & 3, 0, "RSV2/3 on a sent frame: {h:?}");
        assert!(
            matches!(h.opcode, 0..=2 | 8..=10),
            "a sent frame's opcode: {h:?}"
        );
        if h.opcode & 8 != 0 {
            assert!(
                h.fin && h.rsv == 0 && h.len <= 125,
                "a sent control frame: {h:?}"
            );
        } else {
            assert!(deflate || h.rsv == 0, "RSV1 without compression: {h:?}");
        }
        pos += h.size;
        let mut payload = b[pos..pos + h.len as usize].to_vec();
        xor(&mut payload, h.mask, 0);
        pos += h.len as usize;
        if h.opcode == 8 {
            assert!(payload.len() != 1, "a close frame of 1 byte");
            if payload.len() >= 2 {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                assert!(peer_code_ok(code), "sent close code {code}");
                assert!(
                    std::str::from_utf8(&payload[2..]).is_ok(),
                    "sent close reason is not UTF-8"
                );
            }
        }
        frames.push(Frame {
            fin: h.fin,
            rsv: h.rsv,
            opcode: h.opcode,
            payload,
        });
    }
    (frames, pos)
}

/// The frames `replies` stand for, compared with what was sent: all of them
/// (`all`), or those sent so far (a reset connection); after a compressed
/// message (`End::Unknown`) the model stops, and so does the comparison.
pub fn check_replies(sent: &[Frame], m: &Model, all: bool) {
    let replies = &m.replies;
    if m.end != End::Unknown {
        if all {
            assert_eq!(
                sent.len(),
                replies.len(),
                "frames sent {sent:?} vs the replies due {replies:?}"
            );
        }
        assert!(
            sent.len() <= replies.len(),
            "more frames sent than due: {sent:?} vs {replies:?}"
        );
    }
    for (f, r) in sent.iter().zip(replies) {
        match r {
            Reply::Pong(p) => assert!(f.opcode == 10 && &f.payload == p, "pong {f:?} vs {r:?}"),
            Reply::Close(code) => {
                assert_eq!(f.opcode, 8, "close frame {f:?} vs {r:?}");
                let got = (f.payload.len() >= 2)
                    .then(|| u16::from_be_bytes([f.payload[0], f.payload[1]]));
                assert_eq!(got, *code, "the close frame's code");
            }
        }
    }
}

/// One READ mapping of a WebSocket connection, checked for its keys and
/// their types.
#[derive(Clone, Debug, PartialEq)]
pub enum Got {
    Open { subprotocol: String, path: String },
    Error { error_code: i64 },
    Item(Item),
}

fn keys(v: &Value) -> Vec<String> {
    let Value::Mapping(m) = v else {
        panic!("a READ that is not a mapping: {v:?}")
    };
    let mut k: Vec<String> = m
        .iter()
        .map(|(k, _)| k.as_str().expect("a key that is not a string").to_string())
        .collect();
    k.sort();
    k
}

fn ty<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.get(k).unwrap_or_else(|| panic!("no {k:?} in {v:?}"))
}

/// Classifies a READ mapping, checking its documented shape.
pub fn got(v: &Value, lim: &Lim) -> Got {
    let k = keys(v);
    if v.get("type").is_none() {
        assert_eq!(k, ["error", "error_code"], "keys of {v:?}");
        assert!(matches!(ty(v, "error"), Value::Str(s) if !s.is_empty()));
        let Value::Int(c) = ty(v, "error_code") else {
            panic!("error_code not an int: {v:?}")
        };
        return Got::Error { error_code: *c };
    }
    let t = ty(v, "type").as_str().expect("type is a string");
    let data = || ty(v, "data");
    match t {
        "open" => {
            assert_eq!(
                k,
                ["headers", "path", "subprotocol", "type"],
                "keys of {v:?}"
            );
            assert!(matches!(ty(v, "headers"), Value::Mapping(_)), "{v:?}");
            let (Value::Str(s), Value::Str(p)) = (ty(v, "subprotocol"), ty(v, "path")) else {
                panic!("open: subprotocol/path not strings: {v:?}")
            };
            Got::Open {
                subprotocol: s.clone(),
                path: p.clone(),
            }
        }
        "text" | "binary" | "ping" | "pong" => {
            assert_eq!(k, ["data", "type"], "keys of {v:?}");
            let item = match (t, data()) {
                ("text", Value::Str(s)) => Item::Text(s.clone()),
                ("binary", Value::Buffer(b)) => Item::Binary(b.clone()),
                ("ping", Value::Buffer(b)) => Item::Ping(b.clone()),
                ("pong", Value::Buffer(b)) => Item::Pong(b.clone()),
                _ => panic!("data of the wrong type: {v:?}"),
            };
            match &item {
                Item::Text(s) => assert!(s.len() <= lim.max_message, "text over the limit"),
                Item::Binary(b) => assert!(b.len() <= lim.max_message, "binary over the limit"),
                Item::Ping(b) | Item::Pong(b) => {
                    assert!(!lim.auto, "{t} reported with WS_AUTO_PING 1");
                    assert!(b.len() <= 125, "control payload over 125 bytes")
                }
                _ => {}
            }
            Got::Item(item)
        }
        "close" => {
            assert_eq!(k, ["code", "reason", "type"], "keys of {v:?}");
            let (Value::Int(c), Value::Str(r)) = (ty(v, "code"), ty(v, "reason")) else {
                panic!("close: code/reason of the wrong type: {v:?}")
            };
            assert!(event_code_ok(*c), "close code {c} in {v:?}");
            Got::Item(Item::Close(*c as u16, r.clone()))
        }
        _ => panic!("unknown type in {v:?}"),
    }
}

/// Compares what LPC got after "open" (`items`, the last maybe a close
/// unisock started) with the model: exact when the model is sure.
pub fn check_items(items: &[Item], m: &Model, all_taken: bool) {
    match m.end {
        End::Unknown => {
            assert!(
                items.len() >= m.items.len() && items[..m.items.len()] == m.items[..],
                "before the compressed message: got {items:?}, model {:?}",
                m.items
            );
        }
        End::Closed => assert_eq!(items, &m.items[..], "items up to the peer's close"),
        End::Fail(code) => {
            let n = m.items.len();
            assert_eq!(
                items.len(),
                n + 1,
                "items then the close {code}: got {items:?}, model {:?}",
                m.items
            );
            assert_eq!(&items[..n], &m.items[..]);
            assert!(
                matches!(&items[n], Item::Close(c, _) if *c == code),
                "unisock's close: got {:?}, want code {code}",
                items[n]
            );
        }
        End::Open if all_taken => assert_eq!(items, &m.items[..], "items of a stream left open"),
        End::Open => assert!(
            items.len() <= m.items.len() && items == &m.items[..items.len()],
            "items {items:?} not a prefix of {:?}",
            m.items
        ),
    }
}
