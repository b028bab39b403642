//! Building and starting the child from the socket's options: a clean
//! environment, its own process group, the working directory, argv (direct
//! or through a shell), the three stdio modes, and its nice value and
//! open-file limit (set in the child between fork and exec).
//!
//! `std::process::Command` does the fork/exec: it is safe in a multithreaded
//! process and reports an exec failure (no such file, not executable)
//! synchronously, which becomes socket_bind's error.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use super::limits::{Limits, Wanted};
use super::sandbox::Sandbox;
use super::{opt, sys, ExternalError};
use crate::error::{Error, Result};
use crate::options::catalog;
use crate::options::store::OptionStore;
use crate::policy::{gate, PolicyError};
use crate::value::Value;

/// What the options ask for.
pub struct Spec {
    pub command: String,
    /// What is executed: the canonical executable the policy allowed (the
    /// command as given under an open policy), or the shell.
    program: String,
    /// argv[0]: the command as LPC named it, or the shell.
    arg0: String,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<String>,
    stdin: String,
    stdout: String,
    stderr: String,
    /// EXTERNAL_USER, resolved; None: the driver's.
    uid: Option<u32>,
    /// EXTERNAL_GROUP, or the user's primary group; None: the driver's.
    gid: Option<u32>,
    /// EXTERNAL_CPU_LIMIT, EXTERNAL_MEMORY_LIMIT, the sandbox's "processes",
    /// EXTERNAL_FILE_LIMIT and EXTERNAL_PRIORITY (None: the driver's).
    pub wanted: Wanted,
    /// EXTERNAL_SANDBOX as stored (0, 1 or the normalised mapping).
    sandbox: Value,
}

/// A started child and our ends of its pipes.
pub struct Spawned {
    pub child: Child,
    pub pid: i32,
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// The limits applied to it (cgroups or rlimits; empty when none were asked for).
    pub limits: Option<Limits>,
    /// The sandbox it runs in, when EXTERNAL_SANDBOX is on.
    pub sandbox: Option<Sandbox>,
}

fn effective(o: &OptionStore, id: u16, mode: u8) -> Value {
    catalog::find(id as i64)
        .map(|d| o.effective(d, mode))
        .unwrap_or(Value::Undefined)
}

fn text(o: &OptionStore, id: u16, mode: u8) -> String {
    match effective(o, id, mode) {
        Value::Str(s) => s,
        _ => String::new(),
    }
}

fn fail(why: String) -> Error {
    ExternalError::Start { why }.into()
}

