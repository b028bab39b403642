//! Events the driver drains after `unisock_dispatch` and turns into LPC
//! callbacks. unisock never calls into LPC itself.

use crate::value::Value;

/// Which callback an event is for.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// read_cb(id, data [, addr]): data arrived (string, buffer, MUD text, or a mapping for new modes).
    Read = 1,
    /// write_cb(id): connected, handshake done, or queued output drained.
    Write = 2,
    /// close_cb(id, reason): the peer closed, the exchange ended or the
    /// connection failed; the socket is gone. Always carries the reason.
    Close = 3,
    /// listen_cb(id): a connection is waiting for socket_accept.
    Listen = 4,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Read => "read",
            EventKind::Write => "write",
            EventKind::Close => "close",
            EventKind::Listen => "listen",
        }
    }
}

/// One event for one socket.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventKind,
    /// The LPC socket number.
    pub socket: i32,
    /// Read: the data; Close: the reason, a non-empty string.
    pub data: Option<Value>,
    /// Peer address "ip port" (datagram reads, new-mode reads).
    pub addr: Option<String>,
    /// Close: the socket ended on an error (a failed connect or handshake, a
    /// timeout, a protocol error, a peer that is too slow ...), not by a
    /// plain end such as the peer closing. The driver logs these.
    pub abnormal: bool,
}

/// The reason of a plain end: the peer closed the connection.
pub const CLOSED_BY_PEER: &str = "closed by the peer";
