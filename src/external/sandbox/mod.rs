//! EXTERNAL_SANDBOX (option 158): confining a child process before it
//! execs. Four layers, applied in the child between fork and exec, in this
//! order (the lead's limits come before them):
//!
//! 1. **network off** (unless `"network": 1`): `unshare(CLONE_NEWNET)`, a
//!    network namespace with only a loopback that is down, so nothing, not
//!    even the host's 127.0.0.1, can be reached. When that is refused (the
//!    child has no CAP_SYS_ADMIN, e.g. it runs as another user), then
//!    `unshare(CLONE_NEWUSER | CLONE_NEWNET)` with the child's uid and gid
//!    mapped to themselves. When that is refused too, a seccomp rule:
//!    `socket()` fails with EPERM for every family but AF_UNIX. Unix sockets
//!    stay allowed in every case (pathname sockets: by permissions; abstract
//!    ones belong to the network namespace, so with a namespace only the
//!    child's own are reachable).
//! 2. **RLIMIT_NPROC** (`"processes": N`, soft and hard). The kernel counts
//!    every process of the child's real uid, not only its descendants, and
//!    does not enforce the limit for root or holders of CAP_SYS_RESOURCE or
//!    CAP_SYS_ADMIN: with a child running as root, only the cgroup
//!    `pids.max` (the limits module) bounds it, and the report says so.
//! 3. **no_new_privs**: set-user-ID programs and file capabilities no longer
//!    raise privileges (and landlock and seccomp need it).
//! 4. **landlock**: the ruleset handles every file-system right up to
//!    Landlock ABI 5 (so: execute, read, write, create, remove, rename/link
//!    across directories, truncate, device ioctls), and, from ABI 6, scopes
//!    signals (the child cannot signal the driver or any process outside its
//!    sandbox; its own descendants, yes). Granted:
//!    - read (read, list, execute) beneath `/` — or, when the mapping has
//!      `"read"`, only beneath [`SYSTEM_READ`] (those that exist), the
//!      read-write paths and the `"read"` paths, plus [`DEVICES_READ`]. `/dev`
//!      as a whole is not in the list: as root it would give raw disks;
//!    - everything but creating device files beneath the working directory
//!      and the `"paths"` (mknod of a block device would otherwise give a
//!      root child the raw disk);
//!    - read and write (and truncate, so `> /dev/null` works) on
//!      [`DEVICES_RW`]. `/dev/tty` is not granted: the child gets pipes, and
//!      a program that opens its terminal gets EACCES.
//!
//!    Connecting to pathname Unix sockets (Landlock ABI 9's resolve-unix) is
//!    not handled, so it stays allowed. Files the child inherits open (its
//!    stdio) are not restricted. On kernels below ABI 3 truncate(2) is not
//!    controlled, below ABI 2 renames across directories are always denied.
//! 5. **seccomp** (last, so it does not stop the calls above): a deny-list,
//!    EPERM and otherwise allow, compiled by seccompiler for the build's
//!    architecture (x86_64 or aarch64): see [`deny_list`]; `clone` with any
//!    namespace flag; `clone3` answers ENOSYS (its flags are in memory a
//!    filter cannot read; glibc then falls back to `clone`); on x86_64 every
//!    x32 system call. A system call of another ABI (32-bit x86 through
//!    `int 0x80`) kills the process: 32-bit programs cannot run sandboxed.
//!    io_uring is denied because its operations bypass seccomp.
//!
//! The work is split so that the child only makes system calls on data
//! prepared in the parent ([`Sandbox::prepare`]): the landlock ruleset is
//! built there with the `landlock` crate and kept as its fd (close-on-exec,
//! owned by the `Sandbox`; the crate's `restrict_self` consumes and drops the
//! ruleset, which frees memory, so the child calls `landlock_restrict_self`
//! itself); the BPF programs are compiled there with `seccompiler` (with
//! and without the socket rule, as the child may need it) and installed by
//! the child with `seccomp(SECCOMP_SET_MODE_FILTER)`. seccompiler matches
//! system-call numbers exactly and has one action for all rules, so a short
//! prefix for x32 and clone3 is spliced after its architecture check.
//!
//! Fail closed: a layer found available in the parent that fails in the
//! child makes the spawn fail with that error (the child never execs;
//! [`Sandbox::child_failure`] names the step). A layer the kernel lacks
//! (landlock not built or not enabled, seccomp filters missing, an
//! unsupported architecture) is reported as `"unavailable: <reason>"` and the
//! process runs without it. Which network method the child used is written
//! by the child into a shared anonymous page, so the report says what
//! happened; [`Sandbox::report`] says "not applied yet" until a child has
//! gone through [`Sandbox::in_child`].
//!
//! Read-only everywhere means a program that writes to /tmp fails unless
//! /tmp is in `"paths"`. With `"read"`, /etc stays readable (the dynamic
//! loader, passwd, resolv.conf need it; a root child can then read
//! /etc/shadow), but /run is not: where /etc/resolv.conf links into /run,
//! name resolution needs that directory in `"read"`.
//!
//! Files: `shared` (the page the child writes into), `namespaces` (network
//! off), `landlock` and `seccomp` (each prepared in the parent), `tests`;
//! [`Sandbox::in_child`] here applies the layers in order.

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::value::Value;

