//! The admin's policy (src/policy, docs/SECURITY.md) through the C ABI:
//! `unisock_set_policy` with arbitrary bytes and with structured JSON built
//! from the policy's keys, `unisock_get_policy`, then the checks on
//! arbitrary paths.
//!
//! Structured policies name paths of a small tree made once per process
//! under /tmp/unisock-fuzz-policy/<pid> (removed at exit; those of dead
//! processes when it is made): directories `a`, `a/sub`, `b`,
//! files `a/f`, `a/sub/g`, `b/h`, an executable `a/run`, and links
//! `a/out` → `../b`, `a/loop` → `loop`, `a/up` → `..`, `b/back` →
//! `../a/f`, `a/dangling` → `nowhere`; plus "/", "/etc", "/bin/true",
//! relative, empty and bad
//! paths, and arbitrary strings. Paths checked are made of the same
//! pieces joined with "/", "..", "." and arbitrary components.
//!
//! Invariants: no call panics (never PANIC) and every failure has a message;
//! a refused policy (PARSE, INVALID_UTF8) leaves the one in force unchanged
//! (read back through `unisock_get_policy` and compared); an accepted one
//! reads back, and that read-back, set again, is accepted and reads back
//! equal (a fixed point). The checks allow a path only inside what was
//! allowed: `check_path` Ok(canonical) is the path as the kernel resolves it
//! (std's canonicalize, or its parent's plus the name when new) and lies in
//! one of the policy's canonical directories of that kind; `check_command`
//! Ok is a listed executable or lies in a listed directory; `check_mode` Ok
//! is 0–6 or a listed mode; with `open` everything resolvable is allowed.
//! What a check allowed opens without following links (`policy::fs`), and
//! what it refused is refused with a message naming the key.
#![no_main]

use std::ffi::c_char;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

use unisock::ffi::policy::{unisock_get_policy, unisock_set_policy};
use unisock::ffi::values::UnisockValue;
use unisock::policy::{self, fs, Denied, Dirs};
use unisock::ResultCode;
use unisock_fuzz::*;

fn tree() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = own_dir("/tmp/unisock-fuzz-policy");
        std::fs::create_dir_all(d.join("a/sub")).unwrap();
        std::fs::create_dir_all(d.join("b")).unwrap();
        for f in ["a/f", "a/sub/g", "b/h"] {
            std::fs::write(d.join(f), "x").unwrap();
        }
        std::fs::write(d.join("a/run"), "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::{symlink, PermissionsExt};
        std::fs::set_permissions(d.join("a/run"), std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink("../b", d.join("a/out")).unwrap();
        symlink("loop", d.join("a/loop")).unwrap();
        symlink("..", d.join("a/up")).unwrap();
        symlink("../a/f", d.join("b/back")).unwrap();
        symlink("nowhere", d.join("a/dangling")).unwrap();
        std::fs::canonicalize(d).unwrap()
    })
}

#[derive(Arbitrary, Debug, Clone)]
enum Piece {
    A,
    Sub,
    B,
    F,
    G,
    H,
    Run,
    Out,
    Loop,
    Up,
    Back,
    Dangling,
    Dot,
    DotDot,
    Missing,
    Any(String),
}

