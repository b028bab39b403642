//! What goes wrong on an IPC socket, mapped to result codes once
//! (`From<IpcError> for Error`). A refusal by the policy is
//! [`crate::policy::PolicyError`].

use std::fmt;
use std::net::IpAddr;

use crate::error::{Coded, ResultCode};
use crate::modes;

/// A failure of an IPC_SERVER or IPC_CLIENT socket, or of its socket file.
#[derive(Clone, Debug, PartialEq)]
pub enum IpcError {
    /// socket_create with a mode of another family.
    NotIpcMode { mode: u8 },
    /// `verb` before IPC_EVENT_NAME was set.
    NoEventName { verb: &'static str },
    /// socket_connect to a socket path longer than sockaddr_un holds.
    ConnectPathTooLong { address: String },
    /// socket_connect to an address that is none of the three kinds.
    BadConnectAddress { address: String },
    /// socket_connect on a client already connected or connecting.
    AlreadyConnected,
    /// socket_connect's first attempt failed and no reconnect follows.
    ConnectFailed { reason: String },
    /// socket_write with a target on a client.
    ClientTakesNoTarget,
    /// socket_write on a client that was never connected.
    ClientNotConnected,
    /// socket_write of something that is no bus message.
    BadMessage { why: String },
    /// socket_write while `pending` bytes wait and SO_MAX_BUFFERED is `max`.
    ClientFull { pending: usize, max: usize },
    /// socket_write: the connection to the server failed while sending.
    ServerLost,
    /// socket_bind of a server with an address.
    BindTakesNoAddress,
    /// socket_bind of a unix server with a port.
    BindUnixTakesNoPort,
    /// socket_accept on a server.
    NoAccept,
    /// socket_write on a server that is not bound.
    ServerNotBound,
    /// socket_write to a client id the bus does not have.
    NoSuchClient { client: String },
    /// socket_write: the client was disconnected while sending.
    ClientLost { client: String },
    /// `<IPC_SOCKET_DIR>/<IPC_EVENT_NAME>.sock` is too long.
    SocketPathTooLong {
        path: String,
        len: usize,
        max: usize,
    },
    /// A file that is not a socket is where the socket is to be.
    NotASocket { path: String },
    /// Another server listens at `path`.
    InUse { path: String },
    /// Whether the socket at `path` is in use cannot be told.
    CannotProbe { path: String, why: String },
    /// A stale socket at `path` and IPC_AUTO_REMOVE is 0.
    StaleKept { path: String },
    /// The stale socket at `path` could not be removed.
    CannotRemoveStale { path: String, why: String },
    /// socket_bind of the unix socket failed (`what` is the step).
    Bind {
        what: &'static str,
        path: String,
        why: String,
    },
    /// A file appeared at `path` while the socket was bound.
    AppearedWhileBinding { path: String },
    /// IPC_HOST is not an IP address.
    BindHostNotIp { host: String },
    /// The one port asked for is in use.
    PortInUse { port: u16, ip: IpAddr },
    /// No port of IPC_PORT_RANGE is free.
    NoFreePort { lo: u16, hi: u16, ip: IpAddr },
}

impl fmt::Display for IpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use IpcError::*;
        match self {
            NotIpcMode { mode } => write!(f, "mode {} is not an IPC mode", modes::name(*mode)),
            NoEventName { verb } => {
                write!(f, "{verb}: set IPC_EVENT_NAME (440) first; it names the bus")
            }
            ConnectPathTooLong { address } => write!(
                f,
                "socket_connect: {address} is longer than a Unix socket path can be (107 bytes)"
            ),
            BadConnectAddress { address } => write!(
                f,
                "socket_connect: IPC_CLIENT address {address:?}: want \"\" (the options), \
                 an absolute socket path, or \"host port\""
            ),
            AlreadyConnected => f.write_str(
                "socket_connect: this IPC_CLIENT is already connected or connecting",
            ),
            ConnectFailed { reason } => write!(f, "socket_connect: {reason}"),
            ClientTakesNoTarget => f.write_str(
                "socket_write: an IPC_CLIENT sends to its server; it takes no target",
            ),
            ClientNotConnected => {
                f.write_str("socket_write: connect the IPC_CLIENT first (socket_connect)")
            }
            BadMessage { why } => write!(f, "socket_write: {why}"),
            ClientFull { pending, max } => write!(
                f,
                "socket_write: {pending} bytes are still waiting (SO_MAX_BUFFERED is {max}); \
                 wait for the write callback"
            ),
            ServerLost => f.write_str("socket_write: the connection to the server failed"),
            BindTakesNoAddress => f.write_str(
                "socket_bind: an IPC_SERVER takes its address from IPC_HOST/IPC_PORT_RANGE \
                 (tcp) or IPC_SOCKET_DIR (unix); call socket_bind(id, 0)",
            ),
            BindUnixTakesNoPort => f.write_str(
                "socket_bind: a unix IPC_SERVER listens on <IPC_SOCKET_DIR>/<IPC_EVENT_NAME>.sock; \
                 call socket_bind(id, 0)",
            ),
            NoAccept => f.write_str(
                "socket_accept: an IPC_SERVER accepts its clients itself; they arrive in the read \
                 callback as ([ \"type\": \"client_connected\", \"client_id\": ... ])",
            ),
            ServerNotBound => {
                f.write_str("socket_write: bind the IPC_SERVER first (socket_bind(id, 0))")
            }
            NoSuchClient { client } => write!(
                f,
                "socket_write: no client {client:?} on this bus (IPC_CLIENTS lists them)"
            ),
            ClientLost { client } => write!(
                f,
                "socket_write: client {client:?} was disconnected while sending (too slow, or \
                 gone; its client_disconnected says why)"
            ),
            SocketPathTooLong { path, len, max } => write!(
                f,
                "IPC socket path {path} is {len} bytes; Unix socket paths hold at most {max}: \
                 use a shorter IPC_SOCKET_DIR or IPC_EVENT_NAME"
            ),
            NotASocket { path } => write!(
                f,
                "{path} exists and is not a socket; unisock never removes it: choose another \
                 IPC_EVENT_NAME or IPC_SOCKET_DIR"
            ),
            InUse { path } => write!(f, "another IPC server is listening at {path}"),
            CannotProbe { path, why } => write!(
                f,
                "cannot tell whether the socket {path} is still in use ({why}); unisock leaves \
                 it alone"
            ),
            StaleKept { path } => write!(
                f,
                "{path} is a stale socket file and IPC_AUTO_REMOVE is 0: remove it or set \
                 IPC_AUTO_REMOVE to 1"
            ),
            CannotRemoveStale { path, why } => {
                write!(f, "cannot remove the stale socket {path}: {why}")
            }
            Bind { what, path, why } => write!(f, "socket_bind: {what} {path}: {why}"),
            AppearedWhileBinding { path } => write!(
                f,
                "{path} appeared while binding (another IPC server starting?); it was left alone"
            ),
            BindHostNotIp { host } => write!(
                f,
                "IPC_HOST {host:?}: an IPC_SERVER binds an IP address (or \"localhost\"); a host \
                 name would need a DNS lookup"
            ),
            PortInUse { port, ip } => write!(f, "socket_bind: port {port} on {ip} is in use"),
            NoFreePort { lo, hi, ip } => write!(
                f,
                "socket_bind: no free port in IPC_PORT_RANGE ({lo}..{hi}) on {ip}"
            ),
        }
    }
}

