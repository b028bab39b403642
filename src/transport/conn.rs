//! A connected stream, plain or TLS, driven by readiness: `read` drains what
//! the kernel has (decrypting when TLS), `queue` + `flush` write as much as the
//! kernel takes and keep the rest. TLS handshakes progress inside both.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::Duration;

use mio::net::TcpStream;
use mio::Token;

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
    pub token: Token,
    /// Boxed: rustls's state is over 1 KiB, and plain connections carry none.
    tls: Option<Box<rustls::Connection>>,
    /// Plaintext waiting to be written (or handed to TLS).
    queue: VecDeque<u8>,
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
            queue: VecDeque::new(),
            host,
            watch: super::output::Watch::default(),
        }
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
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
    fn drain_plain(tls: &mut rustls::Connection, out: &mut Vec<u8>) -> Result<bool, String> {
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
        self.queue.extend(data);
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
                    if self.queue.is_empty() {
                        return Ok((written, true));
                    }
                    let (a, _) = self.queue.as_slices();
                    match self.stream.write(a) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => {
                            self.queue.drain(..n);
                            written += n;
                            *moved = true;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Ok((written, false))
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Some(tls) => {
                    // Hand plaintext to rustls once the handshake allows it.
                    if !tls.is_handshaking() && !self.queue.is_empty() {
                        let (a, _) = self.queue.as_slices();
                        let n = tls.writer().write(a)?;
                        self.queue.drain(..n);
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

    /// Counts this (accepted) connection's queued bytes in its listener's
    /// `budget`; `serial` is the socket's.
    pub fn join(&mut self, budget: &super::output::Budget, serial: u64) {
        self.watch.join(budget, serial);
    }

    /// Arms timer `key` for the no-progress deadline `limit` of the queued
    /// output (None: no deadline). Call after queueing or flushing; cheap
    /// when nothing is queued or the timer is armed already.
    pub fn arm_deadline(&mut self, cx: &mut crate::core::Cx, limit: Option<Duration>, key: u64) {
        self.watch.arm(cx, limit, key);
    }

    /// Timer `key` (armed by `arm_deadline` or by the listener's budget)
    /// fired: the close reason when the connection must go; `option` names
    /// the deadline in it.
    pub fn deadline_fired(
        &mut self,
        cx: &mut crate::core::Cx,
        limit: Option<Duration>,
        key: u64,
        option: &str,
    ) -> Option<String> {
        let pending = self.pending();
        self.watch.fired(cx, limit, key, pending, option)
    }

    /// Before a write queues `incoming` bytes: makes room in the listener's
    /// budget, closing the connections stalled longest (timer `key` reaches
    /// them now). Err(reason) when this connection is the one to close.
    pub fn make_room(
        &mut self,
        cx: &mut crate::core::Cx,
        incoming: usize,
        key: u64,
    ) -> Result<(), String> {
        self.watch.make_room(cx, incoming, key)
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
    ) -> crate::error::Result<()> {
        let host = opts
            .string(crate::options::ids::SO_TLS_SNI_HOSTNAME)
            .unwrap_or(host)
            .to_string();
        let cfg = crate::tls::client_config(opts, mode, alpn)?;
        let name = crate::tls::server_name(opts, &host)?;
        let client = rustls::ClientConnection::new(cfg, name).map_err(|e| {
            crate::error::Error::new(crate::error::ResultCode::TlsConfig, format!("tls: {e}"))
        })?;
        self.tls = Some(Box::new(client.into()));
        self.host = host;
        Ok(())
    }

    /// socket_close by LPC: starts an orderly close and writes what it can.
    /// True when everything is out (or the connection failed); false when
    /// output remains and the caller must keep flushing in the background.
    pub fn finish(&mut self) -> bool {
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

/// How long a socket LPC closed may keep flushing its output in the background.
pub const FLUSH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// socket_close by LPC for an endpoint holding `conn`: true when it is fully
/// closed now; otherwise the endpoint's `flush_timer` fires after
/// FLUSH_DEADLINE and the core keeps the socket, without an id, until then.
pub fn close_by_lpc(conn: Option<&mut Conn>, cx: &mut crate::core::Cx, flush_timer: u64) -> bool {
    let Some(conn) = conn else { return true };
    if conn.finish() {
        return true;
    }
    cx.timer(FLUSH_DEADLINE, flush_timer);
    false
}
