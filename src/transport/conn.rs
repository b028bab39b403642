//! A connected stream, plain or TLS, driven by readiness, and what every TCP
//! family does with it the same way:
//!
//! - `read` drains what the kernel has (decrypting when TLS); `queue` +
//!   `flush` write as much as the kernel takes and keep the rest (an
//!   [`OutQueue`]); TLS handshakes progress inside both;
//! - opening: `accepted` (a connection from a [`super::Listener`]: TCP
//!   options, registration, the TLS server side, the listener's budget) and
//!   `connect` / `connect_result` (a non-blocking connect and its outcome);
//! - writing: `admit` (SO_MAX_BUFFERED and the listener's budget, before
//!   anything is queued), `block` when a write leaves output queued, and
//!   `flush_out`, which counts the bytes, fires the write callback owed once
//!   the queue is low enough, and marks a socket LPC closed as Closed once
//!   it has flushed;
//! - deadlines: `arm_send` / `deadline_fired` (no progress of the queued
//!   output, `transport::output`), and [`super::Deadline`] for the family's
//!   own (request, read, idle);
//! - closing: `close_by_lpc` (flush in the background for at most
//!   FLUSH_DEADLINE) and `deregister`.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Interest, Token};
use socket2::{SockRef, Socket};

use super::listener::Incoming;
use super::queue::OutQueue;
use super::TransportError;
use crate::core::{Cx, EventKind, State};
use crate::error::{Error, Result, ResultCode};

/// How a read round ended.
#[derive(Debug, PartialEq)]
pub enum ReadEnd {
    /// Nothing more for now (WouldBlock); the connection is fine.
    Open,
    /// Read `limit` bytes; more may be waiting.
    Limit,
    /// The peer closed its side.
    Eof,
    /// The connection failed; the text says why.
    Error(String),
}

pub struct Conn {
    pub stream: TcpStream,
    token: Token,
    /// Boxed: rustls's state is over 1 KiB, and plain connections carry none.
    tls: Option<Box<rustls::Connection>>,
    /// Plaintext waiting to be written (or handed to TLS).
    queue: OutQueue,
    /// A write left output queued: the write callback is owed once it drains.
    blocked: bool,
    /// LPC closed the socket: only flushing remains, no write callback.
    closing: bool,
    /// Host name for error messages (TLS verification).
    pub host: String,
    /// The no-progress clock of the queued output (see `transport::output`).
    watch: super::output::Watch,
}

thread_local! {
    /// The read buffer every connection shares: all reads happen on the
    /// driver thread, one at a time, so an idle connection costs no buffer.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; 65536].into_boxed_slice());
}

impl Conn {
    pub fn new(
        stream: TcpStream,
        token: Token,
        tls: Option<rustls::Connection>,
        host: String,
    ) -> Conn {
        Conn {
            stream,
            token,
            tls: tls.map(Box::new),
            queue: OutQueue::default(),
            blocked: false,
            closing: false,
            host,
            watch: super::output::Watch::default(),
        }
    }

    pub fn is_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

    /// Negotiated TLS version ("TLSv1_3"), when TLS.
    pub fn tls_version(&self) -> Option<String> {
        self.tls
            .as_ref()
            .and_then(|t| t.protocol_version())
            .map(|v| format!("{v:?}"))
    }

    /// Bytes accepted but not yet written to the kernel.
    pub fn pending(&self) -> usize {
        let tls_out = self.tls.as_ref().map_or(0, |t| t.wants_write() as usize);
        self.queue.len() + tls_out
    }

    /// Reads until the kernel has nothing more or `limit` bytes were read;
    /// plaintext is appended to `out`.
    pub fn read(&mut self, out: &mut Vec<u8>, limit: usize) -> ReadEnd {
        SCRATCH.with(|s| self.read_with(&mut s.borrow_mut(), out, limit, true))
    }

    /// As `read`, but a plain connection stops after a short read (the
    /// kernel had no more) instead of asking again and getting EAGAIN. Only
    /// for readiness that did not report the peer's close: a FIN that came
    /// before the readiness was reported raises no new edge.
    pub fn read_available(&mut self, out: &mut Vec<u8>, limit: usize) -> ReadEnd {
        SCRATCH.with(|s| self.read_with(&mut s.borrow_mut(), out, limit, false))
    }

