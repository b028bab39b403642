//! IPC_CLIENT (mode 30): connects to a bus, hands each message to the read
//! callback, sends socket_write's messages to the server, and (with
//! IPC_AUTO_RECONNECT) reconnects after a loss with a doubling delay that
//! starts at IPC_RECONNECT_DELAY and stops growing at 60 s.
//!
//! socket_connect's address: "" (the options: <IPC_SOCKET_DIR>/<name>.sock,
//! or IPC_HOST and each port of IPC_PORT_RANGE in turn), an absolute socket
//! path, or "host port".

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use mio::net::{TcpStream, UnixStream};
use mio::Interest;

use super::link::{Backlog, Link};
use super::message::{self, Stamp};
use super::transport::Stream;
use super::{opt, IpcError, MODE_CLIENT};
use crate::core::{Cx, Endpoint, EventKind, State};
use crate::error::{Result, ResultCode};
use crate::policy::PolicyError;
use crate::reactor::{CompletionKind, Readiness};
use crate::transport::{Deadline, ReadEnd, FLUSH_DEADLINE};
use crate::value::Value;

const TIMER_RECONNECT: u64 = 1;
const TIMER_FLUSH: u64 = 2;
const TIMER_READ_MORE: u64 = 3;
const TIMER_VERIFY: u64 = 4;
/// The queued output may have passed SO_SEND_TIMEOUT without progress.
const TIMER_SEND: u64 = 5;

/// How long a server found by scanning IPC_PORT_RANGE has to name its bus.
const VERIFY: Duration = Duration::from_secs(2);

/// The longest wait between two reconnect attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Clone)]
enum Target {
    Unix(PathBuf),
    Tcp { host: String, ports: (u16, u16) },
}

pub struct IpcClient {
    target: Option<Target>,
    /// TCP addresses to try in order for this attempt, and the next one.
    candidates: Vec<SocketAddr>,
    next: usize,
    link: Option<Link>,
    connecting: bool,
    /// Connected while scanning a port range: the peer has until then to
    /// show it is our bus (its first message carries our event_name).
    verifying: Option<std::time::Instant>,
    /// Messages written while not connected; sent on (re)connect.
    backlog: Backlog,
    stamp: Option<Stamp>,
    /// Failed attempts since the last connection.
    failures: u32,
    write_owed: bool,
    /// TIMER_SEND: while output is queued, armed no later than its
    /// SO_SEND_TIMEOUT deadline.
    send_timer: Deadline,
    closing: bool,
    peer_text: String,
    /// Inside socket_connect: a failure without reconnecting is its error.
    in_connect: bool,
    connect_error: Option<String>,
}

impl Default for IpcClient {
    fn default() -> Self {
        Self::new()
    }
}

impl IpcClient {
    pub fn new() -> IpcClient {
        IpcClient {
            target: None,
            candidates: Vec::new(),
            next: 0,
            link: None,
            connecting: false,
            verifying: None,
            backlog: Backlog::default(),
            stamp: None,
            failures: 0,
            write_owed: false,
            send_timer: Deadline::default(),
            closing: false,
            peer_text: String::new(),
            in_connect: false,
            connect_error: None,
        }
    }

    fn parse_target(cx: &Cx, address: &str, name: &str) -> Result<Target> {
        let o = &cx.core.options;
        let address = address.trim();
        if address.is_empty() {
            return Ok(if super::is_tcp(o, MODE_CLIENT) {
                Target::Tcp {
                    host: super::string(o, opt::IPC_HOST, MODE_CLIENT),
                    ports: super::port_range(o, MODE_CLIENT),
                }
            } else {
                let path = super::unix_path(o, name)?;
                Self::allowed(super::dir_option(o), &path)?;
                Target::Unix(path)
            });
        }
        if address.starts_with('/') {
            if address.len() > 107 {
                return Err(IpcError::ConnectPathTooLong {
                    address: address.to_string(),
                }
                .into());
            }
            let path = PathBuf::from(address);
            Self::allowed("socket_connect's address", &path)?;
            return Ok(Target::Unix(path));
        }
        let bad = || IpcError::BadConnectAddress {
            address: address.to_string(),
        };
        let (host, port) = address.rsplit_once(' ').ok_or_else(bad)?;
        let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
        Ok(Target::Tcp {
            host: host
                .trim()
                .trim_matches(|c| c == '[' || c == ']')
                .to_string(),
            ports: (port, port),
        })
    }

