//! Unit tests of `websocket::deflate`: the codec and the negotiation.

use super::negotiate::answer_params;
use super::*;

/// Text that compresses well and differs from message to message.
fn text(n: usize, seed: usize) -> Vec<u8> {
    let words = [
        "north", "south", "the", "troll", "hits", "you", "gold", "coins", "\n",
    ];
    let mut v = Vec::new();
    let mut i = seed;
    while v.len() < n {
        i = i.wrapping_mul(1103515245).wrapping_add(12345);
        v.extend_from_slice(words[(i >> 16) % words.len()].as_bytes());
        v.push(b' ');
    }
    v.truncate(n);
    v
}

/// Bytes that do not compress.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Inflates one message given as `pieces` (the last one is `fin`).
fn inflate(d: &mut Deflate, pieces: &[&[u8]], max: usize) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        d.decompress(p, i + 1 == pieces.len(), &mut out, max)?;
    }
    Ok(out)
}

fn deflate(d: &mut Deflate, msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    d.compress(msg, &mut out).unwrap();
    out
}

/// Raw deflate of `msg` by a plain zlib stream, ended with `flush`.
fn raw(msg: &[u8], flush: FlushCompress) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(msg.len() + 1024);
    c.compress_vec(msg, &mut out, flush).unwrap();
    assert_eq!(c.total_in() as usize, msg.len());
    out
}

fn all_params() -> Vec<Params> {
    let mut v = Vec::new();
    for snct in [false, true] {
        for cnct in [false, true] {
            for sbits in [9, 12, 15] {
                for cbits in [8, 9, 15] {
                    v.push(Params {
                        server_no_context_takeover: snct,
                        client_no_context_takeover: cnct,
                        server_max_window_bits: sbits,
                        client_max_window_bits: cbits,
                    });
                }
            }
        }
    }
    v
}

#[test]
fn round_trips_both_ways_with_every_param_combination() {
    let msgs: Vec<Vec<u8>> = vec![
        text(1000, 1),
        Vec::new(),
        text(1000, 1),
        noise(3000, 7),
        text(100_000, 3),
        b"x".to_vec(),
        text(70_000, 4),
    ];
    for p in all_params() {
        let mut server = Deflate::new(p, Side::Server);
        let mut client = Deflate::new(p, Side::Client);
        for (i, m) in msgs.iter().enumerate() {
            let wire = deflate(&mut server, m);
            // Cut into up to 3 frames, some of them empty.
            let (a, b) = wire.split_at(wire.len() / 3);
            let (b, c) = b.split_at(b.len() / 2);
            let got = inflate(&mut client, &[a, &[], b, c], 1 << 20).unwrap();
            assert!(got == *m, "server→client message {i} with {p:?}");
            let wire = deflate(&mut client, m);
            let got = inflate(&mut server, &[&wire], 1 << 20).unwrap();
            assert!(got == *m, "client→server message {i} with {p:?}");
        }
    }
}

#[test]
fn context_takeover_is_used_and_reset_when_agreed() {
    let m = text(2000, 9);
    for side in [Side::Server, Side::Client] {
        let mut keep = Deflate::new(Params::default(), side);
        let first = deflate(&mut keep, &m);
        let second = deflate(&mut keep, &m);
        assert!(
            second.len() * 4 < first.len(),
            "{side:?}: {} then {}",
            first.len(),
            second.len()
        );

        let p = Params {
            server_no_context_takeover: side == Side::Server,
            client_no_context_takeover: side == Side::Client,
            ..Params::default()
        };
        let mut fresh = Deflate::new(p, side);
        assert_eq!(deflate(&mut fresh, &m), first, "{side:?}");
        assert_eq!(deflate(&mut fresh, &m), first, "{side:?}: not reset");
    }
}