    fn read_with(
        &mut self,
        buf: &mut [u8],
        out: &mut Vec<u8>,
        limit: usize,
        drain: bool,
    ) -> ReadEnd {
        let start = out.len();
        loop {
            if out.len() - start >= limit {
                return ReadEnd::Limit;
            }
            match &mut self.tls {
                None => match self.stream.read(buf) {
                    Ok(0) => return ReadEnd::Eof,
                    Ok(n) if n < buf.len() && !drain => {
                        // A short read took all the kernel had: another read
                        // would only say EAGAIN. Data arriving later raises a
                        // new readiness edge.
                        out.extend_from_slice(&buf[..n]);
                        return ReadEnd::Open;
                    }
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadEnd::Open,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return ReadEnd::Error(format!("read: {e}")),
                },
                Some(tls) => {
                    let eof = match tls.read_tls(&mut self.stream) {
                        Ok(0) => true,
                        Ok(_) => false,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            // Nothing new from the kernel; hand out what TLS already holds.
                            return match Self::drain_plain(tls, out) {
                                Ok(true) => ReadEnd::Eof,
                                Ok(false) => ReadEnd::Open,
                                Err(msg) => ReadEnd::Error(msg),
                            };
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => false,
                        Err(e) => return ReadEnd::Error(format!("read: {e}")),
                    };
                    if let Err(e) = tls.process_new_packets() {
                        // Tell the peer why (alert), best effort.
                        let _ = tls.write_tls(&mut self.stream);
                        return ReadEnd::Error(crate::tls::describe(&e, &self.host));
                    }
                    // Handshake replies go out as soon as they exist.
                    while tls.wants_write() {
                        match tls.write_tls(&mut self.stream) {
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => return ReadEnd::Error(format!("write: {e}")),
                        }
                    }
                    match Self::drain_plain(tls, out) {
                        Ok(true) => return ReadEnd::Eof,
                        Ok(false) => {}
                        Err(msg) => return ReadEnd::Error(msg),
                    }
                    if eof {
                        return ReadEnd::Eof;
                    }
                }
            }
        }
    }

