//! Text helpers every renderer shares: names, defaults, access and "when"
//! as the docs write them, number runs, Markdown escaping.

use crate::modes::{Family, ModeSet};
use crate::options::{Access, OptionDef, When};

pub(super) fn family_name(f: Family) -> &'static str {
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
pub(super) fn default_text(d: &OptionDef) -> &'static str {
    if d.default_doc == "—" {
        "none"
    } else {
        d.default_doc
    }
}

/// Compresses sorted numbers: runs of three or more become "a–b".
pub(super) fn runs(nums: &[u32], dash: &str) -> String {
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

pub(super) fn access_text(d: &OptionDef) -> &'static str {
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

pub(super) fn when_text(w: When) -> &'static str {
    match w {
        When::Anytime => "any time",
        When::BeforeStart => "before start",
    }
}

/// Escapes text for a Markdown table cell.
pub(super) fn md(s: &str) -> String {
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

pub(super) fn code_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
