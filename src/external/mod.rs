//! External processes: EXTERNAL_PROCESS and EXTERNAL_COMMAND_MODE (modes
//! 22/23), a child process as a socket (callbacks.md "External process",
//! options 140–159, docs/modes/external.md).
//!
//! - `spawn`: building and starting the child from the options (user and
//!   group, limits and sandbox applied between fork and exec);
//! - `process`: the endpoint (pipes, exit via pidfd, timeout, close, restart
//!   policy, the external_* efuns);
//! - `watch`: inotify file watches (EXTERNAL_WATCH_PATH, external_monitor_path);
//! - `limits`: CPU, memory and process limits through cgroups or rlimits,
//!   open files and priority;
//! - `sandbox`: no_new_privs, landlock, seccomp, network namespace;
//! - `sys`: the system calls std does not wrap.
//!
//! Unsafe code lives only in the OS-facing files (`sys`, `limits`,
//! `sandbox`, and the pre_exec hook in `spawn`).

mod error;
pub mod limits;
pub mod process;
pub mod sandbox;
pub mod spawn;
pub(crate) mod sys;
pub mod watch;

pub use error::ExternalError;

use crate::core::Endpoint;
use crate::error::{Error, Result};
use crate::modes;
use crate::value::Value;

/// The option ids (generated from the catalog).
pub(crate) use crate::options::ids as opt;

