//! THE option table. Every fact about every option of `spec/options.md` lives
//! in one row of [`OPTIONS`] (`rows.rs`); headers, the Rust ids
//! (`src/options/ids.rs`), docs and validation are derived from it
//! (`src/gen/`, `tests/generated_files.rs`).
//!
//! The checks (`src/options/validate/`, one file per family) only look at
//! the value itself. Facts that depend on other options or on the system at
//! start time (EXTERNAL_WORKING_DIR exists, MQTT_WILL_MESSAGE needs
//! MQTT_WILL_TOPIC, EXTERNAL_COMMAND is absolute when no shell is used) are
//! checked by the family when the socket starts.

mod rows;

pub use rows::OPTIONS;

use super::{Access, Check, Default, Family, Kinds, OptionDef, When};
use crate::modes::ModeSet;

/// Shorthand for a row; keeps the table readable.
#[allow(clippy::too_many_arguments)]
pub(super) const fn row(
    id: u16,
    name: &'static str,
    kinds: Kinds,
    default: Default,
    default_doc: &'static str,
    check: Check,
    wants: &'static str,
    modes: ModeSet,
    doc: &'static str,
) -> OptionDef {
    OptionDef {
        id,
        name,
        aliases: &[],
        kinds,
        default,
        default_doc,
        check,
        wants,
        modes,
        access: Access::ReadWrite,
        when: When::Anytime,
        // A family not built yet refuses its options on the built modes.
        refusable: Family::of(id).not_built().is_some(),
        append: false,
        doc,
    }
}

/// The family may refuse the option when it is set (a file that does not
/// load, a privilege the driver lacks): see [`OptionDef::refusable`].
pub(super) const fn refusable(mut d: OptionDef) -> OptionDef {
    d.refusable = true;
    d
}

pub(super) const fn with_aliases(mut d: OptionDef, aliases: &'static [&'static str]) -> OptionDef {
    d.aliases = aliases;
    d
}

pub(super) const fn access(mut d: OptionDef, a: Access) -> OptionDef {
    d.access = a;
    d
}

pub(super) const fn before_start(mut d: OptionDef) -> OptionDef {
    d.when = When::BeforeStart;
    d
}

pub(super) const fn append(mut d: OptionDef) -> OptionDef {
    d.append = true;
    d
}

/// The row for `id`.
pub fn find(id: i64) -> Option<&'static OptionDef> {
    // id → row + 1 (0 = none), built once: one bounds check and one load per lookup.
    static INDEX: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let top = OPTIONS.iter().map(|d| d.id as usize).max().unwrap_or(0);
        let mut ix = vec![0u8; top + 1];
        for (row, d) in OPTIONS.iter().enumerate() {
            ix[d.id as usize] = u8::try_from(row + 1).expect("fewer than 255 options");
        }
        ix
    });
    let slot = *index.get(usize::try_from(id).ok()?)?;
    (slot != 0).then(|| &OPTIONS[slot as usize - 1])
}

/// The inclusive range of option `id` when its row checks it as
/// `Check::IntRange`: the one place the bounds are written (the families'
/// own checks of the same quantity, such as external_set_resource_limits'
/// "priority", read them here).
pub fn int_range(id: u16) -> Option<(i64, i64)> {
    match find(i64::from(id))?.check {
        Check::IntRange(lo, hi) => Some((lo, hi)),
        _ => None,
    }
}

