//! Checks of the external-process options (140–159).

use super::fields::*;
use super::{abs_path, known_keys};
use crate::value::Value;

pub(crate) fn external_command(v: &Value) -> Result<Value, String> {
    let s = str_of(v);
    if s.is_empty() || s.len() > 4096 {
        return Err(format!("{} chars long", s.len()));
    }
    if s.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    Ok(v.clone())
}

pub(crate) fn external_args(v: &Value) -> Result<Value, String> {
    for (i, s) in strings(v)?.into_iter().enumerate() {
        if s.contains('\0') {
            return Err(format!("element {i} contains a NUL byte"));
        }
    }
    Ok(v.clone())
}

pub(crate) fn external_env(v: &Value) -> Result<Value, String> {
    if let Value::Mapping(m) = v {
        for (k, val) in m {
            let (Value::Str(k), Value::Str(val)) = (k, val) else {
                return Err(format!("entry {} is not string → string", k.describe()));
            };
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(format!(
                    "{k:?} is not a variable name (non-empty, no \"=\")"
                ));
            }
            if val.contains('\0') {
                return Err(format!("the value of {k:?} contains a NUL byte"));
            }
        }
    }
    Ok(v.clone())
}

pub(crate) fn watch_paths(v: &Value) -> Result<Value, String> {
    string_or_strings(v, |s| abs_path(s, "the path", 4096))
}

pub(crate) fn working_dir(v: &Value) -> Result<Value, String> {
    abs_path(str_of(v), "the directory", 4096)?;
    Ok(v.clone())
}

/// Looks a user (`group` false) or group name up; returns its id.
pub(crate) fn lookup_id(name: &str, group: bool) -> Option<u32> {
    if group {
        let g = nix::unistd::Group::from_name(name).ok().flatten()?;
        Some(g.gid.as_raw())
    } else {
        let u = nix::unistd::User::from_name(name).ok().flatten()?;
        Some(u.uid.as_raw())
    }
}

/// EXTERNAL_USER / EXTERNAL_GROUP: resolves the name and checks that the
/// driver may switch to it, so the error comes at set time.
pub(crate) fn run_as(v: &Value, group: bool) -> Result<u32, String> {
    let what = if group { "group" } else { "user" };
    let id = match v {
        Value::Int(i) if (0..i64::from(u32::MAX)).contains(i) => *i as u32,
        Value::Int(i) => return Err(format!("{i} is not a {what} id")),
        Value::Str(s) => lookup_id(s, group).ok_or_else(|| format!("no such {what} {s:?}"))?,
        _ => return Err(String::new()),
    };
    use nix::unistd::{getegid, geteuid, getgid, getuid};
    let (mine, real) = if group {
        (getegid().as_raw(), getgid().as_raw())
    } else {
        (geteuid().as_raw(), getuid().as_raw())
    };
    let root = geteuid().is_root();
    use crate::sys::{has_cap, CAP_SETGID, CAP_SETUID};
    let cap = if group { CAP_SETGID } else { CAP_SETUID };
    if id != mine && id != real && !root && !has_cap(cap) {
        return Err(format!(
            "the driver runs as {what} {mine} and may not switch to {what} {id} \
             (needs root or CAP_SET{}ID)",
            if group { "G" } else { "U" }
        ));
    }
    Ok(id)
}

pub(crate) fn external_user(v: &Value) -> Result<Value, String> {
    run_as(v, false).map(|_| v.clone())
}

pub(crate) fn external_group(v: &Value) -> Result<Value, String> {
    run_as(v, true).map(|_| v.clone())
}

pub(crate) fn stdio(v: &Value, words: &[&str]) -> Result<Value, String> {
    let s = str_of(v);
    if let Some(path) = s.strip_prefix("file:") {
        abs_path(path, "the file path", 4096)?;
        return Ok(v.clone());
    }
    if words.contains(&s) {
        Ok(v.clone())
    } else {
        // The words are all in `wants`; nothing to add.
        Err(String::new())
    }
}

pub(crate) fn stdin_mode(v: &Value) -> Result<Value, String> {
    stdio(v, &["pipe", "null"])
}

pub(crate) fn stdout_mode(v: &Value) -> Result<Value, String> {
    stdio(v, &["pipe", "null", "console"])
}

pub(crate) fn stderr_mode(v: &Value) -> Result<Value, String> {
    stdio(v, &["pipe", "merge", "null", "console"])
}

pub(crate) fn external_shell(v: &Value) -> Result<Value, String> {
    match v {
        Value::Int(_) => Ok(boolean(v)),
        Value::Str(s) => {
            abs_path(s, "the shell", 4096)?;
            Ok(v.clone())
        }
        _ => Err(String::new()),
    }
}

pub(crate) fn cores() -> i64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as i64)
}

