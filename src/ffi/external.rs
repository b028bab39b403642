//! The external_* efuns from C (callbacks.md "External process"): each one
//! acts on an external-process socket (mode 22 or 23) by its LPC id; any
//! other socket gives EE_MODENOTSUPP naming its mode, an unknown id EE_BADF.
//! Results map to LPC EE codes with unisock_result_ee.

use std::ffi::c_char;

use super::values::{borrow, put_value, UnisockValue};
use super::{boundary, c_str, null, put, with_context};
use crate::error::ResultCode;
use crate::external::{call, Call};
use crate::value::Value;

fn int_of(v: Value) -> i64 {
    v.as_int().unwrap_or(0)
}

/// external_write_process: queues `data` (a string or buffer, borrowed for
/// the call) for the process's stdin, like socket_write; `*accepted` gets
/// the number of bytes taken. EE_WOULDBLOCK when SO_MAX_BUFFERED bytes are
/// already waiting (nothing taken; a WRITE event follows when it drains).
#[no_mangle]
pub extern "C" fn unisock_external_write(
    id: i32,
    data: *const UnisockValue,
    accepted: *mut i64,
) -> ResultCode {
    boundary(|| {
        let data = borrow(data, "data")?;
        if accepted.is_null() {
            return Err(null("accepted"));
        }
        let n = with_context(|u| call(u, id, Call::Write(data)))?;
        put(accepted, int_of(n), "accepted")?;
        Ok(ResultCode::Ok)
    })
}

/// external_read_process: output held for the mudlib to pull (EXTERNAL_ASYNC
/// 0 or mode 23), at most `max_bytes` of it (`max_bytes` <= 0: all), taken
/// out so the final result no longer carries it. `*out` (the caller's) is a
/// string, a buffer for output that is not UTF-8, or int 0 when there is
/// none (always 0 with EXTERNAL_ASYNC 1: output has gone to the read callback).
#[no_mangle]
pub extern "C" fn unisock_external_read(
    id: i32,
    max_bytes: i64,
    out: *mut *mut UnisockValue,
) -> ResultCode {
    boundary(|| {
        let max = usize::try_from(max_bytes).ok().filter(|&n| n > 0);
        let v = with_context(|u| call(u, id, Call::Read(max)))?;
        put_value(out, v)
    })
}

/// external_monitor_path: watches `path` (NUL-terminated, absolute; a
/// directory ending in "/" followed by "**" is watched recursively) for the `events` bits
/// (CREATED 0x01, MODIFIED 0x02, DELETED 0x04, MOVED_FROM 0x08, MOVED_TO
/// 0x10, OPENED 0x20, CLOSED 0x40, ATTRIB 0x80; 0 = all but OPENED).
/// `*watch_id` gets the watch's id (the same id when the path was watched
/// already; its events are replaced).
#[no_mangle]
pub extern "C" fn unisock_external_monitor_path(
    id: i32,
    path: *const c_char,
    events: i64,
    watch_id: *mut i64,
) -> ResultCode {
    boundary(|| {
        let path = c_str(path, "path")?;
        if watch_id.is_null() {
            return Err(null("watch_id"));
        }
        let w = with_context(|u| call(u, id, Call::Monitor(path, events)))?;
        put(watch_id, int_of(w), "watch_id")?;
        Ok(ResultCode::Ok)
    })
}

/// external_stop_monitoring: stops watching `path` (as it was given to
/// external_monitor_path or EXTERNAL_WATCH_PATH).
#[no_mangle]
pub extern "C" fn unisock_external_stop_monitoring(id: i32, path: *const c_char) -> ResultCode {
    boundary(|| {
        let path = c_str(path, "path")?;
        with_context(|u| call(u, id, Call::StopMonitoring(path)))?;
        Ok(ResultCode::Ok)
    })
}

/// external_get_file_events: file events held for the mudlib to pull
/// (EXTERNAL_ASYNC 0 or mode 23), taken out. `*out` (the caller's) is an
/// array of the event mappings, empty when there are none.
#[no_mangle]
pub extern "C" fn unisock_external_get_file_events(
    id: i32,
    out: *mut *mut UnisockValue,
) -> ResultCode {
    boundary(|| {
        let v = with_context(|u| call(u, id, Call::FileEvents))?;
        put_value(out, v)
    })
}

/// external_set_resource_limits: `limits` (a mapping, borrowed) with any of
/// "cpu", "memory", "files", "priority". Before the process starts they
/// are stored as its options; on a running process each is applied now
/// where the mechanism allows (cgroup, prlimit, setpriority), else nothing
/// changes and the error names why.
#[no_mangle]
pub extern "C" fn unisock_external_set_resource_limits(
    id: i32,
    limits: *const UnisockValue,
) -> ResultCode {
    boundary(|| {
        let limits = borrow(limits, "limits")?;
        with_context(|u| call(u, id, Call::SetLimits(limits)))?;
        Ok(ResultCode::Ok)
    })
}

/// external_get_process_stats: `*out` (the caller's) is a mapping: pid,
/// running, uptime_ms, cpu_ms, rss_kb, max_rss_kb, restarts, "limits" (what
/// is enforced and by which mechanism) and "sandbox" (each layer, applied
/// or why not).
#[no_mangle]
pub extern "C" fn unisock_external_get_process_stats(
    id: i32,
    out: *mut *mut UnisockValue,
) -> ResultCode {
    boundary(|| {
        let v = with_context(|u| call(u, id, Call::Stats))?;
        put_value(out, v)
    })
}

/// external_spawn_process: starts the configured process, the same as
/// socket_bind(id, 0).
#[no_mangle]
pub extern "C" fn unisock_external_spawn_process(id: i32) -> ResultCode {
    boundary(|| {
        with_context(|u| call(u, id, Call::Spawn))?;
        Ok(ResultCode::Ok)
    })
}
