//! Changing the limits of a running child (`external_set_resource_limits`),
//! and the checks of each value.

use std::fs;
use std::io;

use super::cgroup::{write_cpu, write_memory};
use super::hierarchy::Ctl;
use super::rlimit::{get_prlimit, on_tree, prlimit, rlimit_error, tree};
use super::sys::{self, proc_stat as stat};
use super::{How, Limit, Limits, MIN_MEMORY};
use crate::external::{nice_refusal, nofile_refusal};
use crate::value::Value;

impl Limits {
    /// Changes limits of the running child: a mapping with keys "cpu"
    /// (percent, 0 removes), "memory" (bytes, 0 removes), "files", "priority".
    /// All values are checked before any is applied.
    pub fn set_running(&mut self, limits: &Value) -> Result<(), String> {
        self.set_running_noting(limits, &mut Vec::new())
    }

    /// `set_running`, noting in `applied` the keys that took effect: when
    /// the kernel refuses one after others were applied (raising a hard
    /// limit without CAP_SYS_RESOURCE, say), those stay applied, and the
    /// caller records them.
    pub fn set_running_noting(
        &mut self,
        limits: &Value,
        applied: &mut Vec<&'static str>,
    ) -> Result<(), String> {
        let Value::Mapping(pairs) = limits else {
            return Err(format!(
                "wants a mapping with keys cpu, memory, files, priority, got {}",
                limits.describe()
            ));
        };
        let (mut cpu, mut memory, mut files, mut priority) = (None, None, None, None);
        for (k, v) in pairs {
            let key = k.as_str().unwrap_or("");
            let n = v.as_int().ok_or_else(|| {
                format!(
                    "{}: wants an int, got {}",
                    if key.is_empty() {
                        k.describe()
                    } else {
                        key.to_string()
                    },
                    v.describe()
                )
            })?;
            match key {
                "cpu" => {
                    check_cpu(n, self.env.cores, true)?;
                    cpu = Some(n as u32);
                }
                "memory" => {
                    check_memory(n, true)?;
                    memory = Some(n as u64);
                }
                "files" => {
                    check_files(n)?;
                    files = Some(n as u64);
                }
                "priority" => {
                    check_priority(n)?;
                    priority = Some(n as i32);
                }
                _ => {
                    return Err(format!(
                        "unknown key {}: the keys are cpu, memory, files, priority",
                        k.describe()
                    ))
                }
            }
        }
        if self.pid <= 0 {
            return Err("the process is not running".into());
        }
        applied.clear();
        let done = |applied: &[&str], e: String| {
            if applied.is_empty() {
                e
            } else {
                format!("{e} ({} applied)", applied.join(", "))
            }
        };
        if let Some(p) = cpu {
            self.set_cpu(p)
                .map_err(|e| done(applied, format!("cpu: {e}")))?;
            applied.push("cpu");
        }
        if let Some(m) = memory {
            self.set_memory(m)
                .map_err(|e| done(applied, format!("memory: {e}")))?;
            applied.push("memory");
        }
        if let Some(f) = files {
            self.set_files(f)
                .map_err(|e| done(applied, format!("files: {e}")))?;
            applied.push("files");
        }
        if let Some(n) = priority {
            self.set_priority(n)
                .map_err(|e| done(applied, format!("priority: {e}")))?;
            applied.push("priority");
        }
        Ok(())
    }

    fn set_cpu(&mut self, percent: u32) -> Result<(), String> {
        match self.cpu.as_ref().map(|c| c.how.clone()) {
            Some(How::Cgroup { dir, .. }) => {
                write_cpu(&dir, percent)?;
                if percent == 0 {
                    self.cpu = None;
                } else if let Some(c) = &mut self.cpu {
                    c.value = u64::from(percent);
                }
            }
            Some(How::Rlimit { .. }) => {
                if percent == 0 {
                    let (soft, hard) = if self.env.cap_resource {
                        (libc::RLIM_INFINITY, libc::RLIM_INFINITY)
                    } else {
                        (self.inherited_cpu_hard, self.inherited_cpu_hard)
                    };
                    on_tree(self.pid, |p| prlimit(p, libc::RLIMIT_CPU, soft, hard))
                        .map_err(|e| rlimit_error("RLIMIT_CPU", e))?;
                    self.cpu = None;
                    self.cpu_hard = 0;
                } else {
                    if let Some(c) = &mut self.cpu {
                        c.value = u64::from(percent);
                    }
                    self.tick();
                }
            }
            None if percent == 0 => {}
            None => {
                let tree = tree(self.pid);
                let how = self.in_group(Ctl::Cpu, &tree, |d| write_cpu(d, percent));
                self.cpu = Some(Limit {
                    value: u64::from(percent),
                    how,
                    swap: false,
                });
                // The fallback: the first tick sets the limits.
                self.tick();
            }
        }
        Ok(())
    }

