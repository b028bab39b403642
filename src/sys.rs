//! Facts about the host process that more than one part of the crate asks
//! for (the option checks and the external family), in safe code.

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
