//! The IPC bus's wire format through the C ABI: `unisock_ipc_decode` (the
//! bus's reading of a peer's stream: MessagePack, then the message check of
//! `ipc::message::incoming`) and `unisock_ipc_encode` (socket_write's bytes).
//!
//! 1. The payload is decoded message by message, as the bus reads a stream:
//!    once whole, and once arriving in the pieces the fuzzer cut (bytes
//!    appended to a buffer, every whole message taken off its front). Both
//!    must give the same messages and end the same way (an error with the
//!    same code, or the same number of bytes left waiting).
//! 2. Every result is checked against a reference decoder written here from
//!    the documented mapping (docs/modes/ipc.md, src/ipc/codec.rs): nil →
//!    undefined, bool → 0/1, int → int (uint64 above 2^63-1 → float), float32
//!    and float64 → float, str → string (buffer when not UTF-8), bin → buffer,
//!    array, map (a repeated key keeps its first place and the last value),
//!    extension types and 0xc1 refused, more than 64 levels of arrays and maps
//!    refused, a value whose length would take the message past 1 MiB
//!    refused at once (TOO_LARGE, as the bus's scanner does); then the
//!    message check: a map, message_type one of data / error
//!    / control (any case, given back lower-case), data a map, and missing
//!    message_type, data, event_name, timestamp_ms, timestamp_iso appended in
//!    that order (event_name "fuzz", the times now, in UTC).
//! 3. Round trip: every decoded message's message_type and data go through
//!    `unisock_ipc_encode`; the bytes must decode to exactly the five keys,
//!    stamped "fuzz" and now, with the same message_type and data (floats by
//!    bits). The decoded message itself is encoded too: accepted exactly when
//!    every key is one socket_write takes, refused with EE_BADDATA otherwise.
//!
//! Maps whose keys hold a float that is NaN or ±0 are compared with the
//! reference only by outcome and length: the codec compares the first 8 keys
//! with `==` (NaN ≠ NaN, 0.0 = -0.0) and later ones by their encoding, so
//! which of those keys merge is the codec's choice.
//!
//! Input layout: byte 0 = number of cuts (mod 8), then 2 bytes per cut
//! (little endian, modulo the payload length + 1), then the payload.
#![no_main]

use std::ffi::c_char;
use std::ptr;

use libfuzzer_sys::fuzz_target;

use unisock::ffi::ipc::{unisock_ipc_decode, unisock_ipc_encode};
use unisock::ffi::values::*;
use unisock::{ResultCode, Value};
use unisock_fuzz::*;

const NAME: &[u8] = b"fuzz\0";
/// The bus's limit on one message (src/ipc/link.rs MAX_MESSAGE).
const MAX_MESSAGE: usize = 1 << 20;
/// Deepest nesting of arrays and maps in one message.
const MAX_LEVELS: usize = 64;
const TYPES: [&str; 3] = ["data", "error", "control"];
/// The keys socket_write takes (src/ipc/message.rs WRITE_KEYS).
const WRITE_KEYS: [&str; 6] = [
    "message_type",
    "data",
    "event_name",
    "timestamp_ms",
    "timestamp_iso",
    "client_id",
];

fn name_ptr() -> *const c_char {
    NAME.as_ptr() as *const c_char
}

fn split(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let (spec, payload) = cut_spec(data, 8);
    (cut_positions(spec, payload.len()), payload)
}

// ----------------------------------------------------------------------
// The C entry points

#[derive(Debug)]
enum Step {
    Msg(Value, usize),
    More,
    Bad(ResultCode),
}

/// unisock_ipc_decode on `buf` (a NULL pointer when it is empty).
fn c_decode(buf: &[u8]) -> Step {
    poison_last_error();
    let mut out: *mut UnisockValue = ptr::null_mut();
    let mut used = usize::MAX;
    let p = if buf.is_empty() {
        ptr::null()
    } else {
        buf.as_ptr()
    };
    let rc = unisock_ipc_decode(p, buf.len(), name_ptr(), &mut out, &mut used);
    let msg = check_result(rc, "ipc_decode");
    match rc {
        ResultCode::Ok if out.is_null() => {
            assert_eq!(used, 0, "no message but {used} bytes consumed");
            Step::More
        }
        ResultCode::Ok => {
            let o = Owned(out);
            assert!(
                (1..=buf.len()).contains(&used),
                "consumed {used} of {} bytes",
                buf.len()
            );
            Step::Msg(read_value(o.as_ptr()), used)
        }
        ResultCode::Parse | ResultCode::TooLarge => {
            assert!(out.is_null(), "failed but wrote *out");
            assert_eq!(used, usize::MAX, "failed but wrote *consumed");
            assert!(msg.starts_with("ipc_decode: "), "message {msg:?}");
            Step::Bad(rc)
        }
        other => panic!("ipc_decode answered {other:?}: {msg}"),
    }
}

