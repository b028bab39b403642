//! The bus message (callbacks.md "IPC message bus"): one MessagePack map
//! `{ event_name, timestamp_ms, timestamp_iso, message_type, data }`.
//!
//! `outgoing` turns what LPC gave `socket_write` into those bytes, stamped
//! now in the bus's zone; `incoming` checks a map a peer sent and fills in
//! what it left out, so LPC always sees the five keys.

use crate::value::Value;

use super::codec::encode_value;

pub const TYPES: [&str; 3] = ["data", "error", "control"];

/// Keys LPC may pass to socket_write: the two it chooses, and the ones a
/// received message carries (so a message can be forwarded as it came);
/// those are replaced by the bus's own name and the time of sending.
const WRITE_KEYS: [&str; 6] = [
    "message_type",
    "data",
    "event_name",
    "timestamp_ms",
    "timestamp_iso",
    "client_id",
];

/// The bus's name and time zone: what every message is stamped with.
pub struct Stamp {
    pub event_name: String,
    tz: jiff::tz::TimeZone,
}

impl Stamp {
    /// `zone` was checked when the option was set; an unknown zone here
    /// (the database changed since) falls back to UTC.
    pub fn new(event_name: &str, zone: &str) -> Stamp {
        Stamp {
            event_name: event_name.to_string(),
            tz: jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC),
        }
    }

    /// (milliseconds since the epoch, ISO 8601 with milliseconds and offset).
    pub fn now(&self) -> (i64, String) {
        let ts = jiff::Timestamp::now();
        let iso = ts
            .to_zoned(self.tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string();
        (ts.as_millisecond(), iso)
    }

    /// The wire bytes of a message of `message_type` carrying `data`.
    pub fn encode(&self, message_type: &str, data: &Value) -> Vec<u8> {
        let (ms, iso) = self.now();
        let mut out = Vec::with_capacity(96 + self.event_name.len());
        rmp::encode::write_map_len(&mut out, 5).expect("vec write");
        for (k, v) in [
            ("event_name", Field::Str(&self.event_name)),
            ("timestamp_ms", Field::Int(ms)),
            ("timestamp_iso", Field::Str(&iso)),
            ("message_type", Field::Str(message_type)),
            ("data", Field::Value(data)),
        ] {
            rmp::encode::write_str(&mut out, k).expect("vec write");
            match v {
                Field::Str(s) => rmp::encode::write_str(&mut out, s).expect("vec write"),
                Field::Int(i) => {
                    rmp::encode::write_sint(&mut out, i).expect("vec write");
                }
                Field::Value(v) => encode_value(&mut out, v, 1),
            }
        }
        out
    }

    /// An ERROR message: `data` is `{ "error": code, "message": text }`.
    pub fn error(&self, code: &str, text: &str) -> Vec<u8> {
        self.encode(
            "error",
            &Value::mapping([("error", Value::str(code)), ("message", Value::str(text))]),
        )
    }
}

