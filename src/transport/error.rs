//! What goes wrong in the shared TCP transport (bind, listen, accept, the
//! write queue, starting TLS), mapped to result codes once
//! (`From<TransportError> for Error`). Failures of the OS keep going through
//! [`Error::io`], the one `io::ErrorKind` mapping. The texts are the same for
//! every family; where a family's differs, the family says so in the value
//! (`first_fits`), never by its name.

use std::fmt;
use std::net::SocketAddr;

use crate::error::{Coded, Error, ResultCode};

/// A failure of a TCP family's socket in the shared transport.
#[derive(Clone, Debug, PartialEq)]
pub enum TransportError {
    /// socket_bind: another socket has `addr`.
    AddrInUse { addr: SocketAddr },
    /// socket_bind of `addr` failed otherwise (`why` is the OS's text).
    Bind { addr: SocketAddr, why: String },
    /// socket_listen on a socket that is not bound.
    ListenUnbound,
    /// socket_listen on a socket already connected or listening.
    ListenConnected,
    /// Listening needs the bound socket, and this one has none.
    NotBound,
    /// The TLS server config of a listener failed (`cause`): EELISTEN,
    /// unless it is the security policy's refusal.
    ListenTls { cause: Error },
    /// socket_accept on a socket that is not listening.
    NotListening,
    /// socket_accept with no connection waiting.
    NoneWaiting,
    /// socket_write of `incoming` bytes would take the queue past `max`
    /// (SO_MAX_BUFFERED); `first_fits` when a write onto an empty queue
    /// always fits (so these are "more" bytes).
    OverMaxBuffered {
        incoming: usize,
        max: usize,
        first_fits: bool,
    },
    /// socket_write: this connection was closed to make room in the
    /// listener's budget (`why` says so).
    ClosedForRoom { why: String },
    /// rustls refused to start the server side of an accepted connection.
    TlsAccept { why: String },
    /// rustls refused to start the client side of a connection.
    TlsClient { why: String },
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TransportError::*;
        match self {
            AddrInUse { addr } => write!(f, "socket_bind: {addr} is in use"),
            Bind { addr, why } => write!(f, "socket_bind: cannot bind {addr}: {why}"),
            ListenUnbound => f.write_str("socket_listen: bind the socket first"),
            ListenConnected => f.write_str(ResultCode::EeIsconn.text()),
            NotBound => f.write_str(ResultCode::EeNoaddr.text()),
            ListenTls { cause } => f.write_str(&cause.message),
            NotListening => f.write_str("socket_accept: socket is not listening"),
            NoneWaiting => f.write_str("socket_accept: no connection is waiting"),
            OverMaxBuffered {
                incoming,
                max,
                first_fits,
            } => {
                let more = if *first_fits { "more " } else { "" };
                write!(
                    f,
                    "socket_write: {incoming} {more}bytes would exceed SO_MAX_BUFFERED ({max}); \
                     nothing was written"
                )
            }
            ClosedForRoom { why } => write!(
                f,
                "socket_write: nothing was written: the connection is closed, {why}"
            ),
            TlsAccept { why } | TlsClient { why } => write!(f, "tls: {why}"),
        }
    }
}

impl Coded for TransportError {
    fn code(&self) -> ResultCode {
        use TransportError::*;
        match self {
            AddrInUse { .. } => ResultCode::EeAddrinuse,
            Bind { .. } => ResultCode::EeBind,
            ListenUnbound | NotBound => ResultCode::EeNoaddr,
            ListenConnected => ResultCode::EeIsconn,
            ListenTls { cause } => cause.code.or_security(ResultCode::EeListen),
            NotListening => ResultCode::EeNotlistn,
            NoneWaiting | OverMaxBuffered { .. } => ResultCode::EeWouldblock,
            ClosedForRoom { .. } => ResultCode::EeSend,
            TlsAccept { .. } => ResultCode::EeAccept,
            TlsClient { .. } => ResultCode::TlsConfig,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_has_its_code_and_text() {
        use ResultCode as C;
        use TransportError::*;
        let s = |x: &str| x.to_string();
        let addr: SocketAddr = "127.0.0.1:5".parse().unwrap();
        let table: Vec<(TransportError, ResultCode, &str)> =
            vec![
            (AddrInUse { addr }, C::EeAddrinuse, "socket_bind: 127.0.0.1:5 is in use"),
            (
                Bind { addr, why: s("w") },
                C::EeBind,
                "socket_bind: cannot bind 127.0.0.1:5: w",
            ),
            (ListenUnbound, C::EeNoaddr, "socket_listen: bind the socket first"),
            (ListenConnected, C::EeIsconn, "socket is already connected"),
            (NotBound, C::EeNoaddr, "socket not bound to an address"),
            (
                ListenTls {
                    cause: Error::new(C::TlsConfig, "m"),
                },
                C::EeListen,
                "m",
            ),
            (
                ListenTls {
                    cause: Error::new(C::EeSecurity, "m"),
                },
                C::EeSecurity,
                "m",
            ),
            (NotListening, C::EeNotlistn, "socket_accept: socket is not listening"),
            (NoneWaiting, C::EeWouldblock, "socket_accept: no connection is waiting"),
            (
                OverMaxBuffered {
                    incoming: 3,
                    max: 2,
                    first_fits: true,
                },
                C::EeWouldblock,
                "socket_write: 3 more bytes would exceed SO_MAX_BUFFERED (2); nothing was written",
            ),
            (
                OverMaxBuffered {
                    incoming: 3,
                    max: 2,
                    first_fits: false,
                },
                C::EeWouldblock,
                "socket_write: 3 bytes would exceed SO_MAX_BUFFERED (2); nothing was written",
            ),
            (
                ClosedForRoom { why: s("w") },
                C::EeSend,
                "socket_write: nothing was written: the connection is closed, w",
            ),
            (TlsAccept { why: s("w") }, C::EeAccept, "tls: w"),
            (TlsClient { why: s("w") }, C::TlsConfig, "tls: w"),
        ];
        crate::error::assert_mapped(table);
    }
}
