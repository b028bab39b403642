//! EXTERNAL_RESTART_POLICY: after a run's end, the next run (with backoff,
//! within max_restarts per window) or the socket's close.

use std::time::{Duration, Instant};

use super::{opt, Process, RESTART_CAP, TIMER_RESTART};
use crate::core::{Cx, EventKind};
use crate::modes;
use crate::value::Value;

impl Process {
    /// A run ended (its exit mapping is out): restart it as
    /// EXTERNAL_RESTART_POLICY says, or close. `why`: the mapping's "reason"
    /// ("exited" is a normal end of the socket, anything else an abnormal one).
    /// The close callback waits until nothing of the run is left; so does
    /// the restart, which ends what kill_mode "process" would have kept.
    pub(super) fn end_run(&mut self, cx: &mut Cx, failed: bool, ran: Duration, why: &str) {
        match self.restart_delay(cx, failed, ran) {
            Some(delay) => {
                let ev = Value::mapping([
                    ("type", Value::str("restart")),
                    ("attempt", Value::Int(self.kept.restarts + 1)),
                    ("delay_ms", Value::Int(delay.as_millis() as i64)),
                ]);
                cx.emit(EventKind::Read, Some(ev), Some(self.command.clone()));
                self.kept.restart_armed = true;
                cx.timer(delay, TIMER_RESTART);
                self.end_leftovers(cx);
            }
            None => {
                if self.hold.is_some() && !self.sweeping {
                    // kill_mode "process": the rest is kept.
                    self.let_go(false);
                }
                if self.hold.is_some() {
                    self.die_when_clean = Some(why.to_string());
                } else {
                    close_after_run(cx, why);
                }
            }
        }
    }

    /// How long to wait before starting again, or None to stay ended.
    fn restart_delay(&mut self, cx: &mut Cx, failed: bool, ran: Duration) -> Option<Duration> {
        if self.closing || self.mode != modes::EXTERNAL_PROCESS {
            return None;
        }
        let policy = RestartPolicy::from(cx.core.options.raw(opt::EXTERNAL_RESTART_POLICY));
        match policy.policy.as_str() {
            "always" => {}
            "on-failure" if failed => {}
            _ => return None,
        }
        let k = &mut self.kept;
        let now = Instant::now();
        if policy.window > 0 {
            let window = Duration::from_secs(policy.window);
            while k
                .restart_times
                .front()
                .is_some_and(|t| now.duration_since(*t) > window)
            {
                k.restart_times.pop_front();
            }
        }
        if policy.max_restarts > 0 && k.restart_times.len() as u64 >= policy.max_restarts {
            return None;
        }
        // Only the last max_restarts times can matter (none without a limit).
        k.restart_times.push_back(now);
        while k.restart_times.len() as u64 > policy.max_restarts {
            k.restart_times.pop_front();
        }
        if ran >= RESTART_CAP {
            k.backoff_step = 0;
        }
        let delay = Duration::from_millis(policy.backoff_ms)
            .saturating_mul(1u32.checked_shl(k.backoff_step).unwrap_or(u32::MAX))
            .min(RESTART_CAP);
        k.backoff_step = (k.backoff_step + 1).min(31);
        Some(delay)
    }

    /// TIMER_RESTART: the next run. A start that fails is reported as an
    /// exit (exit_code -1, with "error") and counts as a failure.
    pub(super) fn restart(&mut self, cx: &mut Cx) {
        if !self.kept.restart_armed || self.closing {
            return;
        }
        if self.hold.is_some() {
            // The last run's group is not clean yet: `settled` comes back.
            self.restart_when_clean = true;
            return;
        }
        self.kept.restart_armed = false;
        self.kept.restarts += 1;
        if let Err(e) = self.start(cx) {
            self.finished = true;
            let why = format!("restart failed: {}", e.message);
            let ev = Value::mapping([
                ("type", Value::str("exit")),
                ("exit_code", Value::Int(-1)),
                ("signal", Value::Int(0)),
                ("reason", Value::str("exited")),
                ("restarts", Value::Int(self.kept.restarts)),
                ("cpu_ms", Value::Int(0)),
                ("max_rss_kb", Value::Int(0)),
                ("error", Value::Str(e.message)),
            ]);
            cx.emit(EventKind::Read, Some(ev), Some(self.command.clone()));
            self.end_run(cx, true, Duration::ZERO, &why);
        }
    }
}

/// The socket closes after its last run ended `why` (the exit mapping's
/// reason): "exited" is a normal end, anything else an abnormal one.
pub(super) fn close_after_run(cx: &mut Cx, why: &str) {
    if why == "exited" {
        cx.end("the process exited");
    } else {
        cx.die(Some(format!("the process ended: {why}")));
    }
}

/// EXTERNAL_RESTART_POLICY as stored (the catalog normalised it).
pub(super) struct RestartPolicy {
    policy: String,
    max_restarts: u64,
    backoff_ms: u64,
    window: u64,
    /// kill_mode "process": keep what the child leaves (KillMode=process).
    pub(super) keep: bool,
}

impl From<Option<&Value>> for RestartPolicy {
    fn from(v: Option<&Value>) -> RestartPolicy {
        let int = |k: &str, d: i64| {
            v.and_then(|v| v.get(k))
                .and_then(Value::as_int)
                .unwrap_or(d)
        };
        let policy = match v {
            Some(Value::Str(s)) => s.clone(),
            Some(m) => m
                .get("policy")
                .and_then(Value::as_str)
                .unwrap_or("never")
                .to_string(),
            None => "never".to_string(),
        };
        RestartPolicy {
            policy,
            max_restarts: int("max_restarts", 0).max(0) as u64,
            backoff_ms: int("backoff_ms", 1000).max(0) as u64,
            window: int("window", 0).max(0) as u64,
            keep: v.and_then(|v| v.get("kill_mode")).and_then(Value::as_str) == Some("process"),
        }
    }
}