impl Piece {
    fn text(&self) -> &str {
        match self {
            Piece::A => "a",
            Piece::Sub => "sub",
            Piece::B => "b",
            Piece::F => "f",
            Piece::G => "g",
            Piece::H => "h",
            Piece::Run => "run",
            Piece::Out => "out",
            Piece::Loop => "loop",
            Piece::Up => "up",
            Piece::Back => "back",
            Piece::Dangling => "dangling",
            Piece::Dot => ".",
            Piece::DotDot => "..",
            Piece::Missing => "missing",
            Piece::Any(s) => s,
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum PathSel {
    /// The tree's root joined with pieces (a trailing "/" when the bool says).
    InTree(Vec<Piece>, bool),
    Root,
    Etc,
    BinTrue,
    Relative(Vec<Piece>),
    Any(String),
}

impl PathSel {
    fn text(&self) -> String {
        let join = |ps: &[Piece]| ps.iter().map(Piece::text).collect::<Vec<_>>().join("/");
        match self {
            PathSel::InTree(ps, slash) => {
                let mut s = format!("{}/{}", tree().display(), join(&ps[..ps.len().min(6)]));
                if *slash && !s.ends_with('/') {
                    s.push('/');
                }
                s
            }
            PathSel::Root => "/".into(),
            PathSel::Etc => "/etc".into(),
            PathSel::BinTrue => "/bin/true".into(),
            PathSel::Relative(ps) => join(&ps[..ps.len().min(4)]),
            PathSel::Any(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum Entry {
    Path(PathSel),
    Int(i64),
    Text(String),
    Bool(bool),
    Null,
}

impl Entry {
    fn json(&self) -> String {
        match self {
            Entry::Path(p) => json_str(&p.text()),
            Entry::Int(n) => n.to_string(),
            Entry::Text(s) => json_str(s),
            Entry::Bool(b) => b.to_string(),
            Entry::Null => "null".into(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum KeySel {
    Known(u8),
    Any(String),
}

#[derive(Arbitrary, Debug, Clone)]
enum Val {
    List(Vec<Entry>),
    /// Modes as numbers (mostly valid ones) or names.
    Modes(Vec<u8>),
    Flag(u8),
    One(Entry),
}

#[derive(Arbitrary, Debug)]
enum PolicySel {
    Bytes(Vec<u8>),
    Object(Vec<(KeySel, Val)>),
    Open,
}

#[derive(Arbitrary, Debug, Clone)]
struct Check {
    kind: u8,
    path: PathSel,
    new: bool,
    mode: u8,
}

#[derive(Arbitrary, Debug)]
struct Input {
    policies: Vec<PolicySel>,
    checks: Vec<Check>,
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn policy_json(items: &[(KeySel, Val)]) -> String {
    let mut parts = Vec::new();
    for (k, v) in items.iter().take(10) {
        let key = match k {
            KeySel::Known(n) => policy::KEYS[*n as usize % policy::KEYS.len()].to_string(),
            KeySel::Any(s) => s.clone(),
        };
        let val = match v {
            Val::List(es) => format!(
                "[{}]",
                es.iter()
                    .take(8)
                    .map(Entry::json)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Val::Modes(ms) => format!(
                "[{}]",
                ms.iter()
                    .take(8)
                    .map(|m| match m % 8 {
                        7 => "\"EXTERNAL_PROCESS\"".to_string(),
                        _ => (m % 40).to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Val::Flag(n) => (n % 3).to_string(),
            Val::One(e) => e.json(),
        };
        parts.push(format!("{}:{val}", json_str(&key)));
    }
    format!("{{{}}}", parts.join(","))
}

/// The policy in force, read back through the C ABI as JSON text.
fn read_back() -> String {
    let mut out: *mut UnisockValue = ptr::null_mut();
    let rc = unisock_get_policy(&mut out);
    check_result(rc, "get_policy");
    assert_eq!(rc, ResultCode::Ok);
    let v = Owned(out);
    to_json(v.as_ptr()).expect("the policy reads back as JSON")
}

fn set(bytes: &[u8]) -> ResultCode {
    poison_last_error();
    let rc = unisock_set_policy(bytes.as_ptr() as *const c_char, bytes.len());
    let msg = check_result(rc, "set_policy");
    assert!(
        matches!(
            rc,
            ResultCode::Ok | ResultCode::Parse | ResultCode::InvalidUtf8
        ),
        "set_policy gave {rc:?}: {msg}"
    );
    if rc == ResultCode::Parse {
        assert!(msg.starts_with("policy: "), "{msg}");
    }
    rc
}

fn strings(j: &str, key: &str) -> Vec<String> {
    // The read-back is flat: "key":[ "a", "b" ]; parse it back through the
    // library's own reader rather than by hand.
    let p = policy::Policy::from_json(j).expect("read-back parses");
    let v = p.to_json();
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn check(c: &Check, json: &str) {
    let p = policy::current();
    let open = p.is_open();
    let path = c.path.text();
    if path.len() > 4096 || path.contains('\0') {
        return;
    }
    match c.kind % 4 {
        0 => {
            let dirs = [Dirs::Watch, Dirs::Socket, Dirs::Tls, Dirs::File][c.mode as usize % 4];
            match p.check_path(dirs, "WHAT", &path, c.new) {
                Ok(canon) => {
                    let want = policy::canonical(&path, c.new).expect("allowed paths resolve");
                    assert_eq!(canon, want, "{path}");
                    if !open {
                        let allowed = strings(json, dirs.key());
                        assert!(
                            allowed.iter().any(|d| canon.starts_with(d)),
                            "{path} → {} allowed outside {allowed:?}",
                            canon.display()
                        );
                    }
                    if canon.exists() {
                        fs::open(&canon, fs::Last::Path).unwrap_or_else(|e| {
                            panic!("{} allowed but not opened: {e}", canon.display())
                        });
                    }
                }
                Err(Denied::Policy(m)) => {
                    assert!(!open, "open refused {path}: {m}");
                    assert!(m.contains(&format!("\"{}\"", dirs.key())), "{m}");
                }
                Err(Denied::Io(m, _)) => assert!(m.starts_with("WHAT "), "{m}"),
            }
        }
        1 => match p.check_command(&path) {
            Ok(exe) if open => assert_eq!(exe, Path::new(&path)),
            Ok(exe) => {
                let listed = strings(json, "commands");
                assert!(
                    listed.iter().any(|c| {
                        if c.ends_with('/') {
                            exe.starts_with(c)
                        } else {
                            exe == Path::new(c)
                        }
                    }),
                    "{path} → {} not in {listed:?}",
                    exe.display()
                );
                assert_eq!(exe, std::fs::canonicalize(&path).unwrap());
            }
            Err(Denied::Policy(m)) => {
                assert!(!open);
                assert!(m.contains("\"commands\""), "{m}");
            }
            Err(Denied::Io(..)) => assert!(!open || !Path::new(&path).exists()),
        },
        2 => {
            let ok = p.check_mode(c.mode).is_ok();
            let listed = policy::Policy::from_json(json).unwrap().to_json()["modes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m.as_u64() == Some(c.mode as u64));
            assert_eq!(ok, open || c.mode <= 6 || listed, "mode {}", c.mode);
        }
        _ => {
            let name = match c.mode % 7 {
                0 => "LD_PRELOAD",
                1 => "PATH",
                2 => "LANG",
                3 => "GCONV_PATH",
                4 => "HOME",
                5 => "XDG_CONFIG_HOME",
                _ => "PYTHONPATH",
            };
            let r = p.check_env(name, &path);
            if p.allows_shell() {
                assert!(r.is_ok());
            } else if name != "PATH" && name != "LANG" {
                assert!(r.unwrap_err().contains("\"shell\""));
            } else if name == "LANG" {
                assert!(r.is_ok());
            }
        }
    }
}

/// One policy: refused ones leave the old in force; accepted ones read back
/// to a fixed point.
fn apply(text: &[u8]) {
    let before = read_back();
    if set(text) != ResultCode::Ok {
        assert_eq!(
            read_back(),
            before,
            "a refused policy changed the one in force"
        );
        return;
    }
    let after = read_back();
    let p1 = policy::current();
    assert_eq!(
        set(after.as_bytes()),
        ResultCode::Ok,
        "read-back refused: {after}"
    );
    assert_eq!(read_back(), after, "read-back is not a fixed point");
    assert_eq!(*policy::current(), *p1);
}

/// The checks run after a policy given as raw JSON (the seeds): every kind,
/// on the tree's paths one and two pieces deep.
fn fixed_checks() -> Vec<Check> {
    use Piece::*;
    let pieces = [
        A, Sub, B, F, Run, Out, Loop, Up, Back, Dangling, DotDot, Missing,
    ];
    let mut paths = vec![PathSel::Root, PathSel::Etc, PathSel::BinTrue];
    for p in &pieces {
        paths.push(PathSel::InTree(vec![p.clone()], false));
        for q in &pieces {
            paths.push(PathSel::InTree(vec![p.clone(), q.clone()], false));
        }
    }
    let mut out = Vec::new();
    for (i, path) in paths.into_iter().enumerate() {
        for kind in 0..4u8 {
            out.push(Check {
                kind,
                path: path.clone(),
                new: i % 2 == 0,
                mode: (i % 40) as u8,
            });
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let _ = tree();
    // Raw JSON (the seeds, and what the dictionary makes of them): one
    // policy, then the fixed checks. Anything else: structured input.
    if matches!(data.first(), Some(b'{' | b'[' | b' ')) {
        apply(data);
        let json = read_back();
        for c in fixed_checks()
            .iter()
            .filter(|c| c.kind % 4 != 2 || c.mode < 40)
        {
            check(c, &json);
        }
        return;
    }
    let Ok(input) = Input::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else {
        return;
    };
    for sel in input.policies.iter().take(4) {
        let text = match sel {
            PolicySel::Bytes(b) => b.clone(),
            PolicySel::Object(items) => policy_json(items).into_bytes(),
            PolicySel::Open => b"{\"open\":1}".to_vec(),
        };
        apply(&text);
    }
    let json = read_back();
    for c in input.checks.iter().take(16) {
        check(c, &json);
    }
});
