//! Queued output that makes no progress, for every family that queues bytes
//! toward a remote peer:
//!
//! - [`Watch`], one per connection: the no-progress clock. It starts when the
//!   queue stops being empty and starts again whenever a byte of it reaches
//!   the kernel; while it runs, one reactor timer is armed for the moment it
//!   would pass the deadline (SO_SEND_TIMEOUT, or SO_HTTP_READ_TIMEOUT for
//!   HTTP). With nothing queued nothing is armed, and a timer that fires
//!   after the queue drained only finds nothing to do.
//! - [`Budget`], one per listener: the bytes its accepted connections queue
//!   together. A queueing write that would pass the total closes the
//!   connections that made no progress for longest (ties: most bytes queued)
//!   until it fits; each is closed from its own timer, at once.
//!
//! Everything runs on the driver thread. The common case — a write that fits
//! the budget, a queue that changed — takes no lock and looks nothing up: a
//! connection keeps its own count and clock, mirrored into its [`Slot`]
//! (plain atomics), and the listener's total is an atomic too. The table of
//! members (behind a mutex, only so that endpoints stay `Send`) is touched
//! when a connection joins or leaves, when a write would pass the total
//! (then it is searched for the ones to close), and when a timer asks
//! whether its connection was chosen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Deadline;
use crate::core::Cx;

/// A listener's connections together queue at most this many times the
/// listener's SO_MAX_BUFFERED.
pub const LISTENER_FACTOR: usize = 16;

/// One connection's no-progress clock and its place in a listener's budget.
#[derive(Default)]
pub struct Watch {
    /// Since when queued output has waited without a byte of it going out;
    /// None while nothing is queued.
    since: Option<Instant>,
    /// The bytes queued as last noted.
    queued: usize,
    /// The timer armed for the deadline.
    timer: Deadline,
    seat: Option<Seat>,
}

impl Watch {
    /// Since when queued output has waited without a byte of it going out;
    /// None while nothing is queued.
    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    /// Counts this connection's queued bytes in `budget` (accepted connections).
    pub fn join(&mut self, budget: &Budget, serial: u64) {
        let slot = Arc::new(Slot::default());
        budget.0.table.lock().insert(
            serial,
            Member {
                slot: slot.clone(),
                evicted: None,
            },
        );
        self.seat = Some(Seat {
            budget: budget.clone(),
            serial,
            slot,
        });
        if self.queued > 0 || self.since.is_some() {
            let (queued, since) = (self.queued, self.since);
            self.seat
                .as_ref()
                .expect("just seated")
                .update(0, queued, since);
        }
    }

    /// After the queue changed: `pending` bytes wait; `moved`: some reached
    /// the kernel meanwhile. Nothing to do when neither the count nor the
    /// clock changed.
    pub fn note(&mut self, pending: usize, moved: bool) {
        let since = match (pending, moved) {
            (0, _) => None,
            (_, true) => Some(Instant::now()),
            (_, false) => Some(self.since.unwrap_or_else(Instant::now)),
        };
        if pending == self.queued && since == self.since {
            return;
        }
        let was = std::mem::replace(&mut self.queued, pending);
        self.since = since;
        if let Some(seat) = &self.seat {
            seat.update(was, pending, since);
        }
    }

    /// Arms timer `key` for when the queued output will have made no progress
    /// for `limit` (None: no deadline). Nothing when nothing is queued or a
    /// timer for that moment or sooner is armed already.
    pub fn arm(&mut self, cx: &mut Cx, limit: Option<Duration>, key: u64) {
        let (Some(since), Some(limit)) = (self.since, limit) else {
            return;
        };
        self.timer.arm(cx, since + limit, key);
    }

    /// Timer `key` fired: the close reason when the connection must go (its
    /// `pending` bytes made no progress for `limit`, or its listener's budget
    /// chose it); otherwise the timer is armed again while output waits.
    /// `option` names the deadline in the reason.
    pub fn fired(
        &mut self,
        cx: &mut Cx,
        limit: Option<Duration>,
        key: u64,
        pending: usize,
        option: &str,
    ) -> Option<String> {
        if let Some(why) = self.seat.as_ref().and_then(Seat::evicted) {
            return Some(why);
        }
        let now = Instant::now();
        if self.timer.at().is_some_and(|t| now < t) {
            return None; // an older timer, superseded by a sooner one
        }
        self.timer.forget();
        let (Some(since), Some(limit)) = (self.since, limit) else {
            return None;
        };
        if now.duration_since(since) >= limit {
            return Some(format!(
                "too slow: no write progress for {} ms ({pending} bytes queued; {option})",
                limit.as_millis()
            ));
        }
        self.arm(cx, Some(limit), key);
        None
    }

    /// Before `incoming` more bytes are queued: makes room for them in the
    /// listener's budget (see [`Budget`]). Err(reason) when this connection
    /// itself is the one to close; the others chosen get timer `key` now.
    pub fn make_room(&mut self, cx: &mut Cx, incoming: usize, key: u64) -> Result<(), String> {
        match &self.seat {
            Some(seat) => seat.budget.make_room(cx, seat.serial, incoming, key),
            None => Ok(()),
        }
    }
}

