//! What the child runs between fork and exec: join the groups, set the
//! rlimits and the nice value.

use std::ffi::CString;
use std::io;

/// What the child does between fork and exec; owns everything it needs, so
/// that `apply` neither allocates nor locks.
#[derive(Clone, Debug, Default)]
pub struct ChildSetup {
    /// cgroup.procs files to write "0" (this process) to.
    pub(super) procs: Vec<CString>,
    /// (resource, soft, hard).
    pub(super) rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
    pub(super) nice: Option<i32>,
}

impl ChildSetup {
    /// Joins the groups, then sets the rlimits and the nice value. Only
    /// async-signal-safe calls (open, write, close, setrlimit, setpriority)
    /// on data made before the fork; an error is the errno, which makes the
    /// spawn fail with it.
    pub fn apply(&self) -> io::Result<()> {
        for path in &self.procs {
            // SAFETY: `path` is a NUL-terminated string made before the fork;
            // open takes it and plain flags.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is open; the buffer is a static one-byte string.
            let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
            let err = io::Error::last_os_error();
            // SAFETY: `fd` is ours and closed once.
            unsafe { libc::close(fd) };
            if n != 1 {
                return Err(err);
            }
        }
        for &(resource, soft, hard) in &self.rlimits {
            let r = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            // SAFETY: `r` is a valid rlimit that setrlimit only reads.
            if unsafe { libc::setrlimit(resource, &r) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(n) = self.nice {
            // SAFETY: setpriority takes plain integers (who 0 = this process).
            if unsafe { libc::setpriority(libc::PRIO_PROCESS as _, 0, n) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}