impl Spec {
    pub fn from_options(o: &OptionStore, mode: u8) -> Result<Spec> {
        let command = o
            .string(opt::EXTERNAL_COMMAND)
            .map(str::to_string)
            .ok_or(ExternalError::NoCommand)?;
        let args: Vec<String> = match effective(o, opt::EXTERNAL_ARGS, mode) {
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let shell = match effective(o, opt::EXTERNAL_SHELL, mode) {
            Value::Int(0) => None,
            Value::Int(_) => Some("/bin/sh".to_string()),
            Value::Str(s) => Some(s),
            _ => None,
        };
        let (program, arg0, argv) = match shell {
            None => {
                if !command.starts_with('/') {
                    return Err(ExternalError::CommandNotAbsolute { command }.into());
                }
                // Checked now against the policy in force, and executed
                // as resolved then (docs/SECURITY.md says what window is left).
                let exe = crate::policy::gate::command(&command, false)?;
                (exe.to_string_lossy().into_owned(), command.clone(), args)
            }
            // sh -c COMMAND sh ARGS...: the args become $1, $2, ...
            Some(sh) => {
                crate::policy::gate::command(&command, true)?;
                let mut argv = vec!["-c".to_string(), command.clone(), sh.clone()];
                argv.extend(args);
                (sh.clone(), sh, argv)
            }
        };
        let id_of = |id: u16, group: bool| -> Result<Option<u32>> {
            match o.raw(id) {
                None | Some(Value::Undefined) => Ok(None),
                Some(v) => crate::options::validate::external::run_as(v, group)
                    .map(Some)
                    .map_err(|why| {
                        let name = if group {
                            "EXTERNAL_GROUP"
                        } else {
                            "EXTERNAL_USER"
                        };
                        fail(format!("{name}: {why}"))
                    }),
            }
        };
        let uid = id_of(opt::EXTERNAL_USER, false)?;
        let asked = |id: u16, n: u32| match o.raw(id) {
            Some(Value::Str(s)) => (n, s.clone()),
            _ => (n, n.to_string()),
        };
        let explicit_gid = id_of(opt::EXTERNAL_GROUP, true)?;
        let (uid_asked, gid_asked) = (
            uid.map(|u| asked(opt::EXTERNAL_USER, u)),
            explicit_gid.map(|g| asked(opt::EXTERNAL_GROUP, g)),
        );
        let gid = match (explicit_gid, uid) {
            (Some(g), _) => Some(g),
            (None, Some(u)) => Some(sys::primary_gid(u).ok_or_else(|| {
                fail(format!(
                    "EXTERNAL_USER {u} has no entry in the user database, so its group is \
                     unknown: set EXTERNAL_GROUP too"
                ))
            })?),
            (None, None) => None,
        };
        let sandbox = effective(o, opt::EXTERNAL_SANDBOX, mode);
        let positive = |id: u16| Some(o.int(id, mode)).filter(|&n| n > 0);
        let wanted = Wanted {
            cpu_percent: positive(opt::EXTERNAL_CPU_LIMIT).map(|n| n as u32),
            memory: positive(opt::EXTERNAL_MEMORY_LIMIT).map(|n| n as u64),
            processes: sandbox
                .get("processes")
                .and_then(Value::as_int)
                .filter(|&n| n > 0)
                .map(|n| n as u64),
            files: positive(opt::EXTERNAL_FILE_LIMIT).map(|n| n as u64),
            priority: match o.int(opt::EXTERNAL_PRIORITY, mode) {
                0 => None,
                n => {
                    let (lo, hi) = catalog::int_range(opt::EXTERNAL_PRIORITY)
                        .expect("EXTERNAL_PRIORITY is an int range");
                    Some(n.clamp(lo, hi) as i32)
                }
            },
            child_uid: uid,
        };
        let env = match effective(o, opt::EXTERNAL_ENV, mode) {
            Value::Mapping(m) => m
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect(),
            _ => Vec::new(),
        };
        // The user, the group named (a user's own primary group comes with
        // the user) and the environment, against the policy in force.
        crate::policy::gate::child(uid_asked, gid_asked, &env)?;
        Ok(Spec {
            command,
            program,
            arg0,
            argv,
            env,
            cwd: o.string(opt::EXTERNAL_WORKING_DIR).map(str::to_string),
            stdin: text(o, opt::EXTERNAL_STDIN_MODE, mode),
            stdout: text(o, opt::EXTERNAL_STDOUT_MODE, mode),
            stderr: text(o, opt::EXTERNAL_STDERR_MODE, mode),
            uid,
            gid,
            wanted,
            sandbox,
        })
    }

    /// Starts the child. Errors name the path and the OS error.
    pub fn spawn(&self) -> Result<Spawned> {
        if let Some(dir) = &self.cwd {
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(fail(format!(
                        "EXTERNAL_WORKING_DIR {dir} is not a directory"
                    )))
                }
                Err(e) => return Err(fail(format!("EXTERNAL_WORKING_DIR {dir}: {e}"))),
            }
        }
        // exec reports these too, but checking first gives the same clear
        // error where exec failures come back late (valgrind's fork emulation).
        if let Err(e) = nix::unistd::access(self.program.as_str(), nix::unistd::AccessFlags::X_OK) {
            return Err(fail(format!(
                "cannot start {}: {}",
                self.program,
                std::io::Error::from(e)
            )));
        }
        let mut cmd = Command::new(&self.program);
        cmd.arg0(&self.arg0)
            .args(&self.argv)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .process_group(0);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        // Nothing wanted costs nothing; the Limits is kept anyway so that
        // external_set_resource_limits can add a limit to the running child.
        let limits = Limits::prepare(&self.wanted).map_err(fail)?;
        let setup = limits.child_setup();
        let uid_after = self.uid.unwrap_or_else(sys::euid);
        let sandbox = match (&self.sandbox, &self.cwd) {
            (Value::Int(0) | Value::Undefined, _) => None,
            (v, cwd) => {
                let cwd = match cwd {
                    Some(dir) => PathBuf::from(dir),
                    None => std::env::current_dir()
                        .map_err(|e| fail(format!("the driver's cwd: {e}")))?,
                };
                Sandbox::prepare(v, &cwd, uid_after == 0)
                    .map_err(|why| fail(format!("EXTERNAL_SANDBOX: {why}")))?
                    .map(Arc::new)
            }
        };
        // Without a hook std starts the child with posix_spawn (vfork-like,
        // much cheaper than fork for a large driver); any hook makes it fork.
        let w = &self.wanted;
        let hook = w.cpu_percent.is_some()
            || w.memory.is_some()
            || w.processes.is_some()
            || w.files.is_some()
            || w.priority.is_some()
            || self.uid.is_some()
            || self.gid.is_some()
            || sandbox.is_some();
        if hook {
            let (uid, gid) = (self.uid, self.gid);
            let set_groups = sys::euid() == 0;
            let sb = sandbox.clone();
            // SAFETY: the closure runs in the forked child before exec. Every
            // step only makes async-signal-safe system calls on data prepared in
            // the parent and allocates nothing: the cgroups, rlimits and nice
            // value (ChildSetup::apply), the user switch (sys::switch_user), then
            // the sandbox (Sandbox::in_child). An error makes the spawn fail.
            unsafe {
                cmd.pre_exec(move || {
                    setup.apply()?;
                    sys::switch_user(uid, gid, set_groups)?;
                    if let Some(sb) = &sb {
                        sb.in_child()?;
                    }
                    Ok(())
                });
            }
        }
        let (stdin_child, stdin) = match self.stdin.as_str() {
            "pipe" => {
                let (r, w) = sys::pipe().map_err(|e| fail(format!("pipe: {e}")))?;
                (Stdio::from(r), Some(w))
            }
            "null" => (Stdio::null(), None),
            m => {
                let path = m.strip_prefix("file:").unwrap_or(m);
                let f = gate::stdio("EXTERNAL_STDIN_MODE", path, false)
                    .map_err(PolicyError::at_bind)?;
                (Stdio::from(f), None)
            }
        };
        // stdout's target as an fd, so "merge" can give stderr a copy of it.
        let (stdout_fd, stdout): (Option<OwnedFd>, Option<OwnedFd>) = match self.stdout.as_str() {
            "pipe" => {
                let (r, w) = sys::pipe().map_err(|e| fail(format!("pipe: {e}")))?;
                (Some(w), Some(r))
            }
            "null" => (Some(open_null()?), None),
            "console" => (None, None),
            m => (Some(append(m, "EXTERNAL_STDOUT_MODE")?), None),
        };
        let (stderr_child, stderr) = match self.stderr.as_str() {
            "pipe" => {
                let (r, w) = sys::pipe().map_err(|e| fail(format!("pipe: {e}")))?;
                (Stdio::from(w), Some(r))
            }
            "null" => (Stdio::null(), None),
            "console" => (Stdio::inherit(), None),
            "merge" => match &stdout_fd {
                Some(fd) => (
                    Stdio::from(fd.try_clone().map_err(|e| fail(format!("dup: {e}")))?),
                    None,
                ),
                // stdout is the driver's own: merged stderr goes there too.
                None => (Stdio::inherit(), None),
            },
            m => (Stdio::from(append(m, "EXTERNAL_STDERR_MODE")?), None),
        };
        cmd.stdin(stdin_child)
            .stdout(stdout_fd.map_or_else(Stdio::inherit, Stdio::from))
            .stderr(stderr_child);
        let child = cmd.spawn().map_err(|e| {
            let mut applied = Vec::new();
            if let Some(dir) = &self.cwd {
                applied.push(format!("in {dir}"));
            }
            if let Some(n) = self.wanted.priority {
                applied.push(format!("EXTERNAL_PRIORITY {n}"));
            }
            if let Some(n) = self.wanted.files {
                applied.push(format!("EXTERNAL_FILE_LIMIT {n}"));
            }
            if let Some(u) = self.uid {
                applied.push(format!("as user {u}"));
            }
            if let Some(g) = self.gid {
                applied.push(format!("as group {g}"));
            }
            if self.wanted.cpu_percent.is_some()
                || self.wanted.memory.is_some()
                || self.wanted.processes.is_some()
            {
                applied.push("with CPU/memory/process limits".to_string());
            }
            if let Some(sb) = &sandbox {
                applied.push(match sb.child_failure() {
                    Some(step) => format!("EXTERNAL_SANDBOX: {step} failed"),
                    // landlock checks the exec itself: a program outside "read"
                    None if e.kind() == std::io::ErrorKind::PermissionDenied => {
                        "in EXTERNAL_SANDBOX, whose file rules may not allow running it: is its \
                         directory outside \"read\"?"
                            .to_string()
                    }
                    None => "in EXTERNAL_SANDBOX".to_string(),
                });
            }
            fail(if applied.is_empty() {
                format!("cannot start {}: {e}", self.program)
            } else {
                format!(
                    "cannot start {} ({}): {e}",
                    self.program,
                    applied.join(", ")
                )
            })
        })?;
        // `cmd` (holding the child's ends of the pipes) is dropped here, so
        // our read ends see EOF when the child and its descendants close them.
        drop(cmd);
        let pid = child.id() as i32;
        let mut limits = limits;
        limits.started(pid);
        Ok(Spawned {
            child,
            pid,
            stdin,
            stdout,
            stderr,
            limits: Some(limits),
            // The closure (holding the other reference) went with `cmd`.
            sandbox: sandbox.and_then(|s| Arc::try_unwrap(s).ok()),
        })
    }
}

fn open_null() -> Result<OwnedFd> {
    File::options()
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| fail(format!("/dev/null: {e}")))
}

/// A "file:<path>" output: appended to, created (0644) when missing, if
/// the policy's `file_dirs` hold it (opened without following links).
fn append(mode: &str, option: &str) -> Result<OwnedFd> {
    let path = mode.strip_prefix("file:").unwrap_or(mode);
    gate::stdio(option, path, true)
        .map(OwnedFd::from)
        .map_err(|d| PolicyError::at_bind(d).into())
}
