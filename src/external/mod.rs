//! External processes: EXTERNAL_PROCESS and EXTERNAL_COMMAND_MODE (modes
//! 22/23), a child process as a socket (callbacks.md "External process",
//! options 140–159, docs/modes/external.md).
//!
//! - `spawn`: building and starting the child from the options;
//! - `process`: the endpoint (pipes, exit via pidfd, timeout, close);
//! - `sys`: the system calls std does not wrap (the only unsafe code here).
//!
//! Not built yet, and refused when set: EXTERNAL_WATCH_PATH, USER/GROUP,
//! PRIORITY, the CPU/MEMORY/FILE limits, SANDBOX and RESTART_POLICY.

pub mod process;
pub mod spawn;
mod sys;

use crate::core::Endpoint;
use crate::error::{Error, Result, ResultCode};
use crate::modes;
use crate::value::Value;

/// The option ids this family reads.
pub(crate) mod opt {
    pub(crate) const SO_MAX_BUFFERED: u16 = 17;
    pub(crate) const EXTERNAL_COMMAND: u16 = 140;
    pub(crate) const EXTERNAL_ARGS: u16 = 141;
    pub(crate) const EXTERNAL_ENV: u16 = 142;
    pub(crate) const EXTERNAL_WORKING_DIR: u16 = 144;
    pub(crate) const EXTERNAL_TIMEOUT: u16 = 147;
    pub(crate) const EXTERNAL_BUFFER_SIZE: u16 = 148;
    pub(crate) const EXTERNAL_ASYNC: u16 = 149;
    pub(crate) const EXTERNAL_STDIN_MODE: u16 = 150;
    pub(crate) const EXTERNAL_STDOUT_MODE: u16 = 151;
    pub(crate) const EXTERNAL_STDERR_MODE: u16 = 152;
    pub(crate) const EXTERNAL_SHELL: u16 = 153;
}

/// The endpoint for a new socket of an external mode.
pub fn new_endpoint(mode: u8) -> Result<Box<dyn Endpoint>> {
    match mode {
        modes::EXTERNAL_PROCESS | modes::EXTERNAL_COMMAND_MODE => {
            Ok(Box::new(process::Process::new(mode)))
        }
        _ => Err(Error::new(
            ResultCode::EeModenotsupp,
            format!("mode {} is not an external-process mode", modes::name(mode)),
        )),
    }
}

/// Options of this family that this build does not implement (see `refuse_unbuilt`).
pub fn may_refuse(id: i64) -> bool {
    matches!(id, 143 | 145 | 146 | 154..=159)
}

/// Refuses the options this build does not implement, so that a setting
/// that would do nothing is never stored silently. The value that means
/// "off" (0, or "never" for the restart policy) is what this build does
/// anyway and is accepted.
pub fn refuse_unbuilt(id: u16, value: Option<&Value>) -> Result<()> {
    let what = match id {
        143 => "file watching (EXTERNAL_WATCH_PATH)",
        145 | 146 => "switching the child's user or group",
        154 => "process priorities",
        155..=157 => "resource limits (options 155-157)",
        158 => "the sandbox",
        159 => "restart policies",
        _ => return Ok(()),
    };
    let off = match (id, value) {
        (154..=158, Some(Value::Int(0))) => true,
        (159, Some(Value::Str(s))) => s == "never",
        _ => false,
    };
    if off {
        return Ok(());
    }
    let name = crate::options::catalog::find(id as i64).map_or("option", |d| d.name);
    Err(Error::new(
        ResultCode::OptionNotForMode,
        format!(
            "socket_set_option: {name} ({id}) is not available yet: this build of unisock does not include {what}"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbuilt_options_are_refused_except_their_off_value() {
        for id in [143u16, 145, 146, 154, 155, 156, 157, 158, 159] {
            let e = refuse_unbuilt(id, Some(&Value::Int(7))).unwrap_err();
            assert!(
                e.message.contains("is not available yet"),
                "{id}: {}",
                e.message
            );
            assert!(may_refuse(id as i64));
        }
        for id in 154u16..=158 {
            assert!(refuse_unbuilt(id, Some(&Value::Int(0))).is_ok());
        }
        assert!(refuse_unbuilt(159, Some(&Value::str("never"))).is_ok());
        assert!(refuse_unbuilt(143, Some(&Value::Int(0))).is_err());
        assert!(refuse_unbuilt(140, Some(&Value::str("/bin/true"))).is_ok());
        assert!(!may_refuse(140) && !may_refuse(153));
    }
}
