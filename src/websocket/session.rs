//! The WebSocket protocol after the handshake, sans-IO: bytes from the peer
//! in, messages for LPC and bytes for the peer out (RFC 6455 §5–7, with
//! permessage-deflate from `deflate`).
//!
//! Frame headers are read and written by tungstenite's frame codec
//! (`FrameHeader::parse` / `format`); what tungstenite's `WebSocketContext`
//! does above that is done here, because that context refuses the RSV1 bit
//! that permessage-deflate needs and keeps whole frames in its own buffer:
//! payloads are unmasked straight into the message being assembled as they
//! arrive, so a 16 MiB frame costs its message once, never twice, and a
//! frame or message over its limit is refused from its header, before its
//! payload is read.
//!
//! Checked on the way in: the mask (clients mask, servers do not: 1002),
//! reserved bits (RSV1 only on the first frame of a compressed message),
//! opcodes and their order (1002), control frames (≤ 125 bytes, never
//! fragmented), WS_FRAME_SIZE_LIMIT and WS_MAX_MESSAGE_SIZE (after
//! inflating: 1009), UTF-8 of text messages and close reasons, checked as
//! each piece arrives so a bad byte fails at once (1007), close codes (1002).

use std::io::Cursor;

use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::deflate::{Deflate, InflateError};

/// Which end of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// The receiving limits and ping behaviour (WsConfig's part the session uses).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_message: usize,
    pub max_frame: usize,
    /// WS_AUTO_PING: pings are answered here (and not reported).
    pub auto_pong: bool,
}

/// What the peer sent, for LPC.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    Text(String),
    Binary(Vec<u8>),
    /// Only when pings are not answered here (WS_AUTO_PING 0).
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The peer's close frame (code 1005 when it carried none).
    Close {
        code: u16,
        reason: String,
    },
}

/// A violation: the connection is closed with `code` (1002, 1007, 1009).
#[derive(Debug, PartialEq, Eq)]
pub struct Fail {
    pub code: u16,
    pub reason: String,
}

fn fail(code: u16, reason: impl Into<String>) -> Fail {
    Fail {
        code,
        reason: reason.into(),
    }
}

/// The frame whose payload is being read.
#[derive(Debug)]
struct Current {
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Payload bytes still to come.
    left: u64,
    /// Payload bytes read so far (the mask's offset).
    done: u64,
}

/// The data message being assembled.
#[derive(Debug, Default)]
struct Assembling {
    text: bool,
    compressed: bool,
    /// Of a text message: bytes of `data` known to be valid UTF-8.
    valid: usize,
}

pub struct Session {
    role: Role,
    pub limits: Limits,
    deflate: Option<Box<Deflate>>,
    current: Option<Current>,
    message: Option<Assembling>,
    /// The message's payload (inflated when compressed).
    data: Vec<u8>,
    /// A control frame's payload (≤ 125 bytes).
    control: Vec<u8>,
    /// Compressed bytes of the current frame waiting to be inflated.
    packed: Vec<u8>,
    close_sent: bool,
    close_received: bool,
}

/// The largest frame header.
const HEADER_MAX: usize = 14;
/// Compressed input is inflated in pieces of at most this much.
const INFLATE_PIECE: usize = 16 * 1024;

impl Session {
    pub fn new(role: Role, limits: Limits, deflate: Option<Deflate>) -> Session {
        Session {
            role,
            limits,
            deflate: deflate.map(Box::new),
            current: None,
            message: None,
            data: Vec::new(),
            control: Vec::new(),
            packed: Vec::new(),
            close_sent: false,
            close_received: false,
        }
    }

    pub fn compressing(&self) -> bool {
        self.deflate.is_some()
    }

    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    pub fn close_received(&self) -> bool {
        self.close_received
    }

