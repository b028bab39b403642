//! MessagePack ⇄ LPC values for the IPC bus.
//!
//! The wire is a plain stream of MessagePack values with no framing of its
//! own (so `msgpack.Unpacker` reads it directly); `decode` finds where one
//! value ends. Encoding uses rmp's writers; decoding classifies each byte
//! with `rmp::Marker` and reads the payload from the slice, so an incomplete
//! value (more bytes to come) is told apart from a malformed one.
//!
//! Mapping of types (docs/modes/ipc.md): nil → undefined, bool → 0/1,
//! int → int (a uint64 above 2^63-1 → float), float32/64 → float,
//! str → string (invalid UTF-8 → buffer), bin → buffer, array → array,
//! map → mapping (keys of any type; a repeated key keeps the last value).
//! Extension types are refused. Undefined encodes as nil.

use std::collections::HashMap;

use rmp::Marker;

use crate::value::Value;

/// Deepest nesting of arrays and maps accepted in one message.
pub(crate) const MAX_DEPTH: usize = 64;

/// Result of looking for one value at the start of a buffer.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// A whole value and the number of bytes it took.
    Value(Value, usize),
    /// The bytes so far are a valid beginning; more are needed.
    Incomplete,
    /// Not MessagePack (or not accepted); the text says why.
    Malformed(String),
}

/// Decodes the first value in `buf`.
pub fn decode(buf: &[u8]) -> Decoded {
    let mut r = Reader { buf, pos: 0 };
    match r.value(0) {
        Ok(v) => Decoded::Value(v, r.pos),
        Err(Stop::More) => Decoded::Incomplete,
        Err(Stop::Bad(msg)) => Decoded::Malformed(msg),
    }
}

