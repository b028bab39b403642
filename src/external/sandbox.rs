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

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use landlock::{
    Access, AccessFs, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope, ABI,
};
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule,
};

use crate::value::Value;

/// With `"read"`: the directories a program needs to run, readable (when
/// they exist) besides the working directory and the listed paths.
pub const SYSTEM_READ: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/proc", "/sys",
];
/// Always readable and writable.
pub const DEVICES_RW: &[&str] = &["/dev/null", "/dev/zero", "/dev/full"];
/// Always readable (with `"read"`; without it everything is).
pub const DEVICES_READ: &[&str] = &["/dev/random", "/dev/urandom"];

/// The landlock ABI whose file-system rights are handled: every right up to
/// ABI 5 (ABI 9's resolve-unix would forbid connecting to Unix sockets).
const FS_ABI: ABI = ABI::V5;

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

// ---------------------------------------------------------------------------
// The page the child writes what it did into.

const NET_NOT_YET: u32 = 0;
const NET_NAMESPACE: u32 = 1;
const NET_USER_NAMESPACE: u32 = 2;
const NET_SECCOMP: u32 = 3;
const NET_NONE: u32 = 4;

const STEPS: &[&str] = &[
    "",
    "setrlimit(RLIMIT_NPROC)",
    "prctl(PR_SET_NO_NEW_PRIVS)",
    "landlock_restrict_self",
    "seccomp(SECCOMP_SET_MODE_FILTER)",
];
const STEP_NPROC: u32 = 1;
const STEP_NNP: u32 = 2;
const STEP_LANDLOCK: u32 = 3;
const STEP_SECCOMP: u32 = 4;

#[repr(C)]
struct State {
    /// 1 once a child has applied every layer.
    applied: AtomicU32,
    /// NET_*: how the last child turned the network off.
    net: AtomicU32,
    /// errno of unshare(CLONE_NEWNET) and of unshare(CLONE_NEWUSER|CLONE_NEWNET).
    netns_errno: AtomicI32,
    userns_errno: AtomicI32,
    /// STEP_* that failed in the last child, 0 if none.
    failed: AtomicU32,
}

/// A MAP_SHARED anonymous mapping holding a `State`: the child's writes are
/// seen by the parent (std's spawn returns after the child exec'd or failed).
struct Shared(NonNull<State>);

// SAFETY: the mapping is only accessed through the atomics in `State`.
unsafe impl Send for Shared {}
// SAFETY: as above; atomics are safe to share.
unsafe impl Sync for Shared {}

impl Shared {
    fn new() -> io::Result<Shared> {
        // SAFETY: an anonymous shared mapping of one page; no existing memory
        // is touched. The kernel zero-fills it, a valid `State` (all atomics 0).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page_len(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(p.cast::<State>())
            .map(Shared)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
    }

    fn get(&self) -> &State {
        // SAFETY: the mapping lives as long as `self`, is page-aligned and
        // at least a page long, and holds a zero-initialised `State`.
        unsafe { self.0.as_ref() }
    }
}

fn page_len() -> usize {
    std::mem::size_of::<State>().max(4096)
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no reference into
        // it outlives `self`.
        unsafe { libc::munmap(self.0.as_ptr().cast(), page_len()) };
    }
}

// ---------------------------------------------------------------------------
// Landlock, prepared in the parent.

struct Landlock {
    /// The ruleset (close-on-exec).
    fd: OwnedFd,
    /// What the report says once applied.
    what: String,
}

/// The kernel's Landlock ABI version, or why there is none.
fn landlock_abi() -> Result<i32, String> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attr, size 0 and the VERSION flag the call only
    // returns the ABI version (or -1 and errno); no memory is passed.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if v >= 1 {
        return Ok(v as i32);
    }
    let e = io::Error::last_os_error();
    Err(match e.raw_os_error() {
        Some(libc::ENOSYS) => "Landlock is not built into this kernel (ENOSYS)".into(),
        Some(libc::EOPNOTSUPP) => {
            "Landlock is not enabled in this kernel (EOPNOTSUPP; see the lsm= boot parameter)"
                .into()
        }
        _ => format!("Landlock ABI version query failed: {e}"),
    })
}

