//! What goes wrong on an HTTP socket (modes 10–13), mapped to result codes
//! once (`From<HttpError> for Error`). Failures of the shared transport are
//! [`crate::transport::TransportError`]; of the OS, [`Error::io`].

use std::fmt;
use std::io;

use crate::error::{Coded, Error, ResultCode};
use crate::modes;

/// A failure of an HTTP server or client socket.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpError {
    /// socket_create with a mode of another family.
    NotHttpMode { mode: u8 },
    /// A TLS file option (`name`, `id`) was refused by the TLS check
    /// (`cause`), whose code is kept (EESECURITY outside the policy's
    /// tls_dirs).
    TlsFile {
        name: &'static str,
        id: u16,
        cause: Error,
    },
    /// socket_write on a server's listener instead of its connection.
    WriteToListener,
    /// socket_write on a server socket that is not connected.
    NotConnected,
    /// socket_write on a server connection with an address.
    ReplyTakesNoAddress,
    /// socket_write on a server connection no request waits on.
    NoRequestWaiting,
    /// socket_write of a reply or request that is not one (`why`).
    BadWrite { why: String },
    /// SO_HTTP_HEADERS does not hold headers (`why`).
    BadHeadersOption { why: String },
    /// socket_connect: the request from the options cannot be sent (`why`).
    BadRequestOptions { why: String },
    /// socket_write on a client before socket_connect.
    ConnectFirst,
    /// socket_write of a request to `url`, off the connection's origin.
    OtherOrigin {
        url: String,
        host: String,
        port: u16,
    },
    /// The connect to `to` failed (`kind` and `why` are the OS's).
    ConnectFailed {
        to: String,
        kind: io::ErrorKind,
        why: String,
    },
    /// socket_connect on a client already connected.
    AlreadyConnected,
    /// socket_connect with an address or URL that cannot be used (`why`).
    BadConnect { why: String },
    /// socket_connect with only one of SO_TLS_CERT and SO_TLS_KEY.
    ClientCertHalf,
    /// socket_connect: the TLS client config failed (`cause`); TlsConfig
    /// unless it is the security policy's refusal.
    ConnectTls { cause: Error },
    /// socket_write on a client with an address.
    RequestTakesNoAddress,
    /// socket_write while `max` requests are queued.
    TooManyQueued { max: usize },
    /// socket_write of a `more`-byte body while `waiting` bytes wait and
    /// SO_MAX_BUFFERED is `max`.
    OverMaxBuffered {
        more: usize,
        max: usize,
        waiting: usize,
    },
    /// socket_write on a client whose connection failed.
    ConnectionFailed,
    /// The connecting socket was lost before it connected (`why`).
    ConnectLost { why: String },
    /// No connection to `origin` within `ms` (SO_HTTP_CONNECT_TIMEOUT).
    ConnectTimeout { ms: u128, origin: String },
    /// DNS found no address for `host`.
    NoAddress { host: String },
    /// DNS could not resolve `host` (`why`).
    CannotResolve { host: String, why: String },
    /// TLS could not start on the connection (`cause`).
    TlsStart { cause: Error },
    /// The response cannot be parsed or followed (`why`).
    Protocol { why: String },
    /// The server closed the connection before a response.
    NoResponse,
    /// The connection broke with a request in flight (`why`; a TLS failure
    /// says "tls:").
    Broken { why: String },
    /// Writing the request failed (`why`, the OS's text).
    Send { why: String },
    /// `max` redirects were followed (SO_HTTP_MAX_REDIRECTS); the next was to `to`.
    TooManyRedirects { max: i64, to: String },
    /// A redirect this client may not follow (`why`).
    RedirectRefused { why: String },
    /// No complete response from `origin` within `ms` (SO_HTTP_TIMEOUT).
    ResponseTimeout { ms: u128, origin: String },
    /// Nothing moved to or from `origin` for `ms` (SO_HTTP_READ_TIMEOUT).
    ReadTimeout { ms: u128, origin: String },
    /// Sending to `to` stalled (`why`, the send deadline's).
    SendStalled { to: String, why: String },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HttpError::*;
        match self {
            NotHttpMode { mode } => write!(f, "mode {} is not an HTTP mode", modes::name(*mode)),
            TlsFile { name, id, cause } => {
                write!(f, "socket_set_option: {name} ({id}): {}", cause.message)
            }
            WriteToListener => f.write_str(
                "socket_write: write to the connection's id (from socket_accept), not the listener",
            ),
            NotConnected => f.write_str("socket_write: socket is not connected"),
            ReplyTakesNoAddress => f.write_str("socket_write: HTTP replies take no address"),
            NoRequestWaiting => f.write_str(
                "socket_write: no request on this connection is waiting for a reply",
            ),
            BadWrite { why } => write!(f, "socket_write: {why}"),
            BadHeadersOption { why } => write!(f, "SO_HTTP_HEADERS: {why}"),
            BadRequestOptions { why } | BadConnect { why } => write!(f, "socket_connect: {why}"),
            ConnectFirst => f.write_str("socket_write: call socket_connect first"),
            OtherOrigin { url, host, port } => write!(
                f,
                "socket_write: {url} is not on this connection's origin ({host}:{port}); use \
                 another socket"
            ),
            ConnectFailed { to, why, .. } => write!(f, "connect to {to}: {why}"),
            AlreadyConnected => f.write_str(
                "socket_connect: this HTTP client is already connected; socket_write sends more \
                 requests",
            ),
            ClientCertHalf => f.write_str(
                "socket_connect: a client certificate needs both SO_TLS_CERT (3) and SO_TLS_KEY (4)",
            ),
            ConnectTls { cause } => write!(f, "socket_connect: {}", cause.message),
            RequestTakesNoAddress => f.write_str(
                "socket_write: an HTTP request takes no address argument (put \"url\" in the \
                 mapping)",
            ),
            TooManyQueued { max } => write!(
                f,
                "socket_write: {max} requests are already queued; wait for responses"
            ),
            OverMaxBuffered { more, max, waiting } => write!(
                f,
                "socket_write: {more} more bytes would exceed SO_MAX_BUFFERED ({max}) with \
                 {waiting} waiting; nothing was queued"
            ),
            ConnectionFailed => f.write_str("socket_write: the connection failed"),
            ConnectLost { why } => write!(f, "connect: {why}"),
            ConnectTimeout { ms, origin } => write!(
                f,
                "connect: timed out after {ms} ms reaching {origin} (SO_HTTP_CONNECT_TIMEOUT)"
            ),
            NoAddress { host } => write!(f, "dns: {host} has no address"),
            CannotResolve { host, why } => write!(f, "dns: cannot resolve {host}: {why}"),
            TlsStart { cause } => f.write_str(&cause.message),
            Protocol { why } | RedirectRefused { why } => write!(f, "http: {why}"),
            NoResponse => f.write_str("http: the server closed the connection without a response"),
            Broken { why } => f.write_str(why),
            Send { why } => write!(f, "write: {why}"),
            TooManyRedirects { max, to } => write!(
                f,
                "http: too many redirects (SO_HTTP_MAX_REDIRECTS is {max}); last was to {to}"
            ),
            ResponseTimeout { ms, origin } => write!(
                f,
                "http: no complete response from {origin} within {ms} ms (SO_HTTP_TIMEOUT)"
            ),
            ReadTimeout { ms, origin } => write!(
                f,
                "http: no data to or from {origin} for {ms} ms (SO_HTTP_READ_TIMEOUT)"
            ),
            SendStalled { to, why } => write!(f, "http: sending to {to}: {why}"),
        }
    }
}