mod landlock;
mod namespaces;
mod seccomp;
mod shared;
#[cfg(test)]
mod tests;

use self::landlock::{build_landlock, Landlock};
pub use self::seccomp::deny_list;
use self::seccomp::{build_seccomp, Seccomp};
use self::shared::{
    Shared, NET_NAMESPACE, NET_NONE, NET_NOT_YET, NET_SECCOMP, NET_USER_NAMESPACE, STEPS,
    STEP_LANDLOCK, STEP_NNP, STEP_NPROC, STEP_SECCOMP,
};

/// With `"read"`: the directories a program needs to run, readable (when
/// they exist) besides the working directory and the listed paths.
pub const SYSTEM_READ: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/proc", "/sys",
];
/// Always readable and writable.
pub const DEVICES_RW: &[&str] = &["/dev/null", "/dev/zero", "/dev/full"];
/// Always readable (with `"read"`; without it everything is).
pub const DEVICES_READ: &[&str] = &["/dev/random", "/dev/urandom"];

/// What option 158 asks for.
#[derive(Clone, Debug, Default, PartialEq)]
struct Config {
    /// Read-write besides the working directory.
    paths: Vec<PathBuf>,
    /// When Some, reads are limited (see the module doc).
    read: Option<Vec<PathBuf>>,
    network: bool,
    /// RLIMIT_NPROC; None = not limited.
    processes: Option<u64>,
}

