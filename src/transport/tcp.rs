//! Creating and configuring OS sockets from a socket's options
//! (SO_KEEPALIVE, SO_NODELAY, SO_RCVBUF, SO_SNDBUF), non-blocking and
//! close-on-exec, with SO_REUSEADDR as upstream sets it.

use std::net::SocketAddr;

use mio::net::TcpListener;
use mio::{Interest, Token};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use super::TransportError;
use crate::core::{Cx, State};
use crate::error::{Error, Result, ResultCode};
use crate::options::ids::{SO_KEEPALIVE, SO_NODELAY, SO_RCVBUF, SO_SNDBUF};
use crate::options::store::OptionStore;

/// A new non-blocking socket for `addr`'s family. IPv6 sockets are dual-stack.
pub fn new_socket(addr: &SocketAddr, udp: bool) -> Result<Socket> {
    let (ty, proto) = if udp {
        (Type::DGRAM, Protocol::UDP)
    } else {
        (Type::STREAM, Protocol::TCP)
    };
    let s = Socket::new(Domain::for_address(*addr), ty, Some(proto))
        .map_err(|e| Error::io("socket", ResultCode::EeSocket, &e))?;
    if addr.is_ipv6() {
        // Best effort: a host without IPv4 keeps a v6-only socket.
        let _ = s.set_only_v6(false);
    }
    s.set_nonblocking(true)
        .map_err(|e| Error::io("set non-blocking", ResultCode::EeNonblock, &e))?;
    s.set_reuse_address(true)
        .map_err(|e| Error::io("setsockopt SO_REUSEADDR", ResultCode::EeSetsockopt, &e))?;
    Ok(s)
}

/// Binds, mapping errors to EEADDRINUSE / EEBIND as upstream does.
pub fn bind(s: &Socket, addr: &SocketAddr) -> Result<()> {
    s.bind(&(*addr).into()).map_err(|e| {
        let addr = *addr;
        if e.kind() == std::io::ErrorKind::AddrInUse {
            TransportError::AddrInUse { addr }.into()
        } else {
            TransportError::Bind {
                addr,
                why: e.to_string(),
            }
            .into()
        }
    })
}

/// Applies the TCP options that are set (or have non-kernel defaults).
pub fn apply_options(s: SockRef<'_>, opts: &OptionStore, mode: u8) -> Result<()> {
    let fail = |what: &str, e: std::io::Error| Error::io(what, ResultCode::EeSetsockopt, &e);
    s.set_keepalive(opts.int(SO_KEEPALIVE, mode) != 0)
        .map_err(|e| fail("setsockopt SO_KEEPALIVE", e))?;
    s.set_nodelay(opts.int(SO_NODELAY, mode) != 0)
        .map_err(|e| fail("setsockopt TCP_NODELAY", e))?;
    if let Some(n) = opts.raw(SO_RCVBUF).and_then(|v| v.as_int()) {
        s.set_recv_buffer_size(n as usize)
            .map_err(|e| fail("setsockopt SO_RCVBUF", e))?;
    }
    if let Some(n) = opts.raw(SO_SNDBUF).and_then(|v| v.as_int()) {
        s.set_send_buffer_size(n as usize)
            .map_err(|e| fail("setsockopt SO_SNDBUF", e))?;
    }
    Ok(())
}

/// Is `id` one of the options `apply_options` handles?
pub fn is_tcp_option(id: u16) -> bool {
    matches!(id, SO_KEEPALIVE | SO_NODELAY | SO_RCVBUF | SO_SNDBUF)
}

/// socket_bind for the TCP families: a new socket bound to `addr`; the
/// socket's local address and state (BOUND) are recorded.
pub fn bind_for(cx: &mut Cx, addr: &SocketAddr) -> Result<Socket> {
    let s = new_socket(addr, false)?;
    bind(&s, addr)?;
    cx.core.local = s.local_addr().ok().and_then(|a| a.as_socket());
    cx.core.state = State::Bound;
    Ok(s)
}

/// socket_listen's state check, the same for every TCP family.
pub fn check_can_listen(cx: &Cx) -> Result<()> {
    match cx.core.state {
        State::Unbound => Err(TransportError::ListenUnbound.into()),
        State::Bound => Ok(()),
        _ => Err(TransportError::ListenConnected.into()),
    }
}

/// Turns a bound socket into a listener registered for readability (the TCP
/// options applied first). On failure the socket comes back with the error.
pub fn listen_on(
    cx: &mut Cx,
    s: Socket,
    mode: u8,
    backlog: i32,
) -> std::result::Result<(TcpListener, Token), (Socket, Error)> {
    if let Err(e) = apply_options(SockRef::from(&s), &cx.core.options, mode) {
        return Err((s, e));
    }
    if let Err(e) = s.listen(backlog) {
        return Err((s, Error::io("socket_listen", ResultCode::EeListen, &e)));
    }
    let mut listener = TcpListener::from_std(s.into());
    let token = cx
        .register(&mut listener, Interest::READABLE)
        .map_err(|e| Error::io("register", ResultCode::EeListen, &e));
    match token {
        Ok(t) => {
            cx.core.state = State::Listen;
            Ok((listener, t))
        }
        // The listener cannot go back to a plain socket; the error says why.
        Err(e) => Err((Socket::from(std::net::TcpListener::from(listener)), e)),
    }
}
