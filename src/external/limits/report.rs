//! What is enforced and how (`external_get_process_stats`'s "limits"), and
//! the usage the groups count.

use super::hierarchy::Version;
use super::{How, Limits, Usage};
use crate::value::Value;

impl Limits {
    /// What is enforced and how: keys "cpu", "memory", "processes",
    /// "files", "priority", each only when enforced.
    pub fn report(&self) -> Value {
        let mut out = Value::mapping(Vec::<(String, Value)>::new());
        let group = |how: &How, file: &str, entry: &mut Vec<(&str, Value)>| match how {
            How::Cgroup { dir, moved } => {
                let v = if dir.version == Version::V1 {
                    "v1"
                } else {
                    "v2"
                };
                entry.push(("mechanism", Value::str(format!("cgroup {v} {file}"))));
                entry.push(("cgroup", Value::str(dir.path.display().to_string())));
                if *moved {
                    entry.push((
                        "joined_while_running",
                        Value::str("the running process was moved into the group; what it had already used is not counted"),
                    ));
                }
            }
            How::Rlimit { why_not_cgroup } => {
                entry.push(("cgroup_unavailable", Value::str(why_not_cgroup.clone())));
            }
        };
        if let Some(c) = &self.cpu {
            let mut e = vec![("percent", Value::Int(c.value as i64))];
            let file = match &c.how {
                How::Cgroup { dir, .. } if dir.version == Version::V1 => "cpu.cfs_quota_us",
                _ => "cpu.max",
            };
            if let How::Rlimit { .. } = c.how {
                e.push(("mechanism", Value::str("rlimit_cpu")));
                let then = if self.env.cap_resource {
                    "SIGXCPU, then SIGKILL at the hard limit 2 s later"
                } else {
                    "SIGXCPU; the hard limit cannot follow without CAP_SYS_RESOURCE, so the \
                     driver sends SIGKILL 2 s later"
                };
                e.push((
                    "note",
                    Value::str(format!(
                        "RLIMIT_CPU of each process, raised each second to its share of the \
                         process's age: the average over its life is limited, not its rate; \
                         exceeding it kills the process ({then})"
                    )),
                ));
            }
            group(&c.how, file, &mut e);
            out.insert(Value::str("cpu"), Value::mapping(e));
        }
        if let Some(m) = &self.memory {
            let mut e = vec![("bytes", Value::Int(m.value as i64))];
            match &m.how {
                How::Cgroup { dir, .. } => {
                    let (file, swap) = match dir.version {
                        Version::V1 => ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"),
                        Version::V2 => ("memory.max", "memory.swap.max 0"),
                    };
                    group(&m.how, file, &mut e);
                    e.push((
                        "swap",
                        Value::str(if m.swap {
                            format!("limited too ({swap})")
                        } else {
                            format!(
                                "not limited: no {} (swap accounting is off)",
                                swap.split(' ').next().unwrap_or(swap)
                            )
                        }),
                    ));
                    e.push((
                        "on_exceed",
                        Value::str(
                            if dir.version == Version::V2 && dir.has("memory.oom.group") {
                                "the kernel's OOM killer kills the whole group (SIGKILL)"
                            } else {
                                "the kernel's OOM killer kills a process of the group (SIGKILL)"
                            },
                        ),
                    ));
                }
                How::Rlimit { .. } => {
                    e.push(("mechanism", Value::str("rlimit_as")));
                    e.push(("on_exceed", Value::str(
                        "allocations fail (the process usually exits with an error); it is not killed",
                    )));
                    e.push(("note", Value::str(
                        "RLIMIT_AS: the address space of each process separately, mapped but unused memory included",
                    )));
                    group(&m.how, "", &mut e);
                }
            }
            out.insert(Value::str("memory"), Value::mapping(e));
        }
        if let Some(p) = &self.processes {
            let mut e = vec![("max", Value::Int(p.value as i64))];
            if let How::Rlimit { .. } = p.how {
                e.push(("mechanism", Value::str("rlimit_nproc")));
                e.push(("note", Value::str(
                    "RLIMIT_NPROC counts every process of the child's uid, not only this tree, \
                     and does not bind root or CAP_SYS_RESOURCE",
                )));
            }
            if let How::Cgroup { .. } = p.how {
                e.push((
                    "note",
                    Value::str("pids.max counts threads as well as processes"),
                ));
            }
            group(&p.how, "pids.max", &mut e);
            out.insert(Value::str("processes"), Value::mapping(e));
        }
        if let Some(f) = self.files {
            out.insert(
                Value::str("files"),
                Value::mapping([
                    ("max", Value::Int(f as i64)),
                    ("mechanism", Value::str("rlimit_nofile")),
                ]),
            );
        }
        if let Some(n) = self.priority {
            out.insert(
                Value::str("priority"),
                Value::mapping([
                    ("nice", Value::Int(i64::from(n))),
                    ("mechanism", Value::str("setpriority")),
                ]),
            );
        }
        out
    }

    /// Usage counted by the groups (the whole tree), where they count it.
    pub fn usage(&self) -> Usage {
        let mut u = Usage::default();
        for d in &self.dirs {
            match d.version {
                Version::V2 => {
                    u.cpu_ms = u
                        .cpu_ms
                        .or(d.key("cpu.stat", "usage_usec").map(|n| n / 1000));
                    u.memory_kb = u.memory_kb.or(d
                        .read("memory.current")
                        .and_then(|s| s.trim().parse::<i64>().ok())
                        .map(|b| b / 1024));
                }
                Version::V1 => {
                    u.cpu_ms = u.cpu_ms.or(d
                        .read("cpuacct.usage")
                        .and_then(|s| s.trim().parse::<i64>().ok())
                        .map(|ns| ns / 1_000_000));
                    u.memory_kb = u.memory_kb.or(d
                        .read("memory.usage_in_bytes")
                        .and_then(|s| s.trim().parse::<i64>().ok())
                        .map(|b| b / 1024));
                }
            }
        }
        u
    }
}
