//! What goes wrong on a WebSocket socket, mapped to result codes once.

use std::fmt;

use crate::error::{Coded, Error, ResultCode};
use crate::modes;

#[derive(Debug)]
pub enum WsError {
    /// socket_create with a mode of another family.
    NotWsMode { mode: u8 },
    /// socket_write on a listener.
    WriteToListener,
    /// socket_write before the handshake finished, or after the socket ended.
    NotOpen,
    /// socket_write after the closing handshake started.
    Closing,
    /// socket_write with an address.
    TakesNoAddress,
    /// socket_write of something that is no WebSocket message.
    BadMessage { why: String },
    /// socket_connect on a client already connected or connecting.
    AlreadyConnected,
    /// socket_connect with an address that is no ws:// URL or "host port".
    BadConnect { why: String },
    /// The TCP connect failed.
    ConnectFailed {
        to: String,
        kind: std::io::ErrorKind,
        why: String,
    },
    /// The host name did not resolve.
    CannotResolve { host: String, why: String },
    /// TLS could not start (configuration).
    Tls { cause: Error },
    /// The opening handshake failed (client).
    Handshake { why: String },
    /// TLS failed during the handshake (verification, alerts).
    TlsFailed { why: String },
    /// Compressing a message failed.
    Compress { why: String },
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::NotWsMode { mode } => {
                write!(f, "{} is not a WebSocket mode (16-19)", modes::name(*mode))
            }
            WsError::WriteToListener => f.write_str(
                "socket_write on a WebSocket listener: write to the ids socket_accept gives",
            ),
            WsError::NotOpen => {
                f.write_str("the WebSocket is not open (handshake not finished, or ended)")
            }
            WsError::Closing => {
                f.write_str("the closing handshake has started: nothing more can be sent")
            }
            WsError::TakesNoAddress => f.write_str("socket_write on a WebSocket takes no address"),
            WsError::BadMessage { why } => write!(f, "not a WebSocket message: {why}"),
            WsError::AlreadyConnected => {
                f.write_str("the socket is already connected or connecting")
            }
            WsError::BadConnect { why } => f.write_str(why),
            WsError::ConnectFailed { to, why, .. } => write!(f, "connect to {to}: {why}"),
            WsError::CannotResolve { host, why } => write!(f, "cannot resolve {host}: {why}"),
            WsError::Tls { cause } => write!(f, "{}", cause.message),
            WsError::Handshake { why } => write!(f, "websocket handshake: {why}"),
            WsError::TlsFailed { why } => f.write_str(why),
            WsError::Compress { why } => write!(f, "permessage-deflate: {why}"),
        }
    }
}

impl Coded for WsError {
    fn code(&self) -> ResultCode {
        match self {
            WsError::NotWsMode { .. } => ResultCode::EeModenotsupp,
            WsError::WriteToListener => ResultCode::EeIslisten,
            WsError::NotOpen | WsError::Closing => ResultCode::EeNotconn,
            WsError::TakesNoAddress | WsError::BadMessage { .. } => ResultCode::EeTypenotsupp,
            WsError::AlreadyConnected => ResultCode::EeIsconn,
            WsError::BadConnect { .. } => ResultCode::EeBadaddr,
            WsError::ConnectFailed { kind, .. } => {
                if *kind == std::io::ErrorKind::ConnectionRefused {
                    ResultCode::EeConnrefused
                } else {
                    ResultCode::EeConnect
                }
            }
            WsError::CannotResolve { .. } => ResultCode::EeBadaddr,
            WsError::Tls { cause } => cause.code,
            WsError::Handshake { .. } => ResultCode::EeConnect,
            WsError::TlsFailed { .. } => ResultCode::EeSecurity,
            WsError::Compress { .. } => ResultCode::EeSend,
        }
    }
}