fn join(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the ruleset. Outer Err: the configuration cannot be honoured (a
/// path cannot be opened); inner Err: landlock is unavailable.
fn build_landlock(c: &Config, cwd: &Path) -> Result<Result<Landlock, String>, String> {
    let abi = match landlock_abi() {
        Ok(abi) => abi,
        Err(why) => return Ok(Err(why)),
    };
    let err = |e: landlock::RulesetError| format!("landlock: {e}");
    let handled = AccessFs::from_all(FS_ABI);
    let read = AccessFs::from_read(FS_ABI);
    let write = handled & !(AccessFs::MakeChar | AccessFs::MakeBlock);
    let device = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev;

    let mut ruleset = Ruleset::default().handle_access(handled).map_err(err)?;
    let scoped = abi >= 6;
    if scoped {
        ruleset = ruleset.scope(Scope::Signal).map_err(err)?;
    }
    let mut created = ruleset.create().map_err(err)?;

    let mut rw = vec![cwd.to_path_buf()];
    rw.extend(c.paths.iter().cloned());
    // (path, rights, must exist)
    let mut rules: Vec<(PathBuf, landlock::BitFlags<AccessFs>, bool)> = Vec::new();
    let mut system = Vec::new();
    match &c.read {
        None => rules.push(("/".into(), read, true)),
        Some(extra) => {
            for d in SYSTEM_READ {
                if Path::new(d).exists() {
                    system.push(PathBuf::from(d));
                    rules.push((d.into(), read, true));
                }
            }
            for d in DEVICES_READ {
                rules.push((d.into(), AccessFs::ReadFile.into(), false));
            }
            rules.extend(extra.iter().map(|p| (p.clone(), read, true)));
        }
    }
    rules.extend(rw.iter().map(|p| (p.clone(), write, true)));
    rules.extend(DEVICES_RW.iter().map(|d| (PathBuf::from(d), device, false)));

    for (path, rights, required) in rules {
        let fd = match PathFd::new(&path) {
            Ok(fd) => fd,
            Err(_) if !required => continue,
            Err(e) => {
                return Err(format!(
                    "EXTERNAL_SANDBOX cannot open {}: {e}",
                    path.display()
                ))
            }
        };
        let rights = match std::fs::metadata(&path) {
            Ok(m) if !m.is_dir() => rights & AccessFs::from_file(FS_ABI),
            _ => rights,
        };
        created = created
            .add_rule(PathBeneath::new(fd, rights))
            .map_err(err)?;
    }
    let Some(fd) = Option::<OwnedFd>::from(created) else {
        return Ok(Err("Landlock could not create a ruleset".into()));
    };

    let mut what = format!(
        "applied (Landlock ABI {abi}): read-write beneath {}; {} writable; ",
        join(&rw),
        DEVICES_RW.join(", ")
    );
    match &c.read {
        None => what.push_str("reads allowed everywhere"),
        Some(extra) => {
            what.push_str(&format!(
                "reads only beneath {}, the read-write paths",
                join(&system)
            ));
            if !extra.is_empty() {
                what.push_str(&format!(", {}", join(extra)));
            }
            what.push_str(&format!(" and {}", DEVICES_READ.join(", ")));
        }
    }
    what.push_str("; device files cannot be created");
    if scoped {
        what.push_str("; signals to processes outside the sandbox denied");
    }
    Ok(Ok(Landlock { fd, what }))
}

// ---------------------------------------------------------------------------
// Seccomp, compiled in the parent.

struct Seccomp {
    /// The deny-list.
    base: BpfProgram,
    /// The deny-list plus socket() for all but AF_UNIX (network off without
    /// a namespace); None when the network stays on.
    no_inet: Option<BpfProgram>,
    denied: usize,
}

/// The system calls the filter answers with EPERM (besides `clone` with a
/// namespace flag, `clone3` (ENOSYS) and, on x86_64, the x32 ABI).
pub fn deny_list() -> Vec<(&'static str, i64)> {
    macro_rules! sys {
        ($($name:ident),* $(,)?) => {
            vec![$((stringify!($name), libc::$name as i64)),*]
        };
    }
    #[allow(unused_mut)]
    let mut v = sys![
        SYS_ptrace,
        SYS_process_vm_readv,
        SYS_process_vm_writev,
        SYS_process_madvise,
        SYS_pidfd_getfd,
        SYS_mount,
        SYS_umount2,
        SYS_pivot_root,
        SYS_chroot,
        SYS_mount_setattr,
        SYS_fsopen,
        SYS_fsconfig,
        SYS_fsmount,
        SYS_fspick,
        SYS_move_mount,
        SYS_open_tree,
        SYS_swapon,
        SYS_swapoff,
        SYS_reboot,
        SYS_kexec_load,
        SYS_kexec_file_load,
        SYS_init_module,
        SYS_finit_module,
        SYS_delete_module,
        SYS_bpf,
        SYS_perf_event_open,
        SYS_userfaultfd,
        SYS_keyctl,
        SYS_add_key,
        SYS_request_key,
        SYS_setns,
        SYS_unshare,
        SYS_open_by_handle_at,
        SYS_name_to_handle_at,
        SYS_acct,
        SYS_quotactl,
        SYS_quotactl_fd,
        SYS_lookup_dcookie,
        SYS_fanotify_init,
        SYS_io_uring_setup,
        SYS_io_uring_enter,
        SYS_io_uring_register,
        SYS_settimeofday,
        SYS_clock_settime,
        SYS_clock_adjtime,
        SYS_adjtimex,
        SYS_sethostname,
        SYS_setdomainname,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend(sys![SYS_iopl, SYS_ioperm, SYS_uselib]);
    v.iter_mut()
        .for_each(|(name, _)| *name = name.trim_start_matches("SYS_"));
    v
}

#[cfg(target_arch = "x86_64")]
const ARCH: Option<seccompiler::TargetArch> = Some(seccompiler::TargetArch::x86_64);
#[cfg(target_arch = "aarch64")]
const ARCH: Option<seccompiler::TargetArch> = Some(seccompiler::TargetArch::aarch64);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCH: Option<seccompiler::TargetArch> = None;

/// Whether this kernel has seccomp filters with SECCOMP_RET_ERRNO.
fn seccomp_available() -> Result<(), String> {
    let action: u32 = libc::SECCOMP_RET_ERRNO;
    // SAFETY: GET_ACTION_AVAIL only reads the u32 it is given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0u32,
            &action as *const u32,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(format!(
            "this kernel has no seccomp filters ({})",
            io::Error::last_os_error()
        ))
    }
}

const CLONE_NS_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

fn compile(socket_rule: bool) -> Result<BpfProgram, String> {
    let Some(arch) = ARCH else {
        return Err("unsupported architecture".into());
    };
    let err = |e: seccompiler::BackendError| format!("seccomp: {e}");
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = deny_list()
        .into_iter()
        .map(|(_, nr)| (nr, Vec::new()))
        .collect();
    // clone's flags are its first argument on x86_64 and aarch64.
    let clone_rules = CLONE_NS_FLAGS
        .iter()
        .map(|&f| {
            let f = f as u32 as u64;
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::MaskedEq(f), f)
                .and_then(|c| SeccompRule::new(vec![c]))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    rules.insert(libc::SYS_clone, clone_rules);
    if socket_rule {
        let c = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Ne,
            libc::AF_UNIX as u64,
        )
        .map_err(err)?;
        rules.insert(
            libc::SYS_socket,
            vec![SeccompRule::new(vec![c]).map_err(err)?],
        );
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(err)?;
    let mut prog = BpfProgram::try_from(filter).map_err(err)?;
    splice_prefix(&mut prog)?;
    Ok(prog)
}

// BPF_LD | BPF_W | BPF_ABS, BPF_JMP | BPF_JEQ | BPF_K, BPF_JMP | BPF_JGE | BPF_K,
// BPF_RET | BPF_K (linux/bpf_common.h).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x15;
#[cfg(target_arch = "x86_64")]
const BPF_JMP_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;
const BPF_MAXINSNS: usize = 4096;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Inserts, after seccompiler's architecture check (load arch; equal: skip
/// one; kill), the x32 guard and clone3's ENOSYS. Jumps in the rest are
/// relative and none crosses the insertion point.
fn splice_prefix(prog: &mut BpfProgram) -> Result<(), String> {
    let arch_check = prog.len() > 3
        && prog[0].code == BPF_LD_W_ABS
        && prog[0].k == 4
        && prog[1].code == BPF_JMP_JEQ_K
        && prog[1].jt == 1
        && prog[1].jf == 0
        && prog[2].code == BPF_RET_K
        && prog[2].k == libc::SECCOMP_RET_KILL_PROCESS;
    if !arch_check {
        return Err("seccomp: unexpected program layout from seccompiler".into());
    }
    let errno = |e: i32| libc::SECCOMP_RET_ERRNO | (e as u32 & libc::SECCOMP_RET_DATA);
    let mut prefix = vec![stmt(BPF_LD_W_ABS, 0)];
    #[cfg(target_arch = "x86_64")]
    {
        const X32_SYSCALL_BIT: u32 = 0x4000_0000;
        prefix.push(jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1));
        prefix.push(stmt(BPF_RET_K, errno(libc::EPERM)));
    }
    prefix.push(jump(BPF_JMP_JEQ_K, libc::SYS_clone3 as u32, 0, 1));
    prefix.push(stmt(BPF_RET_K, errno(libc::ENOSYS)));
    prog.splice(3..3, prefix);
    if prog.len() > BPF_MAXINSNS {
        return Err(format!(
            "seccomp: the filter has {} instructions",
            prog.len()
        ));
    }
    Ok(())
}

/// Outer Err: the filter could not be compiled (a bug, refused); inner
/// Err: seccomp is unavailable here.
fn build_seccomp(network: bool) -> Result<Result<Seccomp, String>, String> {
    if ARCH.is_none() {
        return Ok(Err(format!(
            "seccomp filters are not built for this architecture ({})",
            std::env::consts::ARCH
        )));
    }
    if let Err(why) = seccomp_available() {
        return Ok(Err(why));
    }
    Ok(Ok(Seccomp {
        base: compile(false)?,
        no_inet: if network { None } else { Some(compile(true)?) },
        denied: deny_list().len(),
    }))
}

// ---------------------------------------------------------------------------

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

    /// The child's network: a namespace if one can be made, else the
    /// seccomp socket rule if seccomp is there. Returns NET_*.
    fn network_off(&self, st: &State) -> u32 {
        if self.try_namespaces {
            // SAFETY: unshare takes a flag word.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 {
                return NET_NAMESPACE;
            }
            st.netns_errno.store(errno(), Ordering::SeqCst);
            // SAFETY: getuid/getgid cannot fail.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            // SAFETY: as above.
            if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } == 0 {
                // Map our ids to themselves, so the program sees its own
                // uid rather than the overflow id. Failing here leaves them
                // unmapped, which does not weaken anything.
                write_proc(b"/proc/self/setgroups\0", b"deny");
                let mut buf = [0u8; 32];
                let n = id_map(&mut buf, uid);
                write_proc(b"/proc/self/uid_map\0", &buf[..n]);
                let n = id_map(&mut buf, gid);
                write_proc(b"/proc/self/gid_map\0", &buf[..n]);
                return NET_USER_NAMESPACE;
            }
            st.userns_errno.store(errno(), Ordering::SeqCst);
        } else {
            st.netns_errno.store(libc::ENOTSUP, Ordering::SeqCst);
            st.userns_errno.store(libc::ENOTSUP, Ordering::SeqCst);
        }
        match &self.seccomp {
            Ok(_) => NET_SECCOMP,
            Err(_) => NET_NONE,
        }
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

fn errno() -> i32 {
    // SAFETY: reads this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// "<id> <id> 1" into `buf` without allocating; returns the length.
fn id_map(buf: &mut [u8; 32], id: u32) -> usize {
    let mut digits = [0u8; 10];
    let mut n = 0;
    let mut v = id;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut len = 0;
    for _ in 0..2 {
        for i in (0..n).rev() {
            buf[len] = digits[i];
            len += 1;
        }
        buf[len] = b' ';
        len += 1;
    }
    buf[len] = b'1';
    len + 1
}

/// Writes `data` to a /proc file with open/write/close (async-signal-safe).
/// `path` ends with a NUL.
fn write_proc(path: &[u8], data: &[u8]) -> bool {
    if path.last() != Some(&0) {
        return false;
    }
    // SAFETY: `path` is NUL-terminated (checked); the flags are plain integers.
    let fd = unsafe { libc::open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return false;
    }
    // SAFETY: `data` is valid for `data.len()` bytes; `fd` is ours, closed once.
    unsafe {
        let ok = libc::write(fd, data.as_ptr().cast(), data.len()) == data.len() as isize;
        libc::close(fd);
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Output, Stdio};
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    const PYTHON: &str = "/usr/bin/python3";

    /// A directory under /tmp (mode 0755, so the nobody user can enter it),
    /// removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "unisock-sandbox-{}-{}-{tag}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            TempDir(p)
        }

        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        fn s(&self, name: &str) -> String {
            self.join(name).display().to_string()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn is_root() -> bool {
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() == 0 }
    }

    /// Whether the kernel features these tests exercise are here; prints why not.
    fn can_run(python: bool) -> bool {
        if let Err(why) = landlock_abi() {
            eprintln!("skipped: {why}");
            return false;
        }
        if let Err(why) = seccomp_available() {
            eprintln!("skipped: {why}");
            return false;
        }
        if python && !Path::new(PYTHON).exists() {
            eprintln!("skipped: no {PYTHON}");
            return false;
        }
        true
    }

    fn prepared(v: &Value, cwd: &Path) -> Sandbox {
        Sandbox::prepare(v, cwd, is_root())
            .expect("prepare")
            .expect("a sandbox")
    }

    fn command(sb: Option<&Arc<Sandbox>>, cwd: &Path, argv: &[&str], uid: Option<u32>) -> Command {
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..])
            .current_dir(cwd)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(id) = uid {
            cmd.uid(id).gid(id);
        }
        if let Some(sb) = sb {
            let sb = Arc::clone(sb);
            // SAFETY: in_child only makes system calls on prepared data.
            unsafe {
                cmd.pre_exec(move || sb.in_child());
            }
        }
        cmd
    }

    fn run(sb: Option<&Arc<Sandbox>>, cwd: &Path, argv: &[&str]) -> Output {
        command(sb, cwd, argv, None)
            .output()
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
    }

    fn sh(sb: Option<&Arc<Sandbox>>, cwd: &Path, script: &str) -> Output {
        run(sb, cwd, &["/bin/sh", "-c", script])
    }

    fn stdout(o: &Output) -> String {
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn report_of(sb: &Sandbox, key: &str) -> String {
        sb.report()
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    fn paths(list: &[&Path]) -> Value {
        Value::Array(
            list.iter()
                .map(|p| Value::str(p.display().to_string()))
                .collect(),
        )
    }

    #[test]
    fn the_option_value_is_read_strictly() {
        assert_eq!(Config::from_value(&Value::Int(0)), Ok(None));
        let one = Config::from_value(&Value::Int(1)).unwrap().unwrap();
        assert_eq!(one, Config::default());
        assert!(!one.network && one.read.is_none() && one.processes.is_none());
        let m = Value::mapping([
            ("paths", Value::Array(vec![Value::str("/a")])),
            ("read", Value::Array(vec![])),
            ("network", Value::Int(1)),
            ("processes", Value::Int(7)),
        ]);
        let c = Config::from_value(&m).unwrap().unwrap();
        assert_eq!(c.paths, vec![PathBuf::from("/a")]);
        assert_eq!(c.read, Some(vec![]));
        assert!(c.network);
        assert_eq!(c.processes, Some(7));
        // the validator's normalised form: paths and network always there
        let n = Value::mapping([("paths", Value::Array(vec![])), ("network", Value::Int(0))]);
        assert_eq!(Config::from_value(&n), Ok(Some(Config::default())));
        for bad in [
            Value::str("yes"),
            Value::mapping([("paths", Value::str("/a"))]),
            Value::mapping([("paths", Value::Array(vec![Value::str("rel")]))]),
            Value::mapping([("read", Value::Array(vec![Value::Int(3)]))]),
            Value::mapping([("network", Value::str("on"))]),
            Value::mapping([("processes", Value::Int(-1))]),
            Value::mapping([("netwrok", Value::Int(1))]),
        ] {
            assert!(Config::from_value(&bad).is_err(), "{bad:?}");
        }
        let cwd = std::env::temp_dir();
        assert!(Sandbox::prepare(&Value::Int(0), &cwd, false)
            .unwrap()
            .is_none());
        if landlock_abi().is_ok() {
            let missing = Value::mapping([(
                "paths",
                Value::Array(vec![Value::str("/nonexistent/unisock-sandbox")]),
            )]);
            let e = Sandbox::prepare(&missing, &cwd, false).err().unwrap();
            assert!(e.contains("/nonexistent/unisock-sandbox"), "{e}");
        }
    }

    #[test]
    fn the_filter_is_compiled_with_its_prefix() {
        let Some(_) = ARCH else { return };
        let base = compile(false).unwrap();
        let no_inet = compile(true).unwrap();
        assert!(no_inet.len() > base.len());
        // after the architecture check: load nr, (x32 guard,) clone3 -> ENOSYS
        assert_eq!(base[3].code, BPF_LD_W_ABS);
        assert_eq!(base[3].k, 0);
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let i = base.iter().position(|f| f.k == enosys).unwrap();
        assert_eq!(base[i - 1].k, libc::SYS_clone3 as u32);
        assert!(deny_list().iter().any(|&(n, _)| n == "ptrace"));
        let mut names: Vec<_> = deny_list().iter().map(|&(n, _)| n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), deny_list().len());
    }

    #[test]
    fn id_maps_are_formatted_without_allocating() {
        let mut buf = [0u8; 32];
        let n = id_map(&mut buf, 65534);
        assert_eq!(&buf[..n], b"65534 65534 1");
        let n = id_map(&mut buf, 0);
        assert_eq!(&buf[..n], b"0 0 1");
        let n = id_map(&mut buf, u32::MAX);
        assert_eq!(&buf[..n], b"4294967295 4294967295 1");
    }

    #[test]
    fn writes_outside_the_working_dir_fail() {
        if !can_run(false) {
            return;
        }
        let (cwd, outside, extra) = (TempDir::new("cwd"), TempDir::new("out"), TempDir::new("rw"));
        let escape = format!("echo x > {}", outside.s("f"));
        let o = sh(None, &cwd.0, &escape);
        assert!(o.status.success(), "without the sandbox: {o:?}");
        std::fs::remove_file(outside.join("f")).unwrap();

        let v = Value::mapping([("paths", paths(&[&extra.0]))]);
        let sb = Arc::new(prepared(&v, &cwd.0));
        let o = sh(Some(&sb), &cwd.0, &escape);
        assert!(!o.status.success(), "{o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
            "{o:?}"
        );
        assert!(!outside.join("f").exists());
        // nor rename out of, or truncate outside, or make a device
        std::fs::write(outside.join("keep"), "data").unwrap();
        let o = sh(
            Some(&sb),
            &cwd.0,
            &format!("truncate -s 0 {}", outside.s("keep")),
        );
        assert!(!o.status.success(), "{o:?}");
        assert_eq!(
            std::fs::read_to_string(outside.join("keep")).unwrap(),
            "data"
        );

        let inside = format!(
            "echo a > in && mkdir d && echo b > d/f && rm d/f && echo c > {} && echo d > /dev/null",
            extra.s("f")
        );
        let o = sh(Some(&sb), &cwd.0, &inside);
        assert!(o.status.success(), "{o:?}");
        assert_eq!(std::fs::read_to_string(cwd.join("in")).unwrap(), "a\n");
        assert_eq!(std::fs::read_to_string(extra.join("f")).unwrap(), "c\n");
        if is_root() {
            let o = sh(Some(&sb), &cwd.0, "mknod blk b 7 0");
            assert!(!o.status.success(), "{o:?}");
            assert!(!cwd.join("blk").exists());
        }
    }

    #[test]
    fn reads_are_limited_when_read_is_set() {
        if !can_run(false) {
            return;
        }
        let (cwd, secret, allowed) = (
            TempDir::new("cwd"),
            TempDir::new("secret"),
            TempDir::new("ro"),
        );
        std::fs::write(secret.join("f"), "secret").unwrap();
        std::fs::write(allowed.join("f"), "allowed").unwrap();
        let cat_secret = ["/bin/cat", &secret.s("f")];
        let o = run(None, &cwd.0, &cat_secret);
        assert_eq!(stdout(&o), "secret", "without the sandbox: {o:?}");
        // 1: reads everywhere
        let o = run(
            Some(&Arc::new(prepared(&Value::Int(1), &cwd.0))),
            &cwd.0,
            &cat_secret,
        );
        assert_eq!(stdout(&o), "secret", "{o:?}");

        let v = Value::mapping([("read", paths(&[&allowed.0]))]);
        let sb = Arc::new(prepared(&v, &cwd.0));
        let o = run(Some(&sb), &cwd.0, &cat_secret);
        assert!(!o.status.success() && o.stdout.is_empty(), "{o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
            "{o:?}"
        );
        // system files, the listed path, the working dir, /dev/urandom: yes
        std::fs::write(cwd.join("mine"), "mine").unwrap();
        let o = sh(
            Some(&sb),
            &cwd.0,
            &format!(
                "cat /etc/passwd >/dev/null && cat {} && cat mine && head -c 4 /dev/urandom | wc -c",
                allowed.s("f")
            ),
        );
        assert!(o.status.success(), "{o:?}");
        assert_eq!(stdout(&o), "allowedmine4");
        assert!(sb
            .report()
            .get("landlock")
            .unwrap()
            .as_str()
            .unwrap()
            .contains("reads only beneath /usr"));
    }

    #[test]
    fn tcp_connect_fails_with_the_network_off() {
        if !can_run(false) {
            return;
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cwd = TempDir::new("cwd");
        let connect = format!("exec 3<>/dev/tcp/127.0.0.1/{port}");
        let argv = ["/bin/bash", "-c", &connect];
        let o = run(None, &cwd.0, &argv);
        assert!(o.status.success(), "without the sandbox: {o:?}");

        let sb = Arc::new(prepared(&Value::Int(1), &cwd.0));
        let o = run(Some(&sb), &cwd.0, &argv);
        assert!(!o.status.success(), "{o:?}");
        let net = report_of(&sb, "network");
        if is_root() {
            assert_eq!(net, "off (network namespace)");
        } else {
            assert!(net.starts_with("off"), "{net}");
        }

        let v = Value::mapping([("network", Value::Int(1))]);
        let sb = Arc::new(prepared(&v, &cwd.0));
        let o = run(Some(&sb), &cwd.0, &argv);
        assert!(o.status.success(), "{o:?}");
        assert_eq!(report_of(&sb, "network"), "on");
    }

    #[test]
    fn without_a_namespace_seccomp_denies_inet_sockets() {
        if !can_run(true) {
            return;
        }
        let cwd = TempDir::new("cwd");
        let script = "import socket\n\
            for fam in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):\n\
            \x20   try:\n\
            \x20       socket.socket(fam, socket.SOCK_STREAM).close(); print('ok', end=' ')\n\
            \x20   except OSError as e:\n\
            \x20       print(e.errno, end=' ')\n";
        let argv = [PYTHON, "-c", script];
        let o = run(None, &cwd.0, &argv);
        assert_eq!(stdout(&o), "ok ok ok", "without the sandbox: {o:?}");
        let mut sb = prepared(&Value::Int(1), &cwd.0);
        sb.try_namespaces = false;
        let sb = Arc::new(sb);
        let o = run(Some(&sb), &cwd.0, &argv);
        assert_eq!(stdout(&o), format!("{0} {0} ok", libc::EPERM), "{o:?}");
        let net = report_of(&sb, "network");
        assert!(net.starts_with("off: seccomp"), "{net}");
    }

    #[test]
    fn a_fork_bomb_is_stopped_by_the_process_limit() {
        if !can_run(true) {
            return;
        }
        if !is_root() {
            eprintln!("skipped: running the child as nobody needs root");
            return;
        }
        let cwd = TempDir::new("cwd");
        // 20 forks; each child waits on a pipe; the parent counts, then
        // kills and reaps its children (an orphan's zombie would stay
        // charged to nobody if nothing reaps it).
        let script = "import os, signal\n\
            r, w = os.pipe()\n\
            kids, failed = [], 0\n\
            for i in range(20):\n\
            \x20   try:\n\
            \x20       pid = os.fork()\n\
            \x20   except OSError:\n\
            \x20       failed += 1; continue\n\
            \x20   if pid == 0:\n\
            \x20       os.close(w); os.read(r, 1); os._exit(0)\n\
            \x20   kids.append(pid)\n\
            for pid in kids:\n\
            \x20   os.kill(pid, signal.SIGKILL); os.waitpid(pid, 0)\n\
            print(len(kids), failed)\n";
        let nobody = 65534;
        let bomb = |sb: Option<&Arc<Sandbox>>| -> (usize, usize) {
            let child = command(sb, &cwd.0, &[PYTHON, "-c", script], Some(nobody))
                .spawn()
                .unwrap();
            let pgid = child.id() as i32;
            let o = child.wait_with_output().unwrap();
            // Everything in its group is gone: the children were reaped, and
            // the group is killed anyway so a failure leaks nothing.
            // SAFETY: kill with plain integers on the group we created.
            let alive = unsafe { libc::kill(-pgid, 0) } == 0;
            // SAFETY: as above.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            assert!(!alive, "processes of group {pgid} survived");
            let out = stdout(&o);
            let mut it = out.split(' ').map(|n| n.parse::<usize>().unwrap_or(999));
            match (it.next(), it.next()) {
                (Some(ok), Some(failed)) => (ok, failed),
                _ => panic!("{o:?}"),
            }
        };
        assert_eq!(bomb(None), (20, 0), "without the sandbox");
        let v = Value::mapping([("processes", Value::Int(5))]);
        let sb = Arc::new(Sandbox::prepare(&v, &cwd.0, false).unwrap().unwrap());
        let (ok, failed) = bomb(Some(&sb));
        assert!(
            ok <= 5 && failed >= 15 && ok + failed == 20,
            "{ok} {failed}"
        );
        let p = report_of(&sb, "processes");
        assert!(p.starts_with("RLIMIT_NPROC 5"), "{p}");
        assert!(report_of(&sb, "network").starts_with("off"));
    }

    #[test]
    fn ptrace_and_namespaces_are_denied() {
        if !can_run(true) {
            return;
        }
        let cwd = TempDir::new("cwd");
        // ptrace(PTRACE_TRACEME); unshare(CLONE_NEWUTS); clone3(NULL, 0);
        // getpid through the x32 ABI. Each prints 0 or its errno.
        let script = "import ctypes, platform\n\
            libc = ctypes.CDLL(None, use_errno=True)\n\
            def r(v):\n\
            \x20   print(0 if v >= 0 else ctypes.get_errno(), end=' ')\n\
            r(libc.ptrace(0, 0, None, None))\n\
            r(libc.unshare(0x04000000))\n\
            r(libc.syscall(435, None, 0))\n\
            r(libc.syscall(0x40000000 + 39) if platform.machine() == 'x86_64' else -1)\n";
        let argv = [PYTHON, "-c", script];
        let o = run(None, &cwd.0, &argv);
        let free: Vec<String> = stdout(&o).split(' ').map(str::to_string).collect();
        assert_eq!(free.len(), 4, "{o:?}");
        assert_eq!(free[0], "0", "ptrace without the sandbox: {o:?}");
        if is_root() {
            assert_eq!(free[1], "0", "unshare without the sandbox: {o:?}");
        }
        assert_eq!(free[2], libc::EINVAL.to_string(), "clone3 without: {o:?}");
        let sb = Arc::new(prepared(&Value::Int(1), &cwd.0));
        let o = run(Some(&sb), &cwd.0, &argv);
        let boxed: Vec<String> = stdout(&o).split(' ').map(str::to_string).collect();
        let eperm = libc::EPERM.to_string();
        assert_eq!(boxed.len(), 4, "{o:?}");
        assert_eq!(boxed[0], eperm, "ptrace: {o:?}");
        assert_eq!(boxed[1], eperm, "unshare: {o:?}");
        assert_eq!(boxed[2], libc::ENOSYS.to_string(), "clone3: {o:?}");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(boxed[3], eperm, "x32: {o:?}");
            assert_ne!(free[3], eperm, "x32 without: {o:?}");
        }
    }

    #[test]
    fn signals_to_the_driver_are_denied() {
        if !can_run(false) || landlock_abi().unwrap_or(0) < 6 {
            return;
        }
        let cwd = TempDir::new("cwd");
        let me = std::process::id().to_string();
        let argv = ["/bin/sh", "-c", "kill -0 \"$1\" && kill -0 $$", "sh", &me];
        let o = run(None, &cwd.0, &argv);
        assert!(o.status.success(), "without the sandbox: {o:?}");
        let sb = Arc::new(prepared(&Value::Int(1), &cwd.0));
        let o = run(Some(&sb), &cwd.0, &argv);
        assert!(!o.status.success(), "{o:?}");
        // its own processes it may still signal
        let o = sh(
            Some(&sb),
            &cwd.0,
            "sleep 5 & kill $! && wait $!; test $? -gt 128",
        );
        assert!(o.status.success(), "{o:?}");
    }

    #[test]
    fn the_landlock_fd_is_not_inherited() {
        if !can_run(false) {
            return;
        }
        let cwd = TempDir::new("cwd");
        let sb = Arc::new(prepared(&Value::Int(1), &cwd.0));
        let fd = sb.landlock.as_ref().unwrap().fd.as_raw_fd();
        // SAFETY: F_GETFD on an fd the Sandbox owns.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert!(flags >= 0 && flags & libc::FD_CLOEXEC != 0, "{flags}");
        // the name the child would show for it
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        assert!(link.display().to_string().contains("landlock"), "{link:?}");
        let o = sh(Some(&sb), &cwd.0, "ls -l /proc/self/fd/");
        assert!(o.status.success(), "{o:?}");
        let listing = stdout(&o);
        assert!(
            !listing.is_empty() && !listing.contains("landlock"),
            "{listing}"
        );
    }

    #[test]
    fn the_report_says_what_was_applied() {
        if !can_run(false) {
            return;
        }
        let cwd = TempDir::new("cwd");
        let sb = Arc::new(prepared(&Value::Int(1), &cwd.0));
        for key in ["no_new_privs", "landlock", "seccomp", "network"] {
            assert!(report_of(&sb, key).starts_with("not applied yet"), "{key}");
        }
        assert_eq!(report_of(&sb, "processes"), "not limited");
        let o = run(Some(&sb), &cwd.0, &["/bin/true"]);
        assert!(o.status.success(), "{o:?}");
        assert_eq!(report_of(&sb, "no_new_privs"), "applied");
        let ll = report_of(&sb, "landlock");
        assert!(ll.starts_with("applied (Landlock ABI "), "{ll}");
        assert!(ll.contains(&cwd.0.display().to_string()), "{ll}");
        assert!(ll.contains("reads allowed everywhere"), "{ll}");
        let sc = report_of(&sb, "seccomp");
        assert!(
            sc.starts_with(&format!("applied: {} system calls", deny_list().len())),
            "{sc}"
        );
        assert!(report_of(&sb, "network").starts_with("off"));
        assert!(sb.child_failure().is_none());

        let v = Value::mapping([("network", Value::Int(1)), ("processes", Value::Int(3))]);
        let sb = Arc::new(Sandbox::prepare(&v, &cwd.0, true).unwrap().unwrap());
        let o = run(Some(&sb), &cwd.0, &["/bin/true"]);
        assert!(o.status.success(), "{o:?}");
        assert_eq!(report_of(&sb, "network"), "on");
        let p = report_of(&sb, "processes");
        assert!(
            p.contains("RLIMIT_NPROC 3") && p.contains("not enforced"),
            "{p}"
        );
    }

    #[test]
    fn a_layer_failing_in_the_child_stops_the_exec() {
        if !can_run(false) {
            return;
        }
        let cwd = TempDir::new("cwd");
        let marker = cwd.join("ran");
        let mut sb = prepared(&Value::Int(1), &cwd.0);
        // Not a ruleset: landlock_restrict_self fails in the child.
        let null = std::fs::File::open("/dev/null").unwrap();
        sb.landlock.as_mut().unwrap().fd = OwnedFd::from(null);
        let sb = Arc::new(sb);
        let e = command(Some(&sb), &cwd.0, &["/bin/sh", "-c", "touch ran"], None)
            .spawn()
            .expect_err("the spawn must fail");
        assert!(e.raw_os_error().is_some(), "{e}");
        assert_eq!(sb.child_failure(), Some("landlock_restrict_self"));
        assert!(report_of(&sb, "landlock").starts_with("not applied yet"));
        assert!(!marker.exists());
    }
}
