//! The direction core ← families ← registry ← ffi (docs/ARCHITECTURE.md,
//! "Adding a family"): the shared parts of the crate name no family.

use std::path::Path;

/// The folders every family builds on.
const SHARED: &[&str] = &[
    "src/core",
    "src/reactor",
    "src/options",
    "src/transport",
    "src/tls",
    "src/policy",
];

/// What they may name after `crate::`: each other and the crate's shared
/// modules. Anything else (a family, the registry, the C ABI) is refused, so
/// a family added later is covered without a line here.
const MAY_NAME: &[&str] = &[
    "core",
    "reactor",
    "options",
    "transport",
    "tls",
    "policy",
    "error",
    "value",
    "modes",
    "sys",
    "http_util",
    "Error",
    "Result",
    "ResultCode",
    "Value",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every name that follows `crate::` in `text` (a `crate::{a, b}` group is
/// refused as a whole: the crate does not write them).
fn named(text: &str) -> Vec<String> {
    text.match_indices("crate::")
        .map(|(at, needle)| {
            text[at + needle.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .map(|n| if n.is_empty() { "{…}".to_string() } else { n })
        .collect()
}

#[test]
fn shared_folders_import_no_family() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in SHARED {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(!files.is_empty());
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for name in named(&text) {
            if !MAY_NAME.contains(&name.as_str()) {
                found.push(format!("{} names crate::{name}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
