//! The reactor: one mio `Poll` (epoll) whose file descriptor is the only one
//! the driver watches. Everything unisock waits on is registered here:
//! sockets, a timerfd for all timers, and a `Waker` (eventfd) that helper
//! threads use to post completions (DNS results). Nothing polls: with no
//! sockets ready, no timer due and no completion posted, the fd stays quiet.
//!
//! Not here: what to do with readiness. The core (`crate::core`) maps tokens
//! to sockets and calls their endpoints.

mod pool;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{event::Source, Events, Interest, Poll, Token, Waker};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use parking_lot::Mutex;

pub use pool::Pool;

const WAKER: Token = Token(0);
const TIMER: Token = Token(1);
const FIRST_TOKEN: usize = 2;

/// Work finished on a helper thread, handed back to the driver thread.
pub struct Completion {
    /// Serial number of the socket that asked (stale completions are dropped).
    pub serial: u64,
    pub kind: CompletionKind,
}

pub enum CompletionKind {
    /// Host name resolution for `socket_connect`.
    Resolved(io::Result<Vec<SocketAddr>>),
    /// Child `pid` has exited (the external family's exit-watch thread,
    /// where no pidfd is available).
    Exited(i32),
}

/// Lets a thread of its own (not the pool) hand one completion to the driver
/// thread: it is queued and the reactor's waker makes the driver's fd readable.
pub struct Notifier {
    serial: u64,
    done: Arc<Mutex<Vec<Completion>>>,
    waker: Arc<Waker>,
}

impl Notifier {
    pub fn post(self, kind: CompletionKind) {
        hand_back(
            &self.done,
            &self.waker,
            Completion {
                serial: self.serial,
                kind,
            },
        );
    }
}

/// From any thread: queues `c` for the driver thread and wakes the reactor.
fn hand_back(done: &Mutex<Vec<Completion>>, waker: &Waker, c: Completion) {
    done.lock().push(c);
    if let Err(e) = waker.wake() {
        log::warn(&format!("unisock: waker failed: {e}"));
    }
}

/// What one poll round found for a registered source.
#[derive(Clone, Copy, Debug)]
pub struct Readiness {
    pub token: Token,
    pub readable: bool,
    pub writable: bool,
    /// Error or hang-up reported by epoll.
    pub closed: bool,
    /// The peer's end of the stream is closed (EPOLLRDHUP / EPOLLHUP).
    pub read_closed: bool,
}

/// Something the core must handle after a poll round.
pub enum Happening {
    Io { serial: u64, readiness: Readiness },
    Timer { serial: u64, key: u64 },
    Done(Completion),
}

pub struct Reactor {
    poll: Poll,
    events: Events,
    waker: Arc<Waker>,
    timerfd: TimerFd,
    timer_armed_for: Option<Instant>,
    /// (deadline, sequence, serial, key): a min-heap of pending timers.
    timers: BinaryHeap<Reverse<(Instant, u64, u64, u64)>>,
    timer_seq: u64,
    /// Token → serial of the socket that owns the registration.
    tokens: HashMap<Token, u64>,
    next_token: usize,
    completions: Arc<Mutex<Vec<Completion>>>,
    pool: Option<Pool>,
}