enum Field<'a> {
    Str(&'a str),
    Int(i64),
    Value(&'a Value),
}

/// Checks socket_write's value: a mapping with "data" (a mapping) and an
/// optional "message_type". Returns (message_type, data).
pub fn outgoing(v: &Value) -> Result<(&str, &Value), String> {
    let Value::Mapping(pairs) = v else {
        return Err(format!(
            "an IPC message is a mapping ([ \"message_type\": \"data\", \"data\": ([ ... ]) ]), got {}",
            v.type_name()
        ));
    };
    for (k, _) in pairs {
        match k {
            Value::Str(s) if WRITE_KEYS.contains(&s.as_str()) => {}
            _ => {
                return Err(format!(
                    "an IPC message takes the keys \"message_type\" and \"data\", not {}",
                    k.describe()
                ))
            }
        }
    }
    let message_type = match v.get("message_type") {
        None => "data",
        Some(Value::Str(t)) => TYPES
            .iter()
            .copied()
            .find(|x| x.eq_ignore_ascii_case(t))
            .ok_or_else(|| {
                format!("message_type must be \"data\", \"error\" or \"control\", got {t:?}")
            })?,
        Some(other) => {
            return Err(format!(
                "message_type must be a string (\"data\", \"error\" or \"control\"), got {}",
                other.type_name()
            ))
        }
    };
    match v.get("data") {
        Some(d @ Value::Mapping(_)) => Ok((message_type, d)),
        Some(other) => Err(format!(
            "\"data\" must be a mapping, got {}",
            other.type_name()
        )),
        None => Err("an IPC message needs \"data\" (a mapping)".into()),
    }
}

/// Checks a decoded message from a peer and completes it: the five keys are
/// there afterwards (missing ones filled from `stamp`), other keys are kept.
pub fn incoming(v: Value, stamp: &Stamp) -> Result<Value, String> {
    let Value::Mapping(mut pairs) = v else {
        return Err(format!(
            "a message must be a map with event_name, timestamp_ms, timestamp_iso, message_type and data; got {}",
            v.type_name()
        ));
    };
    let pos = |pairs: &[(Value, Value)], key: &str| {
        pairs
            .iter()
            .position(|(k, _)| matches!(k, Value::Str(s) if s == key))
    };
    match pos(&pairs, "message_type") {
        None => pairs.push((Value::str("message_type"), Value::str("data"))),
        Some(i) => {
            let t = match &pairs[i].1 {
                Value::Str(t) => TYPES.iter().find(|x| x.eq_ignore_ascii_case(t)),
                _ => None,
            }
            .ok_or_else(|| {
                format!(
                    "message_type must be \"data\", \"error\" or \"control\", got {}",
                    pairs[i].1.describe()
                )
            })?;
            pairs[i].1 = Value::str(*t);
        }
    }
    match pos(&pairs, "data") {
        None => pairs.push((Value::str("data"), Value::Mapping(Vec::new()))),
        Some(i) if matches!(pairs[i].1, Value::Mapping(_)) => {}
        Some(i) => {
            return Err(format!(
                "\"data\" must be a map, got {}",
                pairs[i].1.type_name()
            ))
        }
    }
    if pos(&pairs, "event_name").is_none() {
        pairs.push((Value::str("event_name"), Value::str(&stamp.event_name)));
    }
    let has_ms = pos(&pairs, "timestamp_ms").is_some();
    let has_iso = pos(&pairs, "timestamp_iso").is_some();
    if !has_ms || !has_iso {
        let (ms, iso) = stamp.now();
        if !has_ms {
            pairs.push((Value::str("timestamp_ms"), Value::Int(ms)));
        }
        if !has_iso {
            pairs.push((Value::str("timestamp_iso"), Value::Str(iso)));
        }
    }
    Ok(Value::Mapping(pairs))
}

#[cfg(test)]
mod tests {
    use super::super::codec::{decode, Decoded};
    use super::*;

    #[test]
    fn encode_is_the_spec_map() {
        let s = Stamp::new("bus", "Europe/Berlin");
        let bytes = s.encode("data", &Value::mapping([("n", Value::Int(1))]));
        let Decoded::Value(v, n) = decode(&bytes) else {
            panic!()
        };
        assert_eq!(n, bytes.len());
        let keys: Vec<_> = match &v {
            Value::Mapping(p) => p.iter().map(|(k, _)| k.as_str().unwrap()).collect(),
            _ => panic!(),
        };
        assert_eq!(
            keys,
            [
                "event_name",
                "timestamp_ms",
                "timestamp_iso",
                "message_type",
                "data"
            ]
        );
        let iso = v.get("timestamp_iso").unwrap().as_str().unwrap();
        assert!(iso.ends_with("+01:00") || iso.ends_with("+02:00"), "{iso}");
        assert_eq!(iso.len(), "2026-11-22T08:51:42.719+01:00".len());
    }

    #[test]
    fn outgoing_rules() {
        let m = |pairs: Vec<(&str, Value)>| Value::mapping(pairs);
        assert!(outgoing(&Value::Int(1)).is_err());
        assert!(outgoing(&m(vec![("message_type", Value::str("data"))])).is_err());
        assert!(outgoing(&m(vec![("data", Value::Int(1))])).is_err());
        assert!(outgoing(&m(vec![("data", m(vec![])), ("x", Value::Int(1))])).is_err());
        assert!(outgoing(&m(vec![
            ("data", m(vec![])),
            ("message_type", Value::str("x"))
        ]))
        .is_err());
        let ok = m(vec![
            ("data", m(vec![])),
            ("message_type", Value::str("CONTROL")),
        ]);
        assert_eq!(outgoing(&ok).unwrap().0, "control");
    }

    #[test]
    fn incoming_fills_and_checks() {
        let s = Stamp::new("bus", "UTC");
        let v = incoming(
            Value::mapping([("data", Value::mapping([("a", Value::Int(1))]))]),
            &s,
        )
        .unwrap();
        for k in [
            "event_name",
            "timestamp_ms",
            "timestamp_iso",
            "message_type",
            "data",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert!(incoming(Value::Int(3), &s).is_err());
        assert!(incoming(Value::mapping([("data", Value::Int(1))]), &s).is_err());
        assert!(incoming(Value::mapping([("message_type", Value::str("nope"))]), &s).is_err());
    }
}
