//! One reactor timer kept no later than the earliest of an endpoint's
//! deadlines. Timers cannot be taken back, so `arm` adds a timer only for a
//! moment earlier than the one already pending; when the timer comes the
//! endpoint calls `forget` and checks its real deadlines itself (a stale
//! timer costs one extra look). Used for a connection's request, read, idle
//! and no-progress deadlines (HTTP, legacy streams, `output::Watch`) and the
//! IPC bus's.

use std::time::Instant;

use crate::core::Cx;

#[derive(Default)]
pub struct Deadline {
    at: Option<Instant>,
}

impl Deadline {
    /// Makes sure timer `key` fires at `due` or sooner.
    pub fn arm(&mut self, cx: &mut Cx, due: Instant, key: u64) {
        if self.at.is_some_and(|t| t <= due) {
            return;
        }
        self.at = Some(due);
        cx.timer(due.saturating_duration_since(Instant::now()), key);
    }

    pub fn is_armed(&self) -> bool {
        self.at.is_some()
    }

    /// When the armed timer fires (None: none armed).
    pub fn at(&self) -> Option<Instant> {
        self.at
    }

    /// The timer came, or the next `arm` must arm whatever it is given.
    pub fn forget(&mut self) {
        self.at = None;
    }
}