#[test]
fn the_inflater_resets_when_the_peer_does_not_take_over() {
    let m = text(2000, 5);
    // The peer keeps its context (its second message refers to the first)...
    let mut peer = Deflate::new(Params::default(), Side::Client);
    let one = deflate(&mut peer, &m);
    let two = deflate(&mut peer, &m);
    // ...a server that keeps its own follows it,
    let mut server = Deflate::new(Params::default(), Side::Server);
    assert_eq!(inflate(&mut server, &[&one], 1 << 20).unwrap(), m);
    assert_eq!(inflate(&mut server, &[&two], 1 << 20).unwrap(), m);
    // a server that agreed client_no_context_takeover has forgotten it.
    let p = Params {
        client_no_context_takeover: true,
        ..Params::default()
    };
    let mut server = Deflate::new(p, Side::Server);
    assert_eq!(inflate(&mut server, &[&one], 1 << 20).unwrap(), m);
    assert!(matches!(
        inflate(&mut server, &[&two], 1 << 20),
        Err(InflateError::Corrupt(_))
    ));
}

#[test]
fn empty_messages_are_one_zero_byte() {
    let mut d = Deflate::new(Params::default(), Side::Server);
    assert_eq!(deflate(&mut d, b""), [0x00]);
    deflate(&mut d, b"abc");
    assert_eq!(deflate(&mut d, b""), [0x00]);
    let mut c = Deflate::new(Params::default(), Side::Client);
    assert_eq!(inflate(&mut c, &[&[0x00]], 10).unwrap(), b"");
    assert_eq!(inflate(&mut c, &[&[], &[]], 10).unwrap(), b"");
}

#[test]
fn window_8_sends_stored_blocks() {
    let p = Params {
        client_max_window_bits: 8,
        ..Params::default()
    };
    let mut client = Deflate::new(p, Side::Client);
    let m = text(150_000, 2);
    let wire = deflate(&mut client, &m);
    assert_eq!(wire.len(), m.len() + 3 * 5 + 1);
    assert!(
        !client.holds_contexts().0,
        "no compressor for stored blocks"
    );
    // A peer inflating with a 256-byte window (9 bits is the least zlib
    // takes) reads it, and nothing in it refers back.
    let mut server = Deflate::new(
        Params {
            client_max_window_bits: 9,
            ..p
        },
        Side::Server,
    );
    assert_eq!(inflate(&mut server, &[&wire], 1 << 20).unwrap(), m);
    assert_eq!(
        inflate(&mut server, &[&deflate(&mut client, b"")], 1).unwrap(),
        b""
    );
}

#[test]
fn inflating_does_not_depend_on_the_agreed_window_or_the_cuts() {
    // A peer that agreed 9 bits but refers 1000 bytes back (found by the
    // ws_deflate fuzz target: with a 9-bit inflater the answer depended on
    // how the output was cut).
    let m = text(3000, 4);
    let mut over = Deflate::new(Params::default(), Side::Client);
    let wire = deflate(&mut over, &[&m[..], &m[..]].concat());
    let p = Params {
        client_max_window_bits: 9,
        ..Params::default()
    };
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    for frames in [vec![&wire[..]], bytes] {
        for max in [6000, 1 << 20] {
            let mut d = Deflate::new(p, Side::Server);
            assert_eq!(inflate(&mut d, &frames, max).unwrap().len(), 6000);
        }
    }
}

#[test]
fn a_bomb_stops_at_max() {
    let bomb = raw(&vec![0u8; 10 << 20], FlushCompress::Sync);
    let bomb = &bomb[..bomb.len() - 4];
    assert!(bomb.len() < 20_000);
    let max = 64 * 1024;
    let mut d = Deflate::new(Params::default(), Side::Server);
    let mut out = Vec::new();
    assert_eq!(
        d.decompress(bomb, true, &mut out, max),
        Err(InflateError::TooBig)
    );
    assert!(out.len() <= max);
    assert!(out.capacity() <= max + CHUNK, "capacity {}", out.capacity());
    // Fed in frames, the same.
    let mut d = Deflate::new(Params::default(), Side::Server);
    let mut out = Vec::new();
    let mut r = Ok(());
    for piece in bomb.chunks(100) {
        r = d.decompress(piece, false, &mut out, max);
        if r.is_err() {
            break;
        }
    }
    assert_eq!(r, Err(InflateError::TooBig));
    assert!(out.capacity() <= max + CHUNK);
}

#[test]
fn exactly_max_is_accepted_and_one_more_byte_is_not() {
    let m = text(100_000, 8);
    let mut s = Deflate::new(Params::default(), Side::Server);
    let wire = deflate(&mut s, &m);
    for (max, ok) in [(m.len(), true), (m.len() - 1, false), (m.len() + 1, true)] {
        let mut c = Deflate::new(Params::default(), Side::Client);
        let r = inflate(&mut c, &[&wire[..10], &wire[10..]], max);
        assert_eq!(r.is_ok(), ok, "max {max}");
    }
}