    /// Refuses (EESECURITY) a socket file outside the policy's socket_dirs;
    /// one that does not exist (yet) is left to the connect.
    fn allowed(what: &str, path: &std::path::Path) -> Result<()> {
        match crate::policy::gate::socket_file(what, path) {
            Err(crate::policy::Denied::Policy(why)) => Err(PolicyError::Refused {
                verb: "socket_connect",
                why,
            }
            .into()),
            _ => Ok(()),
        }
    }

    /// Connects to the socket file at `path` through a descriptor of it
    /// opened without following links, if the policy allows it (checked
    /// again at every attempt).
    fn connect_unix(path: &std::path::Path) -> std::io::Result<UnixStream> {
        use crate::policy::Denied;
        match crate::policy::gate::socket_file("the IPC socket", path) {
            Ok(f) => UnixStream::connect(crate::policy::fs::fd_path(&f)),
            Err(Denied::Policy(m)) => {
                Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, m))
            }
            // Missing (no server yet) or unreadable: connect says which.
            Err(Denied::Io(..)) if crate::policy::current().is_open() => UnixStream::connect(path),
            // Missing (no server yet), unreadable (EACCES), ...: as resolved.
            Err(Denied::Io(_, e)) => Err(e),
        }
    }

    /// Starts one connection attempt (after socket_connect or a backoff).
    fn attempt(&mut self, cx: &mut Cx) {
        cx.core.state = State::Connecting;
        match self.target.clone() {
            Some(Target::Unix(path)) => match Self::connect_unix(&path) {
                Ok(s) => self.start(cx, Stream::Unix(s)),
                Err(e) => {
                    let why = if e.kind() == std::io::ErrorKind::NotFound {
                        format!("no IPC server at {} (no such file)", path.display())
                    } else {
                        format!("cannot connect to {}: {e}", path.display())
                    };
                    self.failed(cx, why)
                }
            },
            Some(Target::Tcp { host, ports }) => match host.parse::<IpAddr>() {
                Ok(ip) => self.try_addresses(cx, &[ip], ports),
                Err(_) => cx.resolve(host, ports.0),
            },
            None => {}
        }
    }

    fn try_addresses(&mut self, cx: &mut Cx, ips: &[IpAddr], (lo, hi): (u16, u16)) {
        self.candidates = (lo..=hi)
            .flat_map(|p| ips.iter().map(move |ip| SocketAddr::new(*ip, p)))
            .collect();
        self.next = 0;
        self.try_next(cx, None);
    }

    /// Connects to the next candidate address; `last` is why the previous failed.
    fn try_next(&mut self, cx: &mut Cx, mut last: Option<String>) {
        while let Some(a) = self.candidates.get(self.next).copied() {
            self.next += 1;
            match TcpStream::connect(a) {
                Ok(s) => return self.start(cx, Stream::Tcp(s)),
                Err(e) => {
                    last = Some(format!(
                        "cannot connect to {}: {e}",
                        crate::core::addr::format(&a)
                    ))
                }
            }
        }
        let why = match (&self.target, last) {
            (Some(Target::Tcp { host, ports }), Some(l)) if ports.0 != ports.1 => format!(
                "no IPC server answered on {host} ports {}..{} (last: {l})",
                ports.0, ports.1
            ),
            (_, Some(l)) => l,
            _ => "no address to connect to".into(),
        };
        self.failed(cx, why);
    }

    /// The address of the attempt in progress, for error texts.
    fn attempt_text(&self) -> String {
        match &self.target {
            Some(Target::Unix(p)) => p.display().to_string(),
            _ => self
                .next
                .checked_sub(1)
                .and_then(|i| self.candidates.get(i))
                .map(crate::core::addr::format)
                .unwrap_or_default(),
        }
    }

    fn start(&mut self, cx: &mut Cx, mut stream: Stream) {
        match cx.register(&mut stream, Interest::READABLE | Interest::WRITABLE) {
            Ok(token) => {
                self.link = Some(Link::new(stream, token));
                self.connecting = true;
            }
            Err(e) => self.failed(cx, format!("register: {e}")),
        }
    }

    /// Connected to the bus (not connecting, not still checking the peer).
    fn live(&self) -> bool {
        self.link.is_some() && !self.connecting && self.verifying.is_none()
    }

    /// Found by trying each port of a range: the peer must name our bus.
    fn scanning(&self) -> bool {
        matches!(self.target, Some(Target::Tcp { ports, .. }) if ports.0 != ports.1)
    }

    fn drop_link(&mut self, cx: &mut Cx) {
        if let Some(mut l) = self.link.take() {
            cx.reactor.deregister(&mut l.stream, l.token);
        }
        self.connecting = false;
        self.verifying = None;
    }

    /// An attempt failed or the connection was lost: retry later, or close.
    fn failed(&mut self, cx: &mut Cx, reason: String) {
        let was_connected = self.live();
        self.drop_link(cx);
        if self.closing {
            cx.core.state = State::Closed;
            return;
        }
        if cx.core.options.int(opt::IPC_AUTO_RECONNECT, MODE_CLIENT) == 0 {
            if self.in_connect {
                self.connect_error = Some(reason);
                return;
            }
            return cx.die(Some(reason));
        }
        let base = cx
            .core
            .options
            .int(opt::IPC_RECONNECT_DELAY, MODE_CLIENT)
            .max(1) as u64;
        let step = self.failures.min(20);
        let delay = Duration::from_millis(base.saturating_mul(1u64 << step)).min(MAX_BACKOFF);
        self.failures += 1;
        cx.core.state = State::Connecting;
        cx.core.stats.errors += 1;
        let event = Value::mapping([
            (
                "type",
                Value::str(if was_connected {
                    "disconnected"
                } else {
                    "connect_failed"
                }),
            ),
            ("reason", Value::Str(reason)),
            ("retry_in_ms", Value::Int(delay.as_millis() as i64)),
            ("attempt", Value::Int(self.failures as i64)),
        ]);
        cx.emit(EventKind::Read, Some(event), None);
        cx.timer(delay, TIMER_RECONNECT);
    }

    fn connected(&mut self, cx: &mut Cx) {
        self.connecting = false;
        self.failures = 0;
        cx.core.state = State::DataXfer;
        cx.core.mark_connected();
        let link = self.link.as_ref().expect("connected link");
        self.peer_text = match &link.stream {
            Stream::Tcp(s) => s
                .peer_addr()
                .map(|a| crate::core::addr::format(&a))
                .unwrap_or_default(),
            Stream::Unix(_) => match &self.target {
                Some(Target::Unix(p)) => p.display().to_string(),
                _ => String::new(),
            },
        };
        if let Stream::Tcp(s) = &link.stream {
            cx.core.peer = s.peer_addr().ok();
            cx.core.local = s.local_addr().ok();
            let _ = crate::transport::tcp::apply_options(
                socket2::SockRef::from(s),
                &cx.core.options,
                MODE_CLIENT,
            );
        }
        let event = Value::mapping([
            ("type", Value::str("connected")),
            ("addr", Value::str(&self.peer_text)),
        ]);
        cx.emit(EventKind::Read, Some(event), Some(self.peer_text.clone()));
        // What LPC wrote while the bus was away goes out now, in order.
        for bytes in self.backlog.take() {
            if !self.send(cx, &bytes) {
                return;
            }
        }
        cx.emit(EventKind::Write, None, None);
    }

    /// Sends on the live link; false when the connection failed.
    fn send(&mut self, cx: &mut Cx, bytes: &[u8]) -> bool {
        let Some(link) = &mut self.link else {
            return false;
        };
        match link.send(bytes) {
            Ok(n) => {
                cx.core.stats.bytes_out += n as u64;
                if link.pending() > 0 && !self.send_timer.is_armed() {
                    self.arm_send(cx);
                }
                true
            }
            Err(e) => {
                self.failed(cx, format!("write: {e}"));
                false
            }
        }
    }

    fn read(&mut self, cx: &mut Cx) {
        let Some(link) = &mut self.link else { return };
        let (end, n) = link.read();
        cx.core.stats.bytes_in += n as u64;
        loop {
            let Some(link) = &mut self.link else { return };
            let v = match link.next_message() {
                None => break,
                Some(Ok((v, _))) => v,
                Some(Err(why)) => {
                    return self.failed(cx, format!("bad message from the server: {why}"));
                }
            };
            if self.closing {
                continue;
            }
            let stamp = self.stamp.as_ref().expect("stamped at connect");
            if self.verifying.is_some() {
                if v.get("event_name").and_then(Value::as_str) != Some(stamp.event_name.as_str()) {
                    let why = format!(
                        "{} is not the bus {:?}",
                        self.attempt_text(),
                        stamp.event_name
                    );
                    self.drop_link(cx);
                    return self.try_next(cx, Some(why));
                }
                self.verifying = None;
                self.connected(cx);
                if self.link.is_none() {
                    return;
                }
            }
            let stamp = self.stamp.as_ref().expect("stamped at connect");
            match message::incoming(v, stamp) {
                Ok(m) => {
                    cx.core.stats.messages_in += 1;
                    cx.emit(EventKind::Read, Some(m), Some(self.peer_text.clone()));
                }
                Err(why) => {
                    return self.failed(cx, format!("bad message from the server: {why}"));
                }
            }
        }
        match end {
            ReadEnd::Open => {}
            ReadEnd::Limit => cx.timer(Duration::ZERO, TIMER_READ_MORE),
            // A peer met while scanning that goes away was not our bus.
            ReadEnd::Eof | ReadEnd::Error(_) if self.verifying.is_some() => {
                let why = format!("{} closed before naming its bus", self.attempt_text());
                self.drop_link(cx);
                self.try_next(cx, Some(why));
            }
            ReadEnd::Eof => self.failed(cx, "closed by the server".into()),
            ReadEnd::Error(e) => self.failed(cx, e),
        }
    }

    /// Arms TIMER_SEND for the SO_SEND_TIMEOUT deadline of the queued output.
    fn arm_send(&mut self, cx: &mut Cx) {
        let Some(limit) = super::send_timeout(&cx.core.options, MODE_CLIENT) else {
            return;
        };
        if let Some(t) = self.link.as_ref().and_then(Link::waiting_since) {
            self.send_timer.arm(cx, t + limit, TIMER_SEND);
        }
    }

    /// TIMER_SEND: output that has made no progress for SO_SEND_TIMEOUT
    /// ends the connection as too slow (then reconnecting applies as for any
    /// loss); after socket_close the socket is simply done.
    fn expire_send(&mut self, cx: &mut Cx) {
        self.send_timer.forget();
        let Some(limit) = super::send_timeout(&cx.core.options, MODE_CLIENT) else {
            return;
        };
        let Some(link) = &self.link else { return };
        let stalled = link.waiting_since().is_some_and(|t| t.elapsed() >= limit);
        if !stalled {
            return self.arm_send(cx);
        }
        if self.closing {
            self.drop_link(cx);
            cx.core.state = State::Closed;
            return;
        }
        let reason = format!(
            "too slow: no write progress for {} ms (SO_SEND_TIMEOUT); {} bytes waiting",
            limit.as_millis(),
            link.pending()
        );
        self.failed(cx, reason);
    }

    /// The write callback is owed and the queue is below half of
    /// SO_MAX_BUFFERED (options.md): fire it. After socket_close, the socket
    /// is done once the queue is empty.
    fn check_drained(&mut self, cx: &mut Cx) {
        let pending = self.link.as_ref().map_or(0, |l| l.pending());
        if self.closing {
            if pending == 0 {
                self.drop_link(cx);
                cx.core.state = State::Closed;
            }
        } else if self.write_owed {
            let max = cx
                .core
                .options
                .int(opt::SO_MAX_BUFFERED, MODE_CLIENT)
                .max(0) as usize;
            if pending <= max / 2 {
                self.write_owed = false;
                cx.emit(EventKind::Write, None, None);
            }
        }
    }
}