    /// Reads frames from `input[*pos..]`, advancing `pos` past what was
    /// used; messages go to `events`, automatic replies (pongs, the answer
    /// to a close) to `out`. Stops after the peer's close frame. Err: the
    /// connection must be failed with that code (nothing was sent for it).
    pub fn feed(
        &mut self,
        input: &[u8],
        pos: &mut usize,
        out: &mut Vec<u8>,
        events: &mut Vec<Incoming>,
    ) -> Result<(), Fail> {
        while *pos < input.len() && !self.close_received {
            if self.current.is_none() && !self.start_frame(input, pos)? {
                return Ok(());
            }
            let cur = self.current.as_mut().expect("a frame");
            let take = (input.len() - *pos).min(cur.left.min(usize::MAX as u64) as usize);
            let piece = &input[*pos..*pos + take];
            *pos += take;
            let offset = cur.done;
            cur.done += take as u64;
            cur.left -= take as u64;
            let finished = cur.left == 0;
            let (opcode, mask, fin) = (cur.opcode, cur.mask, cur.fin);
            match opcode {
                OpCode::Control(_) => {
                    let at = self.control.len();
                    self.control.extend_from_slice(piece);
                    unmask(&mut self.control[at..], mask, offset);
                }
                OpCode::Data(_) => self.payload(piece, mask, offset, finished && fin)?,
            }
            if finished {
                self.current = None;
                match opcode {
                    OpCode::Control(c) => self.control_frame(c, out, events)?,
                    OpCode::Data(_) if fin => self.end_message(events)?,
                    OpCode::Data(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Parses the next frame header; false when it is not all there yet.
    fn start_frame(&mut self, input: &[u8], pos: &mut usize) -> Result<bool, Fail> {
        let rest = &input[*pos..];
        let mut cursor = Cursor::new(&rest[..rest.len().min(HEADER_MAX)]);
        let (h, len) = match FrameHeader::parse(&mut cursor) {
            Ok(Some(x)) => x,
            Ok(None) => return Ok(false),
            Err(e) => return Err(fail(1002, format!("protocol error: {e}"))),
        };
        *pos += cursor.position() as usize;
        self.check_header(&h, len)?;
        if let OpCode::Data(d) = h.opcode {
            if d != Data::Continue {
                self.message = Some(Assembling {
                    text: d == Data::Text,
                    compressed: h.rsv1,
                    valid: 0,
                });
                self.data.clear();
            }
        } else {
            self.control.clear();
        }
        self.current = Some(Current {
            opcode: h.opcode,
            fin: h.is_final,
            mask: h.mask,
            left: len,
            done: 0,
        });
        Ok(true)
    }

    fn check_header(&self, h: &FrameHeader, len: u64) -> Result<(), Fail> {
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => {
                return Err(fail(1002, "protocol error: unmasked client frame"))
            }
            (Role::Client, true) => return Err(fail(1002, "protocol error: masked server frame")),
            _ => {}
        }
        if h.rsv2 || h.rsv3 {
            return Err(fail(1002, "protocol error: reserved bits set"));
        }
        match h.opcode {
            OpCode::Control(c) => {
                if h.rsv1 {
                    return Err(fail(1002, "protocol error: RSV1 on a control frame"));
                }
                if !h.is_final {
                    return Err(fail(1002, "protocol error: fragmented control frame"));
                }
                if len > 125 {
                    return Err(fail(1002, "protocol error: control frame over 125 bytes"));
                }
                if let Control::Reserved(op) = c {
                    return Err(fail(1002, format!("protocol error: reserved opcode {op}")));
                }
            }
            OpCode::Data(d) => {
                if let Data::Reserved(op) = d {
                    return Err(fail(1002, format!("protocol error: reserved opcode {op}")));
                }
                let continuing = d == Data::Continue;
                if continuing != self.message.is_some() {
                    return Err(fail(
                        1002,
                        if continuing {
                            "protocol error: continuation frame without a message"
                        } else {
                            "protocol error: new message before the last one ended"
                        },
                    ));
                }
                if h.rsv1 && (continuing || self.deflate.is_none()) {
                    return Err(fail(1002, "protocol error: RSV1 set without compression"));
                }
                if len > self.limits.max_frame as u64 {
                    return Err(fail(
                        1009,
                        format!(
                            "frame of {len} bytes is over WS_FRAME_SIZE_LIMIT ({})",
                            self.limits.max_frame
                        ),
                    ));
                }
                let compressed =
                    h.rsv1 || (continuing && self.message.as_ref().is_some_and(|m| m.compressed));
                if !compressed && self.data.len() as u64 + len > self.limits.max_message as u64 {
                    return Err(self.too_big(self.data.len() as u64 + len));
                }
            }
        }
        Ok(())
    }

    fn too_big(&self, size: u64) -> Fail {
        fail(
            1009,
            format!(
                "message of {size}{} bytes is over WS_MAX_MESSAGE_SIZE ({})",
                if size > self.limits.max_message as u64 + 1 {
                    ""
                } else {
                    " or more"
                },
                self.limits.max_message
            ),
        )
    }

    /// A piece of a data frame's payload.
    fn payload(
        &mut self,
        piece: &[u8],
        mask: Option<[u8; 4]>,
        offset: u64,
        last: bool,
    ) -> Result<(), Fail> {
        let m = self.message.as_ref().expect("a message");
        if m.compressed {
            let at = self.packed.len();
            self.packed.extend_from_slice(piece);
            unmask(&mut self.packed[at..], mask, offset);
            if self.packed.len() < INFLATE_PIECE && !last {
                return Ok(());
            }
            let deflate = self.deflate.as_mut().expect("compression agreed");
            let max = self.limits.max_message;
            let r = deflate.decompress(&self.packed, last, &mut self.data, max);
            self.packed.clear();
            match r {
                Ok(()) => {}
                Err(InflateError::TooBig) => {
                    return Err(fail(
                        1009,
                        format!("message is over WS_MAX_MESSAGE_SIZE ({max}) once inflated",),
                    ))
                }
                Err(InflateError::Corrupt(why)) => {
                    return Err(fail(1007, format!("bad compressed data: {why}")))
                }
            }
        } else {
            let at = self.data.len();
            self.data.extend_from_slice(piece);
            unmask(&mut self.data[at..], mask, offset);
        }
        if last {
            // The whole message is checked once more when it is made a
            // String (`end_message`): checking here too would read it twice.
            return Ok(());
        }
        self.check_utf8(false)
    }

    /// Checks the text message's bytes that arrived since the last check;
    /// an incomplete character at the end waits for more unless `last`.
    fn check_utf8(&mut self, last: bool) -> Result<(), Fail> {
        let Some(m) = self.message.as_mut() else {
            return Ok(());
        };
        if !m.text {
            return Ok(());
        }
        match std::str::from_utf8(&self.data[m.valid..]) {
            Ok(_) => m.valid = self.data.len(),
            Err(e) => {
                if e.error_len().is_some() || last {
                    return Err(fail(1007, "invalid UTF-8 in a text message"));
                }
                m.valid += e.valid_up_to();
            }
        }
        Ok(())
    }

    fn end_message(&mut self, events: &mut Vec<Incoming>) -> Result<(), Fail> {
        let m = self.message.take().expect("a message");
        let data = std::mem::take(&mut self.data);
        events.push(if m.text {
            // Earlier pieces were checked as they came (a bad byte fails at
            // once); this checks the message whole.
            Incoming::Text(
                String::from_utf8(data)
                    .map_err(|_| fail(1007, "invalid UTF-8 in a text message"))?,
            )
        } else {
            Incoming::Binary(data)
        });
        Ok(())
    }

    fn control_frame(
        &mut self,
        c: Control,
        out: &mut Vec<u8>,
        events: &mut Vec<Incoming>,
    ) -> Result<(), Fail> {
        let payload = std::mem::take(&mut self.control);
        match c {
            Control::Ping => {
                if self.limits.auto_pong {
                    if !self.close_sent {
                        self.frame(OpCode::Control(Control::Pong), false, &payload, out);
                    }
                } else {
                    events.push(Incoming::Ping(payload));
                }
            }
            // Always reported: the endpoint's pong deadline needs it (it
            // drops it before LPC when WS_AUTO_PING is 1).
            Control::Pong => events.push(Incoming::Pong(payload)),
            Control::Close => {
                let (code, reason) = parse_close(&payload)?;
                self.close_received = true;
                if !self.close_sent {
                    // Answer with the peer's code (RFC 6455 §5.5.1).
                    let echo = if code == 1005 { None } else { Some(code) };
                    self.close(echo, "", out);
                }
                events.push(Incoming::Close { code, reason });
            }
            Control::Reserved(_) => {}
        }
        Ok(())
    }

    /// Writes one frame (masked when we are the client).
    fn frame(&self, opcode: OpCode, rsv1: bool, payload: &[u8], out: &mut Vec<u8>) {
        frame(self.role, opcode, true, rsv1, payload, out);
    }

    /// A whole message to send: text or binary, compressed when agreed.
    pub fn message(&mut self, text: bool, payload: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let opcode = OpCode::Data(if text { Data::Text } else { Data::Binary });
        match self.deflate.as_mut() {
            Some(d) => {
                let mut packed = Vec::with_capacity(payload.len() / 2 + 64);
                d.compress(payload, &mut packed)?;
                frame(self.role, opcode, true, true, &packed, out);
            }
            None => self.frame(opcode, false, payload, out),
        }
        Ok(())
    }

    pub fn ping(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        self.frame(OpCode::Control(Control::Ping), false, payload, out);
    }

    pub fn pong(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        self.frame(OpCode::Control(Control::Pong), false, payload, out);
    }

    /// Sends our close frame (once): `code` None sends an empty close.
    pub fn close(&mut self, code: Option<u16>, reason: &str, out: &mut Vec<u8>) {
        if self.close_sent {
            return;
        }
        self.close_sent = true;
        let mut payload = Vec::with_capacity(2 + reason.len());
        if let Some(code) = code {
            payload.extend_from_slice(&code.to_be_bytes());
            // A close reason is at most 123 bytes: cut at a character boundary.
            let mut end = reason.len().min(123);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            payload.extend_from_slice(&reason.as_bytes()[..end]);
        }
        self.frame(OpCode::Control(Control::Close), false, &payload, out);
    }

    /// Releases buffers an idle connection does not need.
    pub fn trim(&mut self) {
        if self.message.is_none() && self.data.capacity() > 0 {
            self.data = Vec::new();
        }
        if self.packed.capacity() > INFLATE_PIECE * 2 {
            self.packed = Vec::new();
        }
        // With no context takeover, the zlib contexts hold nothing between
        // messages: an idle connection does not keep them.
        if let Some(d) = self.deflate.as_mut() {
            if self.message.is_none() {
                d.release_idle();
            }
        }
    }
}

/// The code and reason of a close frame's payload (1005: no code).
fn parse_close(p: &[u8]) -> Result<(u16, String), Fail> {
    match p.len() {
        0 => return Ok((1005, String::new())),
        1 => return Err(fail(1002, "protocol error: close frame of 1 byte")),
        _ => {}
    }
    let code = u16::from_be_bytes([p[0], p[1]]);
    if !close_code_allowed(code) {
        return Err(fail(1002, format!("protocol error: close code {code}")));
    }
    let reason = std::str::from_utf8(&p[2..])
        .map_err(|_| fail(1007, "invalid UTF-8 in a close reason"))?
        .to_string();
    Ok((code, reason))
}

/// Whether a peer may send `code` in a close frame (RFC 6455 §7.4).
pub fn close_code_allowed(code: u16) -> bool {
    CloseCode::from(code).is_allowed() && !(1016..3000).contains(&code)
}

/// Writes one frame with `payload` into `out` (masked for a client).
pub fn frame(role: Role, opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8], out: &mut Vec<u8>) {
    let mask = (role == Role::Client).then(new_mask);
    let h = FrameHeader {
        is_final: fin,
        rsv1,
        rsv2: false,
        rsv3: false,
        opcode,
        mask,
    };
    out.reserve(HEADER_MAX + payload.len());
    h.format(payload.len() as u64, out)
        .expect("writing to a Vec cannot fail");
    let at = out.len();
    out.extend_from_slice(payload);
    unmask(&mut out[at..], mask, 0);
}

fn new_mask() -> [u8; 4] {
    rand::random()
}

/// XORs `buf` (payload bytes from `offset` on) with the frame's mask,
/// eight bytes at a time (the compiler vectorises the loop).
fn unmask(buf: &mut [u8], mask: Option<[u8; 4]>, offset: u64) {
    let Some(mask) = mask else { return };
    let start = (offset % 4) as usize;
    let m: [u8; 4] = std::array::from_fn(|i| mask[(start + i) & 3]);
    let wide = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c.try_into().expect("8 bytes")) ^ wide;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    // The rest starts at a multiple of 8 bytes: the mask's phase is m[0].
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= m[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_message: 1000,
            max_frame: 500,
            auto_pong: true,
        }
    }

    fn client_frame(op: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame(Role::Client, op, fin, false, payload, &mut out);
        out
    }

    fn run(s: &mut Session, input: &[u8]) -> (Result<(), Fail>, Vec<Incoming>, Vec<u8>) {
        let mut events = Vec::new();
        let mut out = Vec::new();
        let mut pos = 0;
        let r = s.feed(input, &mut pos, &mut out, &mut events);
        (r, events, out)
    }

    #[test]
    fn text_split_anywhere_is_one_message() {
        let wire = [
            client_frame(OpCode::Data(Data::Text), false, "héllo ".as_bytes()),
            client_frame(OpCode::Control(Control::Ping), true, b"p"),
            client_frame(OpCode::Data(Data::Continue), true, "wörld".as_bytes()),
        ]
        .concat();
        for cut in 0..wire.len() {
            let mut s = Session::new(Role::Server, limits(), None);
            let mut events = Vec::new();
            let mut out = Vec::new();
            let mut buf = wire[..cut].to_vec();
            let mut pos = 0;
            s.feed(&buf, &mut pos, &mut out, &mut events).unwrap();
            buf.drain(..pos);
            buf.extend_from_slice(&wire[cut..]);
            let mut pos = 0;
            s.feed(&buf, &mut pos, &mut out, &mut events).unwrap();
            assert_eq!(pos, buf.len());
            assert_eq!(
                events,
                vec![Incoming::Text("héllo wörld".into())],
                "cut {cut}"
            );
            assert_eq!(out, [0x8a, 1, b'p'], "the pong, unmasked from the server");
        }
    }

    #[test]
    fn limits_and_violations() {
        let mut s = Session::new(Role::Server, limits(), None);
        let (r, ..) = run(
            &mut s,
            &client_frame(OpCode::Data(Data::Binary), true, &[0; 501]),
        );
        assert_eq!(r.unwrap_err().code, 1009);
        let mut s = Session::new(Role::Server, limits(), None);
        let ok = client_frame(OpCode::Data(Data::Binary), true, &[0; 500]);
        assert!(run(&mut s, &ok).0.is_ok());
        let mut s = Session::new(Role::Server, limits(), None);
        let two = [
            client_frame(OpCode::Data(Data::Binary), false, &[0; 500]),
            client_frame(OpCode::Data(Data::Continue), true, &[0; 500]),
        ]
        .concat();
        let (r, ev, _) = run(&mut s, &two);
        assert!(r.is_ok() && ev.len() == 1, "exactly the limit is accepted");
        let mut s = Session::new(Role::Server, limits(), None);
        let three = [
            client_frame(OpCode::Data(Data::Binary), false, &[0; 500]),
            client_frame(OpCode::Data(Data::Continue), false, &[0; 500]),
            client_frame(OpCode::Data(Data::Continue), true, &[0; 1]),
        ]
        .concat();
        assert_eq!(run(&mut s, &three).0.unwrap_err().code, 1009);
        let mut s = Session::new(Role::Server, limits(), None);
        let bad = client_frame(OpCode::Data(Data::Text), true, &[0xc3, 0x28]);
        assert_eq!(run(&mut s, &bad).0.unwrap_err().code, 1007);
        let mut s = Session::new(Role::Server, limits(), None);
        let mut unmasked = Vec::new();
        frame(
            Role::Server,
            OpCode::Data(Data::Text),
            true,
            false,
            b"x",
            &mut unmasked,
        );
        assert_eq!(run(&mut s, &unmasked).0.unwrap_err().code, 1002);
    }

    #[test]
    fn unmasking_in_pieces_is_unmasking_whole() {
        let mask = [1, 2, 3, 4];
        let data: Vec<u8> = (0..100u8).collect();
        let mut whole = data.clone();
        unmask(&mut whole, Some(mask), 0);
        for (i, b) in whole.iter().enumerate() {
            assert_eq!(*b, data[i] ^ mask[i % 4]);
        }
        for cut in 0..data.len() {
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(cut);
            unmask(a, Some(mask), 0);
            unmask(b, Some(mask), cut as u64);
            assert_eq!(pieces, whole, "cut {cut}");
        }
    }

    #[test]
    fn an_idle_session_without_context_takeover_keeps_no_zlib_context() {
        use crate::websocket::deflate::{Params, Side};
        let params = Params {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..Params::default()
        };
        let mut peer = Deflate::new(params, Side::Client);
        let mut packed = Vec::new();
        peer.compress(b"hello hello hello", &mut packed).unwrap();
        let mut wire = Vec::new();
        frame(
            Role::Client,
            OpCode::Data(Data::Text),
            true,
            true,
            &packed,
            &mut wire,
        );
        let mut s = Session::new(
            Role::Server,
            limits(),
            Some(Deflate::new(params, Side::Server)),
        );
        let (r, ev, _) = run(&mut s, &wire);
        r.unwrap();
        assert_eq!(ev, vec![Incoming::Text("hello hello hello".into())]);
        let mut out = Vec::new();
        s.message(true, b"reply", &mut out).unwrap();
        let d = s.deflate.as_ref().unwrap();
        assert_eq!(d.holds_contexts(), (true, true), "both were used");
        s.trim();
        assert_eq!(s.deflate.as_ref().unwrap().holds_contexts(), (false, false));
    }

    #[test]
    fn close_is_answered_with_the_peers_code() {
        let mut s = Session::new(Role::Server, limits(), None);
        let mut p = 4000u16.to_be_bytes().to_vec();
        p.extend_from_slice(b"bye");
        let (r, ev, out) = run(
            &mut s,
            &client_frame(OpCode::Control(Control::Close), true, &p),
        );
        r.unwrap();
        assert_eq!(
            ev,
            vec![Incoming::Close {
                code: 4000,
                reason: "bye".into()
            }]
        );
        assert_eq!(out, [0x88, 2, 0x0f, 0xa0]);
        assert!(s.close_received() && s.close_sent());
    }
}
