//! The value tree that crosses the C boundary: the LPC value kinds unisock needs
//! (int, real, string, buffer, array, mapping, undefined), owned by Rust.
//!
//! The shim converts `svalue_t` to and from this tree; Rust never mirrors the
//! driver's layouts. Strings are always valid UTF-8 (the driver's are too);
//! arbitrary bytes travel as buffers. Mappings keep insertion order so that
//! output (JSON, LPC) is stable.

use std::fmt;

/// One LPC value.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// LPC's undefined (T_NUMBER with subtype T_UNDEFINED).
    #[default]
    Undefined,
    Int(i64),
    Real(f64),
    Str(String),
    Buffer(Vec<u8>),
    Array(Vec<Value>),
    /// Key/value pairs in insertion order; keys are unique.
    Mapping(Vec<(Value, Value)>),
}

impl Value {
    /// The LPC spelling of the value's type, as used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Undefined => "undefined",
            Value::Int(_) => "int",
            Value::Real(_) => "float",
            Value::Str(_) => "string",
            Value::Buffer(_) => "buffer",
            Value::Array(_) => "array",
            Value::Mapping(_) => "mapping",
        }
    }

    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// Bytes as a string when they are valid UTF-8, otherwise as a buffer
    /// (the callbacks.md rule for payloads).
    pub fn from_bytes_lossless(bytes: Vec<u8>) -> Value {
        match String::from_utf8(bytes) {
            Ok(s) => Value::Str(s),
            Err(e) => Value::Buffer(e.into_bytes()),
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// String or buffer contents.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(s) => Some(s.as_bytes()),
            Value::Buffer(b) => Some(b),
            _ => None,
        }
    }

    /// Looks up a string key in a mapping.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Mapping(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Inserts or replaces `key` in a mapping; does nothing on other kinds.
    pub fn insert(&mut self, key: Value, value: Value) {
        if let Value::Mapping(pairs) = self {
            if let Some(slot) = pairs.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = value;
            } else {
                pairs.push((key, value));
            }
        }
    }

    /// Builds a mapping from string keys.
    pub fn mapping<I, K>(pairs: I) -> Value
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        let mut m = Value::Mapping(Vec::new());
        for (k, v) in pairs {
            m.insert(Value::Str(k.into()), v);
        }
        m
    }

    /// A short rendering for error messages ("got 5", "got \"abc\"", "got a mapping").
    pub fn describe(&self) -> String {
        match self {
            Value::Undefined => "undefined".into(),
            Value::Int(i) => i.to_string(),
            Value::Real(r) => format!("{r}"),
            Value::Str(s) => {
                let mut t: String = s.chars().take(40).collect();
                if t.len() < s.len() {
                    t.push('…');
                }
                format!("{t:?}")
            }
            Value::Buffer(b) => format!("a buffer of {} bytes", b.len()),
            Value::Array(a) => format!("an array of {} elements", a.len()),
            Value::Mapping(m) => format!("a mapping of {} pairs", m.len()),
        }
    }

    /// Converts to JSON (buffers become `{"buffer": [bytes]}`; int and float
    /// mapping keys become their text, other non-string keys a short
    /// description such as "an array of 2 elements" — lossy by design).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Undefined => J::Null,
            Value::Int(i) => J::from(*i),
            Value::Real(r) => serde_json::Number::from_f64(*r)
                .map(J::Number)
                .unwrap_or(J::Null),
            Value::Str(s) => J::String(s.clone()),
            Value::Buffer(b) => J::Object(
                [(
                    "buffer".to_string(),
                    J::Array(b.iter().map(|x| J::from(*x)).collect()),
                )]
                .into_iter()
                .collect(),
            ),
            Value::Array(a) => J::Array(a.iter().map(Value::to_json).collect()),
            Value::Mapping(m) => J::Object(
                m.iter()
                    .map(|(k, v)| {
                        // JSON keys are strings. Numbers become their text;
                        // other kinds a short description. Rendering a
                        // container key as JSON text would be escaped again at
                        // every level: exponential in the nesting.
                        let key = match k {
                            Value::Str(s) => s.clone(),
                            Value::Int(i) => i.to_string(),
                            Value::Real(r) => format!("{r}"),
                            other => other.describe(),
                        };
                        (key, v.to_json())
                    })
                    .collect(),
            ),
        }
    }

    /// Converts from JSON: null → undefined, integers → int, other numbers →
    /// float, `{"buffer": [bytes]}` → buffer, objects → mappings with string keys.
    pub fn from_json(j: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match j {
            J::Null => Value::Undefined,
            J::Bool(b) => Value::Int(*b as i64),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Real(n.as_f64().unwrap_or(0.0)),
            },
            J::String(s) => Value::Str(s.clone()),
            J::Array(a) => Value::Array(a.iter().map(Value::from_json).collect()),
            J::Object(o) => {
                if o.len() == 1 {
                    if let Some(J::Array(bytes)) = o.get("buffer") {
                        if bytes.iter().all(|b| b.as_u64().is_some_and(|x| x < 256)) {
                            return Value::Buffer(
                                bytes
                                    .iter()
                                    .map(|b| b.as_u64().unwrap_or(0) as u8)
                                    .collect(),
                            );
                        }
                    }
                }
                Value::Mapping(
                    o.iter()
                        .map(|(k, v)| (Value::Str(k.clone()), Value::from_json(v)))
                        .collect(),
                )
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_kinds() {
        let v = Value::mapping([
            ("a", Value::Int(1)),
            ("b", Value::Real(1.5)),
            ("c", Value::Buffer(vec![0, 255])),
            ("d", Value::Array(vec![Value::str("x"), Value::Undefined])),
        ]);
        assert_eq!(Value::from_json(&v.to_json()), v);
    }

    #[test]
    fn bytes_become_string_only_when_utf8() {
        assert_eq!(Value::from_bytes_lossless(b"hi".to_vec()), Value::str("hi"));
        assert_eq!(
            Value::from_bytes_lossless(vec![0xff]),
            Value::Buffer(vec![0xff])
        );
    }

    #[test]
    fn nested_container_keys_render_in_linear_size() {
        let mut v = Value::Int(1);
        for _ in 0..20 {
            v = Value::Mapping(vec![(v, Value::str("\"quoted\""))]);
        }
        assert!(v.to_json().to_string().len() < 10_000);
        let m = Value::Mapping(vec![(Value::Int(3), Value::str("x"))]);
        assert_eq!(m.to_json().to_string(), r#"{"3":"x"}"#);
    }
}
