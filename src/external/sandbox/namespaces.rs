//! The child's network off: a network namespace, else a user and network
//! namespace with the child's ids mapped to themselves, else the seccomp
//! socket rule; and the async-signal-safe helpers this needs.

use std::sync::atomic::Ordering;

use super::shared::{State, NET_NAMESPACE, NET_NONE, NET_SECCOMP, NET_USER_NAMESPACE};
use super::Sandbox;

impl Sandbox {
    /// The child's network: a namespace if one can be made, else the
    /// seccomp socket rule if seccomp is there. Returns NET_*.
    pub(super) fn network_off(&self, st: &State) -> u32 {
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
}

fn errno() -> i32 {
    // SAFETY: reads this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// "<id> <id> 1" into `buf` without allocating; returns the length.
pub(super) fn id_map(buf: &mut [u8; 32], id: u32) -> usize {
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