impl Endpoint for IpcClient {
    fn connect(&mut self, cx: &mut Cx, address: &str) -> Result<()> {
        if !matches!(cx.core.state, State::Unbound | State::Bound) {
            return Err(IpcError::AlreadyConnected.into());
        }
        let name = super::event_name(&cx.core.options, "socket_connect")?;
        let target = Self::parse_target(cx, address, &name)?;
        self.stamp = Some(super::stamp(&cx.core.options, MODE_CLIENT, &name));
        self.target = Some(target);
        // A first attempt that fails at once with no reconnecting is
        // socket_connect's own error rather than a close callback later.
        self.in_connect = true;
        self.attempt(cx);
        self.in_connect = false;
        if let Some(reason) = self.connect_error.take() {
            cx.core.state = State::Unbound;
            return Err(IpcError::ConnectFailed { reason }.into());
        }
        Ok(())
    }

    fn option_set(&mut self, cx: &mut Cx, id: u16) -> Result<()> {
        if id == opt::SO_SEND_TIMEOUT {
            // A shorter deadline may be due before the armed timer.
            self.send_timer.forget();
            self.arm_send(cx);
        }
        // IPC_TIMEZONE may change while connected: stamp the next message anew.
        if id == opt::IPC_TIMEZONE {
            if let Some(s) = &mut self.stamp {
                let name = std::mem::take(&mut s.event_name);
                *s = super::stamp(&cx.core.options, MODE_CLIENT, &name);
            }
        }
        Ok(())
    }

