//! Generated files, rendered from the option catalog
//! ([`crate::options::catalog::OPTIONS`]) and the mode table
//! ([`crate::modes::MODES`]):
//!
//! - `include/lpc/socket.h`: the LPC include for mudlibs ([`lpc_socket_h`]),
//! - `include/unisock_options.h`: C constants ([`c_options_h`]),
//! - `docs/OPTIONS.md` and `docs/MODES.md` ([`options_md`], [`modes_md`]).
//!
//! Pure functions: same tables in, same text out. `tests/generated_files.rs`
//! compares them with the committed files and rewrites them when
//! `UNISOCK_BLESS=1` is set.

use crate::modes::{Family, ModeSet, MODES};
use crate::options::catalog::OPTIONS;
use crate::options::{Access, OptionDef, When};

/// Renders one generated file.
pub type Render = fn() -> String;

/// Every generated file: path relative to the crate root, and its renderer.
pub const FILES: &[(&str, Render)] = &[
    ("include/lpc/socket.h", lpc_socket_h),
    ("include/unisock_options.h", c_options_h),
    ("docs/OPTIONS.md", options_md),
    ("docs/MODES.md", modes_md),
];

/// The event bits of `external_monitor_path` (spec/callbacks.md); 0 = all but OPENED.
pub const EXTERNAL_EVENTS: &[(&str, u32)] = &[
    ("EXTERNAL_EV_CREATED", 0x01),
    ("EXTERNAL_EV_MODIFIED", 0x02),
    ("EXTERNAL_EV_DELETED", 0x04),
    ("EXTERNAL_EV_MOVED_FROM", 0x08),
    ("EXTERNAL_EV_MOVED_TO", 0x10),
    ("EXTERNAL_EV_OPENED", 0x20),
    ("EXTERNAL_EV_CLOSED", 0x40),
    ("EXTERNAL_EV_ATTRIB", 0x80),
];

/// Option ids the driver's own include/socket.h defines (kept exactly, unguarded).
const UPSTREAM_OPTIONS: std::ops::RangeInclusive<u16> = 0..=4;
/// Mode numbers the driver's own include/socket.h defines.
const UPSTREAM_MODES: std::ops::RangeInclusive<u8> = 0..=6;

/// The catalog's sections, by id range, as the spec groups them.
const SECTIONS: &[(u16, u16, &str)] = &[
    (0, 99, "Core 0–19"),
    (100, 109, "HTTP 100–109"),
    (110, 119, "REST 110–119"),
    (120, 129, "WebSocket 120–129"),
    (130, 139, "MQTT 130–139"),
    (140, 199, "External processes 140–159"),
    (200, 299, "Cache 200–209"),
    (300, 399, "Apache / nginx integration 300–309"),
    (400, 499, "IPC message bus 440–459"),
];

const BLESS: &str = "UNISOCK_BLESS=1 cargo test --test generated_files";

fn family_name(f: Family) -> &'static str {
    match f {
        Family::Legacy => "legacy",
        Family::Http => "http",
        Family::Rest => "rest",
        Family::WebSocket => "websocket",
        Family::Mqtt => "mqtt",
        Family::External => "external",
        Family::Database => "database",
        Family::GraphQl => "graphql",
        Family::Grpc => "grpc",
        Family::Ipc => "ipc",
    }
}

/// "none" for the catalog's "—", the text otherwise.
fn default_text(d: &OptionDef) -> &'static str {
    if d.default_doc == "—" {
        "none"
    } else {
        d.default_doc
    }
}

/// Compresses sorted numbers: runs of three or more become "a–b".
fn runs(nums: &[u32], dash: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < nums.len() {
        let mut j = i;
        while j + 1 < nums.len() && nums[j + 1] == nums[j] + 1 {
            j += 1;
        }
        if j >= i + 2 {
            out.push(format!("{}{dash}{}", nums[i], nums[j]));
        } else {
            out.extend(nums[i..=j].iter().map(u32::to_string));
        }
        i = j + 1;
    }
    out.join(", ")
}

/// A mode set as the docs show it: "all", "—" or "10–15, 20".
pub fn modes_text(set: ModeSet) -> String {
    if set == ModeSet::ALL {
        "all".into()
    } else if set == ModeSet::NONE {
        "—".into()
    } else {
        runs(&set.iter().map(u32::from).collect::<Vec<_>>(), "–")
    }
}

fn access_text(d: &OptionDef) -> &'static str {
    if d.append {
        return "append (get returns the array)";
    }
    match d.access {
        Access::ReadWrite => "read/write",
        Access::ReadOnly => "read-only",
        Access::WriteOnly => "write-only (action)",
        Access::Secret => "secret (reads back \"<set>\")",
        Access::Invalid => "rejected",
    }
}

fn when_text(w: When) -> &'static str {
    match w {
        When::Anytime => "any time",
        When::BeforeStart => "before start",
    }
}

