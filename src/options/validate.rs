//! Validation of one option value against its catalog row, producing the
//! error text of `spec/options.md`:
//! `socket_set_option: SO_HTTP_TIMEOUT (104) wants an int in 1000..300000 (ms), got 5`.

use super::{catalog, Access, Check, OptionDef};
use crate::error::{Error, ResultCode};
use crate::modes;
use crate::value::Value;

/// Deepest nesting accepted in an option value (LPC values are finite trees;
/// this bounds recursion on hostile input).
pub const MAX_DEPTH: usize = 32;

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Mapping(m) => {
            1 + m
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

/// "got 5", "got a string \"abc\"", "got a mapping of 2 pairs".
pub fn got(v: &Value) -> String {
    match v {
        Value::Int(i) => format!("got {i}"),
        Value::Real(r) => format!("got a float {r}"),
        Value::Str(_) => format!("got a string {}", v.describe()),
        Value::Undefined => "got undefined".into(),
        other => format!("got {}", other.describe()),
    }
}

/// Finds the row for `id`, or the "unknown option" error.
pub fn lookup(id: i64, verb: &str) -> Result<&'static OptionDef, Error> {
    catalog::find(id).ok_or_else(|| {
        Error::new(
            ResultCode::UnknownOption,
            format!("{verb}: unknown option {id}"),
        )
    })
}

/// The "does not apply" error when the row does not accept `mode`.
pub fn check_mode(def: &OptionDef, mode: u8, verb: &str) -> Result<(), Error> {
    if def.modes.contains(mode) {
        Ok(())
    } else {
        Err(Error::new(
            ResultCode::OptionNotForMode,
            format!(
                "{verb}: {} ({}) does not apply to {} sockets",
                def.name,
                def.id,
                modes::name(mode)
            ),
        ))
    }
}

/// Checks `value` against the row and returns what to store.
pub fn validate(def: &OptionDef, value: &Value) -> Result<Value, Error> {
    let fail = |detail: Option<String>| {
        let mut msg = format!(
            "socket_set_option: {} ({}) wants {}, {}",
            def.name,
            def.id,
            def.wants,
            got(value)
        );
        if let Some(d) = detail {
            msg.push_str(": ");
            msg.push_str(&d);
        }
        Error::new(ResultCode::BadOptionValue, msg)
    };
    match def.access {
        Access::Invalid => {
            return Err(Error::new(
                ResultCode::UnknownOption,
                format!(
                    "socket_set_option: {} ({}) is not an option",
                    def.name, def.id
                ),
            ))
        }
        Access::ReadOnly => {
            return Err(Error::new(
                ResultCode::OptionReadOnly,
                format!("socket_set_option: {} ({}) is read-only", def.name, def.id),
            ))
        }
        _ => {}
    }
    if !def.kinds.accepts(value) {
        return Err(fail(None));
    }
    if depth(value) > MAX_DEPTH {
        return Err(fail(Some(format!("nested deeper than {MAX_DEPTH} levels"))));
    }
    match def.check {
        Check::Any => Ok(value.clone()),
        Check::Bool => match value {
            Value::Int(i) => Ok(Value::Int((*i != 0) as i64)),
            _ => Err(fail(None)),
        },
        Check::IntRange(lo, hi) => match value {
            Value::Int(i) if (lo..=hi).contains(i) => Ok(value.clone()),
            Value::Int(_) => Err(fail(None)),
            // Other accepted kinds (e.g. string|int) pass through untouched.
            _ => Ok(value.clone()),
        },
        Check::StrLen(lo, hi) => match value {
            Value::Str(s) if (lo..=hi).contains(&s.len()) => Ok(value.clone()),
            Value::Str(s) => Err(fail(Some(format!("{} bytes long", s.len())))),
            _ => Ok(value.clone()),
        },
        Check::OneOf(words) => match value {
            Value::Str(s) if words.contains(&s.as_str()) => Ok(value.clone()),
            Value::Str(_) => Err(fail(None)),
            _ => Ok(value.clone()),
        },
        Check::Custom(f) => f(value).map_err(|d| fail(Some(d).filter(|d| !d.is_empty()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_message() {
        let def = catalog::find(104).unwrap();
        let e = validate(def, &Value::Int(5)).unwrap_err();
        assert_eq!(
            e.message,
            "socket_set_option: SO_HTTP_TIMEOUT (104) wants an int in 1000..300000 (ms), got 5"
        );
        assert_eq!(e.code, ResultCode::BadOptionValue);
    }

    #[test]
    fn unknown_and_mode_messages() {
        assert_eq!(
            lookup(777, "socket_set_option").unwrap_err().message,
            "socket_set_option: unknown option 777"
        );
        let def = catalog::find(122).unwrap();
        assert_eq!(
            check_mode(def, 11, "socket_set_option")
                .unwrap_err()
                .message,
            "socket_set_option: WS_ORIGIN (122) does not apply to HTTP_CLIENT sockets"
        );
    }

    #[test]
    fn booleans_normalise() {
        let def = catalog::find(11).unwrap();
        assert_eq!(validate(def, &Value::Int(7)).unwrap(), Value::Int(1));
    }

    #[test]
    fn deep_values_are_refused() {
        let mut v = Value::Int(0);
        for _ in 0..100 {
            v = Value::Array(vec![v]);
        }
        let def = catalog::find(100).unwrap();
        assert!(validate(def, &Value::Mapping(vec![(Value::str("a"), v)])).is_err());
    }
}
