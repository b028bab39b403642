//! The pages under docs/efun/ are written by hand (FluffOS's format, one page per
//! efun); what comes from the tables sits between an opening marker
//! `<!-- generated: NAME [ARGS] -->` and `<!-- end generated -->` and is rendered
//! here. docs/efun/README.md lists the blocks.

use super::blocks::efun_block;

/// Where the efun pages live: `docs/efun/<group>/<name>.md`.
pub const EFUN_DIR: &str = "docs/efun";
/// The efun declarations the pages document.
pub const EFUN_SPEC: &str = "cpp_shim/fluffos/sockets.spec";
/// The file whose `socket_error` texts the `ee-codes` block shows.
pub const SOCKET_ERROR_SOURCE: &str = "cpp_shim/fluffos/sockets.cc";

const BLOCK_OPEN: &str = "<!-- generated: ";
const BLOCK_CLOSE: &str = "<!-- end generated -->";

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
