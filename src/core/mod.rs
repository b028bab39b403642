//! The core: the socket table keyed by LPC socket number, the reactor, and
//! the event queue. Efun-shaped methods here are what the C ABI calls; each
//! finds the socket, checks what is common to all modes, and hands the rest
//! to the socket's [`Endpoint`].

pub mod addr;
pub mod endpoint;
pub mod event;
pub mod family;

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

pub use endpoint::{unsupported, Accepted, Cx, Endpoint, SocketCore, State};
pub use event::{Event, EventKind, CLOSED_BY_PEER};
pub use family::{Families, FamilyDef};

use crate::error::{Error, Result, ResultCode};
use crate::modes;
use crate::options::ids::SO_STATISTICS;
use crate::options::{catalog, Access};
use crate::reactor::{Happening, Reactor};
use crate::value::Value;

struct Socket {
    core: SocketCore,
    ep: Box<dyn Endpoint>,
}

/// Hashes socket ids and serials (small integers chosen by us or the shim,
/// never by the network) with one multiply instead of SipHash.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ *b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_i32(&mut self, n: i32) {
        self.0 = (n as u32 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// All of unisock's state for one driver.
pub struct Unisock {
    /// Which family makes the endpoints of each mode (`registry::FAMILIES`).
    families: &'static Families,
    reactor: Reactor,
    sockets: IdMap<i32, Socket>,
    /// Serial → LPC id of live sockets.
    by_serial: IdMap<u64, i32>,
    /// Sockets LPC closed that are still flushing output; they have no id.
    flushing: IdMap<u64, Socket>,
    events: VecDeque<Event>,
    next_serial: u64,
    scratch: Vec<Happening>,
    dispatching: bool,
}

/// Lets the endpoint act on an option just stored; on its error the option
/// gets its previous value back.
fn applied(
    cx: &mut Cx,
    ep: &mut dyn Endpoint,
    id: u16,
    before: Option<Option<Value>>,
) -> Result<()> {
    let r = ep.option_set(cx, id);
    if r.is_err() {
        let before =
            before.expect("option_set refused an option the catalog says is not refusable");
        cx.core.options.restore(id, before);
    }
    r
}

/// The value to put back should the endpoint refuse option `id`: kept only
/// for the options the catalog marks refusable (no copy on the common path).
fn kept_for_refusal(cx: &Cx, id: i64) -> Option<Option<Value>> {
    catalog::find(id)
        .filter(|d| d.refusable)
        .map(|_| cx.core.options.snapshot(id))
}

fn bad_socket(id: i32) -> Error {
    Error::new(ResultCode::EeBadf, format!("socket {id} is not open"))
}

impl Unisock {
    /// A library state serving the modes of `families` (`registry::FAMILIES`).
    pub fn new(families: &'static Families) -> Result<Unisock> {
        let reactor =
            Reactor::new().map_err(|e| Error::io("reactor could not start", ResultCode::Io, &e))?;
        Ok(Unisock {
            families,
            reactor,
            sockets: IdMap::default(),
            by_serial: IdMap::default(),
            flushing: IdMap::default(),
            events: VecDeque::new(),
            next_serial: 1,
            scratch: Vec::new(),
            dispatching: false,
        })
    }

    pub fn reactor_fd(&self) -> i32 {
        self.reactor.fd()
    }

    fn with<R>(&mut self, id: i32, f: impl FnOnce(&mut Cx, &mut dyn Endpoint) -> R) -> Result<R> {
        let before = self.events.len();
        let sock = self.sockets.get_mut(&id).ok_or_else(|| bad_socket(id))?;
        let mut cx = Cx {
            core: &mut sock.core,
            reactor: &mut self.reactor,
            events: Some(&mut self.events),
        };
        let r = f(&mut cx, sock.ep.as_mut());
        if sock.core.dead {
            self.reap(id);
        }
        // With events already queued the host is draining (it drains until
        // the queue is empty) and finds the new ones without a wake-up.
        if self.events.len() > before && before == 0 && !self.dispatching {
            // Queued during an efun call: make sure the driver comes back for it.
            self.reactor.wake();
        }
        Ok(r)
    }

    /// Drops a socket whose endpoint declared it dead (after it emitted close).
    fn reap(&mut self, id: i32) {
        if self.sockets.get(&id).is_some_and(|s| s.core.dead) {
            if let Some(mut s) = self.sockets.remove(&id) {
                self.by_serial.remove(&s.core.serial);
                let mut cx = Cx {
                    core: &mut s.core,
                    reactor: &mut self.reactor,
                    events: None,
                };
                s.ep.abort(&mut cx);
            }
        }
    }

    fn insert(&mut self, id: i32, mode: u8, ep: Box<dyn Endpoint>) -> &mut Socket {
        let serial = self.next_serial;
        self.next_serial += 1;
        self.by_serial.insert(serial, id);
        self.sockets.insert(
            id,
            Socket {
                core: SocketCore::new(id, serial, mode),
                ep,
            },
        );
        self.sockets.get_mut(&id).expect("just inserted")
    }

    /// socket_create: the caller chose the LPC id (the shim's socket table).
    pub fn create(&mut self, id: i32, mode: i64) -> Result<()> {
        if id < 0 {
            return Err(Error::new(
                ResultCode::EeFdrange,
                format!("socket id {id} is negative"),
            ));
        }
        if self.sockets.contains_key(&id) {
            return Err(Error::new(
                ResultCode::EeIsconn,
                format!("socket {id} is already in use"),
            ));
        }
        let Some((mode, family)) = family::serving(self.families, mode) else {
            let info = modes::info(mode).ok_or_else(|| {
                Error::new(
                    ResultCode::EeModenotsupp,
                    format!("socket_create: unknown socket mode {mode}"),
                )
            })?;
            let msg = format!(
                "socket_create: mode {} ({}) is not supported by this build of unisock yet",
                info.name, info.number
            );
            crate::reactor::log::warn(&msg);
            return Err(Error::new(ResultCode::EeModenotsupp, msg));
        };
        crate::policy::gate::mode(mode)?;
        let ep = (family.new_endpoint)(mode)?;
        self.insert(id, mode, ep);
        Ok(())
    }

    /// Hands an existing connected stream fd to the reactor as a STREAM socket
    /// (external_start's socketpair end). unisock owns and closes the fd.
    pub fn adopt_fd(&mut self, id: i32, fd: std::os::fd::OwnedFd, mode: i64) -> Result<()> {
        if self.sockets.contains_key(&id) {
            return Err(Error::new(
                ResultCode::EeIsconn,
                format!("socket {id} is already in use"),
            ));
        }
        let (mode, adopt) = u8::try_from(mode)
            .ok()
            .and_then(|m| {
                self.families
                    .iter()
                    .find_map(|f| f.adopt.filter(|(modes, _)| modes.contains(m)))
                    .map(|(_, adopt)| (m, adopt))
            })
            .ok_or_else(|| {
                Error::new(
                    ResultCode::EeModenotsupp,
                    format!("adopt_fd: mode {mode} cannot adopt an fd"),
                )
            })?;
        let ep = adopt(fd, mode)?;
        let sock = self.insert(id, mode, ep);
        sock.core.state = State::DataXfer;
        sock.core.mark_connected();
        let r = self.with(id, |cx, ep| ep.attach(cx))?;
        if let Err(e) = r {
            self.sockets.remove(&id);
            return Err(e);
        }
        Ok(())
    }

    /// socket_bind(id, port [, "ip port"]): with `addr`, it is the whole address.
    pub fn bind(&mut self, id: i32, port: i64, addr: Option<&str>) -> Result<()> {
        let target = match addr {
            Some(a) => addr::parse_numeric(a)?,
            None => {
                let port = u16::try_from(port).map_err(|_| {
                    Error::new(
                        ResultCode::EeBadaddr,
                        format!("socket_bind: port {port} is out of range"),
                    )
                })?;
                SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)
            }
        };
        self.with(id, |cx, ep| {
            if cx.core.state != State::Unbound {
                return Err(Error::new(
                    ResultCode::EeIsbound,
                    "socket_bind: socket is already bound",
                ));
            }
            match ep.bind(cx, target) {
                // No IPv6 on this host: the wildcard falls back to IPv4.
                Err(e) if addr.is_none() && e.code == ResultCode::EeBind => ep.bind(
                    cx,
                    SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), target.port()),
                ),
                r => r,
            }
        })?
    }

    pub fn listen(&mut self, id: i32) -> Result<()> {
        self.with(id, |cx, ep| ep.listen(cx))?
    }

    /// socket_accept: the new socket gets `new_id` and a copy of the listener's options.
    pub fn accept(&mut self, listener: i32, new_id: i32) -> Result<()> {
        if self.sockets.contains_key(&new_id) {
            return Err(Error::new(
                ResultCode::EeIsconn,
                format!("socket {new_id} is already in use"),
            ));
        }
        let accepted = self.with(listener, |cx, ep| ep.accept(cx))??;
        let (mode, options) = {
            let l = &self.sockets[&listener].core;
            (l.mode, l.options.clone())
        };
        let sock = self.insert(new_id, mode, accepted.endpoint);
        sock.core.options = options;
        sock.core.peer = accepted.peer;
        sock.core.local = accepted.local;
        sock.core.state = accepted.state;
        sock.core.mark_connected();
        let r = self.with(new_id, |cx, ep| ep.attach(cx))?;
        if let Err(e) = r {
            if let Some(s) = self.sockets.remove(&new_id) {
                self.by_serial.remove(&s.core.serial);
            }
            return Err(e);
        }
        Ok(())
    }

    pub fn connect(&mut self, id: i32, address: &str) -> Result<()> {
        self.with(id, |cx, ep| ep.connect(cx, address))?
    }

    pub fn write(&mut self, id: i32, data: &Value, target: Option<&str>) -> Result<ResultCode> {
        self.with(id, |cx, ep| {
            let r = ep.write(cx, data, target);
            if r.is_err() {
                cx.core.stats.errors += 1;
            }
            r
        })?
    }

    /// socket_close by LPC: no close callback; queued output still goes out.
    pub fn close(&mut self, id: i32) -> Result<()> {
        // Events still queued for this id (even for a socket that already
        // died) must not reach a later socket with the same id.
        self.events.retain(|e| e.socket != id);
        let mut sock = self.sockets.remove(&id).ok_or_else(|| bad_socket(id))?;
        self.by_serial.remove(&sock.core.serial);
        let mut cx = Cx {
            core: &mut sock.core,
            reactor: &mut self.reactor,
            events: None,
        };
        let done = sock.ep.close(&mut cx);
        if done || sock.core.dead {
            let mut cx = Cx {
                core: &mut sock.core,
                reactor: &mut self.reactor,
                events: None,
            };
            sock.ep.abort(&mut cx);
        } else {
            sock.core.state = State::Flushing;
            self.flushing.insert(sock.core.serial, sock);
        }
        Ok(())
    }

    /// An efun of one family's own (external_* …) on socket `id`, which
    /// must be of one of `family`'s modes, else EEMODENOTSUPP naming its mode.
    /// `f` gets the socket's endpoint; the family takes its own type back
    /// with `downcast_mut`. The one route for every family's efuns.
    pub fn family_call<R>(
        &mut self,
        id: i32,
        family: &FamilyDef,
        efun: &str,
        f: impl FnOnce(&mut Cx, &mut dyn Endpoint) -> Result<R>,
    ) -> Result<R> {
        let mode = self
            .sockets
            .get(&id)
            .ok_or_else(|| bad_socket(id))?
            .core
            .mode;
        if !family.modes.contains(mode) {
            return Err(Error::new(
                ResultCode::EeModenotsupp,
                format!(
                    "{efun}: socket {id} is {} (mode {mode}), not {}",
                    modes::name(mode),
                    family.what
                ),
            ));
        }
        self.with(id, f)?
    }

    pub fn release(&mut self, id: i32) -> Result<()> {
        let s = self.sockets.get_mut(&id).ok_or_else(|| bad_socket(id))?;
        if s.core.released {
            return Err(Error::code(ResultCode::EeSockrlsd));
        }
        s.core.released = true;
        Ok(())
    }

    pub fn acquire(&mut self, id: i32) -> Result<()> {
        let s = self.sockets.get_mut(&id).ok_or_else(|| bad_socket(id))?;
        if !s.core.released {
            return Err(Error::code(ResultCode::EeSocknotrlsd));
        }
        s.core.released = false;
        Ok(())
    }

    pub fn set_option(&mut self, id: i32, option: i64, value: &Value) -> Result<()> {
        self.with(id, |cx, ep| {
            let started = !matches!(cx.core.state, State::Unbound | State::Bound);
            let before = kept_for_refusal(cx, option);
            let def = cx.core.options.set(option, value, cx.core.mode, started)?;
            applied(cx, ep, def.id, before)
        })?
    }

    /// set_option for an int (no `Value` built): same rules and messages.
    pub fn set_option_int(&mut self, id: i32, option: i64, value: i64) -> Result<()> {
        self.with(id, |cx, ep| {
            let started = !matches!(cx.core.state, State::Unbound | State::Bound);
            let before = kept_for_refusal(cx, option);
            let def = cx
                .core
                .options
                .set_int(option, value, cx.core.mode, started)?;
            applied(cx, ep, def.id, before)
        })?
    }

    /// get_option for an int: Ok(None) when the value is not an int.
    pub fn get_option_int(&self, id: i32, option: i64) -> Result<Option<i64>> {
        let s = self.sockets.get(&id).ok_or_else(|| bad_socket(id))?;
        if option == i64::from(SO_STATISTICS) {
            return self.get_option(id, option).map(|v| v.as_int());
        }
        s.core.options.get_int(option, s.core.mode)
    }

    pub fn get_option(&self, id: i32, option: i64) -> Result<Value> {
        let s = self.sockets.get(&id).ok_or_else(|| bad_socket(id))?;
        if option == i64::from(SO_STATISTICS) {
            let def = catalog::find(option).expect("SO_STATISTICS is in the catalog");
            debug_assert_eq!(def.access, Access::ReadOnly);
            crate::options::validate::check_mode(def, s.core.mode, "socket_get_option")?;
            return Ok(s.core.statistics());
        }
        s.core.options.get(option, s.core.mode)
    }

    fn status_of(s: &Socket) -> Value {
        let fmt =
            |a: &Option<SocketAddr>| a.as_ref().map(addr::format).unwrap_or_else(|| "*".into());
        let mut m = Value::mapping([
            ("id", Value::Int(s.core.id as i64)),
            ("fd", Value::Int(s.ep.raw_fd() as i64)),
            ("mode", Value::Int(s.core.mode as i64)),
            ("mode_name", Value::str(modes::name(s.core.mode))),
            ("state", Value::str(s.core.state.name())),
            ("local", Value::Str(fmt(&s.core.local))),
            ("remote", Value::Str(fmt(&s.core.peer))),
            ("released", Value::Int(s.core.released as i64)),
        ]);
        s.ep.status(&mut m);
        m
    }

    /// socket_status(id): one mapping; `None`: an array of all, by id.
    pub fn status(&self, id: Option<i32>) -> Result<Value> {
        match id {
            Some(id) => {
                let s = self.sockets.get(&id).ok_or_else(|| bad_socket(id))?;
                Ok(Self::status_of(s))
            }
            None => {
                let mut ids: Vec<_> = self.sockets.keys().copied().collect();
                ids.sort_unstable();
                Ok(Value::Array(
                    ids.iter()
                        .map(|i| Self::status_of(&self.sockets[i]))
                        .collect(),
                ))
            }
        }
    }

    /// socket_address: "ip port" of the peer (or of the local end with `local`).
    pub fn address(&self, id: i32, local: bool) -> Result<Value> {
        let s = self.sockets.get(&id).ok_or_else(|| bad_socket(id))?;
        let a = if local { &s.core.local } else { &s.core.peer };
        Ok(a.as_ref()
            .map(|a| Value::Str(addr::format(a)))
            .unwrap_or(Value::Int(0)))
    }

    /// Number of sockets with an LPC id, and of those still flushing without one.
    pub fn counts(&self) -> (usize, usize) {
        (self.sockets.len(), self.flushing.len())
    }

    /// Runs one non-blocking round of the reactor and queues the resulting events.
    pub fn dispatch(&mut self) -> Result<usize> {
        let mut happenings = std::mem::take(&mut self.scratch);
        happenings.clear();
        self.reactor
            .poll_once(&mut happenings)
            .map_err(|e| Error::io("reactor poll failed", ResultCode::Io, &e))?;
        let before = self.events.len();
        self.dispatching = true;
        for h in happenings.drain(..) {
            let serial = match &h {
                Happening::Io { serial, .. } | Happening::Timer { serial, .. } => *serial,
                Happening::Done(c) => c.serial,
            };
            let run = |cx: &mut Cx, ep: &mut dyn Endpoint| match h {
                Happening::Io { readiness, .. } => ep.ready(cx, readiness),
                Happening::Timer { key, .. } => ep.timer(cx, key),
                Happening::Done(c) => ep.completed(cx, c.kind),
            };
            if let Some(&id) = self.by_serial.get(&serial) {
                let _ = self.with(id, run);
            } else if let Some(sock) = self.flushing.get_mut(&serial) {
                let mut cx = Cx {
                    core: &mut sock.core,
                    reactor: &mut self.reactor,
                    events: None,
                };
                run(&mut cx, sock.ep.as_mut());
                if sock.core.dead || sock.core.state == State::Closed {
                    if let Some(mut s) = self.flushing.remove(&serial) {
                        let mut cx = Cx {
                            core: &mut s.core,
                            reactor: &mut self.reactor,
                            events: None,
                        };
                        s.ep.abort(&mut cx);
                    }
                }
            }
        }
        self.dispatching = false;
        self.scratch = happenings;
        Ok(self.events.len().saturating_sub(before))
    }

    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// Closes everything at once (driver shutdown): no callbacks, no flushing.
    pub fn close_all(&mut self) {
        let all: Vec<Socket> = self
            .sockets
            .drain()
            .map(|(_, s)| s)
            .chain(self.flushing.drain().map(|(_, s)| s))
            .collect();
        for mut s in all {
            let mut cx = Cx {
                core: &mut s.core,
                reactor: &mut self.reactor,
                events: None,
            };
            s.ep.abort(&mut cx);
        }
        self.by_serial.clear();
        self.events.clear();
    }
}
