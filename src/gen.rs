//! Generated files, rendered from the option catalog
//! ([`crate::options::catalog::OPTIONS`]) and the mode table
//! ([`crate::modes::MODES`]):
//!
//! - `include/lpc/socket.h`: the LPC include for mudlibs ([`lpc_socket_h`]),
//! - `include/unisock_options.h`: C constants ([`c_options_h`]),
//! - `docs/OPTIONS.md` and `docs/MODES.md` ([`options_md`], [`modes_md`]),
//! - the marked blocks of the hand-written efun pages under `docs/efun/`
//!   ([`fill_blocks`]): mode and option tables, defaults, ranges, the `EE*`
//!   codes with the texts `socket_error` returns, the watch event bits.
//!
//! Pure functions: same tables in, same text out. `tests/generated_files.rs`
//! compares them with the committed files and rewrites them when
//! `UNISOCK_BLESS=1` is set.

use crate::modes::{Family, ModeSet, MODES};
use crate::options::catalog::OPTIONS;
use crate::options::{Access, OptionDef, When};

mod ids;
pub use ids::options_ids_rs;

/// Renders one generated file.
pub type Render = fn() -> String;

/// Every generated file: path relative to the crate root, and its renderer.
pub const FILES: &[(&str, Render)] = &[
    ("include/lpc/socket.h", lpc_socket_h),
    ("include/unisock_options.h", c_options_h),
    ("docs/OPTIONS.md", options_md),
    ("docs/MODES.md", modes_md),
    ("src/options/ids.rs", options_ids_rs),
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

/// The catalog's options by section, each with its title; empty sections are left out.
fn sections() -> impl Iterator<Item = (&'static str, Vec<&'static OptionDef>)> {
    SECTIONS.iter().filter_map(|(lo, hi, title)| {
        let rows: Vec<&OptionDef> = OPTIONS
            .iter()
            .filter(|d| (*lo..=*hi).contains(&d.id))
            .collect();
        (!rows.is_empty()).then_some((*title, rows))
    })
}

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
        "Generated from the option catalog (`src/options/catalog/rows.rs`) by `src/gen.rs`; do not edit.\n\
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
    for (title, rows) in sections() {
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

// ---- efun pages ----------------------------------------------------------------------------------
//
// The pages under docs/efun/ are written by hand (FluffOS's format, one page per
// efun); what comes from the tables sits between an opening marker
// `<!-- generated: NAME [ARGS] -->` and `<!-- end generated -->` and is rendered
// here. docs/efun/README.md lists the blocks.

/// Where the efun pages live: `docs/efun/<group>/<name>.md`.
pub const EFUN_DIR: &str = "docs/efun";
/// The efun declarations the pages document.
pub const EFUN_SPEC: &str = "cpp_shim/fluffos/sockets.spec";
/// The file whose `socket_error` texts the `ee-codes` block shows.
pub const SOCKET_ERROR_SOURCE: &str = "cpp_shim/fluffos/sockets.cc";

const BLOCK_OPEN: &str = "<!-- generated: ";
const BLOCK_CLOSE: &str = "<!-- end generated -->";

/// The keys of `external_set_resource_limits` and the option each is checked as.
pub const EXTERNAL_LIMIT_KEYS: &[(&str, u16)] = &[
    ("cpu", 155),
    ("memory", 156),
    ("files", 157),
    ("priority", 154),
];

/// One efun of a `.spec` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecEfun {
    /// Return type as written ("int", "mixed *").
    pub ret: String,
    pub name: String,
    /// The argument list as written, without the parentheses.
    pub args: String,
}

/// The efuns declared in a FluffOS `.spec` file (comments skipped).
pub fn spec_efuns(spec: &str) -> Vec<SpecEfun> {
    let mut text = String::new();
    let mut rest = spec;
    while let Some(start) = rest.find("/*") {
        text.push_str(&rest[..start]);
        rest = rest[start..]
            .find("*/")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    text.push_str(rest);
    let mut out = Vec::new();
    for decl in text.split(';') {
        let decl = decl.split_whitespace().collect::<Vec<_>>().join(" ");
        let (Some(open), Some(close)) = (decl.find('('), decl.rfind(')')) else {
            continue;
        };
        let head = decl[..open].trim_end();
        let name_at = head
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let name = &head[name_at..];
        let ret = head[..name_at].trim();
        if name.is_empty() || ret.is_empty() {
            continue;
        }
        out.push(SpecEfun {
            ret: ret.to_string(),
            name: name.to_string(),
            args: decl[open + 1..close].trim().to_string(),
        });
    }
    out
}

/// The page group (folder under `docs/efun/`) of one of our efuns.
pub fn efun_group(name: &str) -> Option<&'static str> {
    if name.starts_with("socket_") {
        Some("sockets")
    } else if name.starts_with("http_") {
        Some("http")
    } else if name.starts_with("external_") {
        Some("external")
    } else {
        None
    }
}

/// The texts `socket_error()` returns, read from the shim's source
/// ([`SOCKET_ERROR_SOURCE`]): the text for -1, -2, ... in order, and the one
/// for every other number.
#[derive(Clone, Debug)]
pub struct ShimTexts {
    pub socket_error: Vec<String>,
    pub socket_error_other: String,
}

/// Reads the `socket_error` texts out of `sockets.cc`: the string literals of
/// the `texts[]` array in `socket_error()`, then the text it returns otherwise.
pub fn shim_texts(sockets_cc: &str) -> Result<ShimTexts, String> {
    let func = sockets_cc
        .find("const char* socket_error(int error)")
        .map(|i| &sockets_cc[i..])
        .ok_or("no `const char* socket_error(int error)` in the shim")?;
    let body = &func[..func.find("\n}").ok_or("socket_error() has no end")?];
    let array_start = body
        .find("texts[] = {")
        .ok_or("socket_error() has no texts[]")?;
    let array = &body[array_start..];
    let array_end = array.find("};").ok_or("texts[] has no end")?;
    let texts = literals(&array[..array_end]);
    let other = literals(&array[array_end..])
        .pop()
        .ok_or("socket_error() returns no text for other numbers")?;
    if texts.len() != 32 {
        return Err(format!(
            "socket_error() has {} texts, not 32 (EESOCKET -1 .. EEBADDATA -32)",
            texts.len()
        ));
    }
    Ok(ShimTexts {
        socket_error: texts,
        socket_error_other: other,
    })
}

/// The C string literals in `code`, in order (simple escapes only).
fn literals(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = code.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => s.extend(chars.next()),
                c => s.push(c),
            }
        }
        out.push(s);
    }
    out
}