/// Escapes text for a Markdown table cell.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '*' => out.push_str("\\*"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn code_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Width of the name column in the headers.
fn name_width() -> usize {
    let opts = OPTIONS.iter().flat_map(|d| d.names()).map(str::len);
    let modes = MODES
        .iter()
        .flat_map(|m| std::iter::once(m.name).chain(m.alias))
        .map(str::len);
    let events = EXTERNAL_EVENTS.iter().map(|(n, _)| n.len());
    opts.chain(modes).chain(events).max().unwrap_or(0)
}

/// One `#define`, optionally inside an `#ifndef` guard.
fn define(out: &mut String, prefix: &str, name: &str, value: &str, guard: bool) {
    let full = format!("{prefix}{name}");
    let w = name_width() + prefix.len();
    if guard {
        out.push_str(&format!("#ifndef {full}\n"));
    }
    out.push_str(&format!("#define {full:<w$} {value}\n"));
    if guard {
        out.push_str("#endif\n");
    }
}

/// `include/lpc/socket.h`: the LPC include, a drop-in superset of the
/// driver's include/socket.h.
pub fn lpc_socket_h() -> String {
    let mut o = String::new();
    o.push_str(
        "// socket.h: socket modes, options and event bits for the socket efuns.\n\
         //\n\
         // Generated by unisock (src/gen.rs) from its mode table and option catalog;\n\
         // do not edit: change the tables and run\n",
    );
    o.push_str(&format!("//   {BLESS}\n"));
    o.push_str(
        "//\n\
         // A drop-in superset of the driver's include/socket.h: the upstream names\n\
         // (MUD .. STREAM_TLS_BINARY, SO_INVALID .. SO_TLS_KEY) keep their values;\n\
         // every other name is guarded with #ifndef, so a definition the mudlib\n\
         // made before including this file is left alone.\n\
         // Types and defaults: docs/OPTIONS.md; modes: docs/MODES.md.\n\n\
         #ifndef SOCKET_H\n\
         #define SOCKET_H\n\n\
         // socket_mode\n",
    );
    for m in MODES.iter().filter(|m| UPSTREAM_MODES.contains(&m.number)) {
        define(&mut o, "", m.name, &m.number.to_string(), false);
    }
    o.push_str(
        "\n// socket_mode added by unisock (a mode this build does not serve makes\n\
         // socket_create return EEMODENOTSUPP)\n",
    );
    let mut family = None;
    for m in MODES.iter().filter(|m| !UPSTREAM_MODES.contains(&m.number)) {
        if family != Some(m.family) {
            o.push_str(&format!("// {}\n", family_name(m.family)));
            family = Some(m.family);
        }
        define(&mut o, "", m.name, &m.number.to_string(), true);
    }
    o.push_str("\n// the fork's older spellings of the modes\n");
    for m in MODES {
        if let Some(a) = m.alias {
            define(&mut o, "", a, &m.number.to_string(), true);
        }
    }
    o.push_str("\n// socket_option\n");
    for d in OPTIONS {
        let upstream = UPSTREAM_OPTIONS.contains(&d.id);
        o.push_str(&format!(
            "// {}: {}, default {}\n",
            d.name,
            d.kinds.lpc().replace('—', "no value"),
            default_text(d)
        ));
        define(&mut o, "", d.name, &d.id.to_string(), !upstream);
        for a in d.aliases {
            define(&mut o, "", a, &d.id.to_string(), true);
        }
    }
    o.push_str("\n// external_monitor_path() event bits (0 = all but EXTERNAL_EV_OPENED)\n");
    for (n, v) in EXTERNAL_EVENTS {
        define(&mut o, "", n, &format!("0x{v:02x}"), true);
    }
    o.push_str("\n#endif // SOCKET_H\n");
    o
}

/// `include/unisock_options.h`: mode and option numbers for C and C++.
pub fn c_options_h() -> String {
    let mut o = String::new();
    o.push_str(
        "// unisock_options.h: socket mode and option numbers, and the\n\
         // external_monitor_path event bits.\n\
         //\n\
         // Generated by unisock (src/gen.rs) from its mode table and option catalog;\n\
         // do not edit: change the tables and run\n",
    );
    o.push_str(&format!("//   {BLESS}\n"));
    o.push_str(
        "\n#ifndef UNISOCK_OPTIONS_H\n\
         #define UNISOCK_OPTIONS_H\n\n\
         // Socket modes (canonical names, then the fork's older spellings)\n",
    );
    for m in MODES {
        define(
            &mut o,
            "UNISOCK_MODE_",
            m.name,
            &m.number.to_string(),
            false,
        );
    }
    for m in MODES {
        if let Some(a) = m.alias {
            define(&mut o, "UNISOCK_MODE_", a, &m.number.to_string(), false);
        }
    }
    o.push_str("\n// Options (canonical names)\n");
    for d in OPTIONS {
        define(&mut o, "UNISOCK_OPT_", d.name, &d.id.to_string(), false);
    }
    o.push_str("\n// Option aliases\n");
    for d in OPTIONS {
        for a in d.aliases {
            define(&mut o, "UNISOCK_OPT_", a, &d.id.to_string(), false);
        }
    }
    o.push_str("\n// external_monitor_path event bits (0 = all but OPENED)\n");
    for (n, v) in EXTERNAL_EVENTS {
        define(&mut o, "UNISOCK_", n, &format!("0x{v:02x}"), false);
    }
    o.push_str("\n#endif // UNISOCK_OPTIONS_H\n");
    o
}

