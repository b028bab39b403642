//! The policy applied. [`option`] runs when an option that names a command,
//! a user or a host path is set (`OptionStore::set`, before the value is
//! stored, so a refused value leaves the old one); the other functions run
//! where the power is used (socket_create, the start of a child, a watch,
//! a socket file's bind or connect, the read of a TLS file), against the
//! policy in force then. A refusal is EESECURITY with the policy's message,
//! which names the key to change.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::fs::{self, Last};
use super::{current, Denied, Dirs, PolicyError};
use crate::error::{Error, Result};
use crate::options::ids::{
    EXTERNAL_COMMAND, EXTERNAL_ENV, EXTERNAL_GROUP, EXTERNAL_SHELL, EXTERNAL_STDERR_MODE,
    EXTERNAL_STDIN_MODE, EXTERNAL_STDOUT_MODE, EXTERNAL_USER, EXTERNAL_WATCH_PATH, IPC_SOCKET_DIR,
    SO_TLS_CA, SO_TLS_CERT, SO_TLS_KEY,
};
use crate::value::Value;

/// Most bytes read from a TLS file (a CA bundle of the whole web is ~250 KiB).
pub const MAX_TLS_FILE: u64 = 16 << 20;

fn security(verb: &'static str, msg: &str) -> Error {
    PolicyError::Refused {
        verb,
        why: msg.to_string(),
    }
    .into()
}

/// The option ids whose values [`option`] checks.
pub fn gates(id: u16) -> bool {
    matches!(
        id,
        SO_TLS_CERT
            | SO_TLS_KEY
            | SO_TLS_CA
            | EXTERNAL_COMMAND
            | EXTERNAL_ENV
            | EXTERNAL_WATCH_PATH
            | EXTERNAL_USER
            | EXTERNAL_GROUP
            | EXTERNAL_STDIN_MODE
            | EXTERNAL_STDOUT_MODE
            | EXTERNAL_STDERR_MODE
            | EXTERNAL_SHELL
            | IPC_SOCKET_DIR
    )
}

/// The path of a `file:` stdio mode, if `v` is one.
pub fn stdio_file(v: &str) -> Option<&str> {
    v.strip_prefix("file:")
}

/// The directory a watch path names ("/a/**" watches /a).
pub fn watch_base(path: &str) -> &str {
    match path.strip_suffix("/**") {
        Some("") => "/",
        Some(base) => base,
        None => path,
    }
}