#[test]
fn corrupt_input_is_reported_with_zlibs_message() {
    let mut d = Deflate::new(Params::default(), Side::Server);
    match inflate(&mut d, &[&[0xff, 0xff, 0xff, 0xff]], 1000) {
        Err(InflateError::Corrupt(msg)) => assert!(!msg.is_empty()),
        other => panic!("{other:?}"),
    }
    // Bytes inflated before the error never take `out` past `max`
    // (found by the ws_deflate fuzz target: 1 byte over with max 0).
    let mut out = Vec::new();
    let r =
        Deflate::new(Params::default(), Side::Server).decompress(&[59, 2, 255], true, &mut out, 0);
    assert!(r.is_err());
    assert!(out.is_empty());
    // The next message starts a fresh stream.
    let mut c = Deflate::new(Params::default(), Side::Client);
    let wire = deflate(&mut c, b"hello");
    assert_eq!(inflate(&mut d, &[&wire], 1000).unwrap(), b"hello");
}

#[test]
fn fragmented_input_gives_the_same_message() {
    let m = text(5000, 6);
    let mut s = Deflate::new(Params::default(), Side::Server);
    let warm = deflate(&mut s, &m);
    let wire = deflate(&mut s, &m);
    let mut c = Deflate::new(Params::default(), Side::Client);
    assert_eq!(inflate(&mut c, &[&warm], 1 << 20).unwrap(), m);
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    assert_eq!(inflate(&mut c, &bytes, 1 << 20).unwrap(), m);
}

#[test]
fn rfc_7692_examples_inflate() {
    let hello = |wire: &[&[u8]], d: &mut Deflate| inflate(d, wire, 100).unwrap();
    let mut d = Deflate::new(Params::default(), Side::Client);
    // §7.2.3.1, then §7.2.3.2: the second "Hello" refers to the first.
    assert_eq!(
        hello(&[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]], &mut d),
        b"Hello"
    );
    assert_eq!(hello(&[&[0xf2, 0x00, 0x11, 0x00, 0x00]], &mut d), b"Hello");
    // Our compressor makes exactly those two payloads.
    let mut s = Deflate::new(Params::default(), Side::Server);
    assert_eq!(
        deflate(&mut s, b"Hello"),
        [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
    );
    assert_eq!(deflate(&mut s, b"Hello"), [0xf2, 0x00, 0x11, 0x00, 0x00]);
    // §7.2.3.1 fragmented.
    let mut d = Deflate::new(Params::default(), Side::Client);
    assert_eq!(
        hello(&[&[0xf2, 0x48, 0xcd], &[0xc9, 0xc9, 0x07, 0x00]], &mut d),
        b"Hello"
    );
    // §7.2.3.3: stored block.
    let stored = [
        0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ];
    assert_eq!(hello(&[&stored], &mut d), b"Hello");
    // §7.2.3.4: a final block, then the 0x00 the tail completes; twice,
    // each a new stream.
    let fin = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    assert_eq!(hello(&[&fin], &mut d), b"Hello");
    assert_eq!(hello(&[&fin], &mut d), b"Hello");
    // §7.2.3.5: two deflate blocks in one message.
    let two = [
        0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ];
    assert_eq!(hello(&[&two], &mut d), b"Hello");
    // §7.2.3.6: an empty fragment ends a message.
    let mut d = Deflate::new(Params::default(), Side::Client);
    assert_eq!(
        hello(&[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &[]], &mut d),
        b"Hello"
    );
    assert_eq!(hello(&[&[0xf2, 0x00, 0x11, 0x00, 0x00]], &mut d), b"Hello");
}

