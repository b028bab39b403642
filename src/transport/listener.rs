//! A listening TCP socket as every TCP family's server side has it (legacy
//! stream listeners, HTTP servers; WebSocket, REST and MQTT next): it accepts
//! what the kernel has, turns connections away over SO_MAX_CONNECTIONS
//! (closed at once, or given a last message and left to linger), keeps the
//! accepted ones until LPC takes them with socket_accept, and hands each its
//! TLS server config, its share of the listener's output budget and a
//! [`Ticket`] that keeps it counted as live until its endpoint goes.
//!
//! As mio's `TcpListener::accept`, `ready` loops until the kernel says
//! WouldBlock (readiness is edge-triggered), retries EINTR, and treats any
//! other accept error as this round's end (counted in the socket's errors).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use mio::net::{TcpListener, TcpStream};
use mio::Token;
use socket2::Socket;

use super::linger::Lingering;
use super::output::Budget;
use super::TransportError;
use crate::core::{Accepted, Cx, Endpoint, EventKind, State};
use crate::error::{Error, Result};

/// A connection accepted and not yet attached to its endpoint (which gets
/// it in `Endpoint::attach` and makes a `Conn` of it with `Conn::accepted`).
pub struct Incoming {
    pub stream: TcpStream,
    /// The listener's TLS server config (TLS modes).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The listener's output budget (None: a stream handed over by the driver).
    pub budget: Option<Budget>,
}

impl Incoming {
    /// A connected stream that comes from no listener.
    pub fn adopted(stream: TcpStream) -> Incoming {
        Incoming {
            stream,
            tls: None,
            budget: None,
        }
    }
}

/// Keeps an accepted connection counted among its listener's live ones
/// (SO_MAX_CONNECTIONS) until it is dropped with its endpoint.
pub struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Makes the last message for a connection turned away.
pub type Refusal = fn() -> Vec<u8>;

pub struct Listener {
    listener: TcpListener,
    token: Token,
    waiting: VecDeque<(TcpStream, SocketAddr)>,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// What the accepted connections queue together.
    budget: Budget,
    /// Accepted connections whose endpoint still exists (their tickets).
    live: Arc<AtomicUsize>,
    /// Connections turned away with a last message (made when one is turned
    /// away), kept open briefly so that it is read before the close (None:
    /// turned away by closing).
    refused: Option<(Refusal, Lingering<TcpStream>)>,
}

/// The TLS server config of a TLS listener, built from the socket's options
/// (SO_TLS_CERT, SO_TLS_KEY) when socket_listen is called; errors are
/// EELISTEN unless they are the security policy's.
pub fn server_tls(cx: &Cx, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>> {
    crate::tls::server_config(&cx.core.options, alpn)
        .map_err(|cause| TransportError::ListenTls { cause }.into())
}

impl Listener {
    /// socket_listen on bound socket `s` (state checked with
    /// `tcp::check_can_listen` first): TCP options, listen(`backlog`),
    /// registration. `max_buffered` is SO_MAX_BUFFERED (the budget is a
    /// multiple of it); `refusal`, the last message for a connection turned
    /// away and the endpoint's timer key for its lingering. On failure the
    /// socket comes back with the error.
    pub fn listen(
        cx: &mut Cx,
        s: Socket,
        mode: u8,
        backlog: i32,
        tls: Option<Arc<rustls::ServerConfig>>,
        max_buffered: usize,
        refusal: Option<(Refusal, u64)>,
    ) -> std::result::Result<Listener, (Socket, Error)> {
        let (listener, token) = super::tcp::listen_on(cx, s, mode, backlog)?;
        Ok(Listener {
            listener,
            token,
            waiting: VecDeque::new(),
            tls,
            budget: Budget::new(max_buffered),
            live: Arc::new(AtomicUsize::new(0)),
            refused: refusal.map(|(last, key)| (last, Lingering::new(key))),
        })
    }

    /// Readiness for `token`: the listener's (accepts what the kernel has,
    /// `max_connections` live at most: LISTEN events) or a turned-away
    /// connection's (drained).
    pub fn ready(&mut self, cx: &mut Cx, token: Token, max_connections: usize) {
        if token != self.token {
            if let Some((_, lingering)) = &mut self.refused {
                lingering.ready(cx, token);
            }
            return;
        }
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if self.live.load(Relaxed) >= max_connections {
                        // Over SO_MAX_CONNECTIONS: turned away, never seen by LPC.
                        cx.core.stats.errors += 1;
                        self.turn_away(cx, stream);
                        continue;
                    }
                    // Counted as live from now; the accepted child's ticket releases it.
                    self.live.fetch_add(1, Relaxed);
                    self.waiting.push_back((stream, peer));
                    cx.emit(EventKind::Listen, None, None);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    cx.core.stats.errors += 1;
                    break;
                }
            }
        }
    }

    fn turn_away(&mut self, cx: &mut Cx, stream: TcpStream) {
        let Some((last, lingering)) = &mut self.refused else {
            return; // dropped: closed at once
        };
        lingering.add(cx, stream, Some(&last()), |s| {
            let _ = s.shutdown(std::net::Shutdown::Write);
        });
    }

    /// The lingering timer (the key given to `listen`) fired.
    pub fn expire_refused(&mut self, cx: &mut Cx) {
        if let Some((_, lingering)) = &mut self.refused {
            lingering.expire(cx);
        }
    }

    /// socket_accept: the oldest connection waiting, given to the endpoint
    /// `make` builds for it; `l` is None when the socket is not listening.
    pub fn accept(
        l: Option<&mut Listener>,
        make: impl FnOnce(Incoming, Ticket) -> Box<dyn Endpoint>,
    ) -> Result<Accepted> {
        let Some(l) = l else {
            return Err(TransportError::NotListening.into());
        };
        let (stream, peer) = l
            .waiting
            .pop_front()
            .ok_or_else(|| Error::from(TransportError::NoneWaiting))?;
        let local = stream.local_addr().ok();
        let state = if l.tls.is_some() {
            State::Handshake
        } else {
            State::DataXfer
        };
        let incoming = Incoming {
            stream,
            tls: l.tls.clone(),
            budget: Some(l.budget.clone()),
        };
        let ticket = Ticket(Arc::clone(&l.live));
        Ok(Accepted {
            endpoint: make(incoming, ticket),
            peer: Some(peer),
            local,
            state,
        })
    }

    /// SO_MAX_BUFFERED was set on the listener: its connections' budget follows.
    pub fn set_max_buffered(&self, max_buffered: usize) {
        self.budget.set_limit(max_buffered);
    }

    /// Connections accepted by the kernel, waiting for socket_accept.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Accepted connections whose endpoint still exists.
    pub fn connections(&self) -> usize {
        self.live.load(Relaxed)
    }

    /// Bytes the accepted connections queue together.
    pub fn queued(&self) -> usize {
        self.budget.queued()
    }

    pub fn raw_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// Takes the listener and the connections it turned away off the reactor.
    pub fn deregister(mut self, cx: &mut Cx) {
        cx.reactor.deregister(&mut self.listener, self.token);
        if let Some((_, lingering)) = &mut self.refused {
            lingering.clear(cx);
        }
    }
}
