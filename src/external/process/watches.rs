//! The socket's inotify watches (EXTERNAL_WATCH_PATH and
//! external_monitor_path) and the file events held for
//! external_get_file_events.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Interest, Token};

use super::{opt, Process, PULLED_EVENTS_MAX, TIMER_WATCH_MORE};
use crate::core::{Cx, EventKind};
use crate::error::Result;
use crate::external::watch::Watches;
use crate::external::ExternalError;
use crate::modes;
use crate::policy::PolicyError;
use crate::value::Value;

/// The inotify watches of the socket (EXTERNAL_WATCH_PATH and
/// external_monitor_path), registered on the reactor.
pub(super) struct Watch {
    pub(super) w: Watches,
    pub(super) token: Token,
    /// The paths EXTERNAL_WATCH_PATH names and the ones external_monitor_path
    /// added (canonical keys; a path may be in both). A path is watched while
    /// either names it.
    pub(super) from_option: Vec<String>,
    pub(super) from_efun: Vec<String>,
}

impl Process {
    /// Whether output and file events are held for pulling (mode 23 or
    /// EXTERNAL_ASYNC 0) rather than sent to the read callback.
    fn pulls(&self, cx: &Cx) -> bool {
        self.mode == modes::EXTERNAL_COMMAND_MODE
            || cx.core.options.int(opt::EXTERNAL_ASYNC, self.mode) == 0
    }

    /// The socket's watches, made and registered on first use.
    pub(super) fn watch(&mut self, cx: &mut Cx) -> Result<&mut Watch> {
        if self.kept.watch.is_none() {
            let fail = |e: io::Error| ExternalError::Inotify { why: e.to_string() };
            let w = Watches::new().map_err(fail)?;
            let token = cx
                .register(&mut SourceFd(&w.fd()), Interest::READABLE)
                .map_err(fail)?;
            self.kept.watch = Some(Watch {
                w,
                token,
                from_option: Vec::new(),
                from_efun: Vec::new(),
            });
        }
        Ok(self.kept.watch.as_mut().expect("made above"))
    }

    pub(super) fn drop_watches(&mut self, cx: &mut Cx) {
        if let Some(w) = self.kept.watch.take() {
            cx.reactor.deregister(&mut SourceFd(&w.w.fd()), w.token);
        }
    }

    /// EXTERNAL_WATCH_PATH was set: watch the new paths, stop watching the
    /// ones it no longer names unless external_monitor_path added them too.
    /// All or nothing: a path that cannot be watched leaves the old set.
    pub(super) fn watch_option(&mut self, cx: &mut Cx) -> Result<()> {
        let given: Vec<String> = match cx.core.options.raw(opt::EXTERNAL_WATCH_PATH) {
            Some(Value::Str(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if given.is_empty() && self.kept.watch.is_none() {
            return Ok(());
        }
        let refused = |why| crate::external::refused(opt::EXTERNAL_WATCH_PATH, why);
        let mut wanted: Vec<String> = Vec::new();
        for p in &given {
            let key = Watches::key(p).map_err(refused)?;
            if !wanted.contains(&key) {
                wanted.push(key);
            }
        }
        let w = self.watch(cx)?;
        let watched = w.w.paths();
        let mut added = Vec::new();
        for key in &wanted {
            if watched.contains(key) {
                continue;
            }
            match add_watch(&mut w.w, key, 0, "EXTERNAL_WATCH_PATH") {
                Ok(_) => added.push(key.clone()),
                Err((policy, why)) => {
                    for a in &added {
                        let _ = w.w.remove(a);
                    }
                    return Err(if policy {
                        PolicyError::Refused {
                            verb: "socket_set_option",
                            why,
                        }
                        .into()
                    } else {
                        refused(why)
                    });
                }
            }
        }
        for old in std::mem::take(&mut w.from_option) {
            if !wanted.contains(&old) && !w.from_efun.contains(&old) {
                let _ = w.w.remove(&old);
            }
        }
        w.from_option = wanted;
        Ok(())
    }

    /// The inotify fd is readable: the events go to the read callback, or
    /// are held for external_get_file_events.
    pub(super) fn read_watches(&mut self, cx: &mut Cx) {
        let Some(w) = &mut self.kept.watch else {
            return;
        };
        let mut evs = Vec::new();
        let more = w.w.read(&mut evs);
        let pull = self.pulls(cx);
        for ev in evs {
            if pull {
                hold(&mut self.kept.pulled, ev, PULLED_EVENTS_MAX);
            } else {
                cx.emit(EventKind::Read, Some(ev), None);
            }
        }
        if more && !self.kept.watch_more_armed {
            self.kept.watch_more_armed = true;
            cx.timer(Duration::ZERO, TIMER_WATCH_MORE);
        }
    }
}

/// Watches `key` (a canonical watch path) if the policy's `watch_dirs`
/// allow it, from the canonical path it allowed. Err((true, why)): the
/// policy refused; Err((false, why)): it cannot be watched.
pub(super) fn add_watch(
    w: &mut Watches,
    key: &str,
    bits: u32,
    what: &str,
) -> std::result::Result<i64, (bool, String)> {
    use crate::policy::{gate, Denied};
    match gate::watch(what, gate::watch_base(key)) {
        Ok((real, confine)) => w
            .add_checked(key, bits, real, confine)
            .map_err(|e| (false, e)),
        Err(Denied::Policy(m)) => Err((true, m)),
        Err(Denied::Io(..)) => Err((false, Watches::unresolved(key))),
    }
}

/// Keeps `ev` for external_get_file_events, at most `max` held: past it
/// the oldest event goes, and one "overflow" event at the front (made the
/// first time) says events were lost.
pub(super) fn hold(q: &mut VecDeque<Value>, ev: Value, max: usize) {
    if q.len() >= max {
        if q.front().is_some_and(is_overflow) {
            q.remove(1);
        } else {
            // the marker takes a place too
            q.pop_front();
            q.pop_front();
            q.push_front(Value::mapping([
                ("type", Value::str("file_event")),
                ("events", Value::Array(vec![Value::str("overflow")])),
                ("path", Value::str("")),
            ]));
        }
    }
    q.push_back(ev);
}

pub(super) fn is_overflow(v: &Value) -> bool {
    matches!(v.get("events"), Some(Value::Array(a)) if a.first().and_then(Value::as_str) == Some("overflow"))
}