pub(crate) fn cpu_limit(v: &Value) -> Result<Value, String> {
    let max = 100 * cores();
    match v.as_int() {
        Some(i) if i == 0 || (1..=max).contains(&i) => Ok(v.clone()),
        _ => Err(format!(
            "this machine has {} cores, so at most {max}",
            cores()
        )),
    }
}

/// The smallest EXTERNAL_MEMORY_LIMIT in bytes (0 = none); external_set_resource_limits
/// checks "memory" against it too.
pub const MIN_MEMORY: i64 = 1 << 20;

/// EXTERNAL_FILE_LIMIT's range of open files (0 = the driver's own);
/// external_set_resource_limits checks "files" against it too.
pub const FILE_LIMIT: (i64, i64) = (3, 1_048_576);

pub(crate) fn memory_limit(v: &Value) -> Result<Value, String> {
    match v.as_int() {
        Some(i) if i == 0 || i >= MIN_MEMORY => Ok(v.clone()),
        _ => Err(String::new()),
    }
}

pub(crate) fn file_limit(v: &Value) -> Result<Value, String> {
    let (lo, hi) = FILE_LIMIT;
    match v.as_int() {
        Some(i) if i == 0 || (lo..=hi).contains(&i) => Ok(v.clone()),
        _ => Err(String::new()),
    }
}

pub(crate) fn sandbox(v: &Value) -> Result<Value, String> {
    match v {
        Value::Int(_) => Ok(boolean(v)),
        Value::Mapping(_) => {
            known_keys(v, &["paths", "read", "network", "processes"])?;
            let mut out = Value::Mapping(vec![]);
            let paths = |key: &str| -> Result<Option<Value>, String> {
                let Some(p) = v.get(key) else { return Ok(None) };
                let Value::Array(_) = p else {
                    return Err(format!("\"{key}\" is {}, not an array", p.describe()));
                };
                for (i, s) in strings(p)?.into_iter().enumerate() {
                    abs_path(s, &format!("\"{key}\" element {i}"), 4096)?;
                }
                Ok(Some(p.clone()))
            };
            let rw = paths("paths")?.unwrap_or(Value::Array(vec![]));
            out.insert(Value::str("paths"), rw);
            // "read" limits reads to the system directories and the paths
            // named; absent, reads are allowed everywhere, so it is kept
            // only when given.
            if let Some(read) = paths("read")? {
                out.insert(Value::str("read"), read);
            }
            let net = bool_field(v, "network")?.unwrap_or(0);
            out.insert(Value::str("network"), Value::Int(net));
            let procs = int_field(v, "processes", 0, 1_000_000, " (0 = no limit)")?.unwrap_or(0);
            out.insert(Value::str("processes"), Value::Int(procs));
            Ok(out)
        }
        _ => Err(String::new()),
    }
}

pub(crate) const RESTART_WORDS: &[&str] = &["never", "on-failure", "always"];
/// EXTERNAL_RESTART_POLICY's "kill_mode": what is ended when a run ends
/// (systemd's KillMode): "group", every process left in the process group
/// and the cgroup; "process", only the main process (the rest are kept).
pub(crate) const KILL_MODES: &[&str] = &["group", "process"];

pub(crate) fn restart_policy(v: &Value) -> Result<Value, String> {
    let word = |s: &str| {
        if RESTART_WORDS.contains(&s) {
            Ok(())
        } else {
            Err(format!(
                "policy {s:?} is not \"never\", \"on-failure\" or \"always\""
            ))
        }
    };
    match v {
        Value::Str(s) => {
            word(s)?;
            Ok(v.clone())
        }
        Value::Mapping(_) => {
            known_keys(
                v,
                &[
                    "policy",
                    "max_restarts",
                    "backoff_ms",
                    "window",
                    "kill_mode",
                ],
            )?;
            let policy = required_str(v, "policy")?;
            word(policy)?;
            let max = int_field(v, "max_restarts", 0, 1_000_000, " (0 = no limit)")?.unwrap_or(0);
            let backoff =
                int_field(v, "backoff_ms", 0, 60_000, " (ms, 0 = at once)")?.unwrap_or(1000);
            let window = int_field(v, "window", 0, 86_400, " (s, 0 = forever)")?.unwrap_or(0);
            let kill_mode = str_field(v, "kill_mode")?.unwrap_or("group");
            if !KILL_MODES.contains(&kill_mode) {
                return Err(format!(
                    "\"kill_mode\" {kill_mode:?} is not \"group\" (end every process left in \
                     the process group and cgroup when a run ends; the default) or \"process\" \
                     (end only the main process and keep the rest)"
                ));
            }
            Ok(Value::mapping([
                ("policy", Value::str(policy)),
                ("max_restarts", Value::Int(max)),
                ("backoff_ms", Value::Int(backoff)),
                ("window", Value::Int(window)),
                ("kill_mode", Value::str(kill_mode)),
            ]))
        }
        _ => Err(String::new()),
    }
}
