//! External processes (modes 22/23) through the C ABI: options 140–159 set
//! with `socket_set_option`, then sometimes `unisock_bind(id, 0, NULL)` to
//! start the process, and the event loop until its close event.
//!
//! Values: arbitrary trees from the shared builders, and structured choices
//! likely to pass validation: absolute paths (/bin/true, /bin/echo,
//! /bin/cat, /bin/sh, a directory, a missing file), shells 0/1/paths, args
//! arrays of random strings (with NULs, '=', invalid UTF-8 that the builder
//! must refuse, buffers), env mappings with random keys and values (with '='
//! and NUL), stdio modes (null, pipe, merge, console, file:<fuzz dir>/x and
//! bad ones), paths under the fuzz directory for EXTERNAL_WATCH_PATH and
//! EXTERNAL_WORKING_DIR, boundary ints, restart policies (with kill_mode
//! "group", "process" and values that must be refused).
//!
//! Safety: a process is only ever started as /bin/true, /bin/echo or
//! /bin/cat (cat with no arguments), with stdin "null", EXTERNAL_SHELL 0,
//! EXTERNAL_TIMEOUT 1 (when the fuzzed one is not 1 or 2), the working
//! directory the fuzz directory, stdout/stderr "null", "pipe", "merge" or
//! "file:<fuzz dir>/x" (anything else is replaced before the bind), and no
//! LD_* or GCONV_* variable in the environment. EXTERNAL_WATCH_PATH only
//! ever names the fuzz directory (values holding any string are replaced by
//! one of the structured paths). The fuzz directory is
//! /tmp/unisock-fuzz-external/<pid>, emptied of `x` at each input.
//!
//! Invariants: every result code has a known text and is never PANIC; a
//! failure has a non-empty `unisock_last_error`; a refused set starts with
//! "socket_set_option: " and leaves the option as it was; the value passed
//! is borrowed and unchanged; an accepted set is not refused when read back.
//! After a successful start: setting an option is refused (too late); every
//! event is for the socket; read data are mappings of the documented types;
//! exactly one final mapping ("exit" for mode 22 with EXTERNAL_ASYNC 1, else
//! "result") with int exit_code and signal and a known reason, and no
//! stdout/stderr pieces in the collected form; then the close event, and
//! nothing after it; the close event comes within 12 s (EXTERNAL_TIMEOUT 1
//! + the 5 s SIGKILL grace + slack) unless a restart policy is set; /bin/echo
//! prints exactly its arguments when nothing makes that ambiguous. After
//! `unisock_close_all`: the child is gone, neither running nor a zombie
//! (waitid(P_PID, its pid, WNOHANG | WNOWAIT) answers ECHILD), no other
//! child is left but libFuzzer's llvm-symbolizer, no socket is open or
//! flushing, and the number of open fds is back where it was (a small
//! constant allowed per input, and a bound over the whole run).
#![no_main]

use std::ffi::c_char;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

use unisock::ffi::sockets::{
    socket_set_option, unisock_bind, unisock_close, unisock_close_all, unisock_create,
    unisock_socket_count, unisock_status, unisock_write,
};
use unisock::ffi::values::UnisockValue;
use unisock::{ResultCode, Value};
use unisock_fuzz::*;

const ID: i32 = 2222;
const SAFE_PROGRAMS: [&str; 3] = ["/bin/true", "/bin/echo", "/bin/cat"];
const REASONS: [&str; 4] = ["exited", "killed", "timeout", "limit"];
const READ_TYPES: [&str; 6] = [
    "stdout",
    "stderr",
    "exit",
    "result",
    "file_event",
    "restart",
];
/// How many more fds than at its start an input may leave open.
const FD_SLACK: usize = 2;
/// How many more fds than after the first input the process may ever hold.
const FD_SLACK_TOTAL: usize = 8;

/// The fuzz directory: /tmp/unisock-fuzz-external/<pid> (those of dead
/// processes are removed when it is made, this one at exit).
fn fuzz_dir() -> &'static str {
    static DIR: OnceLock<String> = OnceLock::new();
    DIR.get_or_init(|| {
        own_dir("/tmp/unisock-fuzz-external")
            .to_string_lossy()
            .into_owned()
    })
}

