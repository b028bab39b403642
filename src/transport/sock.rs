//! The OS side of a TCP family's socket through its life, the same for
//! every family (legacy streams, the HTTP server and client): bound, maybe
//! resolving a host name, listening, accepted and waiting for its id, or
//! connected. The steps every family takes the same way are methods here
//! (socket_bind, socket_listen with its state checks and TLS config, the
//! listener socket_accept takes from, the descriptor, taking it all off the
//! reactor); what a family does with a connection stays in the family.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use socket2::Socket;

use super::listener::{self, Incoming, Listener, Refusal};
use super::TransportError;
use super::{tcp, Conn};
use crate::core::Cx;
use crate::error::Result;

pub enum Sock {
    None,
    Bound(Socket),
    /// Resolving a host name on a helper thread (`Cx::resolve`).
    Resolving,
    Listening(Box<Listener>),
    /// Accepted, not yet given its id by `Endpoint::attach`.
    Accepted(Incoming),
    Connected(Box<Conn>),
}

impl Sock {
    /// socket_bind: a new socket bound to `addr` (`tcp::bind_for`).
    pub fn bind(&mut self, cx: &mut Cx, addr: SocketAddr) -> Result<()> {
        *self = Sock::Bound(tcp::bind_for(cx, &addr)?);
        Ok(())
    }

    /// socket_listen on the bound socket: the state is checked
    /// (`tcp::check_can_listen`), the TLS server config is built when `alpn`
    /// is Some (a TLS mode; the ALPN protocols it offers), then
    /// `Listener::listen` with the rest; on failure the socket stays bound.
    pub fn listen(
        &mut self,
        cx: &mut Cx,
        mode: u8,
        backlog: i32,
        alpn: Option<&[&[u8]]>,
        max_buffered: usize,
        refusal: Option<(Refusal, u64)>,
    ) -> Result<()> {
        tcp::check_can_listen(cx)?;
        let tls = match alpn {
            Some(alpn) => Some(listener::server_tls(cx, alpn)?),
            None => None,
        };
        let Sock::Bound(s) = std::mem::replace(self, Sock::None) else {
            return Err(TransportError::NotBound.into());
        };
        match Listener::listen(cx, s, mode, backlog, tls, max_buffered, refusal) {
            Ok(l) => *self = Sock::Listening(Box::new(l)),
            Err((s, e)) => {
                *self = Sock::Bound(s);
                return Err(e);
            }
        }
        Ok(())
    }

    /// The listener (for `Listener::accept`: None when not listening).
    pub fn listener(&mut self) -> Option<&mut Listener> {
        match self {
            Sock::Listening(l) => Some(l),
            _ => None,
        }
    }

    /// For `Endpoint::attach`: the connection accepted for this endpoint
    /// (None: it was not one); the socket is left as `None` either way.
    pub fn take_accepted(&mut self) -> Option<Incoming> {
        match std::mem::replace(self, Sock::None) {
            Sock::Accepted(incoming) => Some(incoming),
            _ => None,
        }
    }

    /// For `Endpoint::attach` of a family whose accepted connections need
    /// nothing special: the connection accepted for this endpoint is made
    /// (`Conn::accepted`, options applied strictly) and kept as `Connected`.
    /// Ok(false): this endpoint was not an accepted one.
    pub fn attach_accepted(&mut self, cx: &mut Cx, mode: u8) -> Result<bool> {
        let Some(incoming) = self.take_accepted() else {
            return Ok(false);
        };
        *self = Sock::Connected(Conn::accepted(cx, incoming, mode, true)?);
        Ok(true)
    }

    pub fn conn(&mut self) -> Option<&mut Conn> {
        match self {
            Sock::Connected(c) => Some(c),
            _ => None,
        }
    }

    /// Takes the connection and the listener (with the connections it turned
    /// away) off the reactor; the socket is left as `None`.
    pub fn deregister(&mut self, cx: &mut Cx) {
        match std::mem::replace(self, Sock::None) {
            Sock::Connected(c) => c.deregister(cx),
            Sock::Listening(l) => l.deregister(cx),
            _ => {}
        }
    }

    /// The descriptor (-1: none yet, or resolving).
    pub fn raw_fd(&self) -> RawFd {
        match self {
            Sock::Connected(c) => c.stream.as_raw_fd(),
            Sock::Listening(l) => l.raw_fd(),
            Sock::Bound(s) => s.as_raw_fd(),
            Sock::Accepted(i) => i.stream.as_raw_fd(),
            Sock::None | Sock::Resolving => -1,
        }
    }
}