    fn ready(&mut self, cx: &mut Cx, r: Readiness) {
        let Some(link) = &self.link else { return };
        if link.token != r.token {
            return;
        }
        if self.connecting {
            if let Some(e) = link.stream.take_error() {
                let why = format!("cannot connect to {}: {e}", self.attempt_text());
                self.drop_link(cx);
                return if matches!(self.target, Some(Target::Tcp { .. })) {
                    self.try_next(cx, Some(why))
                } else {
                    self.failed(cx, why)
                };
            }
            if !link.stream.is_connected() {
                if r.closed || r.read_closed {
                    self.drop_link(cx);
                    return self.try_next(cx, Some("connection closed during connect".into()));
                }
                return;
            }
            if self.scanning() {
                self.connecting = false;
                self.verifying = Some(std::time::Instant::now() + VERIFY);
                cx.timer(VERIFY, TIMER_VERIFY);
            } else {
                self.connected(cx);
            }
        }
        if r.writable {
            if let Some(link) = &mut self.link {
                match link.flush() {
                    Ok(n) => cx.core.stats.bytes_out += n as u64,
                    Err(e) => return self.failed(cx, format!("write: {e}")),
                }
            }
        }
        if r.readable || r.read_closed || r.closed {
            self.read(cx);
        }
        self.check_drained(cx);
    }

