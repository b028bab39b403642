//! Where each controller can be used: the driver's own cgroup in the cgroup
//! v2 hierarchy when it offers the controller, else in the v1 hierarchy that
//! mounts it (from /proc/self/mountinfo and /proc/self/cgroup).

use std::fs;
use std::path::{Path, PathBuf};

use super::ENV_CGROUPS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ctl {
    Cpu,
    Memory,
    Pids,
}

impl Ctl {
    pub(super) fn name(self) -> &'static str {
        match self {
            Ctl::Cpu => "cpu",
            Ctl::Memory => "memory",
            Ctl::Pids => "pids",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Version {
    V1,
    V2,
}

/// Where one controller can be used: the driver's own cgroup directory in
/// the hierarchy that offers it.
#[derive(Clone, Debug)]
pub(super) struct Place {
    pub(super) version: Version,
    pub(super) base: PathBuf,
    /// Tests: a plain directory tree standing in for cgroupfs (see `emulate`).
    pub(super) emulated: bool,
}

/// For each controller, its place or why there is none.
#[derive(Clone, Debug)]
pub(super) struct Hierarchies {
    pub(super) cpu: Result<Place, String>,
    pub(super) memory: Result<Place, String>,
    pub(super) pids: Result<Place, String>,
}

impl Hierarchies {
    pub(super) fn get(&self, c: Ctl) -> &Result<Place, String> {
        match c {
            Ctl::Cpu => &self.cpu,
            Ctl::Memory => &self.memory,
            Ctl::Pids => &self.pids,
        }
    }

    pub(super) fn none(why: &str) -> Hierarchies {
        Hierarchies {
            cpu: Err(why.to_string()),
            memory: Err(why.to_string()),
            pids: Err(why.to_string()),
        }
    }

    /// From the environment variable and this process's mounts and cgroups.
    pub(super) fn current() -> Hierarchies {
        let off =
            |v: String| ["off", "0", "no", "false"].contains(&v.to_ascii_lowercase().as_str());
        if std::env::var(ENV_CGROUPS).is_ok_and(off) {
            return Hierarchies::none(&format!("cgroups are turned off ({ENV_CGROUPS}=off)"));
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Hierarchies::parse(&mountinfo, &own, |p| fs::read_to_string(p).ok())
    }

    /// `mountinfo` and `own` are /proc/self/mountinfo and /proc/self/cgroup;
    /// `read` reads a file (a v2 cgroup's cgroup.controllers).
    pub(super) fn parse(
        mountinfo: &str,
        own: &str,
        read: impl Fn(&Path) -> Option<String>,
    ) -> Hierarchies {
        let mut v2_mount: Option<(String, String)> = None;
        let mut v1_mounts: Vec<(Vec<String>, String, String)> = Vec::new();
        for line in mountinfo.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 5 || post.len() < 3 {
                continue;
            }
            let (root, point) = (unescape(pre[3]), unescape(pre[4]));
            match post[0] {
                "cgroup2" if v2_mount.is_none() => v2_mount = Some((root, point)),
                "cgroup" => {
                    let opts = post[2].split(',').map(str::to_string).collect();
                    v1_mounts.push((opts, root, point));
                }
                _ => {}
            }
        }
        let mut v2_path = None;
        let mut v1_paths: Vec<(Vec<&str>, &str)> = Vec::new();
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(ctls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if id == "0" && ctls.is_empty() {
                v2_path = Some(path);
            } else {
                v1_paths.push((ctls.split(',').collect(), path));
            }
        }
        let find = |c: Ctl| -> Result<Place, String> {
            let name = c.name();
            let mut why = Vec::new();
            match (&v2_mount, v2_path) {
                (Some((root, point)), Some(path)) => match below(point, root, path) {
                    Some(base) => {
                        let offered = read(&base.join("cgroup.controllers")).unwrap_or_default();
                        if offered.split_whitespace().any(|t| t == name) {
                            return Ok(Place {
                                version: Version::V2,
                                base,
                                emulated: false,
                            });
                        }
                        why.push(format!(
                            "cgroup v2 does not offer the {name} controller to {}",
                            base.display()
                        ));
                    }
                    None => why.push(format!(
                        "the driver's cgroup v2 group {path} is not visible under {point}"
                    )),
                },
                _ => why.push("no cgroup v2 hierarchy".to_string()),
            }
            let mount = v1_mounts
                .iter()
                .find(|(opts, _, _)| opts.iter().any(|o| o == name));
            let own = v1_paths.iter().find(|(ctls, _)| ctls.contains(&name));
            match (mount, own) {
                (Some((_, root, point)), Some((_, path))) => match below(point, root, path) {
                    Some(base) => {
                        return Ok(Place {
                            version: Version::V1,
                            base,
                            emulated: false,
                        })
                    }
                    None => why.push(format!(
                        "the driver's cgroup v1 {name} group {path} is not visible under {point}"
                    )),
                },
                _ => why.push(format!("no cgroup v1 hierarchy mounts {name}")),
            }
            Err(why.join("; "))
        };
        Hierarchies {
            cpu: find(Ctl::Cpu),
            memory: find(Ctl::Memory),
            pids: find(Ctl::Pids),
        }
    }
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(n) = s
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directory of cgroup `path` (as /proc/self/cgroup names it) under a
/// mount of the hierarchy whose root is `root`.
pub(super) fn below(point: &str, root: &str, path: &str) -> Option<PathBuf> {
    let rest = if root == "/" {
        path
    } else {
        let rest = path.strip_prefix(root)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest
    };
    let mut dir = PathBuf::from(point);
    for part in rest.split('/').filter(|p| !p.is_empty()) {
        if part == ".." {
            return None;
        }
        dir.push(part);
    }
    Some(dir)
}
