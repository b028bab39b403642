//! Facts about the host process that more than one part of the crate asks
//! for (the option checks and the external family), in safe code.

/// Capability numbers (linux/capability.h) that [`has_cap`] is asked about.
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_SYS_NICE: u32 = 23;
pub const CAP_SYS_RESOURCE: u32 = 24;

/// Whether the calling thread has capability `cap` in its effective set
/// (/proc/thread-self/status CapEff; false when that cannot be read).
pub fn has_cap(cap: u32) -> bool {
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .is_some_and(|eff| eff & (1u64 << cap) != 0)
}