    fn set_memory(&mut self, bytes: u64) -> Result<(), String> {
        match self.memory.as_ref().map(|m| (m.how.clone(), m.value)) {
            Some((How::Cgroup { dir, .. }, old)) => {
                let swap = write_memory(&dir, bytes, Some(old))?;
                if bytes == 0 {
                    self.memory = None;
                } else if let Some(m) = &mut self.memory {
                    m.value = bytes;
                    m.swap = swap;
                }
            }
            Some((How::Rlimit { .. }, _)) => {
                let v = if bytes == 0 {
                    libc::RLIM_INFINITY
                } else {
                    bytes
                };
                on_tree(self.pid, |p| prlimit(p, libc::RLIMIT_AS, v, v))
                    .map_err(|e| rlimit_error("RLIMIT_AS", e))?;
                if bytes == 0 {
                    self.memory = None;
                } else if let Some(m) = &mut self.memory {
                    m.value = bytes;
                }
            }
            None if bytes == 0 => {}
            None => {
                let tree = tree(self.pid);
                let mut swap = false;
                let how = self.in_group(Ctl::Memory, &tree, |d| {
                    swap = write_memory(d, bytes, None)?;
                    Ok(())
                });
                if let How::Rlimit { .. } = how {
                    on_tree(self.pid, |p| prlimit(p, libc::RLIMIT_AS, bytes, bytes))
                        .map_err(|e| rlimit_error("RLIMIT_AS", e))?;
                }
                self.memory = Some(Limit {
                    value: bytes,
                    how,
                    swap,
                });
            }
        }
        Ok(())
    }

    fn set_files(&mut self, n: u64) -> Result<(), String> {
        let hard = get_prlimit(self.pid, libc::RLIMIT_NOFILE)
            .map_err(|e| format!("reading the process's RLIMIT_NOFILE: {e}"))?
            .1;
        if let Some(why) =
            nofile_refusal(n, hard, sys::nr_open(), sys::has_cap(sys::CAP_SYS_RESOURCE))
        {
            return Err(why.replace("the driver's own", "the process's"));
        }
        on_tree(self.pid, |p| prlimit(p, libc::RLIMIT_NOFILE, n, n))
            .map_err(|e| rlimit_error("RLIMIT_NOFILE", e))?;
        self.files = Some(n);
        Ok(())
    }

    fn set_priority(&mut self, n: i32) -> Result<(), String> {
        let current = stat(self.pid).map_or(0, |s| s.nice);
        let rlimit_nice = get_prlimit(self.pid, libc::RLIMIT_NICE).map_or(0, |r| r.0);
        if let Some(why) = nice_refusal(
            i64::from(n),
            current,
            sys::has_cap(sys::CAP_SYS_NICE),
            rlimit_nice,
        ) {
            return Err(why.replace("the driver's own nice value", "the process's nice value"));
        }
        on_tree(self.pid, |p| {
            // every thread: setpriority(PRIO_PROCESS) acts on one
            let tasks = fs::read_dir(format!("/proc/{p}/task"))?;
            let mut first = Ok(());
            for t in tasks.flatten() {
                let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                // SAFETY: setpriority takes plain integers.
                if unsafe { libc::setpriority(libc::PRIO_PROCESS as _, tid, n) } != 0
                    && first.is_ok()
                {
                    first = Err(io::Error::last_os_error());
                }
            }
            first
        })
        .map_err(|e| format!("setpriority {n}: {e}"))?;
        self.priority = Some(n);
        Ok(())
    }
}

pub(super) fn check_cpu(percent: i64, cores: u32, zero_ok: bool) -> Result<(), String> {
    let max = 100 * i64::from(cores);
    if percent < 0 || (percent == 0 && !zero_ok) || percent > max {
        return Err(format!(
            "cpu: wants a percent of one core in 1..{max} ({cores} cores){}, got {percent}",
            if zero_ok { " or 0 to remove it" } else { "" }
        ));
    }
    Ok(())
}

pub(super) fn check_memory(bytes: i64, zero_ok: bool) -> Result<(), String> {
    if bytes < MIN_MEMORY as i64 && !(zero_ok && bytes == 0) {
        return Err(format!(
            "memory: wants bytes ≥ {MIN_MEMORY}{}, got {bytes}",
            if zero_ok { " or 0 to remove it" } else { "" },
        ));
    }
    Ok(())
}

pub(super) fn check_files(n: i64) -> Result<(), String> {
    let (lo, hi) = crate::options::validate::external::FILE_LIMIT;
    if !(lo..=hi).contains(&n) {
        return Err(format!("files: wants {lo}..{hi} open files, got {n}"));
    }
    Ok(())
}

pub(super) fn check_priority(n: i64) -> Result<(), String> {
    let (lo, hi) = crate::options::catalog::int_range(crate::options::ids::EXTERNAL_PRIORITY)
        .expect("EXTERNAL_PRIORITY is an int range");
    if !(lo..=hi).contains(&n) {
        return Err(format!(
            "priority: wants a nice value in {lo}..{hi}, got {n}"
        ));
    }
    Ok(())
}