impl Coded for IpcError {
    fn code(&self) -> ResultCode {
        use IpcError::*;
        match self {
            NotIpcMode { .. } | NoAccept => ResultCode::EeModenotsupp,
            NoEventName { .. } => ResultCode::EeNoaddr,
            ConnectPathTooLong { .. }
            | BadConnectAddress { .. }
            | ClientTakesNoTarget
            | BindTakesNoAddress
            | BindUnixTakesNoPort
            | NoSuchClient { .. }
            | SocketPathTooLong { .. }
            | BindHostNotIp { .. } => ResultCode::EeBadaddr,
            AlreadyConnected => ResultCode::EeIsconn,
            ConnectFailed { .. } => ResultCode::EeConnrefused,
            ClientNotConnected | ServerNotBound => ResultCode::EeNotconn,
            BadMessage { .. } => ResultCode::EeBaddata,
            ClientFull { .. } => ResultCode::EeWouldblock,
            ServerLost | ClientLost { .. } => ResultCode::EeSend,
            NotASocket { .. }
            | InUse { .. }
            | CannotProbe { .. }
            | StaleKept { .. }
            | AppearedWhileBinding { .. }
            | PortInUse { .. }
            | NoFreePort { .. } => ResultCode::EeAddrinuse,
            CannotRemoveStale { .. } | Bind { .. } => ResultCode::EeBind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_has_its_code_and_text() {
        use IpcError::*;
        use ResultCode as C;
        let s = |x: &str| x.to_string();
        let ip: IpAddr = [127, 0, 0, 1].into();
        let table: Vec<(IpcError, ResultCode, &str)> = vec![
            (NotIpcMode { mode: modes::STREAM }, C::EeModenotsupp, "mode STREAM is not an IPC mode"),
            (
                NoEventName { verb: "socket_bind" },
                C::EeNoaddr,
                "socket_bind: set IPC_EVENT_NAME (440) first; it names the bus",
            ),
            (
                ConnectPathTooLong { address: s("/x") },
                C::EeBadaddr,
                "socket_connect: /x is longer than a Unix socket path can be (107 bytes)",
            ),
            (
                BadConnectAddress { address: s("x") },
                C::EeBadaddr,
                "socket_connect: IPC_CLIENT address \"x\": want \"\" (the options), an absolute \
                 socket path, or \"host port\"",
            ),
            (
                AlreadyConnected,
                C::EeIsconn,
                "socket_connect: this IPC_CLIENT is already connected or connecting",
            ),
            (ConnectFailed { reason: s("r") }, C::EeConnrefused, "socket_connect: r"),
            (
                ClientTakesNoTarget,
                C::EeBadaddr,
                "socket_write: an IPC_CLIENT sends to its server; it takes no target",
            ),
            (
                ClientNotConnected,
                C::EeNotconn,
                "socket_write: connect the IPC_CLIENT first (socket_connect)",
            ),
            (BadMessage { why: s("w") }, C::EeBaddata, "socket_write: w"),
            (
                ClientFull { pending: 3, max: 2 },
                C::EeWouldblock,
                "socket_write: 3 bytes are still waiting (SO_MAX_BUFFERED is 2); wait for the \
                 write callback",
            ),
            (ServerLost, C::EeSend, "socket_write: the connection to the server failed"),
            (
                BindTakesNoAddress,
                C::EeBadaddr,
                "socket_bind: an IPC_SERVER takes its address from IPC_HOST/IPC_PORT_RANGE (tcp) \
                 or IPC_SOCKET_DIR (unix); call socket_bind(id, 0)",
            ),
            (
                BindUnixTakesNoPort,
                C::EeBadaddr,
                "socket_bind: a unix IPC_SERVER listens on <IPC_SOCKET_DIR>/<IPC_EVENT_NAME>.sock; \
                 call socket_bind(id, 0)",
            ),
            (
                NoAccept,
                C::EeModenotsupp,
                "socket_accept: an IPC_SERVER accepts its clients itself; they arrive in the read \
                 callback as ([ \"type\": \"client_connected\", \"client_id\": ... ])",
            ),
            (
                ServerNotBound,
                C::EeNotconn,
                "socket_write: bind the IPC_SERVER first (socket_bind(id, 0))",
            ),
            (
                NoSuchClient { client: s("c") },
                C::EeBadaddr,
                "socket_write: no client \"c\" on this bus (IPC_CLIENTS lists them)",
            ),
            (
                ClientLost { client: s("c") },
                C::EeSend,
                "socket_write: client \"c\" was disconnected while sending (too slow, or gone; \
                 its client_disconnected says why)",
            ),
            (
                SocketPathTooLong { path: s("/p"), len: 200, max: 107 },
                C::EeBadaddr,
                "IPC socket path /p is 200 bytes; Unix socket paths hold at most 107: use a \
                 shorter IPC_SOCKET_DIR or IPC_EVENT_NAME",
            ),
            (
                NotASocket { path: s("/p") },
                C::EeAddrinuse,
                "/p exists and is not a socket; unisock never removes it: choose another \
                 IPC_EVENT_NAME or IPC_SOCKET_DIR",
            ),
            (InUse { path: s("/p") }, C::EeAddrinuse, "another IPC server is listening at /p"),
            (
                CannotProbe { path: s("/p"), why: s("w") },
                C::EeAddrinuse,
                "cannot tell whether the socket /p is still in use (w); unisock leaves it alone",
            ),
            (
                StaleKept { path: s("/p") },
                C::EeAddrinuse,
                "/p is a stale socket file and IPC_AUTO_REMOVE is 0: remove it or set \
                 IPC_AUTO_REMOVE to 1",
            ),
            (
                CannotRemoveStale { path: s("/p"), why: s("w") },
                C::EeBind,
                "cannot remove the stale socket /p: w",
            ),
            (
                Bind { what: "cannot bind", path: s("/p"), why: s("w") },
                C::EeBind,
                "socket_bind: cannot bind /p: w",
            ),
            (
                AppearedWhileBinding { path: s("/p") },
                C::EeAddrinuse,
                "/p appeared while binding (another IPC server starting?); it was left alone",
            ),
            (
                BindHostNotIp { host: s("h") },
                C::EeBadaddr,
                "IPC_HOST \"h\": an IPC_SERVER binds an IP address (or \"localhost\"); a host \
                 name would need a DNS lookup",
            ),
            (
                PortInUse { port: 5, ip },
                C::EeAddrinuse,
                "socket_bind: port 5 on 127.0.0.1 is in use",
            ),
            (
                NoFreePort { lo: 5, hi: 6, ip },
                C::EeAddrinuse,
                "socket_bind: no free port in IPC_PORT_RANGE (5..6) on 127.0.0.1",
            ),
        ];
        crate::error::assert_mapped(table);
    }
}
