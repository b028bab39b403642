//! What the core refuses before a socket's family sees the call (the socket
//! table, modes, addresses, release/acquire), mapped to result codes once
//! (`From<CoreError> for Error`).

use std::fmt;

use crate::error::{Coded, ResultCode};
use crate::modes;

/// A failure common to every mode, found by the core.
#[derive(Clone, Debug, PartialEq)]
pub enum CoreError {
    /// An address that is not "host port" (nor "host:port", "[v6]:port").
    BadAddress { text: String },
    /// A host name where a numeric "ip port" is needed.
    NotNumeric { text: String },
    /// An efun (`what`) the socket's mode does not serve.
    Unsupported { what: String },
    /// No socket `id` in the table.
    NotOpen { id: i32 },
    /// socket_create with a negative id.
    NegativeId { id: i32 },
    /// socket_create, socket_accept or adopt_fd onto an id in use.
    InUse { id: i32 },
    /// socket_create with a number that is no mode.
    UnknownMode { mode: i64 },
    /// socket_create with a mode no family of this build serves.
    NotBuilt { name: &'static str, number: u8 },
    /// adopt_fd with a mode whose family cannot adopt an fd.
    CannotAdopt { mode: i64 },
    /// socket_bind with a port outside 0..=65535.
    PortOutOfRange { port: i64 },
    /// socket_bind on a socket that is not unbound.
    AlreadyBound,
    /// A family's efun on a socket of another family (`what` says which).
    WrongFamily {
        efun: String,
        id: i32,
        mode: u8,
        what: &'static str,
    },
    /// socket_release of a socket already released.
    Released,
    /// socket_acquire of a socket not released.
    NotReleased,
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CoreError::*;
        match self {
            BadAddress { text } => write!(f, "bad address {text:?}: expected \"host port\""),
            NotNumeric { text } => write!(
                f,
                "bad address {text:?}: a numeric \"ip port\" is needed here"
            ),
            Unsupported { what } => write!(f, "{what} is not supported by this mode"),
            NotOpen { id } => write!(f, "socket {id} is not open"),
            NegativeId { id } => write!(f, "socket id {id} is negative"),
            InUse { id } => write!(f, "socket {id} is already in use"),
            UnknownMode { mode } => write!(f, "socket_create: unknown socket mode {mode}"),
            NotBuilt { name, number } => write!(
                f,
                "socket_create: mode {name} ({number}) is not supported by this build of unisock yet"
            ),
            CannotAdopt { mode } => write!(f, "adopt_fd: mode {mode} cannot adopt an fd"),
            PortOutOfRange { port } => write!(f, "socket_bind: port {port} is out of range"),
            AlreadyBound => f.write_str("socket_bind: socket is already bound"),
            WrongFamily { efun, id, mode, what } => write!(
                f,
                "{efun}: socket {id} is {} (mode {mode}), not {what}",
                modes::name(*mode)
            ),
            Released => f.write_str(ResultCode::EeSockrlsd.text()),
            NotReleased => f.write_str(ResultCode::EeSocknotrlsd.text()),
        }
    }
}

impl Coded for CoreError {
    fn code(&self) -> ResultCode {
        use CoreError::*;
        match self {
            BadAddress { .. } | NotNumeric { .. } | PortOutOfRange { .. } => ResultCode::EeBadaddr,
            Unsupported { .. }
            | UnknownMode { .. }
            | NotBuilt { .. }
            | CannotAdopt { .. }
            | WrongFamily { .. } => ResultCode::EeModenotsupp,
            NotOpen { .. } => ResultCode::EeBadf,
            NegativeId { .. } => ResultCode::EeFdrange,
            InUse { .. } => ResultCode::EeIsconn,
            AlreadyBound => ResultCode::EeIsbound,
            Released => ResultCode::EeSockrlsd,
            NotReleased => ResultCode::EeSocknotrlsd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_has_its_code_and_text() {
        use CoreError::*;
        use ResultCode as C;
        let s = |x: &str| x.to_string();
        let table: Vec<(CoreError, ResultCode, &str)> = vec![
            (
                BadAddress { text: s("x") },
                C::EeBadaddr,
                "bad address \"x\": expected \"host port\"",
            ),
            (
                NotNumeric { text: s("h 1") },
                C::EeBadaddr,
                "bad address \"h 1\": a numeric \"ip port\" is needed here",
            ),
            (
                Unsupported { what: s("socket_listen") },
                C::EeModenotsupp,
                "socket_listen is not supported by this mode",
            ),
            (NotOpen { id: 3 }, C::EeBadf, "socket 3 is not open"),
            (NegativeId { id: -1 }, C::EeFdrange, "socket id -1 is negative"),
            (InUse { id: 3 }, C::EeIsconn, "socket 3 is already in use"),
            (
                UnknownMode { mode: 99 },
                C::EeModenotsupp,
                "socket_create: unknown socket mode 99",
            ),
            (
                NotBuilt { name: "MQTT_CLIENT", number: 18 },
                C::EeModenotsupp,
                "socket_create: mode MQTT_CLIENT (18) is not supported by this build of unisock yet",
            ),
            (
                CannotAdopt { mode: 1 },
                C::EeModenotsupp,
                "adopt_fd: mode 1 cannot adopt an fd",
            ),
            (
                PortOutOfRange { port: 70000 },
                C::EeBadaddr,
                "socket_bind: port 70000 is out of range",
            ),
            (AlreadyBound, C::EeIsbound, "socket_bind: socket is already bound"),
            (
                WrongFamily {
                    efun: s("external_kill"),
                    id: 4,
                    mode: modes::STREAM,
                    what: "an external socket",
                },
                C::EeModenotsupp,
                "external_kill: socket 4 is STREAM (mode 1), not an external socket",
            ),
            (Released, C::EeSockrlsd, "socket already released"),
            (NotReleased, C::EeSocknotrlsd, "socket not released"),
        ];
        crate::error::assert_mapped(table);
    }
}
