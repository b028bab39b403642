//! The blocks of the efun pages (`<!-- generated: NAME [ARGS] -->`): their
//! names, and what each renders.

use super::efun::ShimTexts;
use super::text::{access_text, code_list, family_name, md, modes_text, runs, when_text};
use super::{sections, EXTERNAL_EVENTS, MODES, OPTIONS};
use crate::options::{Access, OptionDef};

/// The keys of `external_set_resource_limits` and the option each is checked as.
pub const EXTERNAL_LIMIT_KEYS: &[(&str, u16)] = &[
    ("cpu", 155),
    ("memory", 156),
    ("files", 157),
    ("priority", 154),
];

/// The names of the blocks [`efun_block`] renders, for the README and errors.
pub const EFUN_BLOCKS: &[(&str, &str)] = &[
    (
        "modes",
        "every socket mode: number, name, family, served by this build",
    ),
    ("modes-options", "the options each served mode accepts"),
    (
        "option-table",
        "every option by family: type, default, allowed values, modes, when, meaning",
    ),
    (
        "option-readback",
        "what socket_get_option returns for every option, and when unset",
    ),
    (
        "options ID ...",
        "the rows of the listed option ids (e.g. `options 17 19 109`)",
    ),
    (
        "ee-codes",
        "every EE code with the text socket_error() returns for it",
    ),
    ("external-events", "the event bits of external_monitor_path"),
    (
        "external-limits",
        "the keys of external_set_resource_limits and their options",
    ),
];