impl Reactor {
    pub fn new() -> io::Result<Reactor> {
        let poll = Poll::new()?;
        // The host's event loop may insist on non-blocking fds (libevent's
        // debug mode aborts otherwise); dispatch never blocks on it anyway.
        let flags = nix::fcntl::fcntl(poll.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)
            .map_err(io::Error::from)?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(poll.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))
            .map_err(io::Error::from)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let timerfd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        poll.registry().register(
            &mut mio::unix::SourceFd(&timerfd.as_fd().as_raw_fd()),
            TIMER,
            Interest::READABLE,
        )?;
        Ok(Reactor {
            poll,
            events: Events::with_capacity(256),
            waker,
            timerfd,
            timer_armed_for: None,
            timers: BinaryHeap::new(),
            timer_seq: 0,
            tokens: HashMap::new(),
            next_token: FIRST_TOKEN,
            completions: Arc::new(Mutex::new(Vec::new())),
            pool: None,
        })
    }

    /// The one fd the driver adds to its event loop (readable = call dispatch).
    pub fn fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }

    /// Registers `source` for the socket with `serial`; returns its token.
    pub fn register<S: Source + ?Sized>(
        &mut self,
        source: &mut S,
        serial: u64,
        interest: Interest,
    ) -> io::Result<Token> {
        let token = Token(self.next_token);
        self.next_token += 1;
        self.poll.registry().register(source, token, interest)?;
        self.tokens.insert(token, serial);
        Ok(token)
    }

    /// Removes a registration; later readiness for its token is ignored.
    pub fn deregister<S: Source + ?Sized>(&mut self, source: &mut S, token: Token) {
        self.tokens.remove(&token);
        // The source may already be closed by the peer; nothing to do then.
        let _ = self.poll.registry().deregister(source);
    }

    /// Arms a timer that reports `(serial, key)` after `delay`.
    pub fn add_timer(&mut self, delay: Duration, serial: u64, key: u64) {
        self.timer_seq += 1;
        self.timers.push(Reverse((
            Instant::now() + delay,
            self.timer_seq,
            serial,
            key,
        )));
        self.rearm();
    }

    fn rearm(&mut self) {
        let next = self.timers.peek().map(|Reverse((t, ..))| *t);
        if next == self.timer_armed_for {
            return;
        }
        self.timer_armed_for = next;
        let result = match next {
            Some(t) => {
                // A zero expiration would disarm the timer; one nanosecond fires at once.
                let d = t
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_nanos(1));
                self.timerfd.set(
                    Expiration::OneShot(TimeSpec::from_duration(d)),
                    TimerSetTimeFlags::empty(),
                )
            }
            None => self.timerfd.unset(),
        };
        if let Err(e) = result {
            log::warn(&format!("unisock: timerfd could not be armed: {e}"));
        }
    }

    /// Makes the reactor fd readable soon, so the driver calls dispatch and
    /// drains events that were queued outside a dispatch (during an efun).
    pub fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            log::warn(&format!("unisock: waker failed: {e}"));
        }
    }

    /// A handle for a thread that will post one completion for socket `serial`.
    pub fn notifier(&self, serial: u64) -> Notifier {
        Notifier {
            serial,
            done: Arc::clone(&self.completions),
            waker: Arc::clone(&self.waker),
        }
    }

    /// Starts `job` on a helper thread; its completion wakes the reactor.
    pub fn spawn(&mut self, job: Box<dyn FnOnce() -> Completion + Send>) {
        let pool = self.pool.get_or_insert_with(|| {
            Pool::new(2, Arc::clone(&self.completions), Arc::clone(&self.waker))
        });
        pool.submit(job);
    }

    /// One non-blocking round: everything ready now, due timers, completions.
    pub fn poll_once(&mut self, out: &mut Vec<Happening>) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(Duration::ZERO)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let mut timer_fired = false;
        for ev in self.events.iter() {
            match ev.token() {
                WAKER => {}
                TIMER => timer_fired = true,
                token => {
                    if let Some(&serial) = self.tokens.get(&token) {
                        out.push(Happening::Io {
                            serial,
                            readiness: Readiness {
                                token,
                                readable: ev.is_readable() || ev.is_read_closed(),
                                writable: ev.is_writable() || ev.is_write_closed(),
                                closed: ev.is_error(),
                                read_closed: ev.is_read_closed(),
                            },
                        });
                    }
                }
            }
        }
        if timer_fired {
            // Consume the expiration; EAGAIN just means it was already read.
            let _ = self.timerfd.wait();
            self.timer_armed_for = None;
        }
        let now = Instant::now();
        while let Some(Reverse((t, _, serial, key))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            out.push(Happening::Timer { serial, key });
        }
        self.rearm();
        out.extend(self.completions.lock().drain(..).map(Happening::Done));
        Ok(())
    }
}

/// Logging to the driver's stderr (the driver's debug log when it captures it).
pub mod log {
    pub fn warn(msg: &str) {
        eprintln!("{msg}");
    }
}