    fn timer(&mut self, cx: &mut Cx, key: u64) {
        match key {
            TIMER_RECONNECT if !self.closing && self.link.is_none() => self.attempt(cx),
            TIMER_FLUSH => {
                self.drop_link(cx);
                cx.core.state = State::Closed;
            }
            TIMER_READ_MORE => {
                self.read(cx);
                self.check_drained(cx);
            }
            TIMER_SEND => self.expire_send(cx),
            TIMER_VERIFY
                if self
                    .verifying
                    .is_some_and(|t| t <= std::time::Instant::now()) =>
            {
                let why = format!(
                    "{} did not name itself as the bus within {} s",
                    self.attempt_text(),
                    VERIFY.as_secs()
                );
                self.drop_link(cx);
                self.try_next(cx, Some(why));
            }
            _ => {}
        }
    }

    fn completed(&mut self, cx: &mut Cx, kind: CompletionKind) {
        let Some(Target::Tcp { host, ports }) = self.target.clone() else {
            return;
        };
        if self.closing || self.link.is_some() {
            return;
        }
        match kind {
            CompletionKind::Resolved(Ok(addrs)) if !addrs.is_empty() => {
                let ips: Vec<IpAddr> = addrs.iter().map(|a| a.ip()).collect();
                self.try_addresses(cx, &ips, ports);
            }
            CompletionKind::Resolved(Ok(_)) => {
                self.failed(cx, format!("host {host:?} has no address"))
            }
            CompletionKind::Resolved(Err(e)) => {
                self.failed(cx, format!("cannot resolve {host:?}: {e}"))
            }
            CompletionKind::Exited(_) => {}
        }
    }

