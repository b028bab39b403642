//! The admin's policy: which of unisock's powers that reach the host LPC may
//! use (docs/SECURITY.md). Upstream FluffOS keeps such powers in the admin's
//! hands (`external_cmd_N` in the driver's config file); unisock's new ones —
//! starting programs, watching host paths, making socket files, reading TLS
//! material — are refused unless the policy the host hands over allows them.
//!
//! One policy per process, set through the C ABI (`unisock_set_policy`): the
//! shim builds it from the driver's config file, the harness from its
//! `policy` verb. The keys are the same everywhere:
//!
//! | key | allows |
//! |---|---|
//! | `modes` | the modes beyond 0–6 that may be created (default: 10–13) |
//! | `commands` | executables (absolute paths) or directories (ending in `/`) a child may be |
//! | `shell` | 0/1: EXTERNAL_SHELL may be used |
//! | `users`, `groups` | names or ids a child may run as (EXTERNAL_USER / EXTERNAL_GROUP) |
//! | `watch_dirs` | directories whose contents may be watched |
//! | `socket_dirs` | directories that may hold IPC (and FastCGI) socket files |
//! | `tls_dirs` | directories that may hold SO_TLS_CERT / SO_TLS_KEY / SO_TLS_CA files |
//! | `file_dirs` | directories that may hold the `file:` targets of EXTERNAL_STDIN/STDOUT/STDERR_MODE |
//! | `open` | 1: everything (tests and benchmarks) |
//!
//! A key left out allows nothing of its kind. Paths are compared as the
//! kernel sees them: canonical (symlinks and `..` resolved) on both sides.
//! This module decides (`Policy::check_*`); `gate` applies it when an option
//! is set and when the power is used, and `fs` opens what was checked so
//! that the kernel uses what was checked (no symlink swapped in meanwhile).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value as Json;

use crate::modes;

mod error;
pub mod fs;
pub mod gate;

pub use error::PolicyError;

/// The keys of a policy, in the order the docs list them.
pub const KEYS: &[&str] = &[
    "modes",
    "commands",
    "shell",
    "users",
    "groups",
    "watch_dirs",
    "socket_dirs",
    "tls_dirs",
    "file_dirs",
    "open",
];

/// Modes every host may create whatever the policy says: upstream's.
const ALWAYS: std::ops::RangeInclusive<u8> = 0..=6;

/// The modes enabled when no policy was given: HTTP(S) and WebSocket, which reach
/// nothing on the host that upstream's modes do not.
const DEFAULT_MODES: &[u8] = &[10, 11, 12, 13, 16, 17, 18, 19];

/// Most entries one list of a policy may hold.
const MAX_ENTRIES: usize = 1024;
/// Longest path accepted in a policy (PATH_MAX).
const MAX_PATH: usize = 4096;

/// A directory list of the policy (the path checks name it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dirs {
    Watch,
    Socket,
    Tls,
    File,
}

impl Dirs {
    pub fn key(self) -> &'static str {
        match self {
            Dirs::Watch => "watch_dirs",
            Dirs::Socket => "socket_dirs",
            Dirs::Tls => "tls_dirs",
            Dirs::File => "file_dirs",
        }
    }
}

/// A user or group the policy names, resolved to its id when set.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Principal {
    id: u32,
    /// The name the admin wrote, or None for a numeric id (read back as
    /// written, so that the read-back parses again to the same policy).
    name: Option<String>,
}

/// The policy in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    open: bool,
    modes: Vec<u8>,
    /// Canonical executables.
    commands: Vec<PathBuf>,
    /// Canonical directories whose executables (at any depth) are allowed.
    command_dirs: Vec<PathBuf>,
    shell: bool,
    users: Vec<Principal>,
    groups: Vec<Principal>,
    watch_dirs: Vec<PathBuf>,
    socket_dirs: Vec<PathBuf>,
    tls_dirs: Vec<PathBuf>,
    file_dirs: Vec<PathBuf>,
}

