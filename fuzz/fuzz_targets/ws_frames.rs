//! `ws_frames`: the WebSocket protocol session (src/websocket/session.rs)
//! directly, both roles, no socket: a frame stream fed whole and fed in the
//! fuzzer's pieces (the session is resumable) must give the same messages,
//! the same automatic replies and the same failure, and all of them must be
//! what the reference model of fuzz/src/ws.rs (RFC 6455 §5–7) says.
//!
//! Input: byte 0: bit 0 the role (0 server: the frames are a client's, masked;
//! 1 client), bit 1 WS_AUTO_PING, bit 2 raw frames (else built by
//! `ws::build_frames`), bits 3–5 the number of cuts; bytes 1–2 and 3–4
//! (little-endian) WS_MAX_MESSAGE_SIZE and WS_FRAME_SIZE_LIMIT as 128 + n %
//! 3969; 2 bytes per cut; then the frames. Byte 0 bit 6: permessage-deflate
//! agreed (RSV1 messages are inflated; the model stops at the first one and
//! only whole-versus-pieces is compared after it), bit 7: with
//! no_context_takeover both ways.
#![no_main]

use libfuzzer_sys::fuzz_target;

use unisock::websocket::deflate::{Deflate, Params, Side};
use unisock::websocket::session::{Fail, Incoming, Limits, Role, Session};
use unisock_fuzz::ws::{self, End, Item, Lim};
use unisock_fuzz::{cut_positions, pieces};

/// Feeds `parts` one after the other as a connection's reads would.
fn run(
    role: Role,
    limits: Limits,
    deflate: Option<Params>,
    parts: &[&[u8]],
) -> (Vec<Incoming>, Vec<u8>, Option<Fail>, bool) {
    let side = match role {
        Role::Server => Side::Server,
        Role::Client => Side::Client,
    };
    let mut s = Session::new(role, limits, deflate.map(|p| Deflate::new(p, side)));
    let mut buf = Vec::new();
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut fail = None;
    for p in parts {
        buf.extend_from_slice(p);
        let mut pos = 0;
        let r = s.feed(&buf, &mut pos, &mut out, &mut events);
        assert!(pos <= buf.len());
        buf.drain(..pos);
        if let Err(f) = r {
            fail = Some(f);
            break;
        }
        if s.close_received() {
            break;
        }
    }
    assert!(
        !s.close_received() || s.close_sent(),
        "a close received and not answered"
    );
    (events, out, fail, s.close_received())
}

fn item(i: &Incoming) -> Item {
    match i {
        Incoming::Text(s) => Item::Text(s.clone()),
        Incoming::Binary(b) => Item::Binary(b.clone()),
        Incoming::Ping(b) => Item::Ping(b.clone()),
        Incoming::Pong(b) => Item::Pong(b.clone()),
        Incoming::Close { code, reason } => Item::Close(*code, reason.clone()),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let flags = data[0];
    let lim16 = |i: usize| 128 + u16::from_le_bytes([data[i], data[i + 1]]) as usize % 3969;
    let role = if flags & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let limits = Limits {
        max_message: lim16(1),
        max_frame: lim16(3),
        auto_pong: flags & 2 != 0,
    };
    let ncuts = ((flags >> 3) & 7) as usize;
    let rest = &data[5..];
    let (spec, body) = if rest.len() >= 2 * ncuts {
        rest.split_at(2 * ncuts)
    } else {
        (&[][..], rest)
    };
    let masked = role == Role::Server;
    let input = if flags & 4 != 0 {
        body.to_vec()
    } else {
        ws::build_frames(
            body,
            masked,
            &Lim {
                max_message: limits.max_message,
                max_frame: limits.max_frame,
                auto: limits.auto_pong,
                deflate: false,
            },
        )
    };
    let cuts = cut_positions(spec, input.len());

    let deflate = (flags & 0x40 != 0).then(|| Params {
        server_no_context_takeover: flags & 0x80 != 0,
        client_no_context_takeover: flags & 0x80 != 0,
        ..Params::default()
    });
    let (ev1, out1, fail1, closed1) = run(role, limits, deflate, &[&input]);
    let (ev2, out2, fail2, closed2) = run(role, limits, deflate, &pieces(&input, &cuts));
    assert_eq!(ev1, ev2, "events depend on the cuts {cuts:?}");
    assert_eq!(fail1, fail2, "the failure depends on the cuts {cuts:?}");
    assert_eq!(closed1, closed2);
    // Replies: a client masks with fresh keys, so compare them unmasked.
    let (f1, n1) = ws::parse_sent(&out1, !masked, false);
    let (f2, n2) = ws::parse_sent(&out2, !masked, false);
    assert_eq!(n1, out1.len(), "a partial frame among the replies");
    assert_eq!(n2, out2.len());
    let flat = |f: &[ws::Frame]| -> Vec<(u8, Vec<u8>)> {
        f.iter().map(|f| (f.opcode, f.payload.clone())).collect()
    };
    assert_eq!(flat(&f1), flat(&f2), "replies depend on the cuts");
    if role == Role::Server {
        assert_eq!(out1, out2, "a server's replies depend on the cuts");
    }

    // The reference model.
    let lim = Lim {
        max_message: limits.max_message,
        max_frame: limits.max_frame,
        auto: limits.auto_pong,
        deflate: deflate.is_some(),
    };
    let m = ws::model(&input, masked, &lim);
    // The session reports every pong (the endpoint's pong deadline needs
    // them); the endpoint drops them before LPC with WS_AUTO_PING 1, as the
    // model does.
    let items: Vec<Item> = ev1
        .iter()
        .map(item)
        .filter(|i| !(limits.auto_pong && matches!(i, Item::Pong(_))))
        .collect();
    match m.end {
        End::Fail(code) => {
            let f = fail1.as_ref().unwrap_or_else(|| {
                panic!("the model fails with {code}, the session does not: {items:?}")
            });
            assert_eq!(f.code, code, "failure code ({})", f.reason);
            assert!(!f.reason.is_empty());
            assert_eq!(items, m.items, "messages before the failure");
            // The close frame for a failure is the socket's to send.
            let mut before = m.clone();
            before.replies.pop();
            ws::check_replies(&f1, &before, true);
        }
        End::Closed | End::Open => {
            assert!(
                fail1.is_none(),
                "the session failed ({fail1:?}), the model did not"
            );
            assert_eq!(items, m.items, "messages");
            assert_eq!(closed1, m.end == End::Closed);
            ws::check_replies(&f1, &m, true);
        }
        End::Unknown => {
            assert!(deflate.is_some(), "RSV1 accepted without compression");
            assert!(
                items.len() >= m.items.len() && items[..m.items.len()] == m.items[..],
                "before the compressed message: {items:?} vs {:?}",
                m.items
            );
        }
    }
    for i in &items {
        match i {
            Item::Text(s) => assert!(s.len() <= limits.max_message),
            Item::Binary(b) => assert!(b.len() <= limits.max_message),
            _ => {}
        }
    }
});