/// `docs/OPTIONS.md`: the option table.
pub fn options_md() -> String {
    let mut o = String::new();
    o.push_str("# Socket options\n\n");
    o.push_str(&format!(
        "Generated from the option catalog (`src/options/catalog.rs`) by `src/gen.rs`; do not edit.\n\
         After changing the catalog run `{BLESS}`.\n\n"
    ));
    o.push_str(
        "- `socket_set_option` on a bad value raises an error naming the option and what it wants:\n  \
         `socket_set_option: SO_HTTP_TIMEOUT (104) wants an int in 1000..300000 (ms), got 5`.\n  \
         Nothing is stored on error. Values are deep-copied on set.\n\
         - `socket_get_option` returns the stored value, or the default when unset; secrets read back\n  \
         as `\"<set>\"` (or 0 when unset).\n\
         - *allowed values* reads after \"wants\" in that message; *when* \"before start\" means the option\n  \
         can only change before `socket_connect` / `socket_listen` / the process start.\n\
         - Booleans are ints 0/1; any non-zero int is stored as 1.\n\
         - *modes* lists the socket modes that accept the option (see MODES.md); \"all\" is every mode unisock serves.\n",
    );
    for (lo, hi, title) in SECTIONS {
        let rows: Vec<&OptionDef> = OPTIONS
            .iter()
            .filter(|d| (*lo..=*hi).contains(&d.id))
            .collect();
        if rows.is_empty() {
            continue;
        }
        o.push_str(&format!("\n## {title}\n\n"));
        o.push_str(
            "| id | name | aliases | type | default | allowed values | modes | access | when | meaning |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
        );
        for d in rows {
            o.push_str(&format!(
                "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                d.id,
                d.name,
                code_list(d.aliases.iter().copied()),
                md(&d.kinds.lpc()),
                md(d.default_doc),
                md(d.wants),
                modes_text(d.modes),
                md(access_text(d)),
                when_text(d.when),
                md(d.doc),
            ));
        }
    }
    o
}

/// `docs/MODES.md`: the mode table, with the options each mode accepts.
pub fn modes_md() -> String {
    let mut o = String::new();
    o.push_str("# Socket modes\n\n");
    o.push_str(&format!(
        "Generated from the mode table (`src/modes.rs`) and the option catalog by `src/gen.rs`; do not edit.\n\
         After changing either run `{BLESS}`.\n\n"
    ));
    o.push_str(
        "The numbers are fixed. 7–9 are unused. A mode this build does not serve makes `socket_create`\n\
         return `EEMODENOTSUPP` (-12). The LPC include defines the canonical names and the aliases;\n\
         the C header `include/unisock_options.h` defines them as `UNISOCK_MODE_<name>`.\n\n\
         | value | name | alias | family | served by this build | options (ids) |\n\
         |---|---|---|---|---|---|\n",
    );
    for m in MODES {
        let ids: Vec<u32> = OPTIONS
            .iter()
            .filter(|d| d.modes.contains(m.number))
            .map(|d| u32::from(d.id))
            .collect();
        o.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} |\n",
            m.number,
            m.name,
            code_list(m.alias.into_iter()),
            family_name(m.family),
            if m.implemented { "yes" } else { "no" },
            runs(&ids, "–"),
        ));
    }
    o.push_str("\nEvery name above, option names included, is unique across modes and options.\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_compress() {
        assert_eq!(runs(&[1, 2, 3, 5, 7, 8], "-"), "1-3, 5, 7, 8");
        assert_eq!(modes_text(ModeSet::range(10, 15)), "10–15");
        assert_eq!(modes_text(ModeSet::ALL), "all");
    }

    #[test]
    fn lpc_header_keeps_upstream_names() {
        let h = lpc_socket_h();
        assert!(h.contains("#ifndef SOCKET_H\n#define SOCKET_H\n"));
        for (n, v) in [
            ("MUD", 0),
            ("STREAM_TLS_BINARY", 6),
            ("SO_INVALID", 0),
            ("SO_TLS_KEY", 4),
        ] {
            let line = h
                .lines()
                .find(|l| l.split_whitespace().nth(1) == Some(n) && l.starts_with("#define"))
                .unwrap_or_else(|| panic!("{n} missing"));
            assert_eq!(line.split_whitespace().nth(2), Some(v.to_string().as_str()));
        }
        assert!(h.contains("#ifndef SOCKET_MUD\n"));
        assert!(h.contains("EXTERNAL_EV_ATTRIB"));
    }
}