/// Why a check said no: the policy (LPC hears EESECURITY and which key to
/// change), or the path could not be resolved inside an allowed directory
/// (an I/O error the family reports as it always did: the message, naming
/// the option and the path, and the error itself, whose kind and errno a
/// family may pass on).
#[derive(Debug)]
pub enum Denied {
    Policy(String),
    Io(String, std::io::Error),
}

impl Denied {
    pub fn message(&self) -> &str {
        match self {
            Denied::Policy(m) | Denied::Io(m, _) => m,
        }
    }

    pub fn is_policy(&self) -> bool {
        matches!(self, Denied::Policy(_))
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl Default for Policy {
    /// No policy given: upstream's powers and HTTP, nothing that reaches the host.
    fn default() -> Policy {
        Policy {
            modes: DEFAULT_MODES.to_vec(),
            ..Policy::empty()
        }
    }
}

impl Policy {
    /// Nothing beyond upstream's modes: what a given policy starts from.
    fn empty() -> Policy {
        Policy {
            open: false,
            modes: Vec::new(),
            commands: Vec::new(),
            command_dirs: Vec::new(),
            shell: false,
            users: Vec::new(),
            groups: Vec::new(),
            watch_dirs: Vec::new(),
            socket_dirs: Vec::new(),
            tls_dirs: Vec::new(),
            file_dirs: Vec::new(),
        }
    }
}

static CURRENT: RwLock<Option<Arc<Policy>>> = RwLock::new(None);

/// The policy in force (the default one until a host sets another).
pub fn current() -> Arc<Policy> {
    if let Some(p) = CURRENT.read().as_ref() {
        return p.clone();
    }
    let mut w = CURRENT.write();
    w.get_or_insert_with(|| Arc::new(Policy::default())).clone()
}

/// Puts `p` in force for every check from now on (sockets already running
/// keep what they were allowed).
pub fn set(p: Policy) {
    *CURRENT.write() = Some(Arc::new(p));
}

impl Policy {
    /// Everything allowed (`policy open`: tests and benchmarks).
    pub fn open() -> Policy {
        Policy {
            open: true,
            ..Policy::empty()
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Reads a policy from its JSON form: an object with the keys of
    /// [`KEYS`]; anything else is refused with a message naming the key.
    pub fn from_json(text: &str) -> Result<Policy, String> {
        let j: Json = serde_json::from_str(text).map_err(|e| format!("policy: bad JSON: {e}"))?;
        let Json::Object(map) = j else {
            return Err(format!(
                "policy: wants a JSON object with the keys {}, got {}",
                KEYS.join(", "),
                kind(&j)
            ));
        };
        let mut p = Policy::empty();
        for (key, v) in &map {
            match key.as_str() {
                "open" => p.open = flag(key, v)?,
                "shell" => p.shell = flag(key, v)?,
                "modes" => {
                    for m in list(key, v)? {
                        p.modes.push(mode(m)?);
                    }
                }
                "commands" => {
                    for c in list(key, v)? {
                        let s = text_of(key, c)?;
                        let dir = s.ends_with('/');
                        let path = policy_path(key, s)?;
                        if dir {
                            p.command_dirs.push(path);
                        } else {
                            p.commands.push(path);
                        }
                    }
                }
                "users" => {
                    for u in list(key, v)? {
                        p.users.push(principal(key, u, false)?);
                    }
                }
                "groups" => {
                    for g in list(key, v)? {
                        p.groups.push(principal(key, g, true)?);
                    }
                }
                "watch_dirs" | "socket_dirs" | "tls_dirs" | "file_dirs" => {
                    let mut dirs = Vec::new();
                    for d in list(key, v)? {
                        dirs.push(policy_path(key, text_of(key, d)?)?);
                    }
                    match key.as_str() {
                        "watch_dirs" => p.watch_dirs = dirs,
                        "socket_dirs" => p.socket_dirs = dirs,
                        "tls_dirs" => p.tls_dirs = dirs,
                        _ => p.file_dirs = dirs,
                    }
                }
                other => {
                    return Err(format!(
                        "policy: unknown key {other:?} (the keys are {})",
                        KEYS.join(", ")
                    ))
                }
            }
        }
        p.modes.sort_unstable();
        p.modes.dedup();
        Ok(p)
    }

    /// The policy as JSON, the way `from_json` reads it (paths canonical).
    pub fn to_json(&self) -> Json {
        let paths = |v: &[PathBuf]| -> Json {
            Json::Array(
                v.iter()
                    .map(|p| Json::String(p.display().to_string()))
                    .collect(),
            )
        };
        let mut commands: Vec<Json> = self
            .commands
            .iter()
            .map(|p| Json::String(p.display().to_string()))
            .collect();
        commands.extend(self.command_dirs.iter().map(|p| Json::String(dir_text(p))));
        let names = |v: &[Principal]| -> Json {
            Json::Array(
                v.iter()
                    .map(|p| match &p.name {
                        Some(n) => Json::String(n.clone()),
                        None => Json::from(p.id),
                    })
                    .collect(),
            )
        };
        let mut m = serde_json::Map::new();
        m.insert(
            "modes".into(),
            Json::Array(self.modes.iter().map(|&m| Json::from(m)).collect()),
        );
        m.insert("commands".into(), Json::Array(commands));
        m.insert("shell".into(), Json::from(self.shell as u8));
        m.insert("users".into(), names(&self.users));
        m.insert("groups".into(), names(&self.groups));
        m.insert("watch_dirs".into(), paths(&self.watch_dirs));
        m.insert("socket_dirs".into(), paths(&self.socket_dirs));
        m.insert("tls_dirs".into(), paths(&self.tls_dirs));
        m.insert("file_dirs".into(), paths(&self.file_dirs));
        m.insert("open".into(), Json::from(self.open as u8));
        Json::Object(m)
    }

    /// May a socket of `mode` be created?
    pub fn check_mode(&self, mode: u8) -> Result<(), String> {
        if self.open || ALWAYS.contains(&mode) || self.modes.contains(&mode) {
            return Ok(());
        }
        Err(format!(
            "mode {} ({mode}) is not enabled by the unisock policy: add {mode} to its \"modes\" key",
            modes::name(mode)
        ))
    }

    /// May `command` (as EXTERNAL_COMMAND names it) be started? Ok(the
    /// canonical executable) when it is one the policy names, or lies in a
    /// directory it names; with `open`, Ok(the command as given).
    pub fn check_command(&self, command: &str) -> Result<PathBuf, Denied> {
        if self.open {
            return Ok(PathBuf::from(command));
        }
        let path = Path::new(command);
        let allowed = |p: &Path| {
            self.commands.iter().any(|c| c == p)
                || self.command_dirs.iter().any(|d| p.starts_with(d))
        };
        let refused = |seen: String| {
            Denied::Policy(format!(
                "EXTERNAL_COMMAND {command}{seen} is not allowed by the unisock policy: add it, \
                 or its directory ending in /, to the policy's \"commands\" key"
            ))
        };
        if !path.is_absolute() {
            return Err(refused(" (a relative path)".to_string()));
        }
        let canon = match std::fs::canonicalize(path) {
            Ok(c) => c,
            // Only where it would be allowed does LPC learn that it is missing.
            Err(e) if allowed(&lexical(path)) => {
                return Err(Denied::Io(format!("EXTERNAL_COMMAND {command}: {e}"), e))
            }
            Err(_) => return Err(refused(String::new())),
        };
        if allowed(&canon) {
            return Ok(canon);
        }
        let seen = if canon.as_path() != path {
            format!(" (it is {})", canon.display())
        } else {
            String::new()
        };
        Err(refused(seen))
    }

    /// Whether EXTERNAL_SHELL may be used (so any command line may run).
    pub fn allows_shell(&self) -> bool {
        self.open || self.shell
    }

    /// May EXTERNAL_SHELL be used?
    pub fn check_shell(&self) -> Result<(), String> {
        if self.open || self.shell {
            return Ok(());
        }
        Err(
            "EXTERNAL_SHELL is not allowed by the unisock policy: set its \"shell\" key to 1 \
             (a shell runs any command, so this allows every program)"
                .to_string(),
        )
    }

    /// May a child run as uid `uid` (EXTERNAL_USER `asked`)? The driver's
    /// own user is always allowed: running as it grants nothing.
    pub fn check_user(&self, uid: u32, asked: &str) -> Result<(), String> {
        let own = nix::unistd::geteuid().as_raw();
        if self.open || uid == own || self.users.iter().any(|p| p.id == uid) {
            return Ok(());
        }
        Err(format!(
            "EXTERNAL_USER {asked} is not allowed by the unisock policy: add it to the policy's \
             \"users\" key"
        ))
    }

    /// May a child run as gid `gid` (EXTERNAL_GROUP `asked`)? The driver's
    /// own group is always allowed.
    pub fn check_group(&self, gid: u32, asked: &str) -> Result<(), String> {
        let own = nix::unistd::getegid().as_raw();
        if self.open || gid == own || self.groups.iter().any(|p| p.id == gid) {
            return Ok(());
        }
        Err(format!(
            "EXTERNAL_GROUP {asked} is not allowed by the unisock policy: add it to the policy's \
             \"groups\" key"
        ))
    }

    /// May the variable `name` = `value` be in a child's environment
    /// (EXTERNAL_ENV)? Variables that can make a program load or run other
    /// code ([`LOADS_CODE`]: the dynamic loader's, the C library's,
    /// interpreters', shells', configuration locations) need the `shell`
    /// key, since with them an allowed program runs any other;
    /// PATH may name only the directories of the default PATH
    /// ([`SYSTEM_PATH`]) and those of the `commands` key.
    pub fn check_env(&self, name: &str, value: &str) -> Result<(), String> {
        if self.allows_shell() {
            return Ok(());
        }
        if name == "PATH" {
            let outside = value.split(':').find(|d| {
                let d = Path::new(d);
                !d.is_absolute() || {
                    let canon = std::fs::canonicalize(d).unwrap_or_else(|_| lexical(d));
                    let system = SYSTEM_PATH
                        .split(':')
                        .any(|s| std::fs::canonicalize(s).is_ok_and(|s| s == canon));
                    !system && !self.command_dirs.iter().any(|c| canon.starts_with(c))
                }
            });
            return match outside {
                None => Ok(()),
                Some(d) => Err(format!(
                    "EXTERNAL_ENV PATH names {d:?}, which is neither a directory of the default \
                     PATH ({SYSTEM_PATH}) nor one of the unisock policy's \"commands\" key: \
                     add the directory ending in / to \"commands\", or set the policy's \
                     \"shell\" key to 1"
                )),
            };
        }
        let Some(why) = loads_code(name) else {
            return Ok(());
        };
        Err(format!(
            "EXTERNAL_ENV {name} can make a program load or run other code ({why}) and is not \
             allowed by the unisock policy: set its \"shell\" key to 1 (this allows every \
             program)"
        ))
    }

    /// May `path` (named by `what`, e.g. "SO_TLS_CERT") be used, as a file or
    /// directory of the `dirs` kind? Ok(the canonical path) when it lies in a
    /// directory of that list. The path must exist, except that its last
    /// component may be missing when `may_be_new` (a file to make): then
    /// its parent is resolved and the name appended. A path that cannot be
    /// resolved is an I/O error only where it would be allowed (so LPC does
    /// not learn what exists elsewhere), else a refusal. With `open`, every
    /// path that resolves.
    pub fn check_path(
        &self,
        dirs: Dirs,
        what: &str,
        path: &str,
        may_be_new: bool,
    ) -> Result<PathBuf, Denied> {
        let list = self.dirs(dirs);
        let inside = |p: &Path| list.iter().any(|d| p.starts_with(d));
        let canon = match canonical(path, may_be_new) {
            Ok(c) => c,
            Err(e) if self.open || inside(&lexical(Path::new(path))) => {
                return Err(Denied::Io(format!("{what} {path}: {e}"), e))
            }
            Err(_) => return Err(self.outside(dirs, what, path, None)),
        };
        if self.open || inside(&canon) {
            return Ok(canon);
        }
        Err(self.outside(dirs, what, path, Some(&canon)))
    }

    fn dirs(&self, dirs: Dirs) -> &[PathBuf] {
        match dirs {
            Dirs::Watch => &self.watch_dirs,
            Dirs::Socket => &self.socket_dirs,
            Dirs::Tls => &self.tls_dirs,
            Dirs::File => &self.file_dirs,
        }
    }

    fn outside(&self, dirs: Dirs, what: &str, path: &str, canon: Option<&Path>) -> Denied {
        let seen = match canon {
            Some(c) if c != Path::new(path) => format!(" (it is {})", c.display()),
            _ => String::new(),
        };
        Denied::Policy(format!(
            "{what} {path}{seen} is not in a directory the unisock policy allows: add its \
             directory to the policy's \"{}\" key",
            dirs.key()
        ))
    }
}

/// The PATH a child gets by default (EXTERNAL_ENV's default); LPC's PATH
/// may name these directories and the policy's command directories.
pub const SYSTEM_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Environment variables that make a program load or run code other than
/// its own, or read a configuration that can: refused in EXTERNAL_ENV
/// unless the policy's `shell` is 1 (or it is `open`). A name ending in
/// `*` is a prefix. One entry per line with what it does; docs/SECURITY.md
/// lists every entry (a unit test keeps the two in step). Not complete, and
/// cannot be: an allowed program may read any variable.
pub const LOADS_CODE: &[(&str, &str)] = &[
    // the dynamic loader and the C library
    (
        "LD_*",
        "the dynamic loader: libraries preloaded, searched, audited",
    ),
    ("DYLD_*", "the same on other systems"),
    (
        "GCONV_PATH",
        "glibc: character-set converters loaded as modules",
    ),
    ("GETCONF_DIR", "glibc: where getconf finds its helpers"),
    ("LOCPATH", "glibc: locale files"),
    ("NLSPATH", "message catalogues"),
    ("HOSTALIASES", "the resolver: a host-alias file"),
    ("RESOLV_HOST_CONF", "the resolver: its configuration"),
    (
        "GLIBC_TUNABLES",
        "glibc's tunables (the loader parses them)",
    ),
    ("MALLOC_CONF", "an allocator's configuration"),
    // shells
    (
        "BASH_ENV",
        "bash: a file sourced by a non-interactive shell",
    ),
    ("ENV", "sh: a file sourced at start"),
    ("BASH_FUNC_*", "bash: exported functions"),
    ("SHELLOPTS", "bash: options (xtrace with PS4 runs code)"),
    ("BASHOPTS", "bash: options"),
    (
        "PS4",
        "shells: expanded (command substitution) when tracing",
    ),
    ("PROMPT_COMMAND", "bash: run before a prompt"),
    ("IFS", "shells: how words split"),
    ("ZDOTDIR", "zsh: where its start-up files are"),
    ("SHELL", "the shell programs start for a command line"),
    // programs started by other programs
    ("EDITOR", "the editor a program starts"),
    ("VISUAL", "the editor a program starts"),
    ("PAGER", "the pager a program starts"),
    ("MANPAGER", "man's pager"),
    ("BROWSER", "the browser a program starts"),
    ("LESSOPEN", "less: an input preprocessor run on every file"),
    ("LESSCLOSE", "less: a command run after LESSOPEN's"),
    ("SSH_ASKPASS", "ssh: the program asked for a passphrase"),
    ("SUDO_ASKPASS", "sudo: the program asked for a password"),
    (
        "GIT_*",
        "git: GIT_SSH_COMMAND, GIT_CONFIG*, GIT_EXEC_PATH, GIT_EDITOR, ... run programs",
    ),
    // where programs find their configuration (which can name code to run)
    (
        "HOME",
        "every program's dotfiles (~/.gitconfig, ~/.npmrc, ~/.curlrc, ...)",
    ),
    (
        "XDG_*",
        "XDG_CONFIG_HOME, XDG_DATA_DIRS, ...: configuration and data searched",
    ),
    (
        "OPENSSL_CONF",
        "OpenSSL: a configuration that loads engines and providers",
    ),
    (
        "OPENSSL_ENGINES",
        "OpenSSL: where engines (shared objects) are loaded from",
    ),
    (
        "OPENSSL_MODULES",
        "OpenSSL: where providers (shared objects) are loaded from",
    ),
    // interpreters and runtimes
    (
        "PYTHON*",
        "Python: PYTHONPATH, PYTHONSTARTUP, PYTHONHOME, ...",
    ),
    ("PERL*", "Perl: PERL5LIB, PERL5OPT, PERLLIB, PERL5DB, ..."),
    ("RUBY*", "Ruby: RUBYLIB, RUBYOPT, ..."),
    ("GEM_PATH", "Ruby: where gems are loaded from"),
    ("GEM_HOME", "Ruby: where gems are loaded from"),
    ("BUNDLE_GEMFILE", "Ruby's bundler: the Gemfile evaluated"),
    (
        "NODE_OPTIONS",
        "Node.js: options (--require loads a module)",
    ),
    ("NODE_PATH", "Node.js: where modules are found"),
    (
        "LUA_*",
        "Lua: LUA_PATH, LUA_CPATH, LUA_INIT (code run at start)",
    ),
    ("CLASSPATH", "Java: where classes are found"),
    ("JAVA_TOOL_OPTIONS", "Java: options (-javaagent loads code)"),
    ("_JAVA_OPTIONS", "Java: options"),
    ("JDK_JAVA_OPTIONS", "Java: options"),
    ("TCLLIBPATH", "Tcl: where packages are found"),
    ("PHPRC", "PHP: its php.ini (auto_prepend_file)"),
    ("PHP_INI_SCAN_DIR", "PHP: more ini files"),
    ("R_*", "R: R_PROFILE, R_LIBS, ..."),
    ("ERL_*", "Erlang: ERL_LIBS, ERL_FLAGS, ..."),
    (
        "CORECLR_*",
        ".NET: a profiler library loaded into the runtime",
    ),
    ("DOTNET_*", ".NET: startup hooks and more"),
];

/// What EXTERNAL_ENV's `name` does, if it is one of [`LOADS_CODE`].
fn loads_code(name: &str) -> Option<&'static str> {
    LOADS_CODE
        .iter()
        .find(|(n, _)| match n.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *n,
        })
        .map(|(_, why)| *why)
}

/// `path` made absolute (from the working directory) with `.` and `..`
/// taken lexically: where it would be, for choosing which error to give
/// when it cannot be resolved.
pub fn lexical(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// `path` as the kernel resolves it: absolute (relative paths are taken from
/// the working directory), symlinks and `..` resolved. With `may_be_new` the
/// last component need not exist (it must be a plain name, and not a
/// symbolic link pointing to nothing: the file is made without following
/// links, so such a link could never be used; that is an InvalidInput
/// error saying so).
pub fn canonical(path: &str, may_be_new: bool) -> std::io::Result<PathBuf> {
    let p = Path::new(path);
    match std::fs::canonicalize(p) {
        Ok(c) => Ok(c),
        Err(e) if may_be_new && e.kind() == std::io::ErrorKind::NotFound => {
            if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "it is a symbolic link to nothing; a file is never made through a link \
                     (links are not followed): remove the link or name the file itself",
                ));
            }
            let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
                return Err(e);
            };
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            Ok(std::fs::canonicalize(parent)?.join(name))
        }
        Err(e) => Err(e),
    }
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn flag(key: &str, v: &Json) -> Result<bool, String> {
    match v {
        Json::Bool(b) => Ok(*b),
        Json::Number(n) if n.as_u64() == Some(0) => Ok(false),
        Json::Number(n) if n.as_u64() == Some(1) => Ok(true),
        _ => Err(format!("policy: \"{key}\" wants 0 or 1, got {v}")),
    }
}

