//! The page the child writes what it did into: a shared anonymous mapping
//! that the parent reads for the report and the spawn's error.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32};

pub(super) const NET_NOT_YET: u32 = 0;
pub(super) const NET_NAMESPACE: u32 = 1;
pub(super) const NET_USER_NAMESPACE: u32 = 2;
pub(super) const NET_SECCOMP: u32 = 3;
pub(super) const NET_NONE: u32 = 4;

pub(super) const STEPS: &[&str] = &[
    "",
    "setrlimit(RLIMIT_NPROC)",
    "prctl(PR_SET_NO_NEW_PRIVS)",
    "landlock_restrict_self",
    "seccomp(SECCOMP_SET_MODE_FILTER)",
];
pub(super) const STEP_NPROC: u32 = 1;
pub(super) const STEP_NNP: u32 = 2;
pub(super) const STEP_LANDLOCK: u32 = 3;
pub(super) const STEP_SECCOMP: u32 = 4;

#[repr(C)]
pub(super) struct State {
    /// 1 once a child has applied every layer.
    pub(super) applied: AtomicU32,
    /// NET_*: how the last child turned the network off.
    pub(super) net: AtomicU32,
    /// errno of unshare(CLONE_NEWNET) and of unshare(CLONE_NEWUSER|CLONE_NEWNET).
    pub(super) netns_errno: AtomicI32,
    pub(super) userns_errno: AtomicI32,
    /// STEP_* that failed in the last child, 0 if none.
    pub(super) failed: AtomicU32,
}

/// A MAP_SHARED anonymous mapping holding a `State`: the child's writes are
/// seen by the parent (std's spawn returns after the child exec'd or failed).
pub(super) struct Shared(NonNull<State>);

// SAFETY: the mapping is only accessed through the atomics in `State`.
unsafe impl Send for Shared {}
// SAFETY: as above; atomics are safe to share.
unsafe impl Sync for Shared {}

impl Shared {
    pub(super) fn new() -> io::Result<Shared> {
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

    pub(super) fn get(&self) -> &State {
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