impl Coded for HttpError {
    fn code(&self) -> ResultCode {
        use HttpError::*;
        match self {
            NotHttpMode { .. } => ResultCode::EeModenotsupp,
            TlsFile { cause, .. } => cause.code,
            WriteToListener | NotConnected | ConnectFirst => ResultCode::EeNotconn,
            ReplyTakesNoAddress
            | OtherOrigin { .. }
            | BadConnect { .. }
            | RequestTakesNoAddress => ResultCode::EeBadaddr,
            NoRequestWaiting
            | BadWrite { .. }
            | BadHeadersOption { .. }
            | BadRequestOptions { .. } => ResultCode::EeBaddata,
            ConnectFailed { kind, .. } => match kind {
                io::ErrorKind::ConnectionRefused => ResultCode::EeConnrefused,
                _ => ResultCode::EeConnect,
            },
            AlreadyConnected => ResultCode::EeIsconn,
            ClientCertHalf => ResultCode::TlsConfig,
            ConnectTls { cause } => cause.code.or_security(ResultCode::TlsConfig),
            TooManyQueued { .. } | OverMaxBuffered { .. } => ResultCode::EeWouldblock,
            ConnectionFailed | Send { .. } => ResultCode::EeSend,
            ConnectLost { .. } | ConnectTimeout { .. } => ResultCode::EeConnect,
            NoAddress { .. } | CannotResolve { .. } => ResultCode::EeBadaddr,
            TlsStart { .. } | RedirectRefused { .. } => ResultCode::EeSecurity,
            Protocol { .. } | NoResponse | TooManyRedirects { .. } => ResultCode::EeBaddata,
            Broken { why } if why.starts_with("tls:") => ResultCode::EeSecurity,
            Broken { .. } => ResultCode::EeNotconn,
            ResponseTimeout { .. } | ReadTimeout { .. } | SendStalled { .. } => ResultCode::EeIntr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_has_its_code_and_text() {
        use HttpError::*;
        use ResultCode as C;
        let s = |x: &str| x.to_string();
        let table: Vec<(HttpError, ResultCode, &str)> = vec![
            (NotHttpMode { mode: modes::STREAM }, C::EeModenotsupp, "mode STREAM is not an HTTP mode"),
            (
                TlsFile { name: "SO_TLS_CERT", id: 3, cause: Error::new(C::EeSecurity, "m") },
                C::EeSecurity,
                "socket_set_option: SO_TLS_CERT (3): m",
            ),
            (
                TlsFile { name: "SO_TLS_KEY", id: 4, cause: Error::new(C::TlsConfig, "m") },
                C::TlsConfig,
                "socket_set_option: SO_TLS_KEY (4): m",
            ),
            (
                WriteToListener,
                C::EeNotconn,
                "socket_write: write to the connection's id (from socket_accept), not the listener",
            ),
            (NotConnected, C::EeNotconn, "socket_write: socket is not connected"),
            (ReplyTakesNoAddress, C::EeBadaddr, "socket_write: HTTP replies take no address"),
            (
                NoRequestWaiting,
                C::EeBaddata,
                "socket_write: no request on this connection is waiting for a reply",
            ),
            (BadWrite { why: s("w") }, C::EeBaddata, "socket_write: w"),
            (BadHeadersOption { why: s("w") }, C::EeBaddata, "SO_HTTP_HEADERS: w"),
            (BadRequestOptions { why: s("w") }, C::EeBaddata, "socket_connect: w"),
            (ConnectFirst, C::EeNotconn, "socket_write: call socket_connect first"),
            (
                OtherOrigin { url: s("http://b/"), host: s("a"), port: 80 },
                C::EeBadaddr,
                "socket_write: http://b/ is not on this connection's origin (a:80); use another \
                 socket",
            ),
            (
                ConnectFailed { to: s("1.2.3.4 5"), kind: io::ErrorKind::ConnectionRefused, why: s("w") },
                C::EeConnrefused,
                "connect to 1.2.3.4 5: w",
            ),
            (
                ConnectFailed { to: s("1.2.3.4 5"), kind: io::ErrorKind::TimedOut, why: s("w") },
                C::EeConnect,
                "connect to 1.2.3.4 5: w",
            ),
            (
                AlreadyConnected,
                C::EeIsconn,
                "socket_connect: this HTTP client is already connected; socket_write sends more \
                 requests",
            ),
            (BadConnect { why: s("w") }, C::EeBadaddr, "socket_connect: w"),
            (
                ClientCertHalf,
                C::TlsConfig,
                "socket_connect: a client certificate needs both SO_TLS_CERT (3) and SO_TLS_KEY (4)",
            ),
            (
                ConnectTls { cause: Error::new(C::EeBadaddr, "m") },
                C::TlsConfig,
                "socket_connect: m",
            ),
            (
                ConnectTls { cause: Error::new(C::EeSecurity, "m") },
                C::EeSecurity,
                "socket_connect: m",
            ),
            (
                RequestTakesNoAddress,
                C::EeBadaddr,
                "socket_write: an HTTP request takes no address argument (put \"url\" in the \
                 mapping)",
            ),
            (
                TooManyQueued { max: 64 },
                C::EeWouldblock,
                "socket_write: 64 requests are already queued; wait for responses",
            ),
            (
                OverMaxBuffered { more: 3, max: 2, waiting: 1 },
                C::EeWouldblock,
                "socket_write: 3 more bytes would exceed SO_MAX_BUFFERED (2) with 1 waiting; \
                 nothing was queued",
            ),
            (ConnectionFailed, C::EeSend, "socket_write: the connection failed"),
            (ConnectLost { why: s("w") }, C::EeConnect, "connect: w"),
            (
                ConnectTimeout { ms: 5, origin: s("a:80") },
                C::EeConnect,
                "connect: timed out after 5 ms reaching a:80 (SO_HTTP_CONNECT_TIMEOUT)",
            ),
            (NoAddress { host: s("h") }, C::EeBadaddr, "dns: h has no address"),
            (
                CannotResolve { host: s("h"), why: s("w") },
                C::EeBadaddr,
                "dns: cannot resolve h: w",
            ),
            (TlsStart { cause: Error::new(C::TlsConfig, "m") }, C::EeSecurity, "m"),
            (Protocol { why: s("w") }, C::EeBaddata, "http: w"),
            (
                NoResponse,
                C::EeBaddata,
                "http: the server closed the connection without a response",
            ),
            (Broken { why: s("tls: w") }, C::EeSecurity, "tls: w"),
            (Broken { why: s("read: w") }, C::EeNotconn, "read: w"),
            (Send { why: s("w") }, C::EeSend, "write: w"),
            (
                TooManyRedirects { max: 5, to: s("/x") },
                C::EeBaddata,
                "http: too many redirects (SO_HTTP_MAX_REDIRECTS is 5); last was to /x",
            ),
            (RedirectRefused { why: s("w") }, C::EeSecurity, "http: w"),
            (
                ResponseTimeout { ms: 5, origin: s("a:80") },
                C::EeIntr,
                "http: no complete response from a:80 within 5 ms (SO_HTTP_TIMEOUT)",
            ),
            (
                ReadTimeout { ms: 5, origin: s("a:80") },
                C::EeIntr,
                "http: no data to or from a:80 for 5 ms (SO_HTTP_READ_TIMEOUT)",
            ),
            (
                SendStalled { to: s("a:80"), why: s("w") },
                C::EeIntr,
                "http: sending to a:80: w",
            ),
        ];
        crate::error::assert_mapped(table);
    }
}