/// unisock_ipc_encode of `m`: the wire bytes, or the refusal's code.
fn c_encode(m: &Value) -> Result<Vec<u8>, ResultCode> {
    let h = exact(m);
    poison_last_error();
    let mut out: *mut UnisockValue = ptr::null_mut();
    let rc = unisock_ipc_encode(name_ptr(), h.as_ptr(), &mut out);
    let msg = check_result(rc, "ipc_encode");
    assert!(
        same(&read_value(h.as_ptr()), m),
        "ipc_encode changed its message"
    );
    if rc != ResultCode::Ok {
        assert!(out.is_null(), "failed but wrote *out");
        assert!(msg.starts_with("ipc_encode: "), "message {msg:?}");
        return Err(rc);
    }
    let o = Owned(out);
    match read_value(o.as_ptr()) {
        Value::Buffer(b) => Ok(b),
        other => panic!("ipc_encode gave {other:?}, not a buffer"),
    }
}

/// `v` built through the C builders pair by pair (mapping_push: no key is
/// merged, so the handle holds exactly `v`).
fn exact(v: &Value) -> Owned {
    let mut out: *mut UnisockValue = ptr::null_mut();
    let rc = match v {
        Value::Undefined => unisock_value_new_undefined(&mut out),
        Value::Int(i) => unisock_value_new_int(*i, &mut out),
        Value::Real(r) => unisock_value_new_real(*r, &mut out),
        Value::Str(s) => unisock_value_new_string(s.as_ptr() as *const c_char, s.len(), &mut out),
        Value::Buffer(b) => unisock_value_new_buffer(b.as_ptr(), b.len(), &mut out),
        Value::Array(_) => unisock_value_new_array(&mut out),
        Value::Mapping(_) => unisock_value_new_mapping(&mut out),
    };
    assert_eq!(rc, ResultCode::Ok, "building {v:?}");
    let h = Owned(out);
    match v {
        Value::Array(items) => {
            for it in items {
                let rc = unisock_value_array_push(h.0, exact(it).into_raw());
                assert_eq!(rc, ResultCode::Ok, "array_push: {}", last_error());
            }
        }
        Value::Mapping(pairs) => {
            for (k, x) in pairs {
                let rc = unisock_value_mapping_push(h.0, exact(k).into_raw(), exact(x).into_raw());
                assert_eq!(rc, ResultCode::Ok, "mapping_push: {}", last_error());
            }
        }
        _ => {}
    }
    h
}

// ----------------------------------------------------------------------
// The reference decoder

enum Stop {
    More,
    Bad,
    /// A value would end past MAX_MESSAGE (its length says so, before the
    /// bytes arrive).
    TooBig,
}

struct Ref<'a> {
    b: &'a [u8],
    i: usize,
    /// A map key holding a NaN or ±0 float was seen.
    ambiguous: bool,
}