#[test]
fn a_final_block_ends_the_stream() {
    let fin = raw(b"one", FlushCompress::Finish);
    let next = raw(b"two", FlushCompress::Sync);
    let next = &next[..next.len() - 4];
    // Without the 0x00 of §7.2.3.4 (zlib's own Z_FINISH), then a new stream.
    let mut d = Deflate::new(Params::default(), Side::Server);
    assert_eq!(inflate(&mut d, &[&fin], 100).unwrap(), b"one");
    assert_eq!(inflate(&mut d, &[next], 100).unwrap(), b"two");
    // A new stream after the final block in the same message, in one
    // frame or in the next.
    let mut both = fin.clone();
    both.extend_from_slice(next);
    let mut d = Deflate::new(Params::default(), Side::Server);
    assert_eq!(inflate(&mut d, &[&both], 100).unwrap(), b"onetwo");
    assert_eq!(inflate(&mut d, &[&fin, next], 100).unwrap(), b"onetwo");
    assert_eq!(inflate(&mut d, &[next], 100).unwrap(), b"two");
}

#[test]
fn a_payload_without_bytes_is_an_empty_message() {
    let mut s = Deflate::new(Params::default(), Side::Server);
    let mut c = Deflate::new(Params::default(), Side::Client);
    let m = text(500, 1);
    assert_eq!(inflate(&mut c, &[&deflate(&mut s, &m)], 1000).unwrap(), m);
    assert_eq!(inflate(&mut c, &[&[]], 1000).unwrap(), b"");
    assert_eq!(inflate(&mut c, &[&[], &[]], 1000).unwrap(), b"");
    assert_eq!(inflate(&mut c, &[&deflate(&mut s, &m)], 1000).unwrap(), m);
}

#[test]
fn contexts_are_lazy_and_released_only_without_takeover() {
    let mut d = Deflate::new(Params::default(), Side::Server);
    assert_eq!(d.holds_contexts(), (false, false));
    let wire = deflate(&mut d, b"abc");
    assert_eq!(d.holds_contexts(), (true, false));
    d.release_idle();
    assert_eq!(d.holds_contexts(), (true, false), "takeover keeps it");

    let p = Params {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..Params::default()
    };
    let mut d = Deflate::new(p, Side::Server);
    deflate(&mut d, b"abc");
    let mut out = Vec::new();
    d.decompress(&wire[..1], false, &mut out, 100).unwrap();
    d.release_idle();
    assert_eq!(
        d.holds_contexts(),
        (false, true),
        "mid-message inflater kept"
    );
    d.decompress(&wire[1..], true, &mut out, 100).unwrap();
    assert_eq!(out, b"abc");
    d.release_idle();
    assert_eq!(d.holds_contexts(), (false, false));
    assert_eq!(deflate(&mut d, b"abc"), wire, "works again after a release");
}

fn p(snct: bool, cnct: bool, sbits: u8, cbits: u8) -> Params {
    Params {
        server_no_context_takeover: snct,
        client_no_context_takeover: cnct,
        server_max_window_bits: sbits,
        client_max_window_bits: cbits,
    }
}