    fn write(&mut self, cx: &mut Cx, data: &Value, target: Option<&str>) -> Result<ResultCode> {
        if target.is_some_and(|t| !t.is_empty()) {
            return Err(IpcError::ClientTakesNoTarget.into());
        }
        // Unbound with a stamp: socket_connect failed (IPC_AUTO_RECONNECT 0);
        // nothing would ever send a queued message.
        let unbound = cx.core.state == State::Unbound;
        let Some(stamp) = self.stamp.as_ref().filter(|_| !unbound) else {
            return Err(IpcError::ClientNotConnected.into());
        };
        let (kind, body) = message::outgoing(data).map_err(|why| IpcError::BadMessage { why })?;
        let bytes = stamp.encode(kind, body);
        let live = self.live();
        if !live {
            let cap = cx.core.options.int(opt::IPC_QUEUE_SIZE, MODE_CLIENT).max(0);
            self.backlog.push(bytes, cap as usize);
            cx.core.stats.messages_out += 1;
            return Ok(ResultCode::Ok);
        }
        let max = cx
            .core
            .options
            .int(opt::SO_MAX_BUFFERED, MODE_CLIENT)
            .max(0) as usize;
        let pending = self.link.as_ref().map_or(0, |l| l.pending());
        if pending > 0 && pending + bytes.len() > max {
            self.write_owed = true;
            return Err(IpcError::ClientFull { pending, max }.into());
        }
        cx.core.stats.messages_out += 1;
        if !self.send(cx, &bytes) {
            return Err(IpcError::ServerLost.into());
        }
        if self.link.as_ref().is_some_and(|l| l.pending() > 0) {
            self.write_owed = true;
            Ok(ResultCode::EeCallback)
        } else {
            Ok(ResultCode::Ok)
        }
    }

    fn close(&mut self, cx: &mut Cx) -> bool {
        self.closing = true;
        let Some(link) = &mut self.link else {
            return true;
        };
        if self.connecting || link.flush().is_err() || link.pending() == 0 {
            self.drop_link(cx);
            return true;
        }
        cx.timer(FLUSH_DEADLINE, TIMER_FLUSH);
        false
    }

    fn abort(&mut self, cx: &mut Cx) {
        self.drop_link(cx);
    }

    fn status(&self, out: &mut Value) {
        let connected = self.live();
        out.insert(Value::str("connected"), Value::Int(connected as i64));
        out.insert(Value::str("failures"), Value::Int(self.failures as i64));
        out.insert(Value::str("queued"), Value::Int(self.backlog.len() as i64));
        if connected {
            out.insert(Value::str("bus"), Value::str(&self.peer_text));
        }
    }

    fn raw_fd(&self) -> i32 {
        self.link.as_ref().map_or(-1, |l| l.stream.raw_fd())
    }
}
