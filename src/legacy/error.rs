//! What goes wrong on a legacy socket (modes 0–6), mapped to result codes
//! once (`From<LegacyError> for Error`). Failures of the OS keep going
//! through [`Error::io`], the one `io::ErrorKind` mapping.

use std::fmt;

use crate::error::{Error, ResultCode};
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
        }
    }
}

impl From<LegacyError> for Error {
    fn from(e: LegacyError) -> Error {
        use LegacyError::*;
        let code = match &e {
            NotLegacyMode { .. } => ResultCode::EeModenotsupp,
            DatagramNeedsTarget => ResultCode::EeNoaddr,
            DatagramNotBytes { .. } => ResultCode::EeTypenotsupp,
            DatagramWouldBlock => ResultCode::EeWouldblock,
        };
        Error::new(code, e.to_string())
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
        ];
        crate::error::assert_mapped(table);
    }
}
