//! What goes wrong on a legacy socket (modes 0–6), mapped to result codes
//! once (`From<LegacyError> for Error`). Failures of the OS keep going
//! through [`Error::io`], the one `io::ErrorKind` mapping.

use std::fmt;

use crate::error::{Coded, ResultCode};
use crate::modes;

/// A failure of a MUD, STREAM or DATAGRAM socket (and their variants).
#[derive(Clone, Debug, PartialEq)]
pub enum LegacyError {
    /// socket_create with a mode of another family.
    NotLegacyMode { mode: u8 },
    /// socket_write on a datagram socket without a target.
    DatagramNeedsTarget,
    /// socket_write on a datagram socket of a value (`got`) that is no
    /// string or buffer.
    DatagramNotBytes { got: String },
    /// socket_write on a datagram socket whose send buffer is full.
    DatagramWouldBlock,
    /// socket_write on a stream socket of `mode` of a value (`got`) it
    /// cannot send.
    StreamCannotSend { mode: u8, got: String },
    /// socket_connect on a listening stream socket.
    ConnectListening,
    /// socket_connect on a stream socket connecting or connected.
    ConnectConnected,
    /// socket_write on a stream socket still connecting.
    StillConnecting,
    /// socket_write on a stream socket that is not connected.
    StreamNotConnected,
    /// socket_write on a connected stream socket whose connection is gone.
    NoConnection,
    /// socket_write on a stream socket with an address.
    StreamTakesNoAddress,
    /// socket_write on a stream socket whose earlier output is still queued.
    OutputPending,
    /// socket_write on a stream socket: sending failed (`why`, the OS's text).
    SendFailed { why: String },
}

impl fmt::Display for LegacyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use LegacyError::*;
        match self {
            NotLegacyMode { mode } => write!(
                f,
                "socket_create: mode {} is not served here",
                modes::name(*mode)
            ),
            DatagramNeedsTarget => {
                f.write_str("socket_write: datagram sockets need a target \"ip port\"")
            }
            DatagramNotBytes { got } => write!(
                f,
                "socket_write: datagram sockets send strings or buffers, not {got}"
            ),
            DatagramWouldBlock => f.write_str(ResultCode::EeWouldblock.text()),
            StreamCannotSend { mode, got } => write!(
                f,
                "socket_write: {} sockets cannot send {got}",
                modes::name(*mode)
            ),
            ConnectListening => f.write_str(ResultCode::EeIslisten.text()),
            ConnectConnected => f.write_str(ResultCode::EeIsconn.text()),
            StillConnecting => {
                f.write_str("socket_write: still connecting; wait for the write callback")
            }
            StreamNotConnected => f.write_str("socket_write: socket is not connected"),
            NoConnection => f.write_str(ResultCode::EeNotconn.text()),
            StreamTakesNoAddress => f.write_str("socket_write: stream sockets take no address"),
            OutputPending => f.write_str(
                "socket_write: earlier output is still being sent; wait for the write callback",
            ),
            SendFailed { why } => write!(f, "socket_write: send failed: {why}"),
        }
    }
}

impl Coded for LegacyError {
    fn code(&self) -> ResultCode {
        use LegacyError::*;
        match self {
            NotLegacyMode { .. } => ResultCode::EeModenotsupp,
            DatagramNeedsTarget => ResultCode::EeNoaddr,
            DatagramNotBytes { .. } => ResultCode::EeTypenotsupp,
            DatagramWouldBlock => ResultCode::EeWouldblock,
            StreamCannotSend { .. } => ResultCode::EeTypenotsupp,
            ConnectListening => ResultCode::EeIslisten,
            ConnectConnected => ResultCode::EeIsconn,
            StillConnecting | OutputPending => ResultCode::EeAlready,
            StreamNotConnected | NoConnection => ResultCode::EeNotconn,
            StreamTakesNoAddress => ResultCode::EeBadaddr,
            SendFailed { .. } => ResultCode::EeSend,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_has_its_code_and_text() {
        use LegacyError::*;
        use ResultCode as C;
        let table: Vec<(LegacyError, ResultCode, &str)> = vec![
            (
                NotLegacyMode {
                    mode: modes::IPC_SERVER,
                },
                C::EeModenotsupp,
                "socket_create: mode IPC_SERVER is not served here",
            ),
            (
                DatagramNeedsTarget,
                C::EeNoaddr,
                "socket_write: datagram sockets need a target \"ip port\"",
            ),
            (
                DatagramNotBytes {
                    got: "an array of 2 elements".into(),
                },
                C::EeTypenotsupp,
                "socket_write: datagram sockets send strings or buffers, not an array of 2 \
                 elements",
            ),
            (DatagramWouldBlock, C::EeWouldblock, "operation would block"),
            (
                StreamCannotSend {
                    mode: modes::MUD,
                    got: "an int".into(),
                },
                C::EeTypenotsupp,
                "socket_write: MUD sockets cannot send an int",
            ),
            (ConnectListening, C::EeIslisten, "socket is listening"),
            (ConnectConnected, C::EeIsconn, "socket is already connected"),
            (
                StillConnecting,
                C::EeAlready,
                "socket_write: still connecting; wait for the write callback",
            ),
            (
                StreamNotConnected,
                C::EeNotconn,
                "socket_write: socket is not connected",
            ),
            (NoConnection, C::EeNotconn, "socket not connected"),
            (
                StreamTakesNoAddress,
                C::EeBadaddr,
                "socket_write: stream sockets take no address",
            ),
            (
                OutputPending,
                C::EeAlready,
                "socket_write: earlier output is still being sent; wait for the write callback",
            ),
            (
                SendFailed { why: "w".into() },
                C::EeSend,
                "socket_write: send failed: w",
            ),
        ];
        crate::error::assert_mapped(table);
    }
}