/// A string of fuzz bytes, turned into one of a few shapes.
#[derive(Arbitrary, Debug, Clone)]
struct RawStr {
    shape: u8,
    bytes: Vec<u8>,
}

impl RawStr {
    fn value(&self) -> FuzzValue {
        let text = String::from_utf8_lossy(&self.bytes).into_owned();
        match self.shape % 6 {
            0 => FuzzValue::Text(text),
            1 => FuzzValue::Str(self.bytes.clone()), // may be invalid UTF-8: refused by the builder
            2 => FuzzValue::Text(format!("{text}={text}")),
            3 => FuzzValue::Text(format!("{text}\0{text}")),
            4 => FuzzValue::Buffer(self.bytes.clone()),
            _ => FuzzValue::Text(text.chars().filter(|c| c.is_ascii_alphanumeric()).collect()),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum Pick {
    Any(FuzzValue),
    Command(u8),
    Args(Vec<RawStr>),
    Env(Vec<(RawStr, RawStr)>),
    Path(u8, String),
    Stdio(u8, String),
    Shell(u8),
    Int(u8),
    Restart(u8),
    Text(String),
}

const INTS: [i64; 24] = [
    0,
    1,
    -1,
    2,
    3,
    4,
    19,
    20,
    -20,
    -21,
    1023,
    1024,
    4096,
    65536,
    1_048_576,
    1_048_577,
    86_400,
    86_401,
    100,
    200,
    1 << 31,
    i64::MAX,
    i64::MIN,
    30,
];

fn path_choice(n: u8, s: &str) -> FuzzValue {
    let d = fuzz_dir();
    let clean: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(32)
        .collect();
    FuzzValue::Text(match n % 10 {
        0 => d.to_string(),
        1 => format!("{d}/**"),
        2 => format!("{d}/missing"),
        3 => "relative/x".to_string(),
        4 => format!("{d}/../x"),
        5 => String::new(),
        6 => format!("{d}/{clean}"),
        7 => {
            return FuzzValue::Array(vec![
                FuzzValue::Text(d.to_string()),
                FuzzValue::Text(format!("{d}/**")),
            ])
        }
        8 => format!("{d}/x"),
        _ => format!("{d}//./{clean}"),
    })
}

impl Pick {
    fn value(&self) -> FuzzValue {
        let d = fuzz_dir();
        match self {
            Pick::Any(v) => v.clone(),
            Pick::Command(n) => FuzzValue::Text(match n % 12 {
                0..=2 => SAFE_PROGRAMS[(n % 3) as usize].to_string(),
                3 => "/bin/sh".into(),
                4 => "/no/such/program".into(),
                5 => "true".into(),
                6 => String::new(),
                7 => "/bin/true\0x".into(),
                8 => "/".repeat(4097),
                9 => d.to_string(),     // a directory
                10 => format!("{d}/x"), // not executable (or missing)
                _ => "/bin/echo".into(),
            }),
            Pick::Args(items) => {
                FuzzValue::Array(items.iter().take(16).map(RawStr::value).collect())
            }
            Pick::Env(pairs) => FuzzValue::Mapping(
                pairs
                    .iter()
                    .take(16)
                    .map(|(k, v)| (k.value(), v.value()))
                    .collect(),
            ),
            Pick::Path(n, s) => path_choice(*n, s),
            Pick::Stdio(n, s) => FuzzValue::Text(match n % 10 {
                0 => "null".into(),
                1 => "pipe".into(),
                2 => "merge".into(),
                3 => "console".into(),
                4 => format!("file:{d}/x"),
                5 => "file:relative".into(),
                6 => "file:".into(),
                7 => format!("file:{d}/missing/x"),
                8 => "PIPE".into(),
                _ => s.clone(),
            }),
            Pick::Shell(n) => match n % 8 {
                0 => FuzzValue::Int(0),
                1 => FuzzValue::Int(1),
                2 => FuzzValue::Int(2),
                3 => FuzzValue::Int(-1),
                4 => FuzzValue::Text("/bin/sh".into()),
                5 => FuzzValue::Text("sh".into()),
                6 => FuzzValue::Text(String::new()),
                _ => FuzzValue::Text("/bin/bash".into()),
            },
            Pick::Int(n) => FuzzValue::Int(INTS[*n as usize % INTS.len()]),
            Pick::Restart(n) => match n % 9 {
                0 => FuzzValue::Text("never".into()),
                1 => FuzzValue::Text("on-failure".into()),
                2 => FuzzValue::Text("always".into()),
                3 => FuzzValue::Text("sometimes".into()),
                4 => FuzzValue::Mapping(vec![
                    (
                        FuzzValue::Text("policy".into()),
                        FuzzValue::Text("on-failure".into()),
                    ),
                    (FuzzValue::Text("max_restarts".into()), FuzzValue::Int(1)),
                    (FuzzValue::Text("backoff_ms".into()), FuzzValue::Int(10)),
                ]),
                // kill_mode: "group", "process" (keep what the child leaves), and bad ones
                5..=7 => FuzzValue::Mapping(vec![
                    (
                        FuzzValue::Text("policy".into()),
                        FuzzValue::Text(if n % 2 == 0 { "never" } else { "on-failure" }.into()),
                    ),
                    (FuzzValue::Text("max_restarts".into()), FuzzValue::Int(1)),
                    (FuzzValue::Text("backoff_ms".into()), FuzzValue::Int(0)),
                    (
                        FuzzValue::Text("kill_mode".into()),
                        match n % 9 {
                            5 => FuzzValue::Text("group".into()),
                            6 => FuzzValue::Text("process".into()),
                            _ if n % 2 == 0 => FuzzValue::Text("none".into()),
                            _ => FuzzValue::Int(1),
                        },
                    ),
                ]),
                _ => {
                    FuzzValue::Mapping(vec![(FuzzValue::Text("policy".into()), FuzzValue::Int(1))])
                }
            },
            Pick::Text(s) => FuzzValue::Text(s.clone()),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Mode 23 (EXTERNAL_COMMAND_MODE) instead of 22.
    command_mode: bool,
    /// (option 140 + n % 20, value), at most 12.
    sets: Vec<(u8, Pick)>,
    /// 0: no bind; 1: bind to a port other than 0; 2: bind with whatever is
    /// set when no command is (must fail); 3..: a start, made safe first.
    bind: u8,
    /// Which of the three programs.
    program: u8,
    /// stdout / stderr to use when the fuzzed one is not safe.
    stdout: u8,
    stderr: u8,
    /// socket_write to the (null) stdin once it runs.
    write_stdin: bool,
    /// socket_close right after the start (0), or never.
    close_early: u8,
    /// A second bind while it runs.
    bind_twice: bool,
}

/// Whether a tree holds a string or buffer anywhere (a path, for 143).
fn holds_text(v: &FuzzValue) -> bool {
    match v {
        FuzzValue::Text(_) | FuzzValue::Str(_) | FuzzValue::Buffer(_) => true,
        FuzzValue::Array(a) => a.iter().any(holds_text),
        FuzzValue::Mapping(m) => m.iter().any(|(k, x)| holds_text(k) || holds_text(x)),
        FuzzValue::Deep(_, inner) => holds_text(inner),
        _ => false,
    }
}

/// socket_set_option with the checks every set gets. Returns whether it was accepted.
fn set(opt: i64, fv: &FuzzValue, what: &str) -> bool {
    let Some((h, model)) = build(fv, 0) else {
        return false; // refused by the builder (checked there)
    };
    let before = get_option(ID, opt);
    poison_last_error();
    let rc = socket_set_option(ID, opt, h.as_ptr());
    let msg = check_result(rc, what);
    assert!(
        same(&read_value(h.as_ptr()), &model),
        "{what}: the borrowed value changed"
    );
    let after = get_option(ID, opt);
    if rc == ResultCode::Ok {
        assert!(
            !matches!(after, Err(ResultCode::OptionWriteOnly)),
            "{what}: options 140-159 are readable"
        );
        assert!(after.is_ok(), "{what}: accepted, then get gave {after:?}");
        true
    } else {
        assert!(
            msg.starts_with("socket_set_option: "),
            "{what}: refused ({rc:?}) with {msg:?}"
        );
        let unchanged = match (&before, &after) {
            (Ok(a), Ok(b)) => same(a, b),
            (Err(a), Err(b)) => a == b,
            _ => false,
        };
        assert!(
            unchanged,
            "{what}: refused set changed the option: {before:?} -> {after:?}"
        );
        false
    }
}

/// A set that must be accepted (a valid value before the start).
fn must_set(opt: i64, v: FuzzValue) {
    let what = format!("safe set {opt} = {v:?}");
    assert!(set(opt, &v, &what), "{what} refused: {}", last_error());
}

fn str_opt(opt: i64) -> Option<String> {
    match get_option(ID, opt) {
        Ok(Value::Str(s)) => Some(s),
        _ => None,
    }
}

fn count_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Children of this process (from /proc/self/task/*/children), with their
/// command line and state.
fn children() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
        for t in rd.flatten() {
            let Ok(s) = std::fs::read_to_string(t.path().join("children")) else {
                continue;
            };
            for pid in s.split_whitespace() {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                    .unwrap_or_default();
                let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| {
                        s.rsplit_once(')')
                            .map(|(_, r)| r.split_whitespace().next().unwrap_or("?").to_string())
                    })
                    .unwrap_or_default();
                out.push(format!("{pid} [{state}] {cmd}"));
            }
        }
    }
    out
}

/// The process `pid` that unisock started is gone: waitid(P_PID, pid,
/// WEXITED | WNOHANG | WNOWAIT) answers ECHILD (reaped). It reaps nothing
/// (WNOWAIT), so a zombie stays visible. Then no other child is left but
/// the sanitizer's llvm-symbolizer (started by libFuzzer to print new
/// functions, and kept).
fn assert_no_children(pid: Option<i32>, what: &str) {
    if let Some(pid) = pid {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid with a valid out-pointer.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        let err = std::io::Error::last_os_error();
        if !(rc == -1 && err.raw_os_error() == Some(libc::ECHILD)) {
            // SAFETY: si_pid is valid to read after waitid filled the struct.
            let got = unsafe { info.si_pid() };
            panic!(
                "{what}: process {pid} is left: waitid gave {rc} ({err}), {}; children: {:?}",
                if got != 0 {
                    "a zombie"
                } else {
                    "still running"
                },
                children()
            );
        }
    }
    let left: Vec<String> = children()
        .into_iter()
        .filter(|c| !c.contains("llvm-symbolizer"))
        .collect();
    assert!(left.is_empty(), "{what}: children left: {left:?}");
}

fn bytes_of(v: &Value) -> Vec<u8> {
    match v {
        Value::Str(s) => s.as_bytes().to_vec(),
        Value::Buffer(b) => b.clone(),
        _ => Vec::new(),
    }
}

/// Makes the start safe: one of the three programs, stdin null, no shell,
/// timeout 1 (or 2), the fuzz directory as cwd, safe stdout/stderr, no
/// loader variables. Returns the program.
fn make_safe(input: &Input) -> &'static str {
    let d = fuzz_dir();
    let program = SAFE_PROGRAMS[input.program as usize % 3];
    must_set(140, FuzzValue::Text(program.into()));
    must_set(153, FuzzValue::Int(0));
    must_set(150, FuzzValue::Text("null".into()));
    let file = format!("file:{d}/x");
    let ok_out = |s: &Option<String>, merge: bool| {
        s.as_deref()
            .is_some_and(|s| s == "null" || s == "pipe" || s == file || (merge && s == "merge"))
    };
    let pick = |n: u8, merge: bool| match n % if merge { 4 } else { 3 } {
        0 => "null".to_string(),
        1 => "pipe".to_string(),
        2 => file.clone(),
        _ => "merge".to_string(),
    };
    if !ok_out(&str_opt(151), false) {
        must_set(151, FuzzValue::Text(pick(input.stdout, false)));
    }
    if !ok_out(&str_opt(152), true) {
        must_set(152, FuzzValue::Text(pick(input.stderr, true)));
    }
    if str_opt(144).is_some_and(|s| s != d) || input.program & 0x80 != 0 {
        must_set(144, FuzzValue::Text(d.into()));
    }
    if !matches!(get_option(ID, 147), Ok(Value::Int(1 | 2))) {
        must_set(147, FuzzValue::Int(1));
    }
    if program == "/bin/cat" {
        must_set(141, FuzzValue::Array(vec![]));
    }
    if let Ok(Value::Mapping(env)) = get_option(ID, 142) {
        let risky = env.iter().any(|(k, _)| {
            k.as_str()
                .is_some_and(|k| k.starts_with("LD_") || k.starts_with("GCONV"))
        });
        if risky {
            must_set(
                142,
                FuzzValue::Mapping(vec![(
                    FuzzValue::Text("PATH".into()),
                    FuzzValue::Text("/usr/bin:/bin".into()),
                )]),
            );
        }
    }
    program
}

/// Dispatches until the close event of ID or `limit`; checks every event.
/// Returns (the events of ID, whether the close came).
fn run_until_close(limit: Duration) -> (Vec<Ev>, bool) {
    let start = Instant::now();
    let mut all: Vec<Ev> = Vec::new();
    loop {
        for e in dispatch() {
            assert_eq!(e.socket, ID, "event for another socket: {e:?}");
            assert!(
                !all.iter().any(|x| x.kind == EV_CLOSE),
                "event after the close event: {e:?}"
            );
            all.push(e);
        }
        if all.iter().any(|x| x.kind == EV_CLOSE) {
            return (all, true);
        }
        if start.elapsed() >= limit {
            return (all, false);
        }
        wait_reactor(50);
    }
}

fn check_events(evs: &[Ev], collected: bool, program: &str, closed: bool, restarts: bool) {
    let mut finals = 0;
    for e in evs {
        match e.kind {
            EV_READ => {
                let data = e.data.as_ref().expect("a read event without data");
                let Value::Mapping(_) = data else {
                    panic!("read data is not a mapping: {data:?}")
                };
                let ty = data.get("type").and_then(Value::as_str).unwrap_or("");
                assert!(READ_TYPES.contains(&ty), "read type {ty:?}: {data:?}");
                assert!(
                    finals == 0 || restarts,
                    "a read after the final mapping: {data:?}"
                );
                if ty != "file_event" {
                    assert_eq!(e.addr.as_deref(), Some(program), "read address: {data:?}");
                }
                match ty {
                    "stdout" | "stderr" => {
                        assert!(!collected, "a {ty} piece in the collected form: {data:?}");
                        let binary = field_int(data, "data_is_binary");
                        match data.get("data") {
                            Some(Value::Str(_)) => assert_eq!(binary, Some(0), "{data:?}"),
                            Some(Value::Buffer(_)) => assert_eq!(binary, Some(1), "{data:?}"),
                            other => panic!("{ty} data {other:?}"),
                        }
                    }
                    "exit" | "result" => {
                        finals += 1;
                        assert_eq!(
                            ty == "result",
                            collected,
                            "final mapping {ty} (collected: {collected})"
                        );
                        assert!(field_int(data, "exit_code").is_some(), "{data:?}");
                        assert!(field_int(data, "signal").is_some(), "{data:?}");
                        let reason = data.get("reason").and_then(Value::as_str).unwrap_or("");
                        assert!(REASONS.contains(&reason), "reason {reason:?}: {data:?}");
                    }
                    _ => {}
                }
            }
            EV_CLOSE => {
                assert!(
                    finals == 1 || (restarts && finals > 1),
                    "close after {finals} final mappings: {evs:?}"
                );
            }
            k => panic!("event kind {k} on an external socket: {e:?}"),
        }
    }
    if closed && !restarts {
        assert_eq!(finals, 1, "{evs:?}");
    }
}

/// What /bin/echo must print, read from the options before the start
/// (the socket is gone after its close event); None when something could
/// change it (stdout not a pipe, an argument that may be an option,
/// POSIXLY_CORRECT).
fn echo_expect() -> Option<String> {
    if str_opt(151).as_deref() != Some("pipe") {
        return None;
    }
    let Ok(Value::Array(args)) = get_option(ID, 141) else {
        return None;
    };
    let args: Vec<&str> = args.iter().filter_map(Value::as_str).collect();
    if args.iter().any(|a| a.starts_with('-')) {
        return None;
    }
    if let Ok(env) = get_option(ID, 142) {
        if env.get("POSIXLY_CORRECT").is_some() {
            return None;
        }
    }
    Some(format!("{}\n", args.join(" ")))
}

/// /bin/echo's output must be its arguments when it exited 0.
fn check_echo(evs: &[Ev], collected: bool, want: &str) {
    let Some(last) = evs.iter().rev().find_map(|e| {
        e.data.as_ref().filter(|d| {
            matches!(
                d.get("type").and_then(Value::as_str),
                Some("exit" | "result")
            )
        })
    }) else {
        return;
    };
    if field_int(last, "exit_code") != Some(0)
        || last.get("reason").and_then(Value::as_str) != Some("exited")
        || last.get("truncated").is_some()
    {
        return;
    }
    let got: Vec<u8> = if collected {
        bytes_of(last.get("stdout").unwrap_or(&Value::Undefined))
    } else {
        evs.iter()
            .filter_map(|e| e.data.as_ref())
            .filter(|d| d.get("type").and_then(Value::as_str) == Some("stdout"))
            .flat_map(|d| bytes_of(d.get("data").unwrap_or(&Value::Undefined)))
            .collect()
    };
    assert_eq!(
        String::from_utf8_lossy(&got),
        want,
        "/bin/echo printed something else than its arguments"
    );
}

static FDS_AFTER_FIRST: AtomicUsize = AtomicUsize::new(0);
/// Inputs run, processes started, /bin/echo outputs compared: printed every
/// 10,000 inputs when EXTERNAL_FUZZ_STATS is set, to see that the paths are
/// reached.
static INPUTS: AtomicUsize = AtomicUsize::new(0);
static STARTED: AtomicUsize = AtomicUsize::new(0);
static ECHO_CHECKED: AtomicUsize = AtomicUsize::new(0);

fn stats(started: bool) {
    static ON: OnceLock<bool> = OnceLock::new();
    let n = INPUTS.fetch_add(1, Ordering::Relaxed) + 1;
    if started {
        STARTED.fetch_add(1, Ordering::Relaxed);
    }
    if n % 10_000 == 0 && *ON.get_or_init(|| std::env::var_os("EXTERNAL_FUZZ_STATS").is_some()) {
        eprintln!(
            "external_options: {n} inputs, {} processes started, {} echo outputs compared",
            STARTED.load(Ordering::Relaxed),
            ECHO_CHECKED.load(Ordering::Relaxed)
        );
    }
}

fuzz_target!(|input: Input| {
    // Modes 22/23, commands, watches and files are the admin's to allow: allowed here.
    open_policy();
    ignore_sigpipe();
    let d = fuzz_dir();
    let _ = std::fs::remove_file(format!("{d}/x"));
    let fds_before = count_fds();
    let mode: i64 = if input.command_mode { 23 } else { 22 };

    poison_last_error();
    let rc = unisock_create(ID, mode);
    check_result(rc, "create");
    assert_eq!(rc, ResultCode::Ok, "create mode {mode}: {}", last_error());

    for (k, (n, pick)) in input.sets.iter().take(12).enumerate() {
        let opt = 140 + (*n % 20) as i64;
        let mut fv = pick.value();
        if opt == 143 {
            // Watches only ever name the fuzz directory.
            if holds_text(&fv) && !matches!(pick, Pick::Path(..)) {
                fv = path_choice(*n, "");
            }
        }
        set(opt, &fv, &format!("set #{k} option {opt} mode {mode}"));
    }

    let mut started = false;
    let mut program = "";
    match input.bind % 8 {
        0 => {}
        1 => {
            poison_last_error();
            let rc = unisock_bind(ID, 1 + input.program as i64, ptr::null());
            check_result(rc, "bind to a port");
            assert_ne!(rc, ResultCode::Ok, "an external process bound a port");
        }
        2 => {
            if get_option(ID, 140).is_ok_and(|v| v == Value::Undefined) {
                poison_last_error();
                let rc = unisock_bind(ID, 0, ptr::null());
                check_result(rc, "bind without a command");
                assert_eq!(rc, ResultCode::EeNoaddr, "bind without EXTERNAL_COMMAND");
            }
        }
        _ => {
            program = make_safe(&input);
            poison_last_error();
            let rc = unisock_bind(ID, 0, ptr::null());
            check_result(rc, "bind (start)");
            started = rc == ResultCode::Ok;
        }
    }
    // The child's pid, from socket_status.
    let pid = started.then(|| {
        let mut out: *mut UnisockValue = ptr::null_mut();
        let rc = unisock_status(ID, &mut out);
        check_result(rc, "status");
        assert_eq!(rc, ResultCode::Ok, "status of a started process");
        let st = read_value(Owned(out).as_ptr());
        let pid = field_int(&st, "pid").expect("status has the pid");
        assert!(pid > 0, "pid {pid}");
        pid as i32
    });

    if started {
        poison_last_error();
        let v = to_c(&Value::Int(4096));
        let rc = socket_set_option(ID, 148, v.as_ptr());
        let msg = check_result(rc, "set after the start");
        assert_ne!(
            rc,
            ResultCode::Ok,
            "an option changed while the process runs"
        );
        assert!(msg.starts_with("socket_set_option: "), "{msg:?}");
        if input.bind_twice {
            poison_last_error();
            let rc = unisock_bind(ID, 0, ptr::null());
            check_result(rc, "second bind");
            assert_ne!(rc, ResultCode::Ok, "a second start");
        }
        if input.write_stdin {
            poison_last_error();
            let v = to_c(&Value::str("x"));
            let rc = unisock_write(ID, v.as_ptr(), ptr::null::<c_char>());
            check_result(rc, "write to stdin null");
            assert_ne!(rc, ResultCode::Ok, "a write to a null stdin was accepted");
        }
        if input.close_early % 4 == 0 {
            let rc = unisock_close(ID);
            check_result(rc, "close early");
            assert_eq!(rc, ResultCode::Ok);
            // No callbacks for it any more; it is reaped in the background.
            let deadline = Instant::now() + Duration::from_secs(8);
            loop {
                let evs = dispatch();
                assert!(evs.is_empty(), "events after socket_close: {evs:?}");
                let (mut open, mut flushing) = (0usize, 0usize);
                assert_eq!(
                    unisock_socket_count(&mut open, &mut flushing),
                    ResultCode::Ok
                );
                if open == 0 && flushing == 0 || Instant::now() >= deadline {
                    break;
                }
                wait_reactor(50);
            }
        } else {
            let restarts = match get_option(ID, 159) {
                Ok(Value::Str(s)) => s != "never",
                Ok(Value::Mapping(_)) => true,
                _ => false,
            };
            let collected = mode == 23 || matches!(get_option(ID, 149), Ok(Value::Int(0)));
            let limit = Duration::from_secs(if restarts { 3 } else { 12 });
            let want = (program == "/bin/echo").then(echo_expect).flatten();
            let (evs, closed) = run_until_close(limit);
            assert!(
                closed || restarts,
                "{program} did not end within {limit:?}: {evs:?}"
            );
            check_events(&evs, collected, program, closed, restarts);
            if let (Some(want), true) = (want, closed) {
                check_echo(&evs, collected, &want);
                ECHO_CHECKED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    poison_last_error();
    let rc = unisock_close(ID);
    check_result(rc, "close");
    assert!(
        matches!(rc, ResultCode::Ok | ResultCode::EeBadf),
        "close: {rc:?}"
    );
    let rc = unisock_close_all();
    check_result(rc, "close_all");
    assert_eq!(rc, ResultCode::Ok);
    assert_no_children(pid, "after close_all");
    let (mut open, mut flushing) = (usize::MAX, usize::MAX);
    assert_eq!(
        unisock_socket_count(&mut open, &mut flushing),
        ResultCode::Ok
    );
    assert_eq!((open, flushing), (0, 0), "sockets left behind");

    stats(started);
    let fds_after = count_fds();
    let first = FDS_AFTER_FIRST.load(Ordering::Relaxed);
    if first == 0 {
        // The first input also opens what unisock keeps (the reactor).
        FDS_AFTER_FIRST.store(fds_after, Ordering::Relaxed);
    } else {
        assert!(
            fds_after <= fds_before + FD_SLACK,
            "fd leak: {fds_before} open before this input, {fds_after} after"
        );
        assert!(
            fds_after <= first + FD_SLACK_TOTAL,
            "fds grow over the run: {first} after the first input, {fds_after} now"
        );
    }
});
