//! The external_* efuns (`Process::efun`), with the two that do more than
//! forward: external_set_resource_limits and external_get_process_stats.

use std::net::SocketAddr;

use super::watches::add_watch;
use super::{opt, Process, TIMER_LIMITS};
use crate::core::{Cx, Endpoint, State};
use crate::error::{Error, Result};
use crate::external::limits::Limits;
use crate::external::sandbox::Sandbox;
use crate::external::sys;
use crate::external::watch::Watches;
use crate::external::{Call, ExternalError};
use crate::policy::PolicyError;
use crate::value::Value;

impl Process {
    /// The external_* efuns (`crate::external::call` brings them here).
    pub(in crate::external) fn efun(&mut self, cx: &mut Cx, call: Call) -> Result<Value> {
        match call {
            Call::Write(data) => {
                if !matches!(data, Value::Str(_) | Value::Buffer(_)) {
                    return Err(ExternalError::WriteProcessWrongType {
                        got: data.type_name(),
                    }
                    .into());
                }
                let n = data.as_bytes().map_or(0, <[u8]>::len);
                self.write(cx, data, None)
                    .map(|_| Value::Int(n as i64))
                    .map_err(|cause| ExternalError::WriteProcess { cause }.into())
            }
            Call::Read(max) => Ok(self.pull_output(max)),
            Call::Monitor(path, events) => {
                let bits = u32::try_from(events)
                    .ok()
                    .filter(|b| *b <= 0xff)
                    .ok_or(ExternalError::MonitorEvents { events })?;
                let w = self.watch(cx)?;
                let added = Watches::key(path)
                    .map_err(|why| (false, why))
                    .and_then(|key| {
                        let id = add_watch(&mut w.w, &key, bits, "external_monitor_path")?;
                        if !w.from_efun.contains(&key) {
                            w.from_efun.push(key);
                        }
                        Ok(id)
                    });
                added.map(Value::Int).map_err(|(policy, why)| {
                    if policy {
                        let verb = "external_monitor_path";
                        PolicyError::Refused { verb, why }.into()
                    } else {
                        ExternalError::Monitor { why }.into()
                    }
                })
            }
            Call::StopMonitoring(path) => {
                let removed = match &mut self.kept.watch {
                    Some(w) => Watches::key(path).and_then(|key| {
                        w.from_option.retain(|p| *p != key);
                        w.from_efun.retain(|p| *p != key);
                        w.w.remove(&key)
                    }),
                    None => Err(format!("{path} is not watched")),
                };
                removed
                    .map(|_| Value::Int(0))
                    .map_err(|why| ExternalError::StopMonitoring { why }.into())
            }
            Call::FileEvents => Ok(Value::Array(self.kept.pulled.drain(..).collect())),
            Call::SetLimits(limits) => self.set_limits(cx, limits).map(|_| Value::Int(0)),
            Call::Stats => Ok(self.stats()),
            Call::Spawn => {
                if cx.core.state != State::Unbound {
                    return Err(ExternalError::AlreadyStarted.into());
                }
                self.bind(cx, SocketAddr::from(([0u16; 8], 0)))
                    .map(|_| Value::Int(0))
            }
        }
    }
}