/// What the connections accepted from one listener queue together. Cloned
/// into each of them; the listener sets the limit.
#[derive(Clone)]
pub struct Budget(Arc<Shared>);

struct Shared {
    /// LISTENER_FACTOR × the listener's SO_MAX_BUFFERED.
    limit: AtomicUsize,
    /// Bytes queued by the members not yet chosen to close.
    total: AtomicUsize,
    /// The instant the members' clocks are counted from (see [`Slot`]).
    epoch: Instant,
    /// By socket serial.
    table: Mutex<HashMap<u64, Member>>,
}

struct Member {
    slot: Arc<Slot>,
    /// Chosen to close, with the reason.
    evicted: Option<String>,
}

/// What a member's [`Watch`] last noted, readable by whoever searches the
/// table. Only the driver thread writes or reads it: Relaxed is enough.
#[derive(Default)]
struct Slot {
    queued: AtomicUsize,
    /// The clock, as nanoseconds since the budget's epoch + 1; 0: not running.
    since: AtomicU64,
    /// Chosen to close: its bytes no longer count in the total.
    evicted: AtomicBool,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget(Arc::new(Shared {
            limit: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            epoch: Instant::now(),
            table: Mutex::new(HashMap::new()),
        }))
    }
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        let b = Budget::default();
        b.set_limit(limit);
        b
    }

    /// The listener's SO_MAX_BUFFERED (re)set: the total allowed is
    /// LISTENER_FACTOR times it.
    pub fn set_limit(&self, max_buffered: usize) {
        self.0
            .limit
            .store(max_buffered.saturating_mul(LISTENER_FACTOR), Relaxed);
    }

    /// Bytes queued now by the listener's connections (for socket_status).
    pub fn queued(&self) -> usize {
        self.0.total.load(Relaxed)
    }

    fn stamp(&self, since: Option<Instant>) -> u64 {
        since.map_or(0, |s| {
            s.saturating_duration_since(self.0.epoch).as_nanos() as u64 + 1
        })
    }

    fn make_room(&self, cx: &mut Cx, me: u64, incoming: usize, key: u64) -> Result<(), String> {
        let limit = self.0.limit.load(Relaxed);
        if self.0.total.load(Relaxed).saturating_add(incoming) <= limit {
            return Ok(()); // the common case: no lock, no search, no clock
        }
        let mut t = self.0.table.lock();
        let mut mine = None;
        while self.0.total.load(Relaxed).saturating_add(incoming) > limit {
            // The one stalled longest; of equals, the one holding most.
            let victim = t
                .iter()
                .filter(|(_, m)| m.evicted.is_none())
                .filter_map(|(&serial, m)| {
                    let queued = m.slot.queued.load(Relaxed);
                    let since = m.slot.since.load(Relaxed);
                    (queued > 0 && since > 0).then_some((since, std::cmp::Reverse(queued), serial))
                })
                .min();
            let Some((since, std::cmp::Reverse(queued), serial)) = victim else {
                break; // nothing left to close: one write larger than the whole budget
            };
            let now = self.stamp(Some(Instant::now()));
            let waited = Duration::from_nanos(now.saturating_sub(since));
            let why = format!(
                "too slow: the listener's connections would queue over {limit} bytes together \
                 ({LISTENER_FACTOR} x its SO_MAX_BUFFERED); this one made no progress for longest \
                 ({queued} bytes queued, none written for {} ms)",
                waited.as_millis()
            );
            let m = t.get_mut(&serial).expect("member just found");
            m.evicted = Some(why.clone());
            m.slot.evicted.store(true, Relaxed);
            self.0.total.fetch_sub(queued, Relaxed);
            if serial == me {
                mine = Some(why);
            } else {
                cx.reactor.add_timer(Duration::ZERO, serial, key);
            }
        }
        mine.map_or(Ok(()), Err)
    }
}

/// A connection's entry in its listener's budget; leaves it when dropped.
struct Seat {
    budget: Budget,
    serial: u64,
    slot: Arc<Slot>,
}

impl Seat {
    /// The connection's count went from `was` to `queued` bytes, its clock
    /// to `since`.
    fn update(&self, was: usize, queued: usize, since: Option<Instant>) {
        let s = &self.slot;
        if !s.evicted.load(Relaxed) {
            let total = &self.budget.0.total;
            if queued >= was {
                total.fetch_add(queued - was, Relaxed);
            } else {
                total.fetch_sub(was - queued, Relaxed);
            }
        }
        s.queued.store(queued, Relaxed);
        s.since.store(self.budget.stamp(since), Relaxed);
    }