/// The row for a canonical name or alias.
pub fn by_name(name: &str) -> Option<&'static OptionDef> {
    OPTIONS
        .iter()
        .find(|d| d.name == name || d.aliases.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::validate::external::cores;
    use crate::options::validate::validate;
    use crate::value::Value;

    fn set(id: i64, v: Value) -> Result<Value, String> {
        validate(find(id).unwrap(), &v).map_err(|e| e.message)
    }

    #[test]
    fn find_and_names() {
        assert_eq!(find(104).unwrap().name, "SO_HTTP_TIMEOUT");
        assert!(find(5).is_none() && find(-1).is_none() && find(70000).is_none());
        assert_eq!(by_name("CACHE_TTL").unwrap().id, 201);
        assert_eq!(by_name("HTTP_HEADERS").unwrap().id, 100);
    }

    #[test]
    fn refusable_are_tls_files_privileged_external_options_and_unbuilt_families() {
        let got: Vec<u16> = OPTIONS
            .iter()
            .filter(|d| d.refusable)
            .map(|d| d.id)
            .collect();
        let want: Vec<u16> = [3, 4, 10, 143, 154, 157]
            .into_iter()
            .chain(200..=209)
            .chain(300..=309)
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn route_errors_name_the_position() {
        let r = Value::mapping([
            ("method", Value::str("get")),
            ("pattern", Value::str("/users/{id")),
            ("handler", Value::str("h")),
        ]);
        let e = set(111, r).unwrap_err();
        assert!(
            e.ends_with("pattern \"/users/{id\": unclosed \"{\" at position 8"),
            "{e}"
        );
        let ok = set(
            111,
            Value::mapping([
                ("method", Value::str("get")),
                ("pattern", Value::str("/users/{id:int}")),
                ("handler", Value::str("get_user")),
            ]),
        )
        .unwrap();
        assert_eq!(ok.get("method"), Some(&Value::str("GET")));
        assert!(set(111, Value::mapping([("method", Value::str("GET"))])).is_err());
    }

    #[test]
    fn custom_checks() {
        assert!(set(113, Value::str("short")).is_err());
        assert!(set(113, Value::str("x".repeat(32))).is_ok());
        assert!(set(112, Value::mapping([("title", Value::str("t"))])).is_err());
        assert!(set(
            112,
            Value::mapping([("title", Value::str("t")), ("version", Value::str("1"))])
        )
        .is_ok());
        assert!(set(120, Value::str("chat.v1")).is_ok());
        assert!(set(120, Value::str("bad proto")).is_err());
        assert!(set(120, Value::Array(vec![])).is_err());
        for b in ["h:1883", "mqtt://h.example:1883", "mqtts://[::1]:8883"] {
            assert!(set(130, Value::str(b)).is_ok(), "{b}");
        }
        for b in ["h", "http://h:1", "mqtt://h:0", "mqtt://h:x"] {
            assert!(set(130, Value::str(b)).is_err(), "{b}");
        }
        assert!(set(131, Value::str("a".repeat(100))).is_ok());
        assert!(set(131, Value::str("")).is_err());
        assert!(set(138, Value::str("a/+/b"))
            .unwrap_err()
            .contains("position 3"));
        assert!(set(140, Value::str("x".repeat(4097))).is_err());
        assert!(set(141, Value::Array(vec![Value::Int(1)])).is_err());
        assert!(set(142, Value::mapping([("A", Value::Int(1))])).is_err());
        assert!(set(144, Value::str("/tmp/../etc")).is_err());
        assert!(set(144, Value::str("relative")).is_err());
        assert!(set(150, Value::str("file:/tmp/in")).is_ok());
        assert!(set(150, Value::str("console")).is_err());
        assert!(set(152, Value::str("merge")).is_ok());
        assert_eq!(set(153, Value::Int(5)).unwrap(), Value::Int(1));
        assert!(set(153, Value::str("/bin/bash")).is_ok());
        assert!(set(154, Value::Int(-21)).is_err());
        assert!(set(155, Value::Int(0)).is_ok() && set(155, Value::Int(100)).is_ok());
        assert!(set(155, Value::Int(100 * cores() + 1)).is_err());
        assert!(set(156, Value::Int(1000)).is_err());
        assert!(set(157, Value::Int(2)).is_err() && set(157, Value::Int(0)).is_ok());
        assert!(set(158, Value::mapping([("network", Value::Int(1))])).is_ok());
        assert!(set(158, Value::mapping([("net", Value::Int(1))])).is_err());
        let p = set(159, Value::mapping([("policy", Value::str("always"))])).unwrap();
        assert_eq!(p.get("backoff_ms"), Some(&Value::Int(1000)));
        assert_eq!(p.get("kill_mode"), Some(&Value::str("group")));
        let keep = Value::mapping([
            ("policy", Value::str("never")),
            ("kill_mode", Value::str("process")),
        ]);
        assert_eq!(
            set(159, keep).unwrap().get("kill_mode"),
            Some(&Value::str("process"))
        );
        let bad = Value::mapping([
            ("policy", Value::str("never")),
            ("kill_mode", Value::str("none")),
        ]);
        assert!(set(159, bad)
            .unwrap_err()
            .contains("\"kill_mode\" \"none\" is not \"group\""));
        let bad = Value::mapping([
            ("policy", Value::str("never")),
            ("kill_mode", Value::Int(1)),
        ]);
        assert!(set(159, bad).unwrap_err().contains("\"kill_mode\" is"));
        assert!(set(159, Value::str("sometimes")).is_err());
        assert!(set(203, Value::str("{method} {header:X-Id}")).is_ok());
        assert!(set(203, Value::str("{nope}"))
            .unwrap_err()
            .contains("position 1"));
        assert!(set(303, Value::str("10.0.0.0/8")).is_ok());
        assert!(set(303, Value::str("10.0.0.0/33")).is_err());
        assert!(set(440, Value::str("bus-1_a")).is_ok() && set(440, Value::str("a b")).is_err());
        assert!(set(442, Value::str("/run/../x")).is_err());
        assert!(set(443, Value::Int(0o1000)).is_err());
        assert!(set(443, Value::Int(384)).is_ok());
        let hint = set(443, Value::Int(660)).unwrap_err();
        assert!(hint.contains("for mode 0660 write 432"), "{hint}");
        assert!(set(446, Value::Array(vec![Value::Int(5), Value::Int(4)])).is_err());
        assert!(set(446, Value::Array(vec![Value::Int(4)])).is_err());
        assert!(set(452, Value::str("Europe/Berlin")).is_ok());
        assert!(set(452, Value::str("")).is_err() && set(452, Value::str("../x")).is_err());
        assert!(set(100, Value::mapping([("X-A", Value::str("a\r\nb"))])).is_err());
        assert_eq!(set(101, Value::str("post")).unwrap(), Value::str("POST"));
        assert!(set(102, Value::str("ftp://x")).is_err());
        assert!(set(102, Value::str("https://example.com/a?b")).is_ok());
    }

    #[test]
    fn router_config_merges_defaults() {
        let v = set(110, Value::mapping([("max_body", Value::Int(1 << 20))])).unwrap();
        assert_eq!(v.get("max_body"), Some(&Value::Int(1 << 20)));
        assert_eq!(v.get("case_sensitive"), Some(&Value::Int(1)));
        assert!(set(110, Value::mapping([("max_bdy", Value::Int(1))]))
            .unwrap_err()
            .contains("unknown key \"max_bdy\""));
    }

    #[test]
    fn run_as_self_is_allowed() {
        let uid = i64::from(nix::unistd::geteuid().as_raw());
        assert!(set(145, Value::Int(uid)).is_ok());
        assert!(set(145, Value::str("no-such-user-unisock"))
            .unwrap_err()
            .contains("no such user"));
    }
}
