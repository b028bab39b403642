//! What goes wrong in the external-process family, mapped to result codes
//! once (`From<ExternalError> for Error`). The texts are the ones LPC and
//! the tests see; a refusal by the policy is [`crate::policy::PolicyError`].

use std::fmt;

use crate::error::{Coded, Error, ResultCode};
use crate::modes;

/// A failure of an external socket or of one of the external_* efuns.
#[derive(Clone, Debug, PartialEq)]
pub enum ExternalError {
    /// socket_create with a mode of another family.
    NotExternalMode { mode: u8 },
    /// socket_set_option: option `id` is refused (`why` says why).
    OptionRefused { id: u16, why: String },
    /// socket_bind could not start the process (`why` names what failed).
    Start { why: String },
    /// socket_bind before EXTERNAL_COMMAND was set.
    NoCommand,
    /// EXTERNAL_COMMAND is relative and no shell searches PATH.
    CommandNotAbsolute { command: String },
    /// socket_bind with an address other than 0.
    BindNeedsZero,
    /// external_spawn_process on a socket whose process was started.
    AlreadyStarted,
    /// The inotify instance for the socket's watches could not be made.
    Inotify { why: String },
    /// external_monitor_path: the path or the event bits are refused.
    Monitor { why: String },
    /// external_monitor_path: `events` is not a set of event bits.
    MonitorEvents { events: i64 },
    /// external_stop_monitoring: the path is not watched.
    StopMonitoring { why: String },
    /// external_set_resource_limits with something else than a mapping.
    LimitsNotMapping { got: &'static str },
    /// external_set_resource_limits with a key it does not know.
    LimitsUnknownKey { key: String },
    /// external_set_resource_limits: files 0 while the process runs.
    LimitsFilesZero,
    /// external_set_resource_limits: a limit could not be applied.
    Limits { why: String },
    /// external_set_resource_limits: the value was refused as its option's
    /// would be; `option_error` is that refusal's text.
    LimitsOption { option_error: String },
    /// socket_write with a target.
    WriteTakesNoTarget,
    /// socket_write of something else than a string, a buffer or the eof mapping.
    WriteWrongType { got: &'static str },
    /// external_write_process of something else than a string or a buffer.
    WriteProcessWrongType { got: &'static str },
    /// socket_write while the process's stdin is not open.
    StdinNotOpen { why: &'static str },
    /// socket_write while `pending` bytes wait and SO_MAX_BUFFERED is `max`.
    StdinFull { pending: usize, max: usize },
    /// socket_write: the process closed its stdin.
    StdinClosed { why: String },
    /// external_write_process: socket_write's error `cause`, told as this
    /// efun's (its code kept).
    WriteProcess { cause: Error },
}

impl fmt::Display for ExternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ExternalError::*;
        match self {
            NotExternalMode { mode } => write!(
                f,
                "mode {} is not an external-process mode",
                modes::name(*mode)
            ),
            OptionRefused { id, why } => {
                let name = crate::options::catalog::find(*id as i64).map_or("option", |d| d.name);
                write!(f, "socket_set_option: {name} ({id}) {why}")
            }
            Start { why } => write!(f, "socket_bind: {why}"),
            NoCommand => f.write_str(
                "socket_bind: set EXTERNAL_COMMAND (140) first; it names the program to run",
            ),
            CommandNotAbsolute { command } => write!(
                f,
                "socket_bind: EXTERNAL_COMMAND {command:?} must be an absolute path \
                 when EXTERNAL_SHELL is 0 (no PATH search is done)"
            ),
            BindNeedsZero => {
                f.write_str("socket_bind: external processes start with socket_bind(id, 0)")
            }
            AlreadyStarted => f.write_str(
                "external_spawn_process: the process was already started on this socket",
            ),
            Inotify { why } => write!(
                f,
                "inotify: {why} (see /proc/sys/fs/inotify/max_user_instances)"
            ),
            Monitor { why } => write!(f, "external_monitor_path: {why}"),
            MonitorEvents { events } => write!(
                f,
                "external_monitor_path: events {events} is not a set of the \
                 bits 0x01..0x80 (0 = all but OPENED)"
            ),
            StopMonitoring { why } => write!(f, "external_stop_monitoring: {why}"),
            LimitsNotMapping { got } => write!(
                f,
                "external_set_resource_limits: wants a mapping with \"cpu\", \"memory\", \
                 \"files\" or \"priority\", not {got}"
            ),
            LimitsUnknownKey { key } => write!(
                f,
                "external_set_resource_limits: unknown key {key}: the keys are \
                 \"cpu\", \"memory\", \"files\" and \"priority\""
            ),
            LimitsFilesZero => f.write_str(
                "external_set_resource_limits: files 0 (the driver's limit) cannot be \
                 applied to a running process; give a number",
            ),
            Limits { why } => write!(f, "external_set_resource_limits: {why}"),
            LimitsOption { option_error } => f.write_str(
                &option_error.replace("socket_set_option", "external_set_resource_limits"),
            ),
            WriteTakesNoTarget => f.write_str("socket_write: an external process takes no target"),
            WriteWrongType { got } => write!(
                f,
                "socket_write: an external process takes a string, a buffer or ([ \"eof\": 1 ]), not {got}"
            ),
            WriteProcessWrongType { got } => write!(
                f,
                "external_write_process: wants a string or a buffer, not {got}"
            ),
            StdinNotOpen { why } => write!(f, "socket_write: the process's stdin is not open: {why}"),
            StdinFull { pending, max } => write!(
                f,
                "socket_write: {pending} bytes are still waiting for the process's stdin \
                 (SO_MAX_BUFFERED is {max}); wait for the write callback"
            ),
            StdinClosed { why } => write!(f, "socket_write: the process closed its stdin: {why}"),
            WriteProcess { cause } => f.write_str(
                &cause
                    .message
                    .replace("socket_write", "external_write_process"),
            ),
        }
    }
}

impl Coded for ExternalError {
    fn code(&self) -> ResultCode {
        use ExternalError::*;
        match self {
            NotExternalMode { .. } => ResultCode::EeModenotsupp,
            OptionRefused { .. } => ResultCode::BadOptionValue,
            // The process is started by socket_bind, so this is its error.
            Start { .. } => ResultCode::EeBind,
            NoCommand => ResultCode::EeNoaddr,
            CommandNotAbsolute { .. } | BindNeedsZero | WriteTakesNoTarget => ResultCode::EeBadaddr,
            AlreadyStarted => ResultCode::EeIsbound,
            Inotify { .. } => ResultCode::EeSocket,
            Monitor { .. }
            | MonitorEvents { .. }
            | StopMonitoring { .. }
            | LimitsNotMapping { .. }
            | LimitsUnknownKey { .. }
            | LimitsFilesZero
            | Limits { .. }
            | LimitsOption { .. }
            | WriteWrongType { .. }
            | WriteProcessWrongType { .. } => ResultCode::EeBaddata,
            StdinNotOpen { .. } => ResultCode::EeNotconn,
            StdinFull { .. } => ResultCode::EeWouldblock,
            StdinClosed { .. } => ResultCode::EeSend,
            WriteProcess { cause } => cause.code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_has_its_code_and_text() {
        use ExternalError::*;
        let s = |x: &str| x.to_string();
        let table: Vec<(ExternalError, ResultCode, &str)> = vec![
            (
                NotExternalMode {
                    mode: modes::IPC_SERVER,
                },
                ResultCode::EeModenotsupp,
                "mode IPC_SERVER is not an external-process mode",
            ),
            (
                OptionRefused {
                    id: 154,
                    why: s("-5 is refused"),
                },
                ResultCode::BadOptionValue,
                "socket_set_option: EXTERNAL_PRIORITY (154) -5 is refused",
            ),
            (
                Start { why: s("pipe: x") },
                ResultCode::EeBind,
                "socket_bind: pipe: x",
            ),
            (
                NoCommand,
                ResultCode::EeNoaddr,
                "socket_bind: set EXTERNAL_COMMAND (140) first; it names the program to run",
            ),
            (
                CommandNotAbsolute { command: s("ls") },
                ResultCode::EeBadaddr,
                "socket_bind: EXTERNAL_COMMAND \"ls\" must be an absolute path when \
                 EXTERNAL_SHELL is 0 (no PATH search is done)",
            ),
            (
                BindNeedsZero,
                ResultCode::EeBadaddr,
                "socket_bind: external processes start with socket_bind(id, 0)",
            ),
            (
                AlreadyStarted,
                ResultCode::EeIsbound,
                "external_spawn_process: the process was already started on this socket",
            ),
            (
                Inotify { why: s("x") },
                ResultCode::EeSocket,
                "inotify: x (see /proc/sys/fs/inotify/max_user_instances)",
            ),
            (
                Monitor { why: s("x") },
                ResultCode::EeBaddata,
                "external_monitor_path: x",
            ),
            (
                MonitorEvents { events: 512 },
                ResultCode::EeBaddata,
                "external_monitor_path: events 512 is not a set of the bits 0x01..0x80 \
                 (0 = all but OPENED)",
            ),
            (
                StopMonitoring { why: s("x") },
                ResultCode::EeBaddata,
                "external_stop_monitoring: x",
            ),
            (
                LimitsNotMapping { got: "int" },
                ResultCode::EeBaddata,
                "external_set_resource_limits: wants a mapping with \"cpu\", \"memory\", \
                 \"files\" or \"priority\", not int",
            ),
            (
                LimitsUnknownKey { key: s("\"x\"") },
                ResultCode::EeBaddata,
                "external_set_resource_limits: unknown key \"x\": the keys are \"cpu\", \
                 \"memory\", \"files\" and \"priority\"",
            ),
            (
                LimitsFilesZero,
                ResultCode::EeBaddata,
                "external_set_resource_limits: files 0 (the driver's limit) cannot be \
                 applied to a running process; give a number",
            ),
            (
                Limits { why: s("x") },
                ResultCode::EeBaddata,
                "external_set_resource_limits: x",
            ),
            (
                LimitsOption {
                    option_error: s("socket_set_option: EXTERNAL_CPU_LIMIT (155) x"),
                },
                ResultCode::EeBaddata,
                "external_set_resource_limits: EXTERNAL_CPU_LIMIT (155) x",
            ),
            (
                WriteTakesNoTarget,
                ResultCode::EeBadaddr,
                "socket_write: an external process takes no target",
            ),
            (
                WriteWrongType { got: "int" },
                ResultCode::EeBaddata,
                "socket_write: an external process takes a string, a buffer or \
                 ([ \"eof\": 1 ]), not int",
            ),
            (
                WriteProcessWrongType { got: "int" },
                ResultCode::EeBaddata,
                "external_write_process: wants a string or a buffer, not int",
            ),
            (
                WriteProcess {
                    cause: StdinFull { pending: 3, max: 2 }.into(),
                },
                ResultCode::EeWouldblock,
                "external_write_process: 3 bytes are still waiting for the process's stdin \
                 (SO_MAX_BUFFERED is 2); wait for the write callback",
            ),
            (
                StdinNotOpen { why: "x" },
                ResultCode::EeNotconn,
                "socket_write: the process's stdin is not open: x",
            ),
            (
                StdinFull { pending: 3, max: 2 },
                ResultCode::EeWouldblock,
                "socket_write: 3 bytes are still waiting for the process's stdin \
                 (SO_MAX_BUFFERED is 2); wait for the write callback",
            ),
            (
                StdinClosed { why: s("x") },
                ResultCode::EeSend,
                "socket_write: the process closed its stdin: x",
            ),
        ];
        crate::error::assert_mapped(table);
    }
}