enum Stop {
    More,
    Bad(String),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        let end = self.pos.checked_add(n).ok_or(Stop::More)?;
        if end > self.buf.len() {
            return Err(Stop::More);
        }
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, Stop> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | *b as u64))
    }

    fn bytes(&mut self, n: u64) -> Result<&'a [u8], Stop> {
        let n = usize::try_from(n).map_err(|_| Stop::More)?;
        self.take(n)
    }

    fn value(&mut self, depth: usize) -> Result<Value, Stop> {
        let m = Marker::from_u8(self.take(1)?[0]);
        Ok(match m {
            Marker::FixPos(n) => Value::Int(n as i64),
            Marker::FixNeg(n) => Value::Int(n as i64),
            Marker::Null => Value::Undefined,
            Marker::True => Value::Int(1),
            Marker::False => Value::Int(0),
            Marker::U8 => Value::Int(self.be(1)? as i64),
            Marker::U16 => Value::Int(self.be(2)? as i64),
            Marker::U32 => Value::Int(self.be(4)? as i64),
            Marker::U64 => {
                let n = self.be(8)?;
                i64::try_from(n).map_or(Value::Real(n as f64), Value::Int)
            }
            Marker::I8 => Value::Int(self.be(1)? as u8 as i8 as i64),
            Marker::I16 => Value::Int(self.be(2)? as u16 as i16 as i64),
            Marker::I32 => Value::Int(self.be(4)? as u32 as i32 as i64),
            Marker::I64 => Value::Int(self.be(8)? as i64),
            Marker::F32 => Value::Real(f32::from_bits(self.be(4)? as u32) as f64),
            Marker::F64 => Value::Real(f64::from_bits(self.be(8)?)),
            Marker::FixStr(n) => self.string(n as u64)?,
            Marker::Str8 => {
                let n = self.be(1)?;
                self.string(n)?
            }
            Marker::Str16 => {
                let n = self.be(2)?;
                self.string(n)?
            }
            Marker::Str32 => {
                let n = self.be(4)?;
                self.string(n)?
            }
            Marker::Bin8 => {
                let n = self.be(1)?;
                Value::Buffer(self.bytes(n)?.to_vec())
            }
            Marker::Bin16 => {
                let n = self.be(2)?;
                Value::Buffer(self.bytes(n)?.to_vec())
            }
            Marker::Bin32 => {
                let n = self.be(4)?;
                Value::Buffer(self.bytes(n)?.to_vec())
            }
            Marker::FixArray(n) => self.array(n as u64, depth)?,
            Marker::Array16 => {
                let n = self.be(2)?;
                self.array(n, depth)?
            }
            Marker::Array32 => {
                let n = self.be(4)?;
                self.array(n, depth)?
            }
            Marker::FixMap(n) => self.map(n as u64, depth)?,
            Marker::Map16 => {
                let n = self.be(2)?;
                self.map(n, depth)?
            }
            Marker::Map32 => {
                let n = self.be(4)?;
                self.map(n, depth)?
            }
            Marker::FixExt1
            | Marker::FixExt2
            | Marker::FixExt4
            | Marker::FixExt8
            | Marker::FixExt16
            | Marker::Ext8
            | Marker::Ext16
            | Marker::Ext32 => {
                return Err(Stop::Bad(
                    "MessagePack extension types are not supported".into(),
                ))
            }
            Marker::Reserved => {
                return Err(Stop::Bad(format!(
                    "byte 0xc1 at offset {} is not MessagePack",
                    self.pos - 1
                )))
            }
        })
    }

    fn string(&mut self, n: u64) -> Result<Value, Stop> {
        Ok(Value::from_bytes_lossless(self.bytes(n)?.to_vec()))
    }

    fn nest(depth: usize) -> Result<usize, Stop> {
        if depth >= MAX_DEPTH {
            return Err(Stop::Bad(format!(
                "arrays and maps nested deeper than {MAX_DEPTH}"
            )));
        }
        Ok(depth + 1)
    }

    /// Room for `n` items, but never more than the bytes left could hold
    /// (a length prefix alone must not allocate).
    fn capacity(&self, n: u64) -> usize {
        (n as usize).min(self.buf.len() - self.pos)
    }

    fn array(&mut self, n: u64, depth: usize) -> Result<Value, Stop> {
        let depth = Self::nest(depth)?;
        let mut items = Vec::with_capacity(self.capacity(n));
        for _ in 0..n {
            items.push(self.value(depth)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, n: u64, depth: usize) -> Result<Value, Stop> {
        let depth = Self::nest(depth)?;
        let mut pairs: Vec<(Value, Value)> = Vec::with_capacity(self.capacity(n));
        // A repeated key keeps the last value. Small maps compare keys;
        // larger ones index each key's canonical encoding, so a hostile map
        // cannot cost n² comparisons.
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        for _ in 0..n {
            let k = self.value(depth)?;
            let v = self.value(depth)?;
            if pairs.len() < SMALL_MAP {
                match pairs.iter().position(|(pk, _)| *pk == k) {
                    Some(i) => pairs[i].1 = v,
                    None => pairs.push((k, v)),
                }
                continue;
            }
            if index.is_empty() {
                for (i, (pk, _)) in pairs.iter().enumerate() {
                    index.insert(canonical(pk), i);
                }
            }
            match index.entry(canonical(&k)) {
                std::collections::hash_map::Entry::Occupied(e) => pairs[*e.get()].1 = v,
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(pairs.len());
                    pairs.push((k, v));
                }
            }
        }
        Ok(Value::Mapping(pairs))
    }
}

/// Maps up to this many keys look for repeats by comparing values.
const SMALL_MAP: usize = 8;

/// Equal LPC values encode to equal bytes (the encoder is deterministic).
fn canonical(k: &Value) -> Vec<u8> {
    let mut b = Vec::new();
    encode_value(&mut b, k, 0);
    b
}

/// How far `Scanner::scan` got.
#[derive(Debug, PartialEq)]
pub enum Scan {
    /// One whole value takes the first `n` bytes.
    Complete(usize),
    /// More bytes are needed; the scanner remembers where it stopped.
    Incomplete,
    Malformed(String),
}

/// Finds where one value ends without building it, and resumes where it
/// stopped when more bytes arrive: a message that trickles in costs one
/// pass over its bytes, not one per read. The same rules as `decode`
/// (extension types, nesting) apply, plus a size `limit`.
#[derive(Debug, Default)]
pub struct Scanner {
    /// Bytes of the current value already accounted for.
    pos: usize,
    /// Items still to come in each open array or map, innermost last.
    open: Vec<u64>,
}