/// socket_set_option: refuses (EESECURITY) a value that names what the
/// policy does not allow. A path that does not resolve yet is left to the
/// use, which reports it as before (and checks again).
pub fn option(id: u16, name: &str, value: &Value) -> Result<()> {
    if !gates(id) {
        return Ok(());
    }
    let p = current();
    if p.is_open() {
        return Ok(());
    }
    let verb = "socket_set_option";
    // A path that does not resolve yet is left to the use; one that never
    // can (InvalidInput: a dangling link where a file is to be made) is
    // refused now.
    let path = |dirs: Dirs, path: &str, new: bool| match p.check_path(dirs, name, path, new) {
        Err(Denied::Policy(m)) => Err(security(verb, &m)),
        Err(Denied::Io(m, e)) if e.kind() == std::io::ErrorKind::InvalidInput => {
            Err(PolicyError::NeverResolves { verb, why: m }.into())
        }
        _ => Ok(()),
    };
    match (id, value) {
        (SO_TLS_CERT | SO_TLS_KEY | SO_TLS_CA, Value::Str(s)) => path(Dirs::Tls, s, false),
        (IPC_SOCKET_DIR, Value::Str(s)) => path(Dirs::Socket, s, false),
        (EXTERNAL_WATCH_PATH, Value::Str(s)) => path(Dirs::Watch, watch_base(s), false),
        (EXTERNAL_WATCH_PATH, Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .try_for_each(|s| path(Dirs::Watch, watch_base(s), false)),
        (EXTERNAL_STDIN_MODE..=EXTERNAL_STDERR_MODE, Value::Str(s)) => match stdio_file(s) {
            Some(f) => path(Dirs::File, f, id != EXTERNAL_STDIN_MODE),
            None => Ok(()),
        },
        // With a shell allowed any command line may run; else it must be
        // an allowed executable (the start checks again, with the shell).
        (EXTERNAL_COMMAND, Value::Str(s)) if !p.allows_shell() => match p.check_command(s) {
            Err(Denied::Policy(m)) => Err(security(verb, &m)),
            _ => Ok(()),
        },
        (EXTERNAL_SHELL, v) if !matches!(v, Value::Int(0)) => {
            p.check_shell().map_err(|m| security(verb, &m))
        }
        (EXTERNAL_USER | EXTERNAL_GROUP, v) => {
            let group = id == EXTERNAL_GROUP;
            let Ok(n) = crate::options::validate::external::run_as(v, group) else {
                return Ok(()); // validation said why already
            };
            let asked = match v {
                Value::Str(s) => s.clone(),
                _ => n.to_string(),
            };
            let r = if group {
                p.check_group(n, &asked)
            } else {
                p.check_user(n, &asked)
            };
            r.map_err(|m| security(verb, &m))
        }
        (EXTERNAL_ENV, Value::Mapping(m)) => {
            m.iter()
                .try_for_each(|(k, v)| match (k.as_str(), v.as_str()) {
                    (Some(k), Some(v)) => p.check_env(k, v).map_err(|m| security(verb, &m)),
                    _ => Ok(()),
                })
        }
        _ => Ok(()),
    }
}

/// socket_create: may a socket of `mode` be made?
pub fn mode(mode: u8) -> Result<()> {
    current()
        .check_mode(mode)
        .map_err(|m| security("socket_create", &m))
}

/// The start of a child: what it will run (the canonical executable, or
/// the command as given under `open`), checked again now. `shell` is
/// whether EXTERNAL_SHELL is on; then the shell is what needs allowing.
pub fn command(command: &str, shell: bool) -> Result<PathBuf> {
    let p = current();
    if shell {
        p.check_shell().map_err(|m| security("socket_bind", &m))?;
        return Ok(PathBuf::from(command));
    }
    p.check_command(command).map_err(|d| match d {
        Denied::Policy(m) => security("socket_bind", &m),
        Denied::Io(why, _) => PolicyError::CannotStart { why }.into(),
    })
}

/// The start of a child: the user and group it runs as, and its
/// environment, checked again against the policy in force.
pub fn child(
    uid: Option<(u32, String)>,
    gid: Option<(u32, String)>,
    env: &[(String, String)],
) -> Result<()> {
    let p = current();
    let refuse = |m: String| security("socket_bind", &m);
    if let Some((u, asked)) = uid {
        p.check_user(u, &asked).map_err(refuse)?;
    }
    if let Some((g, asked)) = gid {
        p.check_group(g, &asked).map_err(refuse)?;
    }
    for (k, v) in env {
        p.check_env(k, v).map_err(refuse)?;
    }
    Ok(())
}

fn io(what: &str, path: &str, e: std::io::Error) -> Denied {
    Denied::Io(format!("{what} {path}: {}", fs::explain(&e)), e)
}

/// Reads the TLS file `path` (SO_TLS_CERT, SO_TLS_KEY or SO_TLS_CA, named
/// by `what`; relative to the working directory) if it lies in `tls_dirs`,
/// through one descriptor opened without following links. At most
/// [`MAX_TLS_FILE`] bytes. Under an open policy the path is opened as
/// given (links followed). Either way only a regular file is read, and the
/// open never blocks (a FIFO would hold the driver's thread).
pub fn read_tls(what: &str, path: &str) -> std::result::Result<Vec<u8>, Denied> {
    let p = current();
    let f = if p.is_open() {
        fs::open_as_given(Path::new(path), false)
    } else {
        let canon = p.check_path(Dirs::Tls, what, path, false)?;
        fs::open(&canon, Last::Read)
    }
    .map_err(|e| io(what, path, e))?;
    let mut bytes = Vec::new();
    f.take(MAX_TLS_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io(what, path, e))?;
    if bytes.len() as u64 > MAX_TLS_FILE {
        let m = format!(
            "{what} {path}: larger than {} MiB, not a PEM file",
            MAX_TLS_FILE >> 20
        );
        return Err(Denied::Io(
            m.clone(),
            std::io::Error::new(std::io::ErrorKind::InvalidData, m),
        ));
    }
    Ok(bytes)
}

/// Opens a child's `file:` stdin (`append` false, read) or output
/// (`append` true, created 0644 when missing) if it lies in `file_dirs`.
/// Under an open policy the path is opened as given (links followed).
/// Either way only a regular file is used, and the open never blocks (a
/// FIFO or a device would hold the driver's thread until its other end
/// opened).
pub fn stdio(what: &str, path: &str, append: bool) -> std::result::Result<File, Denied> {
    let p = current();
    if p.is_open() {
        return fs::open_as_given(Path::new(path), append).map_err(|e| io(what, path, e));
    }
    let canon = p.check_path(Dirs::File, what, path, append)?;
    let how = if append { Last::Append } else { Last::Read };
    fs::open(&canon, how).map_err(|e| io(what, path, e))
}

/// A directory of `dirs` (IPC_SOCKET_DIR), opened without following
/// links: use it through `fs::fd_path`.
pub fn dir(dirs: Dirs, what: &str, path: &Path) -> std::result::Result<File, Denied> {
    let text = path.to_string_lossy();
    let canon = current().check_path(dirs, what, &text, false)?;
    fs::open(&canon, Last::Dir).map_err(|e| io(what, &text, e))
}

/// What a watch of `base` (a directory or a file) will watch: its
/// canonical path, if it lies in `watch_dirs` (the watch opens it and what
/// lies under it from there without following links), and whether the
/// policy confines watches (a recursive walk then stays on the root's file
/// system).
pub fn watch(what: &str, base: &str) -> std::result::Result<(PathBuf, bool), Denied> {
    let p = current();
    let canon = p.check_path(Dirs::Watch, what, base, false)?;
    Ok((canon, !p.is_open()))
}

/// An IPC socket file to connect to (`what` names where its path came
/// from), if it lies in `socket_dirs`: an O_PATH descriptor of the socket
/// itself, opened without following links, to connect through
/// `fs::fd_path` (so a link swapped in after the check is not followed).
pub fn socket_file(what: &str, path: &Path) -> std::result::Result<File, Denied> {
    let text = path.to_string_lossy();
    let canon = current().check_path(Dirs::Socket, what, &text, false)?;
    fs::open(&canon, Last::Path).map_err(|e| io(what, &text, e))
}