fn list<'a>(key: &str, v: &'a Json) -> Result<&'a [Json], String> {
    match v {
        Json::Array(a) if a.len() <= MAX_ENTRIES => Ok(a),
        Json::Array(a) => Err(format!(
            "policy: \"{key}\" has {} entries (at most {MAX_ENTRIES})",
            a.len()
        )),
        _ => Err(format!("policy: \"{key}\" wants an array, got {}", kind(v))),
    }
}

fn text_of<'a>(key: &str, v: &'a Json) -> Result<&'a str, String> {
    v.as_str()
        .ok_or_else(|| format!("policy: \"{key}\" wants strings, got {}", kind(v)))
}

fn mode(v: &Json) -> Result<u8, String> {
    let m = match v {
        Json::Number(n) => n.as_i64().and_then(modes::info),
        Json::String(s) => modes::by_name(s),
        _ => None,
    };
    match m {
        Some(m) => Ok(m.number),
        _ => Err(format!(
            "policy: \"modes\" wants mode numbers or names (such as 22 or \"EXTERNAL_PROCESS\"), got {v}"
        )),
    }
}

/// A path of the policy: absolute, without `.`/`..`, canonical as far as
/// it exists (so it compares with the canonical paths checked against it).
fn policy_path(key: &str, s: &str) -> Result<PathBuf, String> {
    let p = Path::new(s);
    if s.is_empty() || s.len() > MAX_PATH || s.contains('\0') || !p.is_absolute() {
        return Err(format!(
            "policy: \"{key}\" wants absolute paths of 1..{MAX_PATH} bytes, got {s:?}"
        ));
    }
    if p.components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(format!(
            "policy: \"{key}\" entry {s:?} has a \".\" or \"..\" component"
        ));
    }
    Ok(canonical_prefix(p))
}