impl Scanner {
    /// Scans `buf`, which starts at the value's first byte (and holds at
    /// least what earlier calls saw). After `Complete`, call `reset`.
    pub fn scan(&mut self, buf: &[u8], limit: usize) -> Scan {
        loop {
            let Some(&b) = buf.get(self.pos) else {
                return Scan::Incomplete;
            };
            let be = |at: usize, n: usize| -> Option<u64> {
                let s = buf.get(self.pos + at..self.pos + at + n)?;
                Some(s.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64))
            };
            // (header bytes, payload bytes, items inside), or Incomplete.
            let (head, body, items) = match Marker::from_u8(b) {
                Marker::FixPos(_)
                | Marker::FixNeg(_)
                | Marker::Null
                | Marker::True
                | Marker::False => (1, 0, 0),
                Marker::U8 | Marker::I8 => (1, 1, 0),
                Marker::U16 | Marker::I16 => (1, 2, 0),
                Marker::U32 | Marker::I32 | Marker::F32 => (1, 4, 0),
                Marker::U64 | Marker::I64 | Marker::F64 => (1, 8, 0),
                Marker::FixStr(n) => (1, n as u64, 0),
                Marker::FixArray(n) => (1, 0, n as u64),
                Marker::FixMap(n) => (1, 0, 2 * n as u64),
                m => {
                    let (len_bytes, kind) = match m {
                        Marker::Str8 | Marker::Bin8 => (1, 0),
                        Marker::Str16 | Marker::Bin16 => (2, 0),
                        Marker::Str32 | Marker::Bin32 => (4, 0),
                        Marker::Array16 => (2, 1),
                        Marker::Array32 => (4, 1),
                        Marker::Map16 => (2, 2),
                        Marker::Map32 => (4, 2),
                        Marker::Reserved => {
                            return Scan::Malformed(format!(
                                "byte 0xc1 at offset {} is not MessagePack",
                                self.pos
                            ))
                        }
                        _ => {
                            return Scan::Malformed(
                                "MessagePack extension types are not supported".into(),
                            )
                        }
                    };
                    let Some(n) = be(1, len_bytes) else {
                        return Scan::Incomplete;
                    };
                    match kind {
                        0 => (1 + len_bytes, n, 0),
                        k => (1 + len_bytes, 0, k * n),
                    }
                }
            };
            // Arrays and maps count towards the nesting limit even when empty
            // (as in `decode`).
            let container = matches!(
                Marker::from_u8(b),
                Marker::FixArray(_)
                    | Marker::Array16
                    | Marker::Array32
                    | Marker::FixMap(_)
                    | Marker::Map16
                    | Marker::Map32
            );
            if container && self.open.len() >= MAX_DEPTH {
                return Scan::Malformed(format!("arrays and maps nested deeper than {MAX_DEPTH}"));
            }
            let end = (self.pos as u64)
                .saturating_add(head as u64)
                .saturating_add(body);
            if end > limit as u64 {
                return Scan::Malformed(format!(
                    "message of {end} bytes or more is over the {limit}-byte limit"
                ));
            }
            let end = end as usize;
            if end > buf.len() {
                return Scan::Incomplete;
            }
            self.pos = end;
            if items > 0 {
                self.open.push(items);
                continue;
            }
            // One item is complete; so may be the containers it closes.
            loop {
                match self.open.last_mut() {
                    None => return Scan::Complete(self.pos),
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        self.open.pop();
                    }
                }
            }
        }
    }

    pub fn reset(&mut self) {
        self.pos = 0;
        self.open.clear();
    }
}