#[test]
fn server_negotiation_table() {
    let pmd = "permessage-deflate";
    type Case<'a> = (&'a [&'a str], Option<(Params, &'a str)>);
    let cases: &[Case] = &[
        // Autobahn's offers (13.1 … 13.7: 25.10.1 asks 9 where older
        // releases asked 8), Chromium's, Python websockets'.
        (
            &["permessage-deflate; client_no_context_takeover; client_max_window_bits"],
            Some((p(false, true, 15, 15), "permessage-deflate; client_no_context_takeover")),
        ),
        (
            &["permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover"],
            Some((
                p(true, true, 15, 15),
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            )),
        ),
        (
            &["permessage-deflate; client_no_context_takeover; client_max_window_bits; server_max_window_bits=8"],
            None,
        ),
        (
            &["permessage-deflate; client_no_context_takeover; client_max_window_bits; server_max_window_bits=9"],
            Some((
                p(false, true, 9, 15),
                "permessage-deflate; client_no_context_takeover; server_max_window_bits=9",
            )),
        ),
        (
            &["permessage-deflate; client_no_context_takeover; client_max_window_bits; server_max_window_bits=15"],
            Some((
                p(false, true, 15, 15),
                "permessage-deflate; client_no_context_takeover; server_max_window_bits=15",
            )),
        ),
        (
            &["permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8, permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover, permessage-deflate; client_no_context_takeover; client_max_window_bits"],
            Some((
                p(true, true, 15, 15),
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            )),
        ),
        (&["permessage-deflate; client_max_window_bits"], Some((p(false, false, 15, 15), pmd))),
        (&["permessage-deflate; client_max_window_bits=12"], Some((p(false, false, 15, 15), pmd))),
        (&[pmd], Some((p(false, false, 15, 15), pmd))),
        // Grammar: case, whitespace, quotes, several header lines.
        (
            &["x-webkit-deflate-frame", " PerMessage-Deflate ;\tserver_max_window_bits = \"10\" "],
            Some((p(false, false, 10, 15), "permessage-deflate; server_max_window_bits=10")),
        ),
        (&["foo; a=\"x,y\", permessage-deflate"], Some((p(false, false, 15, 15), pmd))),
        (&[",, permessage-deflate ,"], Some((p(false, false, 15, 15), pmd))),
        // Refused offers, the next one is taken.
        (&["permessage-deflate; server_max_window_bits=9; server_max_window_bits=10, permessage-deflate; server_no_context_takeover"],
            Some((p(true, false, 15, 15), "permessage-deflate; server_no_context_takeover"))),
        (&["permessage-deflate; foo"], None),
        (&["permessage-deflate; server_max_window_bits"], None),
        (&["permessage-deflate; server_max_window_bits=16"], None),
        (&["permessage-deflate; server_max_window_bits=09"], None),
        (&["permessage-deflate; server_max_window_bits=7"], None),
        (&["permessage-deflate; client_max_window_bits=1a"], None),
        (&["permessage-deflate; client_max_window_bits=\"\""], None),
        (&["permessage-deflate; server_no_context_takeover=1"], None),
        (&["permessage-deflate; client_no_context_takeover; client_no_context_takeover"], None),
        (&["permessage-deflate; server_max_window_bits=\"1 0\""], None),
        (&["permessage-deflate; server_max_window_bits=\"10"], None),
        (&["permessage-deflate;"], None),
        (&["permessage-deflate server_no_context_takeover"], None),
        (&["x-webkit-deflate-frame"], None),
        (&[""], None),
        (&[], None),
    ];
    for (values, want) in cases {
        let got = accept_offers(values);
        let want = want.map(|(p, s)| (p, s.to_string()));
        assert_eq!(got, want, "{values:?}");
        // Whatever we answer, the client side accepts as the same params.
        if let Some((params, answer)) = &got {
            assert_eq!(client_accept(answer).as_ref(), Ok(params), "{answer}");
        }
    }
}

#[test]
fn server_preferences_trade_compression_for_memory() {
    let prefs = ServerPrefs {
        no_context_takeover: true,
        max_window_bits: 10,
    };
    let offer = ["permessage-deflate; client_max_window_bits"];
    assert_eq!(
        accept_offers_with(&offer, &prefs),
        Some((
            p(true, false, 10, 15),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10".into()
        ))
    );
    let offer = ["permessage-deflate; server_max_window_bits=9"];
    assert_eq!(
        accept_offers_with(&offer, &prefs).unwrap().0,
        p(true, false, 9, 15)
    );
}

#[test]
fn client_answer_table() {
    let ok: &[(&str, Params)] = &[
        ("permessage-deflate", p(false, false, 15, 15)),
        ("PERMESSAGE-DEFLATE ; server_no_context_takeover", p(true, false, 15, 15)),
        ("permessage-deflate; client_no_context_takeover", p(false, true, 15, 15)),
        ("permessage-deflate; client_max_window_bits=8", p(false, false, 15, 8)),
        ("permessage-deflate; client_max_window_bits=\"12\"", p(false, false, 15, 12)),
        ("permessage-deflate; server_max_window_bits=8", p(false, false, 8, 15)),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=10",
            p(true, true, 9, 10),
        ),
    ];
    for (answer, want) in ok {
        assert_eq!(client_accept(answer).as_ref(), Ok(want), "{answer}");
    }
    let bad = [
        "",
        "x-webkit-deflate-frame",
        "permessage-deflate, permessage-deflate",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; mystery",
        "permessage-deflate; client_no_context_takeover=yes",
        "permessage-deflate;;",
    ];
    for answer in bad {
        assert!(client_accept(answer).is_err(), "{answer:?} accepted");
    }
    assert!(answer_params("permessage-deflate; client_max_window_bits=10", false).is_err());
    assert_eq!(client_offer(), "permessage-deflate; client_max_window_bits");
    // Our own offer is one the server side accepts.
    assert!(accept_offers(&[client_offer()]).is_some());
}