/// The external_* efuns (callbacks.md "External process"), as the core
/// hands them to the endpoint of an external-process socket.
#[derive(Debug)]
pub enum Call<'a> {
    /// external_write_process: bytes accepted for stdin.
    Write(&'a Value),
    /// external_read_process: output not yet delivered, at most this many bytes.
    Read(Option<usize>),
    /// external_monitor_path(path, event bits): the watch id.
    Monitor(&'a str, i64),
    /// external_stop_monitoring(path).
    StopMonitoring(&'a str),
    /// external_get_file_events: file events not yet delivered.
    FileEvents,
    /// external_set_resource_limits(([ cpu, memory, files, priority ])).
    SetLimits(&'a Value),
    /// external_get_process_stats.
    Stats,
    /// external_spawn_process: the same as socket_bind(id, 0).
    Spawn,
}

impl Call<'_> {
    /// The efun's name, for error messages.
    pub fn efun(&self) -> &'static str {
        match self {
            Call::Write(_) => "external_write_process",
            Call::Read(_) => "external_read_process",
            Call::Monitor(..) => "external_monitor_path",
            Call::StopMonitoring(_) => "external_stop_monitoring",
            Call::FileEvents => "external_get_file_events",
            Call::SetLimits(_) => "external_set_resource_limits",
            Call::Stats => "external_get_process_stats",
            Call::Spawn => "external_spawn_process",
        }
    }
}

/// The external-process family as `registry::FAMILIES` lists it.
pub static FAMILY: crate::core::FamilyDef = crate::core::FamilyDef {
    what: "an external process (EXTERNAL_PROCESS 22 or EXTERNAL_COMMAND_MODE 23)",
    modes: modes::ModeSet::of(&[modes::EXTERNAL_PROCESS, modes::EXTERNAL_COMMAND_MODE]),
    new_endpoint,
    adopt: None,
};

/// An external_* efun on socket `id`, which must be of mode 22 or 23 (the
/// C ABI's `ffi/external.rs` calls this).
pub fn call(u: &mut crate::core::Unisock, id: i32, call: Call) -> Result<Value> {
    let efun = call.efun();
    u.family_call(id, &FAMILY, efun, |cx, ep| {
        match ep.downcast_mut::<process::Process>() {
            Some(p) => p.efun(cx, call),
            None => Err(crate::core::unsupported(efun)),
        }
    })
}

/// The endpoint for a new socket of an external mode.
pub fn new_endpoint(mode: u8) -> Result<Box<dyn Endpoint>> {
    match mode {
        modes::EXTERNAL_PROCESS | modes::EXTERNAL_COMMAND_MODE => {
            Ok(Box::new(process::Process::new(mode)))
        }
        _ => Err(ExternalError::NotExternalMode { mode }.into()),
    }
}

/// The check made when one of this family's options has just been stored.
pub fn option_set(id: u16, value: Option<&Value>) -> Result<()> {
    check_privilege(id, value)
}

pub(crate) fn refused(id: u16, why: String) -> Error {
    ExternalError::OptionRefused { id, why }.into()
}

/// EXTERNAL_PRIORITY and EXTERNAL_FILE_LIMIT: refuses, at set time, a value
/// the child could not get because the driver lacks the privilege (else the
/// failure would only show at socket_bind).
pub fn check_privilege(id: u16, value: Option<&Value>) -> Result<()> {
    let Some(&Value::Int(n)) = value else {
        return Ok(());
    };
    let why = match id {
        opt::EXTERNAL_PRIORITY if n != 0 => nice_refusal(
            n,
            sys::nice_now(),
            sys::has_cap(sys::CAP_SYS_NICE),
            sys::rlimit(libc::RLIMIT_NICE).0,
        ),
        opt::EXTERNAL_FILE_LIMIT if n != 0 => nofile_refusal(
            n as u64,
            sys::rlimit(libc::RLIMIT_NOFILE).1,
            sys::nr_open(),
            sys::has_cap(sys::CAP_SYS_RESOURCE),
        ),
        _ => None,
    };
    match why {
        Some(why) => Err(refused(id, why)),
        None => Ok(()),
    }
}

/// Why nice value `n` cannot be given to a child of this thread, if it
/// cannot: Linux lets a process lower its nice value (raise its priority)
/// only with CAP_SYS_NICE or when 20 - n is within RLIMIT_NICE's soft limit.
fn nice_refusal(n: i64, current: i32, cap_sys_nice: bool, rlimit_nice: u64) -> Option<String> {
    if n >= i64::from(current) || cap_sys_nice || (20 - n) as u64 <= rlimit_nice {
        return None;
    }
    Some(format!(
        "{n} is refused: it is below the driver's own nice value ({current}), and lowering \
         a nice value needs CAP_SYS_NICE or an RLIMIT_NICE of at least {} (the driver has \
         no CAP_SYS_NICE and RLIMIT_NICE {rlimit_nice})",
        20 - n
    ))
}

/// Why RLIMIT_NOFILE `n` cannot be given to the child, if it cannot: a hard
/// limit can be raised only with CAP_SYS_RESOURCE, and never past
/// /proc/sys/fs/nr_open.
fn nofile_refusal(n: u64, hard: u64, nr_open: u64, cap_sys_resource: bool) -> Option<String> {
    if n > nr_open {
        return Some(format!(
            "{n} is refused: the system allows at most {nr_open} open files per process \
             (/proc/sys/fs/nr_open)"
        ));
    }
    if n > hard && !cap_sys_resource {
        return Some(format!(
            "{n} is refused: it is above the driver's own hard limit of open files ({hard}), \
             and raising it needs CAP_SYS_RESOURCE, which the driver lacks"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options of this family that may be refused after they were stored
    /// (the catalog's `refusable`): EXTERNAL_WATCH_PATH (a path that cannot
    /// be watched) and those that need a privilege the driver may lack
    /// (`check_privilege`).
    fn may_refuse(id: i64) -> bool {
        crate::options::catalog::find(id).is_some_and(|d| d.refusable)
    }

    #[test]
    fn only_the_watch_path_and_privileged_options_may_be_refused() {
        for id in [143, 154, 157] {
            assert!(may_refuse(id));
        }
        for id in [140, 145, 153, 155, 156, 158, 159] {
            assert!(!may_refuse(id));
        }
    }

    #[test]
    fn nice_needs_privilege_only_to_go_below_the_drivers() {
        // raising (or keeping) the nice value is always allowed
        assert!(nice_refusal(10, 0, false, 0).is_none());
        assert!(nice_refusal(5, 5, false, 0).is_none());
        // lowering: CAP_SYS_NICE, or RLIMIT_NICE >= 20 - n
        let why = nice_refusal(-5, 0, false, 0).unwrap();
        assert!(
            why.contains("CAP_SYS_NICE") && why.contains("at least 25"),
            "{why}"
        );
        assert!(nice_refusal(-5, 0, true, 0).is_none());
        assert!(nice_refusal(-5, 0, false, 25).is_none());
        assert!(nice_refusal(-5, 0, false, 24).is_some());
        assert!(nice_refusal(3, 5, false, 0).is_some());
        assert!(nice_refusal(-20, 0, false, libc::RLIM_INFINITY).is_none());
    }

    #[test]
    fn file_limit_above_the_hard_limit_needs_privilege() {
        assert!(nofile_refusal(16, 1024, 1 << 20, false).is_none());
        assert!(nofile_refusal(1024, 1024, 1 << 20, false).is_none());
        let why = nofile_refusal(4096, 1024, 1 << 20, false).unwrap();
        assert!(
            why.contains("CAP_SYS_RESOURCE") && why.contains("1024"),
            "{why}"
        );
        assert!(nofile_refusal(4096, 1024, 1 << 20, true).is_none());
        assert!(nofile_refusal(1 << 20, 1024, 1 << 19, true)
            .unwrap()
            .contains("nr_open"));
    }

    #[test]
    fn zero_means_inherit_and_is_never_refused() {
        assert!(check_privilege(opt::EXTERNAL_PRIORITY, Some(&Value::Int(0))).is_ok());
        assert!(check_privilege(opt::EXTERNAL_FILE_LIMIT, Some(&Value::Int(0))).is_ok());
        assert!(check_privilege(opt::EXTERNAL_PRIORITY, Some(&Value::Int(19))).is_ok());
    }
}