impl<'a> Ref<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        if self.i.saturating_add(n) > MAX_MESSAGE {
            return Err(Stop::TooBig);
        }
        if self.b.len() - self.i < n {
            return Err(Stop::More);
        }
        let s = &self.b[self.i..self.i + n];
        self.i += n;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, Stop> {
        let mut x = 0u64;
        for &c in self.take(n)? {
            x = x << 8 | c as u64;
        }
        Ok(x)
    }

    fn value(&mut self, level: usize) -> Result<Value, Stop> {
        let m = self.take(1)?[0];
        Ok(match m {
            0x00..=0x7f => Value::Int(m as i64),
            0xe0..=0xff => Value::Int(m as i8 as i64),
            0x80..=0x8f => self.map((m & 0x0f) as usize, level)?,
            0x90..=0x9f => self.array((m & 0x0f) as usize, level)?,
            0xa0..=0xbf => self.text((m & 0x1f) as usize)?,
            0xc0 => Value::Undefined,
            0xc1 => return Err(Stop::Bad),
            0xc2 => Value::Int(0),
            0xc3 => Value::Int(1),
            0xc4 => {
                let n = self.uint(1)? as usize;
                Value::Buffer(self.take(n)?.to_vec())
            }
            0xc5 => {
                let n = self.uint(2)? as usize;
                Value::Buffer(self.take(n)?.to_vec())
            }
            0xc6 => {
                let n = self.uint(4)? as usize;
                Value::Buffer(self.take(n)?.to_vec())
            }
            // ext 8/16/32, fixext 1..16: refused at the marker.
            0xc7..=0xc9 | 0xd4..=0xd8 => return Err(Stop::Bad),
            0xca => Value::Real(f32::from_bits(self.uint(4)? as u32) as f64),
            0xcb => Value::Real(f64::from_bits(self.uint(8)?)),
            0xcc => Value::Int(self.uint(1)? as i64),
            0xcd => Value::Int(self.uint(2)? as i64),
            0xce => Value::Int(self.uint(4)? as i64),
            0xcf => {
                let u = self.uint(8)?;
                if u > i64::MAX as u64 {
                    Value::Real(u as f64)
                } else {
                    Value::Int(u as i64)
                }
            }
            0xd0 => Value::Int(self.uint(1)? as u8 as i8 as i64),
            0xd1 => Value::Int(self.uint(2)? as u16 as i16 as i64),
            0xd2 => Value::Int(self.uint(4)? as u32 as i32 as i64),
            0xd3 => Value::Int(self.uint(8)? as i64),
            0xd9 => {
                let n = self.uint(1)? as usize;
                self.text(n)?
            }
            0xda => {
                let n = self.uint(2)? as usize;
                self.text(n)?
            }
            0xdb => {
                let n = self.uint(4)? as usize;
                self.text(n)?
            }
            0xdc => {
                let n = self.uint(2)? as usize;
                self.array(n, level)?
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.array(n, level)?
            }
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(n, level)?
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(n, level)?
            }
        })
    }

    fn text(&mut self, n: usize) -> Result<Value, Stop> {
        let b = self.take(n)?;
        Ok(match std::str::from_utf8(b) {
            Ok(s) => Value::Str(s.to_string()),
            Err(_) => Value::Buffer(b.to_vec()),
        })
    }

    /// `level` containers enclose this one.
    fn array(&mut self, n: usize, level: usize) -> Result<Value, Stop> {
        if level >= MAX_LEVELS {
            return Err(Stop::Bad);
        }
        let mut items = Vec::new();
        for _ in 0..n {
            items.push(self.value(level + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, n: usize, level: usize) -> Result<Value, Stop> {
        if level >= MAX_LEVELS {
            return Err(Stop::Bad);
        }
        let mut pairs: Vec<(Value, Value)> = Vec::new();
        for _ in 0..n {
            let k = self.value(level + 1)?;
            let v = self.value(level + 1)?;
            if ambiguous_float(&k) {
                self.ambiguous = true;
            }
            match pairs.iter_mut().find(|(pk, _)| same(pk, &k)) {
                Some(slot) => slot.1 = v,
                None => pairs.push((k, v)),
            }
        }
        Ok(Value::Mapping(pairs))
    }
}

fn ambiguous_float(v: &Value) -> bool {
    match v {
        Value::Real(r) => r.is_nan() || *r == 0.0,
        Value::Array(a) => a.iter().any(ambiguous_float),
        Value::Mapping(m) => m
            .iter()
            .any(|(k, x)| ambiguous_float(k) || ambiguous_float(x)),
        _ => false,
    }
}

/// What the reference expects of one message.
#[derive(Debug)]
struct Want {
    /// The message as LPC gets it; filled-in times hold Undefined.
    pairs: Vec<(Value, Value)>,
    filled_ms: bool,
    filled_iso: bool,
    /// Compare only outcome and length (see the file comment).
    ambiguous: bool,
}

#[derive(Debug)]
enum RefStep {
    Msg(Want, usize),
    More,
    Bad(ResultCode),
}

fn key_pos(pairs: &[(Value, Value)], key: &str) -> Option<usize> {
    pairs
        .iter()
        .position(|(k, _)| matches!(k, Value::Str(s) if s == key))
}

/// The message check, from its description.
fn want_message(v: Value) -> Option<Want> {
    let Value::Mapping(mut pairs) = v else {
        return None;
    };
    match key_pos(&pairs, "message_type") {
        None => pairs.push((Value::str("message_type"), Value::str("data"))),
        Some(i) => {
            let t = match &pairs[i].1 {
                Value::Str(s) => TYPES.iter().find(|t| t.eq_ignore_ascii_case(s))?,
                _ => return None,
            };
            pairs[i].1 = Value::str(*t);
        }
    }
    match key_pos(&pairs, "data") {
        None => pairs.push((Value::str("data"), Value::Mapping(vec![]))),
        Some(i) if matches!(pairs[i].1, Value::Mapping(_)) => {}
        Some(_) => return None,
    }
    if key_pos(&pairs, "event_name").is_none() {
        pairs.push((Value::str("event_name"), Value::str("fuzz")));
    }
    let filled_ms = key_pos(&pairs, "timestamp_ms").is_none();
    let filled_iso = key_pos(&pairs, "timestamp_iso").is_none();
    if filled_ms {
        pairs.push((Value::str("timestamp_ms"), Value::Undefined));
    }
    if filled_iso {
        pairs.push((Value::str("timestamp_iso"), Value::Undefined));
    }
    Some(Want {
        pairs,
        filled_ms,
        filled_iso,
        ambiguous: false,
    })
}

fn ref_decode(buf: &[u8]) -> RefStep {
    let mut r = Ref {
        b: buf,
        i: 0,
        ambiguous: false,
    };
    match r.value(0) {
        Ok(_) if r.i > MAX_MESSAGE => RefStep::Bad(ResultCode::TooLarge),
        Ok(v) => match want_message(v) {
            Some(w) => RefStep::Msg(
                Want {
                    ambiguous: r.ambiguous,
                    ..w
                },
                r.i,
            ),
            None => RefStep::Bad(ResultCode::Parse),
        },
        Err(Stop::More) if buf.len() > MAX_MESSAGE => RefStep::Bad(ResultCode::TooLarge),
        Err(Stop::More) => RefStep::More,
        Err(Stop::Bad) => RefStep::Bad(ResultCode::Parse),
        Err(Stop::TooBig) => RefStep::Bad(ResultCode::TooLarge),
    }
}

/// The times the bus stamps: `ms` and `iso` say which to look at.
fn check_times(m: &[(Value, Value)], ms: bool, iso: bool, what: &str) {
    let get = |k: &str| key_pos(m, k).map(|i| &m[i].1);
    if ms {
        assert!(
            matches!(get("timestamp_ms"), Some(Value::Int(t)) if *t > 1_600_000_000_000),
            "{what}: timestamp_ms {:?}",
            get("timestamp_ms")
        );
    }
    if !iso {
        return;
    }
    let Some(Value::Str(text)) = get("timestamp_iso") else {
        panic!("{what}: timestamp_iso {:?}", get("timestamp_iso"))
    };
    // 2026-11-22T08:51:42.719+00:00
    let b = text.as_bytes();
    assert!(
        b.len() == 29 && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && text.ends_with("+00:00"),
        "{what}: timestamp_iso {text:?}"
    );
}

/// A decoded message against the reference's expectation.
fn check_against(got: &Value, want: &Want, what: &str) {
    let Value::Mapping(pairs) = got else {
        panic!("{what}: not a mapping: {got:?}")
    };
    for k in ["message_type", "data", "event_name"] {
        assert!(key_pos(pairs, k).is_some(), "{what}: no {k}");
    }
    check_times(pairs, want.filled_ms, want.filled_iso, what);
    if want.ambiguous {
        return;
    }
    assert_eq!(
        pairs.len(),
        want.pairs.len(),
        "{what}: keys {got:?} vs {want:?}"
    );
    for ((gk, gv), (wk, wv)) in pairs.iter().zip(&want.pairs) {
        assert!(same(gk, wk), "{what}: key {gk:?}, want {wk:?}");
        let filled = matches!(wk, Value::Str(s)
            if (s == "timestamp_ms" && want.filled_ms) || (s == "timestamp_iso" && want.filled_iso));
        if !filled {
            assert!(same(gv, wv), "{what}: {wk:?} is {gv:?}, want {wv:?}");
        }
    }
}

// ----------------------------------------------------------------------
// Streams

#[derive(Debug)]
struct Outcome {
    msgs: Vec<(Value, usize)>,
    /// The error that ended the stream, or None.
    error: Option<ResultCode>,
    /// Bytes of the stream after the last message taken.
    rest: usize,
}

/// Decodes the pieces as the bus reads a stream.
fn stream(pieces: &[&[u8]]) -> Outcome {
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut msgs = Vec::new();
    for p in pieces {
        buf.extend_from_slice(p);
        loop {
            match c_decode(&buf[start..]) {
                Step::Msg(v, n) => {
                    start += n;
                    msgs.push((v, n));
                }
                Step::More => break,
                Step::Bad(code) => {
                    return Outcome {
                        msgs,
                        error: Some(code),
                        rest: total - start,
                    }
                }
            }
        }
    }
    Outcome {
        msgs,
        error: None,
        rest: buf.len() - start,
    }
}

/// A message with the times that were filled in blanked out.
fn without_filled(v: &Value, want: &Want) -> Value {
    let Value::Mapping(pairs) = v else {
        return v.clone();
    };
    Value::Mapping(
        pairs
            .iter()
            .map(|(k, x)| {
                let filled = matches!(k, Value::Str(s)
                    if (s == "timestamp_ms" && want.filled_ms) || (s == "timestamp_iso" && want.filled_iso));
                (k.clone(), if filled { Value::Undefined } else { x.clone() })
            })
            .collect(),
    )
}

// ----------------------------------------------------------------------
// Round trip

fn round_trip(m: &Value, what: &str) {
    let (Some(kind), Some(data)) = (m.get("message_type"), m.get("data")) else {
        panic!("{what}: no message_type or data in {m:?}")
    };
    let reduced = Value::Mapping(vec![
        (Value::str("message_type"), kind.clone()),
        (Value::str("data"), data.clone()),
    ]);
    let wire = c_encode(&reduced)
        .unwrap_or_else(|rc| panic!("{what}: ipc_encode refused {reduced:?}: {rc:?}"));
    let back = match c_decode(&wire) {
        Step::Msg(v, n) => {
            assert_eq!(n, wire.len(), "{what}: encoded message not taken whole");
            v
        }
        other => panic!("{what}: ipc_encode's bytes decode as {other:?}"),
    };
    let Value::Mapping(pairs) = &back else {
        panic!("{what}: round trip gave {back:?}")
    };
    let keys: Vec<_> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            Some("event_name"),
            Some("timestamp_ms"),
            Some("timestamp_iso"),
            Some("message_type"),
            Some("data")
        ],
        "{what}: keys of the encoded message"
    );
    check_times(pairs, true, true, what);
    assert_eq!(back.get("event_name"), Some(&Value::str("fuzz")));
    assert!(
        same(back.get("message_type").unwrap(), kind),
        "{what}: message_type {kind:?} came back as {:?}",
        back.get("message_type")
    );
    assert!(
        same(back.get("data").unwrap(), data),
        "{what}: data did not survive the round trip:\n{data:?}\n{:?}",
        back.get("data")
    );

    // The message as decoded: socket_write takes it exactly when all its
    // keys are ones it knows (a received message can be forwarded as is).
    let Value::Mapping(mp) = m else {
        unreachable!()
    };
    let takes = mp
        .iter()
        .all(|(k, _)| matches!(k, Value::Str(s) if WRITE_KEYS.contains(&s.as_str())));
    match c_encode(m) {
        Ok(w) => {
            assert!(
                takes,
                "{what}: ipc_encode took keys socket_write refuses: {m:?}"
            );
            let Step::Msg(v, _) = c_decode(&w) else {
                panic!("{what}: forwarded message does not decode")
            };
            assert!(same(v.get("data").unwrap(), data), "{what}: forwarded data");
        }
        Err(rc) => {
            assert!(
                !takes,
                "{what}: ipc_encode refused a forwardable message: {rc:?}"
            );
            assert_eq!(rc, ResultCode::EeBaddata);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (cuts, payload) = split(data);

    // The reference's reading of the whole stream.
    let mut wants = Vec::new();
    let mut at = 0;
    let ref_end = loop {
        match ref_decode(&payload[at..]) {
            RefStep::Msg(w, n) => {
                wants.push((w, n));
                at += n;
            }
            RefStep::More => break None,
            RefStep::Bad(code) => break Some(code),
        }
    };
    let ref_rest = payload.len() - at;

    let whole = stream(&[payload]);
    let cut = stream(&pieces(payload, &cuts));
    for (o, what) in [(&whole, "whole"), (&cut, "cut")] {
        assert_eq!(
            o.msgs.len(),
            wants.len(),
            "{what}: {} messages, the reference {}; cuts {cuts:?}; {o:?} vs {wants:?}",
            o.msgs.len(),
            wants.len()
        );
        assert_eq!(
            o.error, ref_end,
            "{what}: end {:?}, the reference {ref_end:?}",
            o.error
        );
        assert_eq!(o.rest, ref_rest, "{what}: bytes left");
        for (i, ((v, n), (w, wn))) in o.msgs.iter().zip(&wants).enumerate() {
            assert_eq!(n, wn, "{what}: length of message {i}");
            check_against(v, w, &format!("{what}: message {i}"));
        }
    }
    // Whole and cut agree exactly (also where the reference is lenient).
    for (i, ((a, _), (b, _))) in whole.msgs.iter().zip(&cut.msgs).enumerate() {
        let w = &wants[i].0;
        assert!(
            same(&without_filled(a, w), &without_filled(b, w)),
            "message {i} depends on the cuts {cuts:?}:\n{a:?}\n{b:?}"
        );
    }

    for (i, (m, _)) in whole.msgs.iter().enumerate() {
        round_trip(m, &format!("message {i}"));
    }
});