/// Appends `v` as MessagePack. Values nested deeper than `MAX_DEPTH` are
/// written as nil (LPC values cannot be cyclic, so this only bounds the stack).
pub fn encode_value(out: &mut Vec<u8>, v: &Value, depth: usize) {
    use rmp::encode as e;
    // Writing to a Vec cannot fail.
    match v {
        Value::Undefined => e::write_nil(out).expect("vec write"),
        Value::Int(i) => {
            e::write_sint(out, *i).expect("vec write");
        }
        Value::Real(f) => e::write_f64(out, *f).expect("vec write"),
        Value::Str(s) => e::write_str(out, s).expect("vec write"),
        Value::Buffer(b) => e::write_bin(out, b).expect("vec write"),
        Value::Array(a) if depth < MAX_DEPTH => {
            e::write_array_len(out, a.len() as u32).expect("vec write");
            for x in a {
                encode_value(out, x, depth + 1);
            }
        }
        Value::Mapping(m) if depth < MAX_DEPTH => {
            e::write_map_len(out, m.len() as u32).expect("vec write");
            for (k, x) in m {
                encode_value(out, k, depth + 1);
                encode_value(out, x, depth + 1);
            }
        }
        Value::Array(_) | Value::Mapping(_) => e::write_nil(out).expect("vec write"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let v = Value::mapping([
            (
                "a",
                Value::Array(vec![Value::Int(-1), Value::Real(2.5), Value::Undefined]),
            ),
            ("b", Value::Buffer(vec![0, 255])),
            ("c", Value::Mapping(vec![])),
            ("d", Value::Array(vec![Value::Array(vec![])])),
            ("e", Value::str("x".repeat(300))),
            ("f", Value::Int(i64::MIN)),
        ]);
        let mut out = Vec::new();
        encode_value(&mut out, &v, 0);
        out
    }

    #[test]
    fn scanner_agrees_with_decode_byte_by_byte() {
        let bytes = sample();
        let mut sc = Scanner::default();
        for n in 0..bytes.len() {
            assert_eq!(sc.scan(&bytes[..n], 1 << 20), Scan::Incomplete, "at {n}");
        }
        assert_eq!(sc.scan(&bytes, 1 << 20), Scan::Complete(bytes.len()));
        match decode(&bytes) {
            Decoded::Value(_, n) => assert_eq!(n, bytes.len()),
            other => panic!("{other:?}"),
        }
        let mut fresh = Scanner::default();
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        assert_eq!(fresh.scan(&two, 1 << 20), Scan::Complete(bytes.len()));
    }

    #[test]
    fn scanner_refuses_what_decode_refuses() {
        let mut sc = Scanner::default();
        assert!(matches!(sc.scan(&[0xc1], 100), Scan::Malformed(_)));
        sc.reset();
        assert!(matches!(sc.scan(&[0xd4, 1, 2], 100), Scan::Malformed(_)));
        sc.reset();
        let deep = vec![0x91u8; MAX_DEPTH + 1];
        assert!(matches!(sc.scan(&deep, 1000), Scan::Malformed(_)));
        assert!(matches!(decode(&deep), Decoded::Malformed(_)));
        // F6 (docs/FUZZING.md): an empty array or map at the first level too deep.
        for empty in [0x90u8, 0x80] {
            let mut deep = vec![0x91u8; MAX_DEPTH];
            deep.push(empty);
            sc.reset();
            assert!(matches!(sc.scan(&deep, 1000), Scan::Malformed(_)));
            assert!(matches!(decode(&deep), Decoded::Malformed(_)));
            sc.reset();
            assert_eq!(sc.scan(&deep[1..], 1000), Scan::Complete(MAX_DEPTH));
            assert!(matches!(decode(&deep[1..]), Decoded::Value(..)));
        }
        sc.reset();
        // A length prefix past the limit fails before the bytes arrive.
        assert!(matches!(
            sc.scan(&[0xdb, 0xff, 0xff, 0xff, 0xff], 1 << 20),
            Scan::Malformed(_)
        ));
        sc.reset();
        assert!(matches!(
            sc.scan(&[0xdd, 0xff, 0xff, 0xff, 0xff], 1 << 20),
            Scan::Incomplete
        ));
    }

    #[test]
    fn repeated_keys_keep_the_last_value() {
        let mut out = Vec::new();
        rmp::encode::write_map_len(&mut out, 20).unwrap();
        for i in 0..20 {
            rmp::encode::write_str(&mut out, if i % 2 == 0 { "k" } else { "j" }).unwrap();
            rmp::encode::write_sint(&mut out, i).unwrap();
        }
        match decode(&out) {
            Decoded::Value(Value::Mapping(p), _) => {
                assert_eq!(p.len(), 2);
                assert_eq!(p[0], (Value::str("k"), Value::Int(18)));
                assert_eq!(p[1], (Value::str("j"), Value::Int(19)));
            }
            other => panic!("{other:?}"),
        }
    }
}
