use super::text::runs;
use super::*;
use crate::modes::ModeSet;

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
    let page = "prose\n<!-- generated: options 17 -->\nstale\n<!-- end generated -->\nmore prose\n";
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
