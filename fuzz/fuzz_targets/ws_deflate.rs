//! permessage-deflate (RFC 7692): `unisock::websocket::deflate`, in Rust.
//!
//! This target calls the Rust module directly, not the C ABI: the deflate
//! layer has no entry point of its own (it sits between the WebSocket frame
//! layer and zlib-rs); the WebSocket modes' C path reaches it through a
//! connection.
//!
//! Byte 0 chooses what the rest is (mod 3):
//! 0. Negotiation: the rest, as text cut at '\n', is a list of
//!    Sec-WebSocket-Extensions values for `accept_offers`; the whole text is
//!    also a server answer for `client_accept`.
//! 1. Inflate: byte 1 = params, bytes 2–3 = max (LE), byte 4 = number of
//!    cuts (mod 5), 2 bytes per cut, then the compressed payload of one
//!    message, fed as frames cut there.
//! 2. Round trip: byte 1 = params, byte 2 = number of cuts (mod 5), 2 bytes
//!    per cut, then messages separated by 0xff; each is compressed by one
//!    side and inflated by the other (cut into frames), both ways.
#![no_main]

use flate2::{Decompress, FlushDecompress, Status};
use libfuzzer_sys::fuzz_target;

use unisock::websocket::deflate::{
    accept_offers, client_accept, Deflate, InflateError, Params, Side,
};

/// The decompressor's step (deflate.rs `CHUNK`): capacity stays within
/// `max` + this.
const CHUNK: usize = 32 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => negotiate(rest),
        1 => inflate(rest),
        _ => round_trip(rest),
    }
});

fn params(b: u8) -> Params {
    Params {
        server_no_context_takeover: b & 1 != 0,
        client_no_context_takeover: b & 2 != 0,
        server_max_window_bits: 9 + (b >> 2 & 7).min(6),
        client_max_window_bits: 8 + (b >> 5),
    }
}

/// `n` cuts from `data` (2 bytes each), then what follows.
fn cuts(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let n = (n % 5) as usize;
    if rest.len() < 2 * n {
        return (Vec::new(), rest);
    }
    let (c, payload) = rest.split_at(2 * n);
    let mut v: Vec<usize> = c
        .chunks(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]) as usize % (payload.len() + 1))
        .collect();
    v.sort_unstable();
    (v, payload)
}

fn pieces<'a>(payload: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut v = Vec::new();
    let mut at = 0;
    for &c in cuts {
        v.push(&payload[at..c]);
        at = c;
    }
    v.push(&payload[at..]);
    v
}

fn run(d: &mut Deflate, frames: &[&[u8]], max: usize) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let r = d.decompress(f, i + 1 == frames.len(), &mut out, max);
        assert!(out.len() <= max, "out {} over max {max}", out.len());
        assert!(
            out.capacity() <= max + CHUNK,
            "capacity {} for max {max}",
            out.capacity()
        );
        r?;
    }
    Ok(out)
}

fn negotiate(rest: &[u8]) {
    let text = String::from_utf8_lossy(rest);
    let values: Vec<&str> = text.split('\n').collect();
    if let Some((p, answer)) = accept_offers(&values) {
        assert!(answer.starts_with("permessage-deflate"), "{answer}");
        assert!((9..=15).contains(&p.server_max_window_bits), "{p:?}");
        assert_eq!(p.client_max_window_bits, 15);
        // What the server answers, a client reads back as the same params.
        assert_eq!(client_accept(&answer).as_ref(), Ok(&p), "{answer}");
        // Header lines and one comma-joined line are the same list (when no
        // quote can swallow the joining comma).
        if !text.contains('"') {
            let joined = values.join(",");
            assert_eq!(accept_offers(&[&joined]), Some((p, answer)));
        }
    } else if !text.contains('"') {
        assert_eq!(accept_offers(&[&values.join(",")]), None);
    }
    if let Ok(p) = client_accept(&text) {
        assert!((8..=15).contains(&p.client_max_window_bits), "{p:?}");
        assert!((8..=15).contains(&p.server_max_window_bits), "{p:?}");
        // Whatever a client accepts, it can speak.
        let mut client = Deflate::new(p, Side::Client);
        let mut server = Deflate::new(p, Side::Server);
        let mut wire = Vec::new();
        client.compress(b"hello hello hello", &mut wire).unwrap();
        assert_eq!(
            run(&mut server, &[&wire], 100).unwrap(),
            b"hello hello hello"
        );
    }
}

