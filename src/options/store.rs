//! Per-socket option values: what LPC set, deep-copied, validated, and freed
//! with the socket.

use std::collections::BTreeMap;

use super::{validate, Access, OptionDef, When};
use crate::error::{Error, ResultCode};
use crate::value::Value;

/// Most entries an appending option (REST_ADD_ROUTE) holds.
pub const MAX_APPENDED: usize = 4096;

/// The options one socket holds.
#[derive(Clone, Debug, Default)]
pub struct OptionStore {
    values: BTreeMap<u16, Value>,
}

impl OptionStore {
    /// Validates and stores `value` for option `id` on a socket of `mode`.
    /// `started` is true once the socket has connected, listened or started.
    /// Returns the catalog row so the caller can act on write-only options.
    pub fn set(
        &mut self,
        id: i64,
        value: &Value,
        mode: u8,
        started: bool,
    ) -> Result<&'static OptionDef, Error> {
        let verb = "socket_set_option";
        let def = validate::lookup(id, verb)?;
        if def.access == Access::Invalid {
            // SO_INVALID: say it is no option rather than "does not apply".
            return Err(validate::validate(def, value).expect_err("SO_INVALID never validates"));
        }
        validate::check_mode(def, mode, verb)?;
        let stored = validate::validate(def, value)?;
        if started && def.when == When::BeforeStart {
            return Err(Error::new(
                ResultCode::OptionTooLate,
                format!(
                    "{verb}: {} ({}) can only be set before the socket connects or listens",
                    def.name, def.id
                ),
            ));
        }
        if def.append {
            let slot = self
                .values
                .entry(def.id)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = slot {
                if items.len() >= MAX_APPENDED {
                    return Err(Error::new(
                        ResultCode::TooLarge,
                        format!(
                            "{verb}: {} ({}) already holds {MAX_APPENDED} entries",
                            def.name, def.id
                        ),
                    ));
                }
                items.push(stored);
            }
        } else if def.access != Access::WriteOnly {
            self.values.insert(def.id, stored);
        }
        Ok(def)
    }

    /// The value LPC reads back: the stored value, or the default; secrets redacted.
    pub fn get(&self, id: i64, mode: u8) -> Result<Value, Error> {
        let verb = "socket_get_option";
        let def = validate::lookup(id, verb)?;
        validate::check_mode(def, mode, verb)?;
        match def.access {
            Access::WriteOnly | Access::Invalid => Err(Error::new(
                ResultCode::OptionWriteOnly,
                format!(
                    "{verb}: {} ({}) is write-only and cannot be read",
                    def.name, def.id
                ),
            )),
            Access::Secret => Ok(if self.values.contains_key(&def.id) {
                Value::str("<set>")
            } else {
                Value::Int(0)
            }),
            _ => Ok(self.effective(def, mode)),
        }
    }

    /// The value the library acts on (secrets in clear): stored or default.
    pub fn effective(&self, def: &OptionDef, mode: u8) -> Value {
        self.values
            .get(&def.id)
            .cloned()
            .unwrap_or_else(|| def.default.value(mode))
    }

    /// The stored value of `id`, if LPC set one.
    pub fn raw(&self, id: u16) -> Option<&Value> {
        self.values.get(&id)
    }

    /// Effective int value of `id` (stored or default); 0 when not an int.
    pub fn int(&self, id: u16, mode: u8) -> i64 {
        super::catalog::find(id as i64)
            .map(|d| self.effective(d, mode))
            .and_then(|v| v.as_int())
            .unwrap_or(0)
    }

    /// Stored string value of `id`, if set.
    pub fn string(&self, id: u16) -> Option<&str> {
        self.values.get(&id).and_then(Value::as_str)
    }

    /// Sets a value unisock itself produces (read-only options such as a
    /// negotiated subprotocol), bypassing LPC validation.
    pub fn set_internal(&mut self, id: u16, value: Value) {
        self.values.insert(id, value);
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_default_and_copy() {
        let mut s = OptionStore::default();
        assert_eq!(s.get(12, 1).unwrap(), Value::Int(1)); // SO_NODELAY default
        let mut m = Value::mapping([("X-A", Value::str("1"))]);
        s.set(100, &m, 10, false).unwrap();
        m.insert(Value::str("X-B"), Value::str("2"));
        assert_eq!(
            s.get(100, 10).unwrap(),
            Value::mapping([("X-A", Value::str("1"))])
        );
    }

    #[test]
    fn nothing_stored_on_error() {
        let mut s = OptionStore::default();
        assert!(s.set(104, &Value::Int(5), 10, false).is_err());
        assert!(s.is_empty());
    }

    #[test]
    fn secrets_read_back_redacted() {
        let mut s = OptionStore::default();
        assert_eq!(s.get(133, 20).unwrap(), Value::Int(0));
        s.set(133, &Value::str("hunter2"), 20, false).unwrap();
        assert_eq!(s.get(133, 20).unwrap(), Value::str("<set>"));
    }

    #[test]
    fn appending_option_keeps_an_array() {
        let mut s = OptionStore::default();
        assert_eq!(s.get(111, 14).unwrap(), Value::Array(vec![]));
        let route = |p: &str| {
            Value::mapping([
                ("method", Value::str("GET")),
                ("pattern", Value::str(p)),
                ("handler", Value::str("h")),
            ])
        };
        s.set(111, &route("/a"), 14, false).unwrap();
        s.set(111, &route("/b/{id:int}"), 14, true).unwrap();
        assert!(s.set(111, &route("/c/{"), 14, false).is_err());
        assert_eq!(
            s.get(111, 14).unwrap(),
            Value::Array(vec![route("/a"), route("/b/{id:int}")])
        );
    }
}
