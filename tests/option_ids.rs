//! Option ids are typed once, in the catalog (`src/options/catalog/rows.rs`);
//! code reads them from the generated `src/options/ids.rs`. This fails if a
//! hand-typed option constant (`const SO_MAX_BUFFERED: u16 = 17;`) comes
//! back anywhere else in `src/`.

use std::path::{Path, PathBuf};

use unisock::options::catalog::OPTIONS;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `const NAME: T = <digit>...` with NAME an option's name or alias.
fn hand_typed_option(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    for vis in ["pub(crate) ", "pub(super) ", "pub "] {
        rest = rest.strip_prefix(vis).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("const ")?;
    let (name, rest) = rest.split_once(':')?;
    let name = name.trim();
    let (_, value) = rest.split_once('=')?;
    let is_number = value.trim_start().starts_with(|c: char| c.is_ascii_digit());
    let is_option = OPTIONS.iter().any(|d| d.names().any(|n| n == name));
    (is_number && is_option).then_some(name)
}

#[test]
fn no_option_id_is_typed_by_hand_outside_the_catalog() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let generated = root.join("src/options/ids.rs");
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut found = Vec::new();
    for f in files.iter().filter(|f| **f != generated) {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if let Some(name) = hand_typed_option(line) {
                found.push(format!(
                    "{}:{}: {name}",
                    f.strip_prefix(root).unwrap().display(),
                    i + 1
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "option ids typed by hand; use crate::options::ids instead:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn the_scan_sees_a_hand_typed_option() {
    assert_eq!(
        hand_typed_option("    pub(crate) const SO_MAX_BUFFERED: u16 = 17;"),
        Some("SO_MAX_BUFFERED")
    );
    assert_eq!(
        hand_typed_option("const HTTP_TIMEOUT: i64 = 104;"),
        Some("HTTP_TIMEOUT")
    );
    assert_eq!(
        hand_typed_option("const READ_ROUND: usize = 1 << 20;"),
        None
    );
}