/// Renders the body of one block (without the markers).
pub fn efun_block(name: &str, args: &str, shim: &ShimTexts) -> Result<String, String> {
    let no_args = || {
        if args.is_empty() {
            Ok(())
        } else {
            Err(format!("block {name} takes no arguments, got {args:?}"))
        }
    };
    match name {
        "modes" => no_args().map(|_| modes_block()),
        "modes-options" => no_args().map(|_| modes_options_block()),
        "option-table" => no_args().map(|_| option_table_block()),
        "option-readback" => no_args().map(|_| option_readback_block()),
        "options" => {
            let mut rows = Vec::new();
            for word in args.split([' ', ',']).filter(|w| !w.is_empty()) {
                let id: i64 = word
                    .parse()
                    .map_err(|_| format!("options: {word:?} is not an option id"))?;
                rows.push(
                    crate::options::catalog::find(id)
                        .ok_or_else(|| format!("options: no option {id} in the catalog"))?,
                );
            }
            if rows.is_empty() {
                return Err("options: name at least one option id".into());
            }
            Ok(option_rows(&rows, true))
        }
        "ee-codes" => no_args().map(|_| ee_codes_block(shim)),
        "external-events" => no_args().map(|_| external_events_block()),
        "external-limits" => no_args().map(|_| external_limits_block()),
        _ => Err(format!(
            "unknown block {name:?}; the blocks are {}",
            EFUN_BLOCKS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn served(mode: u8) -> bool {
    crate::modes::info(i64::from(mode)).is_some_and(|m| m.implemented)
}

/// Why an option cannot be used in this build, if it cannot.
fn unavailable(d: &OptionDef) -> Option<&'static str> {
    if d.access == Access::Invalid {
        None
    } else if !d.modes.iter().any(served) {
        Some("not in this build: no mode it applies to is served")
    } else if crate::http::refuse_unbuilt(d.id).is_err() {
        Some("not in this build: refused (\"is not available yet\")")
    } else {
        None
    }
}

/// An LPC literal for a value, as a coder would write it.
fn lpc_literal(v: &crate::value::Value) -> String {
    use crate::value::Value;
    match v {
        Value::Undefined => "0".into(),
        Value::Int(i) => i.to_string(),
        Value::Real(r) => format!("{r:?}"),
        Value::Str(s) => format!("{s:?}"),
        Value::Buffer(b) => format!("a buffer of {} bytes", b.len()),
        Value::Array(a) if a.is_empty() => "({})".into(),
        Value::Array(a) => format!(
            "({{ {} }})",
            a.iter().map(lpc_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Mapping(m) if m.is_empty() => "([])".into(),
        Value::Mapping(m) => format!(
            "([ {} ])",
            m.iter()
                .map(|(k, v)| format!("{}: {}", lpc_literal(k), lpc_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What `socket_get_option` returns while the option is unset, from the
/// catalog's defaults (per mode where they differ), as Markdown with the
/// values in code spans (only `|` needs escaping in a table cell).
fn unset_readback(d: &OptionDef) -> String {
    match d.access {
        Access::Invalid => return "— (always refused)".into(),
        Access::ReadOnly => {
            return format!(
                "kept by unisock: {}",
                md(d.doc.trim_start_matches("Read-only: "))
            )
        }
        Access::Secret => return "`0`; `\"<set>\"` once set".into(),
        Access::WriteOnly | Access::ReadWrite => {}
    }
    if matches!(d.default, crate::options::Default::Unset) {
        // Reads 0; the catalog's text says what applies meanwhile.
        return match d.default_doc.trim_start_matches('—').trim() {
            "" => "`0`".into(),
            doc if doc.starts_with('(') => format!("`0` {}", md(doc)),
            doc => format!("`0` ({})", md(doc)),
        };
    }
    let modes: Vec<u8> = d.modes.iter().filter(|m| served(*m)).collect();
    let mut by_value: Vec<(String, Vec<u32>)> = Vec::new();
    for m in &modes {
        let text = lpc_literal(&d.default.value(*m));
        match by_value.iter_mut().find(|(t, _)| *t == text) {
            Some((_, ms)) => ms.push(u32::from(*m)),
            None => by_value.push((text, vec![u32::from(*m)])),
        }
    }
    match by_value.len() {
        0 => "0".into(),
        1 => format!("`{}`", by_value[0].0),
        _ => by_value
            .iter()
            .map(|(t, ms)| format!("`{t}` on {}", runs(ms, "–")))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn option_name_cell(d: &OptionDef) -> String {
    let mut s = format!("`{}`", d.name);
    if !d.aliases.is_empty() {
        s.push_str(&format!(" (also {})", code_list(d.aliases.iter().copied())));
    }
    s
}

fn option_modes_cell(d: &OptionDef, note: bool) -> String {
    match unavailable(d) {
        Some(why) if note => format!("{} ({why})", modes_text(d.modes)),
        _ => modes_text(d.modes),
    }
}

const OPTION_HEADER: &str =
    "| id | name | type | default | allowed values | modes | when | meaning |\n\
                             |---|---|---|---|---|---|---|---|\n";

/// One row; `note`: say in the modes cell when the option is not usable.
fn option_row(d: &OptionDef, note: bool) -> String {
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
        d.id,
        option_name_cell(d),
        md(&d.kinds.lpc()),
        md(d.default_doc),
        md(d.wants),
        md(&option_modes_cell(d, note)),
        if d.access == Access::ReadOnly {
            "read-only"
        } else {
            when_text(d.when)
        },
        md(d.doc),
    )
}

fn option_rows(rows: &[&OptionDef], note: bool) -> String {
    let mut o = String::from(OPTION_HEADER);
    for d in rows {
        o.push_str(&option_row(d, note));
    }
    o
}

fn modes_block() -> String {
    let mut o = String::from(
        "| value | name | older spelling | family | in this build |\n\
         |---|---|---|---|---|\n",
    );
    for m in MODES {
        o.push_str(&format!(
            "| {} | `{}` | {} | {} | {} |\n",
            m.number,
            m.name,
            code_list(m.alias.into_iter()),
            family_name(m.family),
            if m.implemented {
                "yes"
            } else {
                "no: `EEMODENOTSUPP`"
            },
        ));
    }
    o.push_str("\n7–9 are unused: `socket_create` answers `EEMODENOTSUPP` for them and for any other number.\n");
    o
}

fn modes_options_block() -> String {
    let mut o = String::from("| mode | options it accepts |\n|---|---|\n");
    for m in MODES.iter().filter(|m| m.implemented) {
        let names: Vec<&str> = OPTIONS
            .iter()
            .filter(|d| d.modes.contains(m.number) && unavailable(d).is_none())
            .map(|d| d.name)
            .collect();
        o.push_str(&format!(
            "| {} `{}` | {} |\n",
            m.number,
            m.name,
            code_list(names.into_iter())
        ));
    }
    o.push_str(
        "\nOptions of modes this build does not serve, and the response cache (200–209) and \
         Apache/nginx (300–309) options, are left out: they are refused.\n",
    );
    o
}

fn option_table_block() -> String {
    let mut o = String::new();
    for (title, rows) in sections() {
        if !o.is_empty() {
            o.push('\n');
        }
        o.push_str(&format!("#### {title}\n\n"));
        let none_usable = rows.iter().all(|d| unavailable(d).is_some());
        if none_usable {
            let why = unavailable(rows[0]).unwrap_or_default();
            o.push_str(&format!(
                "Listed for their names and numbers only: {}.\n\n",
                why.replace("not in this build: ", "not usable in this build, ")
            ));
        }
        o.push_str(&option_rows(&rows, !none_usable));
    }
    o
}

fn option_readback_block() -> String {
    let mut o = String::from(
        "| id | name | returns | while unset | access |\n\
         |---|---|---|---|---|\n",
    );
    for d in OPTIONS.iter().filter(|d| unavailable(d).is_none()) {
        o.push_str(&format!(
            "| {} | `{}` | {} | {} | {} |\n",
            d.id,
            d.name,
            md(&d.kinds.lpc()),
            unset_readback(d).replace('|', "\\|"),
            md(access_text(d)),
        ));
    }
    o.push_str("\nOptions not usable in this build are left out (see socket_set_option).\n");
    o
}

fn ee_codes_block(shim: &ShimTexts) -> String {
    let mut o = String::from(
        "| value | name | `socket_error(value)` |\n\
         |---|---|---|\n",
    );
    for (i, text) in shim.socket_error.iter().enumerate() {
        let ee = -(i as i32 + 1);
        let name = crate::error::ResultCode::from_ee(ee)
            .map_or_else(|| "?".to_string(), |c| format!("{c:?}").to_uppercase());
        o.push_str(&format!("| {ee} | `{name}` | \"{}\" |\n", md(text)));
    }
    o.push_str(&format!(
        "\nAny other number, `EESUCCESS` (1) included: \"{}\".\n",
        md(&shim.socket_error_other)
    ));
    o
}

fn external_events_block() -> String {
    let mut o = String::from("| bit | name | in 0 (the default) |\n|---|---|---|\n");
    for (n, v) in EXTERNAL_EVENTS {
        o.push_str(&format!(
            "| 0x{v:02x} | `{n}` | {} |\n",
            if crate::external::watch::DEFAULT_MASK & v != 0 {
                "yes"
            } else {
                "no"
            }
        ));
    }
    o
}

fn external_limits_block() -> String {
    let mut o = String::from(
        "| key | checked as | allowed values | default |\n\
         |---|---|---|---|\n",
    );
    for (key, id) in EXTERNAL_LIMIT_KEYS {
        let d = crate::options::catalog::find(i64::from(*id)).expect("a catalog option");
        o.push_str(&format!(
            "| `\"{key}\"` | `{}` ({}) | {} | {} |\n",
            d.name,
            d.id,
            md(d.wants),
            md(d.default_doc)
        ));
    }
    o
}