fn path_list(v: &Value, key: &str) -> Result<Vec<PathBuf>, String> {
    let Value::Array(items) = v else {
        return Err(format!(
            "EXTERNAL_SANDBOX \"{key}\" is {}, not an array of absolute paths",
            v.describe()
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item.as_str() {
            Some(s) if s.starts_with('/') && !s.contains('\0') => Ok(PathBuf::from(s)),
            _ => Err(format!(
                "EXTERNAL_SANDBOX \"{key}\" element {i} is {}, not an absolute path",
                item.describe()
            )),
        })
        .collect()
}

impl Config {
    /// Option 158's stored value; None for 0. Unknown keys are refused so a
    /// restriction is never silently dropped.
    fn from_value(value: &Value) -> Result<Option<Config>, String> {
        match value {
            Value::Int(0) | Value::Undefined => Ok(None),
            Value::Int(_) => Ok(Some(Config::default())),
            Value::Mapping(pairs) => {
                let mut c = Config::default();
                for (k, v) in pairs {
                    match k.as_str() {
                        Some("paths") => c.paths = path_list(v, "paths")?,
                        Some("read") => c.read = Some(path_list(v, "read")?),
                        Some("network") => match v {
                            Value::Int(n) => c.network = *n != 0,
                            _ => {
                                return Err(format!(
                                    "EXTERNAL_SANDBOX \"network\" is {}, not an int 0/1",
                                    v.describe()
                                ))
                            }
                        },
                        Some("processes") => match v {
                            Value::Int(0) => c.processes = None,
                            Value::Int(n) if *n > 0 => c.processes = Some(*n as u64),
                            _ => {
                                return Err(format!(
                                    "EXTERNAL_SANDBOX \"processes\" is {}, not an int >= 0 \
                                     (0 = no limit)",
                                    v.describe()
                                ))
                            }
                        },
                        _ => {
                            return Err(format!(
                                "EXTERNAL_SANDBOX has an unknown key {}",
                                k.describe()
                            ))
                        }
                    }
                }
                Ok(Some(c))
            }
            _ => Err(format!(
                "EXTERNAL_SANDBOX is {}, not an int or a mapping",
                value.describe()
            )),
        }
    }
}

/// A prepared sandbox: built in the parent by [`Sandbox::prepare`], applied
/// in each child by [`Sandbox::in_child`].
pub struct Sandbox {
    network: bool,
    nproc: Option<u64>,
    runs_as_root: bool,
    /// Err: unavailable, and why.
    landlock: Result<Landlock, String>,
    seccomp: Result<Seccomp, String>,
    shared: Shared,
    /// False only in tests, to exercise the seccomp fallback for the network.
    try_namespaces: bool,
}

impl Sandbox {
    /// In the parent: `value` is option 158's stored value; `cwd` the
    /// child's working directory (the driver's when the option is unset);
    /// `runs_as_root` whether the child will run as root (the driver is root
    /// and no user switch is configured), for the RLIMIT_NPROC report.
    /// Builds the landlock ruleset and the seccomp programs here, so the
    /// child only makes system calls. Ok(None) for 0. Err when the value is
    /// malformed or a listed path cannot be opened.
    pub fn prepare(
        value: &Value,
        cwd: &Path,
        runs_as_root: bool,
    ) -> Result<Option<Sandbox>, String> {
        let Some(c) = Config::from_value(value)? else {
            return Ok(None);
        };
        let landlock = build_landlock(&c, cwd)?;
        let seccomp = build_seccomp(c.network)?;
        let shared = Shared::new().map_err(|e| format!("EXTERNAL_SANDBOX: mmap: {e}"))?;
        Ok(Some(Sandbox {
            network: c.network,
            nproc: c.processes,
            runs_as_root,
            landlock,
            seccomp,
            shared,
            try_namespaces: true,
        }))
    }

    /// Between fork and exec (`CommandExt::pre_exec`), after std's setuid /
    /// chdir: only system calls on data prepared in the parent, no
    /// allocation, no locks. An error stops the exec and becomes the spawn's.
    pub fn in_child(&self) -> io::Result<()> {
        let st = self.shared.get();
        st.applied.store(0, Ordering::SeqCst);
        st.failed.store(0, Ordering::SeqCst);
        let fail = |step: u32| {
            let e = io::Error::last_os_error();
            st.failed.store(step, Ordering::SeqCst);
            Err(e)
        };

        let mut no_inet = false;
        if !self.network {
            let net = self.network_off(st);
            st.net.store(net, Ordering::SeqCst);
            no_inet = net == NET_SECCOMP;
        }
        if let Some(n) = self.nproc {
            let r = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            // SAFETY: `r` is a valid rlimit that setrlimit only reads.
            if unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &r) } != 0 {
                return fail(STEP_NPROC);
            }
        }
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return fail(STEP_NNP);
        }
        if let Ok(ll) = &self.landlock {
            // SAFETY: the fd is the ruleset the parent built (still open: the
            // Sandbox owns it); flags 0; no memory is passed.
            let r =
                unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ll.fd.as_raw_fd(), 0u32) };
            if r != 0 {
                return fail(STEP_LANDLOCK);
            }
        }
        if let Ok(sc) = &self.seccomp {
            let prog = match (&sc.no_inet, no_inet) {
                (Some(p), true) => p,
                _ => &sc.base,
            };
            let fprog = libc::sock_fprog {
                len: prog.len() as libc::c_ushort,
                // seccompiler's sock_filter is #[repr(C)] with the kernel's
                // layout, like libc's.
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            // SAFETY: `fprog` points at `prog`, alive and unchanged for the
            // call; the kernel copies the instructions.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0u32,
                    &fprog as *const libc::sock_fprog,
                )
            };
            if r != 0 {
                return fail(STEP_SECCOMP);
            }
        }
        st.applied.store(1, Ordering::SeqCst);
        Ok(())
    }

    /// The step that failed in the last child, if one did (for the spawn's
    /// error message).
    pub fn child_failure(&self) -> Option<&'static str> {
        match self.shared.get().failed.load(Ordering::SeqCst) {
            0 => None,
            n => STEPS.get(n as usize).copied(),
        }
    }

    /// What was applied to the last child, per layer (external_get_process_stats
    /// "sandbox"): "no_new_privs", "landlock", "seccomp", "network",
    /// "processes". Until a child has gone through `in_child`, the layers
    /// that would apply say "not applied yet".
    pub fn report(&self) -> Value {
        let st = self.shared.get();
        let applied = st.applied.load(Ordering::SeqCst) == 1;
        let not_yet = || Value::str("not applied yet (no process started)");
        let text = |s: String| {
            if applied {
                Value::Str(s)
            } else {
                not_yet()
            }
        };
        let landlock = match &self.landlock {
            Ok(l) => text(l.what.clone()),
            Err(why) => Value::Str(format!("unavailable: {why}")),
        };
        let seccomp = match &self.seccomp {
            Ok(s) => text(format!(
                "applied: {} system calls denied (EPERM), plus clone with a namespace \
                 flag{}; clone3 gives ENOSYS; system calls of other ABIs kill the process",
                s.denied,
                if cfg!(target_arch = "x86_64") {
                    " and every x32 system call"
                } else {
                    ""
                }
            )),
            Err(why) => Value::Str(format!("unavailable: {why}")),
        };
        let network = if self.network {
            Value::str("on")
        } else {
            let ns_err = |e: &AtomicI32| io::Error::from_raw_os_error(e.load(Ordering::SeqCst));
            match st.net.load(Ordering::SeqCst) {
                _ if !applied => not_yet(),
                NET_NOT_YET => not_yet(),
                NET_NAMESPACE => Value::str("off (network namespace)"),
                NET_USER_NAMESPACE => Value::str("off (user and network namespaces)"),
                NET_SECCOMP => Value::Str(format!(
                    "off: seccomp (socket() denied for every family but AF_UNIX; no network \
                     namespace could be made: {}; with a user namespace: {})",
                    ns_err(&st.netns_errno),
                    ns_err(&st.userns_errno)
                )),
                NET_NONE => Value::Str(format!(
                    "unavailable: no network namespace could be made ({}; with a user \
                     namespace: {}) and seccomp is unavailable",
                    ns_err(&st.netns_errno),
                    ns_err(&st.userns_errno)
                )),
                _ => not_yet(),
            }
        };
        let processes = match self.nproc {
            None => Value::str("not limited"),
            Some(n) if self.runs_as_root => text(format!(
                "RLIMIT_NPROC {n} set but not enforced: the child runs as root, which the \
                 kernel exempts (so do CAP_SYS_RESOURCE and CAP_SYS_ADMIN)"
            )),
            Some(n) => text(format!(
                "RLIMIT_NPROC {n} (counts every process of the child's user)"
            )),
        };
        Value::mapping([
            ("no_new_privs", text("applied".into())),
            ("landlock", landlock),
            ("seccomp", seccomp),
            ("network", network),
            ("processes", processes),
        ])
    }
}