/// The absolute `p` (no `.` or `..`) with its longest existing prefix made
/// canonical and the rest appended: a policy directory that does not exist
/// yet still compares as the kernel will see it once made (`/var/run/mud`,
/// with `/var/run` a link to `/run`, is `/run/mud`).
fn canonical_prefix(p: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut existing = p;
    loop {
        if let Ok(mut c) = std::fs::canonicalize(existing) {
            c.extend(rest.iter().rev());
            return c;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return p.components().collect(),
        }
    }
}

fn dir_text(p: &Path) -> String {
    let mut s = p.display().to_string();
    if !s.ends_with('/') {
        s.push('/');
    }
    s
}

fn principal(key: &str, v: &Json, group: bool) -> Result<Principal, String> {
    let id = match v {
        Json::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Json::String(s) if s.is_empty() => None,
        Json::String(s) => {
            let found = if group {
                nix::unistd::Group::from_name(s)
                    .ok()
                    .flatten()
                    .map(|g| g.gid.as_raw())
            } else {
                nix::unistd::User::from_name(s)
                    .ok()
                    .flatten()
                    .map(|u| u.uid.as_raw())
            };
            match found {
                Some(id) => Some(id),
                None => {
                    return Err(format!(
                        "policy: \"{key}\" names {s:?}, which is not a {} on this host",
                        if group { "group" } else { "user" }
                    ))
                }
            }
        }
        _ => None,
    };
    match id {
        Some(id) => Ok(Principal {
            id,
            name: match v {
                Json::String(s) => Some(s.clone()),
                _ => None,
            },
        }),
        None => Err(format!(
            "policy: \"{key}\" wants names or numeric ids, got {v}"
        )),
    }
}

#[cfg(test)]
mod tests;

/// Unit tests of the families use the host powers: they run under an open
/// policy (no unit test puts a narrower one in force; the policy's own
/// tests check `Policy` values, not the global one).
#[cfg(test)]
pub fn open_for_tests() {
    set(Policy::open());
}