    /// Moves decrypted bytes out of rustls; Ok(true) when the peer sent close_notify.
    fn drain_plain(
        tls: &mut rustls::Connection,
        out: &mut Vec<u8>,
    ) -> std::result::Result<bool, String> {
        let mut buf = [0u8; 16384];
        loop {
            match tls.reader().read(&mut buf) {
                Ok(0) => return Ok(true),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err("tls: peer closed without close_notify".into())
                }
                Err(e) => return Err(format!("tls: {e}")),
            }
        }
    }

    /// Adds plaintext to the write queue (nothing is written until `flush`).
    pub fn queue(&mut self, data: &[u8]) {
        self.queue.push(data);
        self.watch.note(self.pending(), false);
    }

    /// Writes as much as the kernel takes. Ok(written bytes of plaintext,
    /// whether everything is out).
    pub fn flush(&mut self) -> io::Result<(usize, bool)> {
        let mut moved = false;
        let r = self.flush_into_kernel(&mut moved);
        self.watch.note(self.pending(), moved);
        r
    }

    /// `flush`; `moved` is set when a byte reached the kernel.
    fn flush_into_kernel(&mut self, moved: &mut bool) -> io::Result<(usize, bool)> {
        let mut written = 0;
        loop {
            match &mut self.tls {
                None => {
                    let stream = &mut self.stream;
                    let (n, r) = self.queue.write_with(|b| stream.write(b));
                    written += n;
                    *moved |= n > 0;
                    r?;
                    return Ok((written, self.queue.is_empty()));
                }
                Some(tls) => {
                    // Hand plaintext to rustls once the handshake allows it.
                    if !tls.is_handshaking() && !self.queue.is_empty() {
                        let n = tls.writer().write(self.queue.front())?;
                        self.queue.consume(n);
                        written += n;
                    }
                    if !tls.wants_write() {
                        let done = self.queue.is_empty() || tls.is_handshaking();
                        if done || written == 0 {
                            return Ok((written, self.queue.is_empty()));
                        }
                        continue;
                    }
                    match tls.write_tls(&mut self.stream) {
                        Ok(n) => *moved |= n > 0,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Ok((written, false))
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// Timer `key` (armed by `arm_send` or by the listener's budget)
    /// fired: the close reason when the connection must go; `option` names
    /// the deadline in it.
    pub fn deadline_fired(
        &mut self,
        cx: &mut Cx,
        limit: Option<Duration>,
        key: u64,
        option: &str,
    ) -> Option<String> {
        let pending = self.pending();
        self.watch.fired(cx, limit, key, pending, option)
    }

    /// Before a socket_write queues `incoming` bytes: refused (EEWOULDBLOCK,
    /// nothing written) when they would take the queue past `max`
    /// (SO_MAX_BUFFERED; with `first_fits`, a write onto an empty queue
    /// always fits); then room is made in the listener's budget, closing the
    /// connections stalled longest (timer `key` reaches them now) — when this
    /// one is among them it is closed and the write fails (EESEND).
    pub fn admit(
        &mut self,
        cx: &mut Cx,
        incoming: usize,
        max: usize,
        first_fits: bool,
        key: u64,
    ) -> Result<()> {
        let queued = self.pending();
        if (queued > 0 || !first_fits) && queued + incoming > max {
            return Err(TransportError::OverMaxBuffered {
                incoming,
                max,
                first_fits,
            }
            .into());
        }
        if let Err(why) = self.watch.make_room(cx, incoming, key) {
            cx.die(Some(why.clone()));
            return Err(TransportError::ClosedForRoom { why }.into());
        }
        Ok(())
    }

    /// A write left output queued: the write callback is owed (see `flush_out`).
    pub fn block(&mut self) {
        self.blocked = true;
    }

    /// Whether the write callback is still owed.
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// `flush`, counted in the socket's statistics. Then, while LPC has the
    /// socket, the write callback owed fires once fewer than `resume_below`
    /// bytes wait (1: when the queue is empty); after socket_close the
    /// socket is Closed once everything is out. Ok(bytes written).
    pub fn flush_out(&mut self, cx: &mut Cx, resume_below: usize) -> io::Result<usize> {
        let (n, _) = self.flush()?;
        cx.core.stats.bytes_out += n as u64;
        let pending = self.pending();
        if self.closing {
            if pending == 0 {
                cx.core.state = State::Closed;
            }
        } else if self.blocked && pending < resume_below {
            self.blocked = false;
            cx.emit(EventKind::Write, None, None);
        }
        Ok(n)
    }

    /// Arms timer `key` for the no-progress deadline of the queued output,
    /// `limit` (None: none), when output is queued (this runs after every
    /// readiness: with nothing queued it costs one comparison).
    pub fn arm_send(&mut self, cx: &mut Cx, key: u64, limit: Option<Duration>) {
        if self.pending() == 0 {
            return;
        }
        self.watch.arm(cx, limit, key);
    }

    /// A connection a listener accepted, given its id: TCP options applied
    /// (errors ignored unless `strict`), registered, TLS started with the
    /// listener's config, counted in the listener's budget.
    pub fn accepted(cx: &mut Cx, incoming: Incoming, mode: u8, strict: bool) -> Result<Box<Conn>> {
        let Incoming {
            mut stream,
            tls,
            budget,
        } = incoming;
        let applied = super::tcp::apply_options(SockRef::from(&stream), &cx.core.options, mode);
        if strict {
            applied?;
        }
        let token = cx
            .register(&mut stream, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| Error::io("register", ResultCode::EeAccept, &e))?;
        let server = match tls {
            Some(cfg) => Some(
                rustls::ServerConnection::new(cfg)
                    .map_err(|e| Error::from(TransportError::TlsAccept { why: e.to_string() }))?
                    .into(),
            ),
            None => None,
        };
        let host = cx
            .core
            .local
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let mut conn = Box::new(Conn::new(stream, token, server, host));
        if let Some(b) = &budget {
            conn.watch.join(b, cx.core.serial);
        }
        Ok(conn)
    }

    /// Starts a non-blocking connect of `socket` (TCP options applied) to
    /// `addr` and registers it; `refused` makes the error of a connect that
    /// failed at once. `host` names the peer in TLS errors. The outcome comes
    /// with readiness: see `connect_result`.
    pub fn connect(
        cx: &mut Cx,
        socket: Socket,
        addr: SocketAddr,
        mode: u8,
        host: String,
        refused: impl FnOnce(io::Error) -> Error,
    ) -> Result<Box<Conn>> {
        super::tcp::apply_options(SockRef::from(&socket), &cx.core.options, mode)?;
        if let Err(e) = socket.connect(&addr.into()) {
            if e.raw_os_error() != Some(libc::EINPROGRESS) && e.kind() != io::ErrorKind::WouldBlock
            {
                return Err(refused(e));
            }
        }
        let mut stream = TcpStream::from_std(socket.into());
        let token = cx
            .register(&mut stream, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| Error::io("register", ResultCode::EeSocket, &e))?;
        Ok(Box::new(Conn::new(stream, token, None, host)))
    }

    /// After readiness on a connecting stream: whether the TCP connect is
    /// done. When it is, the socket's local address is recorded and it is
    /// marked connected.
    pub fn connect_result(&self, cx: &mut Cx) -> Connecting {
        match self.stream.take_error() {
            Ok(Some(e)) | Err(e) => return Connecting::Failed(e),
            Ok(None) => {}
        }
        match self.stream.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Connecting::Pending,
            Err(e) => return Connecting::Lost(e),
        }
        cx.core.local = self.stream.local_addr().ok();
        cx.core.mark_connected();
        Connecting::Done
    }

    /// Takes the stream off the reactor (the endpoint is aborted or drops
    /// this connection).
    pub fn deregister(mut self, cx: &mut Cx) {
        cx.reactor.deregister(&mut self.stream, self.token);
    }

    /// Starts TLS as a client on this (just connected, plain) connection:
    /// SNI and the verified name are SO_TLS_SNI_HOSTNAME or `host`; error
    /// messages then name that host. The handshake runs in read/flush.
    pub fn start_tls_client(
        &mut self,
        opts: &crate::options::store::OptionStore,
        mode: u8,
        alpn: &[&[u8]],
        host: &str,
    ) -> Result<()> {
        let host = opts
            .string(crate::options::ids::SO_TLS_SNI_HOSTNAME)
            .unwrap_or(host)
            .to_string();
        let cfg = crate::tls::client_config(opts, mode, alpn)?;
        let name = crate::tls::server_name(opts, &host)?;
        let client = rustls::ClientConnection::new(cfg, name)
            .map_err(|e| Error::from(TransportError::TlsClient { why: e.to_string() }))?;
        self.tls = Some(Box::new(client.into()));
        self.host = host;
        Ok(())
    }

    /// socket_close by LPC: starts an orderly close and writes what it can.
    /// True when everything is out (or the connection failed); false when
    /// output remains and the caller must keep flushing in the background.
    pub fn finish(&mut self) -> bool {
        self.closing = true;
        self.send_close_notify();
        match self.flush() {
            Ok((_, true)) => self.pending() == 0,
            Ok(_) => false,
            Err(_) => true,
        }
    }

    /// Re-applies the TCP options after `id` changed on a live connection.
    pub fn option_changed(&self, id: u16, opts: &crate::options::store::OptionStore, mode: u8) {
        if super::tcp::is_tcp_option(id) {
            // Best effort: the value was valid; the kernel may still refuse.
            let _ = super::tcp::apply_options(socket2::SockRef::from(&self.stream), opts, mode);
        }
    }

    /// Starts an orderly TLS close (close_notify); plain connections need nothing.
    pub fn send_close_notify(&mut self) {
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
        }
    }
}

/// Where a non-blocking connect stands (`Conn::connect_result`).
pub enum Connecting {
    /// Still connecting.
    Pending,
    Done,
    /// The connect failed (the socket's pending error).
    Failed(io::Error),
    /// The connection is unusable for another reason.
    Lost(io::Error),
}

/// How long a socket LPC closed may keep flushing its output in the background.
pub const FLUSH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// socket_close by LPC for an endpoint holding `conn`: true when it is fully
/// closed now; otherwise the endpoint's `flush_timer` fires after
/// FLUSH_DEADLINE, the no-progress deadline `send_limit` of what remains is
/// armed on `send_timer`, and the core keeps the socket, without an id,
/// until then.
pub fn close_by_lpc(
    conn: Option<&mut Conn>,
    cx: &mut Cx,
    flush_timer: u64,
    send_timer: u64,
    send_limit: Option<Duration>,
) -> bool {
    let Some(conn) = conn else { return true };
    if conn.finish() {
        return true;
    }
    cx.timer(FLUSH_DEADLINE, flush_timer);
    conn.arm_send(cx, send_timer, send_limit);
    false
}