/// `page` with the body of every generated block rendered again. Errors name
/// the line of a marker that is unknown, unclosed or nested.
pub fn fill_blocks(page: &str, shim: &ShimTexts) -> Result<String, String> {
    let mut out = String::with_capacity(page.len());
    let mut lines = page.split_inclusive('\n').enumerate();
    while let Some((i, line)) = lines.next() {
        out.push_str(line);
        let Some(spec) = line.trim().strip_prefix(BLOCK_OPEN) else {
            if line.trim() == BLOCK_CLOSE {
                return Err(format!(
                    "line {}: end of a block that was not opened",
                    i + 1
                ));
            }
            continue;
        };
        let spec = spec
            .strip_suffix("-->")
            .ok_or_else(|| format!("line {}: the marker does not end with -->", i + 1))?
            .trim();
        let (name, args) = spec.split_once(' ').unwrap_or((spec, ""));
        let body =
            efun_block(name, args.trim(), shim).map_err(|e| format!("line {}: {e}", i + 1))?;
        out.push('\n');
        out.push_str(&body);
        out.push('\n');
        loop {
            match lines.next() {
                Some((_, l)) if l.trim() == BLOCK_CLOSE => {
                    out.push_str(l);
                    break;
                }
                Some((j, l)) if l.trim().starts_with(BLOCK_OPEN) => {
                    return Err(format!(
                        "line {}: a block opened inside the block of line {}",
                        j + 1,
                        i + 1
                    ));
                }
                Some(_) => {}
                None => {
                    return Err(format!(
                        "line {}: block {name} is never closed ({BLOCK_CLOSE})",
                        i + 1
                    ))
                }
            }
        }
    }
    Ok(out)
}

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

    #[test]
    fn spec_efuns_reads_declarations() {
        let spec = "/* a comment; with (parens) */\n    int socket_create(int, string | function, string | function | void);\n    /* each entry */\n    mixed *socket_status(void | int);\n    string socket_address(int | object, int default: 0);\n";
        let e = spec_efuns(spec);
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].ret.as_str(), e[0].name.as_str()),
            ("int", "socket_create")
        );
        assert_eq!(
            e[0].args,
            "int, string | function, string | function | void"
        );
        assert_eq!(
            (e[1].ret.as_str(), e[1].name.as_str()),
            ("mixed *", "socket_status")
        );
        assert_eq!(e[2].name, "socket_address");
        assert_eq!(efun_group("http_date"), Some("http"));
        assert_eq!(efun_group("strlen"), None);
    }

    #[test]
    fn shim_texts_reads_the_socket_error_array() {
        let texts: Vec<String> = (1..=32).map(|i| format!("\"text {i}\"")).collect();
        let cc = format!(
            "const char* socket_error(int error) {{\n  static const char* const texts[] = {{{}}};\n  if (bad) {{\n    return \"socket_error: invalid error number\";\n  }}\n  return texts[i];\n}}\n",
            texts.join(", ")
        );
        let t = shim_texts(&cc).unwrap();
        assert_eq!(t.socket_error.len(), 32);
        assert_eq!(t.socket_error[5], "text 6");
        assert_eq!(t.socket_error_other, "socket_error: invalid error number");
        assert!(shim_texts("int main() {}").is_err());
    }

    #[test]
    fn fill_blocks_renders_only_inside_markers() {
        let shim = ShimTexts {
            socket_error: (1..=32).map(|i| format!("t{i}")).collect(),
            socket_error_other: "other".into(),
        };
        let page =
            "prose\n<!-- generated: options 17 -->\nstale\n<!-- end generated -->\nmore prose\n";
        let out = fill_blocks(page, &shim).unwrap();
        assert!(out.starts_with("prose\n<!-- generated: options 17 -->\n\n| id |"));
        assert!(out.contains("`SO_MAX_BUFFERED`"));
        assert!(!out.contains("stale"));
        assert!(out.ends_with("\n<!-- end generated -->\nmore prose\n"));
        assert_eq!(fill_blocks(&out, &shim).unwrap(), out);
        let e = fill_blocks(
            "<!-- generated: nonesuch -->\n<!-- end generated -->\n",
            &shim,
        );
        assert!(e.unwrap_err().contains("unknown block"));
        let e = fill_blocks("<!-- generated: modes -->\nno end\n", &shim);
        assert!(e.unwrap_err().contains("never closed"));
        let e = fill_blocks(
            "<!-- generated: options 9999 -->\n<!-- end generated -->\n",
            &shim,
        );
        assert!(e.unwrap_err().contains("no option 9999"));
        let e = fill_blocks("x\n<!-- end generated -->\n", &shim);
        assert!(e.unwrap_err().contains("not opened"));
    }
}