    fn evicted(&self) -> Option<String> {
        if !self.slot.evicted.load(Relaxed) {
            return None;
        }
        let t = self.budget.0.table.lock();
        t.get(&self.serial).and_then(|m| m.evicted.clone())
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.budget.0.table.lock().remove(&self.serial);
        if !self.slot.evicted.load(Relaxed) {
            self.budget
                .0
                .total
                .fetch_sub(self.slot.queued.load(Relaxed), Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a `Cx` for the budget's timers is made of.
    fn parts() -> (crate::reactor::Reactor, crate::core::SocketCore) {
        (
            crate::reactor::Reactor::new().unwrap(),
            crate::core::SocketCore::new(9, 9, 1),
        )
    }

    fn member(b: &Budget, serial: u64, queued: usize, since: Instant) -> Watch {
        let mut w = Watch::default();
        w.join(b, serial);
        w.since = Some(since);
        w.queued = queued;
        w.seat.as_ref().unwrap().update(0, queued, Some(since));
        w
    }

    #[test]
    fn totals_follow_updates_and_leaving() {
        let b = Budget::new(1000);
        let now = Instant::now();
        let mut a = member(&b, 1, 300, now);
        let c = member(&b, 2, 200, now);
        assert_eq!(b.queued(), 500);
        a.note(0, true);
        assert_eq!(b.queued(), 200);
        assert!(a.since.is_none());
        drop(c);
        assert_eq!(b.queued(), 0);
        assert!(b.0.table.lock().len() == 1);
    }

    #[test]
    fn room_is_made_by_closing_the_longest_stalled_first() {
        let (mut reactor, mut core) = parts();
        let mut cx = Cx {
            core: &mut core,
            reactor: &mut reactor,
            events: None,
        };
        let b = Budget::new(100); // 1600 bytes together
                                  // Later than the budget's epoch, so that t0 - 10 ms is too.
        let t0 = Instant::now() + Duration::from_millis(20);
        let ms = Duration::from_millis;
        let old = member(&b, 1, 500, t0);
        let tie_small = member(&b, 2, 300, t0 + ms(5));
        let tie_big = member(&b, 3, 600, t0 + ms(5));
        let mut me = member(&b, 9, 0, t0);
        me.note(0, true);
        assert_eq!(b.queued(), 1400);
        assert_eq!(me.make_room(&mut cx, 200, 7), Ok(()));
        assert!(old.seat.as_ref().unwrap().evicted().is_none(), "it fits");
        // 1400 + 700 > 1600: the oldest goes (1400 - 500 + 700 = 1600 fits).
        assert_eq!(me.make_room(&mut cx, 700, 7), Ok(()));
        let why = old.seat.as_ref().unwrap().evicted().unwrap();
        assert!(why.contains("500 bytes queued"), "{why}");
        assert!(tie_small.seat.as_ref().unwrap().evicted().is_none());
        assert_eq!(b.queued(), 900);
        // Of two stalled as long, the one holding more goes first.
        assert_eq!(me.make_room(&mut cx, 1000, 7), Ok(()));
        assert!(tie_big.seat.as_ref().unwrap().evicted().is_some());
        assert!(tie_small.seat.as_ref().unwrap().evicted().is_none());
        assert_eq!(b.queued(), 300);
        // The writer itself, stalled longest, is told to close.
        let mut slow = member(&b, 4, 1000, t0 - ms(10));
        assert!(slow.make_room(&mut cx, 400, 7).is_err());
        // Updates of a chosen connection no longer count; leaving does not underflow.
        old.seat.as_ref().unwrap().update(500, 50, Some(t0));
        assert_eq!(b.queued(), 300);
        drop((old, tie_big, slow));
        assert_eq!(b.queued(), 300);
    }

    #[test]
    fn clock_restarts_only_on_progress() {
        let mut w = Watch::default();
        w.note(10, false);
        let first = w.since.unwrap();
        w.note(20, false);
        assert_eq!(w.since, Some(first));
        w.note(5, true);
        assert!(w.since.unwrap() >= first);
        w.note(0, false);
        assert_eq!(w.since, None);
    }

    #[test]
    fn unchanged_notes_and_fitting_writes_touch_nothing_shared() {
        let (mut reactor, mut core) = parts();
        let mut cx = Cx {
            core: &mut core,
            reactor: &mut reactor,
            events: None,
        };
        let b = Budget::new(100);
        let mut w = Watch::default();
        w.join(&b, 1);
        w.note(300, false);
        assert_eq!(b.queued(), 300);
        // While the table is held elsewhere, an unchanged note and a write
        // that fits must not wait for it (they would deadlock here).
        let held = b.0.table.lock();
        w.note(300, false);
        assert_eq!(w.make_room(&mut cx, 1000, 7), Ok(()));
        w.note(200, true);
        assert_eq!(b.queued(), 200);
        drop(held);
        // A write past the total does search the table: both go, the one
        // stalled longer first; the chosen ones' notes no longer count.
        let mut other = member(&b, 2, 1000, Instant::now());
        assert!(other.make_room(&mut cx, 1000, 7).is_err());
        assert!(w.seat.as_ref().unwrap().evicted().is_some());
        assert_eq!(b.queued(), 0);
        w.note(50, true);
        assert_eq!(b.queued(), 0);
        drop(w);
        assert_eq!(b.0.table.lock().len(), 1);
        drop(other);
        assert_eq!(b.queued(), 0);
    }
}