/// A plain inflater (15-bit window, as the module's) over payload + 00 00
/// ff ff; None when the stream has a final block (the module then starts a
/// new stream, which this does not model).
fn reference(payload: &[u8]) -> Option<Result<Vec<u8>, ()>> {
    let mut d = Decompress::new_with_window_bits(false, 15);
    let mut input = payload.to_vec();
    if !payload.is_empty() {
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    }
    let mut out = vec![0u8; 1 << 16];
    let mut all = Vec::new();
    let mut used = 0;
    loop {
        let (i0, o0) = (d.total_in(), d.total_out());
        let st = d.decompress(&input[used..], &mut out, FlushDecompress::None);
        let made = (d.total_out() - o0) as usize;
        used += (d.total_in() - i0) as usize;
        all.extend_from_slice(&out[..made]);
        match st {
            Err(_) => return Some(Err(())),
            Ok(Status::StreamEnd) => return None,
            Ok(_) if used == input.len() && made < out.len() => return Some(Ok(all)),
            Ok(_) if made == 0 && used < input.len() => return Some(Err(())),
            Ok(_) => {}
        }
        if all.len() > 1 << 22 {
            return None;
        }
    }
}

fn inflate(rest: &[u8]) {
    if rest.len() < 3 {
        return;
    }
    let p = params(rest[0]);
    let max = u16::from_le_bytes([rest[1], rest[2]]) as usize * 4;
    let (cut, payload) = cuts(&rest[3..]);
    let frames = pieces(payload, &cut);
    let mut whole = Deflate::new(p, Side::Server);
    let a = run(&mut whole, &[payload], max);
    let mut cut_up = Deflate::new(p, Side::Server);
    let b = run(&mut cut_up, &frames, max);
    match (&a, &b) {
        (Ok(x), Ok(y)) => assert!(x == y, "cuts {cut:?} change the message"),
        (Err(InflateError::TooBig), Err(InflateError::TooBig)) => {}
        (Err(InflateError::Corrupt(_)), Err(InflateError::Corrupt(_))) => {}
        _ => panic!("whole {a:?}, cut at {cut:?} {b:?}"),
    }
    match reference(payload) {
        Some(Ok(r)) if r.len() <= max => assert_eq!(a.as_deref(), Ok(&r[..])),
        Some(Ok(_)) => assert_eq!(a, Err(InflateError::TooBig)),
        Some(Err(())) => assert!(a.is_err(), "reference refuses, we gave {a:?}"),
        None => {}
    }
    // After an error or a message, the next message still works.
    let mut peer = Deflate::new(
        Params {
            client_no_context_takeover: true,
            ..p
        },
        Side::Client,
    );
    let mut wire = Vec::new();
    peer.compress(b"after", &mut wire).unwrap();
    let mut fresh = Deflate::new(p, Side::Server);
    if run(&mut fresh, &[payload], max).is_err() {
        assert_eq!(run(&mut fresh, &[&wire], 100).unwrap(), b"after");
    }
}

fn round_trip(rest: &[u8]) {
    let Some((&pb, rest)) = rest.split_first() else {
        return;
    };
    let p = params(pb);
    let (cut, payload) = cuts(rest);
    let mut server = Deflate::new(p, Side::Server);
    let mut client = Deflate::new(p, Side::Client);
    for msg in payload.split(|&b| b == 0xff) {
        send(&mut server, &mut client, msg, &cut, p);
        send(&mut client, &mut server, msg, &cut, p);
    }
}

/// One message from `from` to `to`, its compressed payload cut into frames.
fn send(from: &mut Deflate, to: &mut Deflate, msg: &[u8], cut: &[usize], p: Params) {
    let mut wire = Vec::new();
    from.compress(msg, &mut wire).unwrap();
    let mut cut: Vec<usize> = cut.iter().map(|c| c % (wire.len() + 1)).collect();
    cut.sort_unstable();
    let got = run(to, &pieces(&wire, &cut), 1 << 20).unwrap();
    assert!(got == msg, "round trip with {p:?}");
    from.release_idle();
    to.release_idle();
}