impl Process {
    /// external_set_resource_limits.
    fn set_limits(&mut self, cx: &mut Cx, limits: &Value) -> Result<()> {
        let Value::Mapping(pairs) = limits else {
            return Err(ExternalError::LimitsNotMapping {
                got: limits.type_name(),
            }
            .into());
        };
        // Every key is checked (as its option would be) before anything changes.
        let mut todo = Vec::new();
        for (k, v) in pairs {
            let id = match k.as_str() {
                Some("cpu") => opt::EXTERNAL_CPU_LIMIT,
                Some("memory") => opt::EXTERNAL_MEMORY_LIMIT,
                Some("files") => opt::EXTERNAL_FILE_LIMIT,
                Some("priority") => opt::EXTERNAL_PRIORITY,
                _ => return Err(ExternalError::LimitsUnknownKey { key: k.describe() }.into()),
            };
            let def = crate::options::catalog::find(id as i64).expect("in the catalog");
            let v = crate::options::validate::validate(def, v).map_err(as_limits_error)?;
            crate::external::option_set(id, Some(&v)).map_err(as_limits_error)?;
            if id == opt::EXTERNAL_FILE_LIMIT && v.as_int() == Some(0) && self.running() {
                return Err(ExternalError::LimitsFilesZero.into());
            }
            todo.push((id, v));
        }
        if self.running() {
            let key = |id: u16| match id {
                opt::EXTERNAL_CPU_LIMIT => "cpu",
                opt::EXTERNAL_MEMORY_LIMIT => "memory",
                opt::EXTERNAL_FILE_LIMIT => "files",
                _ => "priority",
            };
            let asked = Value::mapping(todo.iter().map(|(id, v)| (key(*id), v.clone())));
            let l = self
                .limits
                .as_mut()
                .expect("a running process has its limits");
            let mut applied = Vec::new();
            let result = l.set_running_noting(&asked, &mut applied);
            // A CPU limit that had to fall back to RLIMIT_CPU needs the ticks.
            if !self.ticking {
                if let Some(d) = l.next_tick() {
                    self.ticking = true;
                    cx.timer(d, TIMER_LIMITS);
                }
            }
            if let Err(why) = result {
                // What was applied before the refusal stays, and its options say so.
                for (id, v) in todo {
                    if applied.contains(&key(id)) {
                        cx.core.options.set_internal(id, v);
                    }
                }
                return Err(ExternalError::Limits { why }.into());
            }
        }
        // Stored as the options too: get_option tells the truth, and a
        // restart (or the first start) applies them.
        for (id, v) in todo {
            cx.core.options.set_internal(id, v);
        }
        Ok(())
    }

    /// external_get_process_stats.
    pub(super) fn stats(&self) -> Value {
        let mut m = Value::mapping([
            ("pid", Value::Int(self.pid as i64)),
            ("running", Value::Int(self.running() as i64)),
            (
                "uptime_ms",
                Value::Int(match (self.started, self.running()) {
                    (Some(t), true) => t.elapsed().as_millis() as i64,
                    _ => 0,
                }),
            ),
        ]);
        let (cpu_ms, rss_kb, max_rss_kb) = match self.ended {
            Some(e) => (e.cpu_ms, 0, e.max_rss_kb),
            None if self.running() => {
                let (cpu, rss, hwm) = sys::proc_usage(self.pid);
                // The cgroups count the descendants too, where they count.
                let u = self.limits.as_ref().map(Limits::usage).unwrap_or_default();
                (
                    u.cpu_ms.map_or(cpu, |c| c.max(cpu)),
                    u.memory_kb.map_or(rss, |m| m.max(rss)),
                    hwm,
                )
            }
            None => (0, 0, 0),
        };
        m.insert(Value::str("cpu_ms"), Value::Int(cpu_ms));
        m.insert(Value::str("rss_kb"), Value::Int(rss_kb));
        m.insert(Value::str("max_rss_kb"), Value::Int(max_rss_kb));
        m.insert(Value::str("restarts"), Value::Int(self.kept.restarts));
        let limits = match &self.limits {
            Some(l) => l.report(),
            None => Value::Mapping(vec![]),
        };
        m.insert(Value::str("limits"), limits);
        let sandbox = self
            .sandbox
            .as_ref()
            .map_or(Value::Mapping(vec![]), Sandbox::report);
        m.insert(Value::str("sandbox"), sandbox);
        if let Some(w) = &self.kept.watch {
            m.insert(
                Value::str("watches"),
                Value::Array(w.w.paths().into_iter().map(Value::Str).collect()),
            );
        }
        m
    }
}

/// An option's refusal, as external_set_resource_limits's error (EEBADDATA).
fn as_limits_error(e: Error) -> Error {
    ExternalError::LimitsOption {
        option_error: e.message,
    }
    .into()
}
