//! Per-socket option values: what LPC set, deep-copied, validated, and freed
//! with the socket.

use super::{validate, Access, Check, OptionDef, OptionError, When};
use crate::error::Error;
use crate::value::Value;

/// Most entries an appending option (REST_ADD_ROUTE) holds.
pub const MAX_APPENDED: usize = 4096;

/// The options one socket holds: a handful per socket, so a small vector
/// searched in place beats any map (the set/get pair is on the hot path).
#[derive(Clone, Debug, Default)]
pub struct OptionStore {
    values: Vec<(u16, Value)>,
}

impl OptionStore {
    fn lookup(&self, id: u16) -> Option<&Value> {
        self.values.iter().find(|(k, _)| *k == id).map(|(_, v)| v)
    }

    fn insert(&mut self, id: u16, value: Value) {
        match self.values.iter_mut().find(|(k, _)| *k == id) {
            Some(slot) => slot.1 = value,
            None => self.values.push((id, value)),
        }
    }

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
        crate::policy::gate::option(def.id, def.name, &stored)?;
        if started && def.when == When::BeforeStart {
            return Err(OptionError::TooLate {
                verb,
                name: def.name,
                id: def.id,
            }
            .into());
        }
        if def.append {
            if self.lookup(def.id).is_none() {
                self.values.push((def.id, Value::Array(Vec::new())));
            }
            let slot = self.values.iter_mut().find(|(k, _)| *k == def.id);
            if let Some((_, Value::Array(items))) = slot {
                if items.len() >= MAX_APPENDED {
                    return Err(OptionError::Full {
                        verb,
                        name: def.name,
                        id: def.id,
                        max: MAX_APPENDED,
                    }
                    .into());
                }
                items.push(stored);
            }
        } else if def.access != Access::WriteOnly {
            self.insert(def.id, stored);
        }
        Ok(def)
    }

    /// `set` for an int value without building or cloning a `Value`: plain
    /// read-write int options with a Bool or IntRange check take this path;
    /// everything else (and every error) goes through `set`, so the rules
    /// and messages are the same.
    pub fn set_int(
        &mut self,
        id: i64,
        value: i64,
        mode: u8,
        started: bool,
    ) -> Result<&'static OptionDef, Error> {
        let fast = super::catalog::find(id).and_then(|def| {
            let plain = def.access == Access::ReadWrite
                && !def.append
                && !crate::policy::gate::gates(def.id)
                && def.modes.contains(mode)
                && !(started && def.when == When::BeforeStart);
            let stored = match def.check {
                Check::Bool if plain => Some((value != 0) as i64),
                Check::IntRange(lo, hi) if plain && (lo..=hi).contains(&value) => Some(value),
                _ => None,
            };
            stored
                .filter(|_| def.kinds.accepts(&Value::Int(0)))
                .map(|v| (def, v))
        });
        let Some((def, stored)) = fast else {
            return self.set(id, &Value::Int(value), mode, started);
        };
        match self.values.iter_mut().find(|(k, _)| *k == def.id) {
            Some((_, Value::Int(slot))) => *slot = stored,
            Some((_, other)) => *other = Value::Int(stored),
            None => self.values.push((def.id, Value::Int(stored))),
        }
        Ok(def)
    }

    /// `get` for an option read as an int, without cloning: Ok(Some) for an
    /// int value, Ok(None) when the value is of another kind.
    pub fn get_int(&self, id: i64, mode: u8) -> Result<Option<i64>, Error> {
        if let Some(def) = super::catalog::find(id) {
            if def.access == Access::ReadWrite && def.modes.contains(mode) {
                return Ok(match self.lookup(def.id) {
                    Some(v) => v.as_int(),
                    None => def.default.value(mode).as_int(),
                });
            }
        }
        self.get(id, mode).map(|v| v.as_int())
    }

    /// The value LPC reads back: the stored value, or the default; secrets redacted.
    pub fn get(&self, id: i64, mode: u8) -> Result<Value, Error> {
        let verb = "socket_get_option";
        let def = validate::lookup(id, verb)?;
        validate::check_mode(def, mode, verb)?;
        match def.access {
            Access::WriteOnly | Access::Invalid => Err(OptionError::WriteOnly {
                verb,
                name: def.name,
                id: def.id,
            }
            .into()),
            Access::Secret => Ok(if self.lookup(def.id).is_some() {
                Value::str("<set>")
            } else {
                Value::Int(0)
            }),
            _ => Ok(self.effective(def, mode)),
        }
    }

    /// The value the library acts on (secrets in clear): stored or default.
    pub fn effective(&self, def: &OptionDef, mode: u8) -> Value {
        self.lookup(def.id)
            .cloned()
            .unwrap_or_else(|| def.default.value(mode))
    }

    /// The stored value of `id`, if LPC set one.
    pub fn raw(&self, id: u16) -> Option<&Value> {
        self.lookup(id)
    }

    /// Effective int value of `id` (stored or default); 0 when not an int.
    pub fn int(&self, id: u16, mode: u8) -> i64 {
        let Some(d) = super::catalog::find(id as i64) else {
            return 0;
        };
        // As `effective`, without copying a stored value to read it.
        match self.lookup(id) {
            Some(v) => v.as_int(),
            None => d.default.value(mode).as_int(),
        }
        .unwrap_or(0)
    }

    /// Stored string value of `id`, if set.
    pub fn string(&self, id: u16) -> Option<&str> {
        self.lookup(id).and_then(Value::as_str)
    }

    /// Sets a value unisock itself produces (read-only options such as a
    /// negotiated subprotocol), bypassing LPC validation.
    pub fn set_internal(&mut self, id: u16, value: Value) {
        self.insert(id, value);
    }

    /// The stored value of option `id` (for `restore`); None when unset or
    /// not an option.
    pub fn snapshot(&self, id: i64) -> Option<Value> {
        u16::try_from(id)
            .ok()
            .and_then(|id| self.lookup(id).cloned())
    }

    /// Puts back what `snapshot` returned.
    pub fn restore(&mut self, id: u16, value: Option<Value>) {
        match value {
            Some(v) => self.insert(id, v),
            None => self.values.retain(|(k, _)| *k != id),
        }
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

    #[test]
    fn set_int_matches_set() {
        for (id, v, mode, started) in [
            (11, 7, 1, false),
            (13, 12, 1, false),
            (13, 4096, 1, false),
            (104, 5000, 1, false),
            (1, 1, 5, true),
            (18, 1, 1, false),
            (0, 1, 1, false),
            (777, 1, 1, false),
            (2, 1, 5, false),
        ] {
            let (mut a, mut b) = (OptionStore::default(), OptionStore::default());
            let ra = a.set(id, &Value::Int(v), mode, started).map(|d| d.id);
            let rb = b.set_int(id, v, mode, started).map(|d| d.id);
            assert_eq!(ra, rb, "option {id} value {v}");
            assert_eq!(a.get(id, mode).ok(), b.get(id, mode).ok());
            assert_eq!(
                a.get(id, mode).ok().and_then(|v| v.as_int()),
                b.get_int(id, mode).ok().flatten()
            );
        }
    }
}
