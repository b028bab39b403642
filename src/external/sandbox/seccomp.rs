//! Seccomp, compiled in the parent: the deny-list programs (with and without
//! the socket rule) and the prefix spliced after seccompiler's architecture
//! check; the child only installs one.

use std::collections::BTreeMap;
use std::io;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule,
};

pub(super) struct Seccomp {
    /// The deny-list.
    pub(super) base: BpfProgram,
    /// The deny-list plus socket() for all but AF_UNIX (network off without
    /// a namespace); None when the network stays on.
    pub(super) no_inet: Option<BpfProgram>,
    pub(super) denied: usize,
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
pub(super) const ARCH: Option<seccompiler::TargetArch> = Some(seccompiler::TargetArch::x86_64);
#[cfg(target_arch = "aarch64")]
pub(super) const ARCH: Option<seccompiler::TargetArch> = Some(seccompiler::TargetArch::aarch64);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(super) const ARCH: Option<seccompiler::TargetArch> = None;

/// Whether this kernel has seccomp filters with SECCOMP_RET_ERRNO.
pub(super) fn seccomp_available() -> Result<(), String> {
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

pub(super) fn compile(socket_rule: bool) -> Result<BpfProgram, String> {
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
pub(super) const BPF_LD_W_ABS: u16 = 0x20;
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
pub(super) fn build_seccomp(network: bool) -> Result<Result<Seccomp, String>, String> {
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
