use super::hierarchy::Place;
use super::sys::{clk_tck, proc_stat as stat};
use super::*;
use crate::value::Value;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::time::Instant;

const PYTHON: &str = "/usr/bin/python3";
const BUSY: &[&str] = &["-c", "while :; do :; done"];

fn env(cap_resource: bool, nproc_binds: bool) -> Env {
    Env {
        cap_resource,
        nproc_binds,
        cores: cores(),
    }
}

fn real_env() -> Env {
    env(sys::has_cap(sys::CAP_SYS_RESOURCE), false)
}

fn fallback() -> Option<Hierarchies> {
    Some(Hierarchies::none("forced by the test"))
}

fn current() -> Option<Hierarchies> {
    Some(Hierarchies::current())
}

fn python(test: &str) -> bool {
    let ok = Path::new(PYTHON).exists();
    if !ok {
        eprintln!("{test}: skipped: {PYTHON} is missing");
    }
    ok
}

/// The group enforcing `which`, or None after printing why a test that
/// needs real cgroups is skipped.
fn grouped(l: &Limits, which: Ctl, test: &str) -> Option<Dir> {
    let limit = match which {
        Ctl::Cpu => &l.cpu,
        Ctl::Memory => &l.memory,
        Ctl::Pids => &l.processes,
    };
    match limit.as_ref().map(|x| &x.how) {
        Some(How::Cgroup { dir, .. }) => Some(dir.clone()),
        Some(How::Rlimit { why_not_cgroup }) => {
            eprintln!(
                "{test}: skipped: no writable {} cgroup: {why_not_cgroup}",
                which.name()
            );
            None
        }
        None => None,
    }
}

fn mech(l: &Limits, key: &str) -> String {
    l.report()
        .get(key)
        .and_then(|m| m.get("mechanism"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// A child started with the limits' setup, in its own process group,
/// SIGKILLed and reaped on drop (declare it after its Limits, so that
/// it goes first and the Limits' cleanup finds the group empty).
struct Kid {
    child: Child,
    pid: i32,
    reaped: bool,
}

impl Kid {
    fn spawn(l: &mut Limits, program: &str, args: &[&str], stdout: Stdio) -> Kid {
        let setup = l.child_setup();
        let mut cmd = Command::new(program);
        cmd.args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(stdout);
        // SAFETY: ChildSetup::apply is async-signal-safe and allocates nothing.
        unsafe {
            cmd.pre_exec(move || setup.apply());
        }
        let child = cmd.spawn().expect("spawn");
        let pid = child.id() as i32;
        l.started(pid);
        Kid {
            child,
            pid,
            reaped: false,
        }
    }

    fn line(&mut self) -> String {
        let mut s = String::new();
        BufReader::new(self.child.stdout.as_mut().expect("piped stdout"))
            .read_line(&mut s)
            .expect("read");
        s.trim().to_string()
    }

    /// Waits for the exit (a pidfd), calling `l.tick()` when it asks, as
    /// the driver's reactor does; None after `max`.
    fn wait(&mut self, l: &mut Limits, max: Duration) -> Option<Ended> {
        let fd = sys::pidfd_open(self.pid).expect("pidfd_open");
        let end = Instant::now() + max;
        let mut next = l.next_tick().map(|d| Instant::now() + d);
        loop {
            let now = Instant::now();
            if now >= end {
                return None;
            }
            let until = next.map_or(end, |n| n.min(end));
            let ms = until.saturating_duration_since(now).as_millis() as i32;
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::try_from(ms).unwrap()).unwrap_or(0) > 0 {
                let e = sys::wait4(self.pid, true).expect("wait4").expect("ended");
                self.reaped = true;
                return Some(e);
            }
            if next.is_some_and(|t| Instant::now() >= t) {
                next = l.tick().map(|d| Instant::now() + d);
            }
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if !self.reaped {
            kill(-self.pid, libc::SIGKILL);
            kill(self.pid, libc::SIGKILL);
            let _ = sys::wait4(self.pid, true);
        }
    }
}

/// The CPU share (% of one core) `pid` uses over `window`: the window is
/// the thing measured, not a wait for something to happen.
fn cpu_share(pid: i32, window: Duration) -> f64 {
    let t0 = stat(pid).expect("stat").cpu_ticks;
    let i0 = Instant::now();
    std::thread::sleep(window);
    let t1 = stat(pid).expect("stat").cpu_ticks;
    (t1 - t0) as f64 / clk_tck() as f64 / i0.elapsed().as_secs_f64() * 100.0
}

fn limits_line(pid: i32, what: &str) -> String {
    read(Path::new(&format!("/proc/{pid}/limits")))
        .lines()
        .find(|l| l.starts_with(what))
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn gone_or_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z'))
    })
}

/// Removes a temporary tree, also when the test fails.
struct Rm(PathBuf);

impl Drop for Rm {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn cpu_allowance_covers_the_time_until_the_next_tick() {
    // before the first tick: 1 s at 50 %, 2 s at 150 %
    assert_eq!(cpu_allowance(50, 0), 1);
    assert_eq!(cpu_allowance(150, 0), 2);
    // a process exactly at its share stays below it until the next tick
    for age in [1000u64, 2500, 9999, 60_000] {
        let used_by_next_tick = 50 * (age + 1000) / 100; // ms
        assert!(cpu_allowance(50, age) * 1000 > used_by_next_tick, "{age}");
    }
    // one using twice its share passes it within a few seconds
    assert!(cpu_allowance(50, 3000) * 1000 < 2 * 3000 + 1000);
}

#[test]
fn hierarchies_are_found_on_hybrid_and_v2_hosts() {
    let hybrid = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";
    let own = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";
    let h = Hierarchies::parse(hybrid, own, |p| {
        (p == Path::new("/sys/fs/cgroup/unified/cgroup.controllers"))
            .then(|| "hugetlb\n".to_string())
    });
    let cpu = h.cpu.as_ref().unwrap();
    assert_eq!(cpu.version, Version::V1);
    assert_eq!(cpu.base, Path::new("/sys/fs/cgroup/cpu"));
    let mem = h.memory.as_ref().unwrap();
    assert_eq!(mem.base, Path::new("/sys/fs/cgroup/memory/process_api/abc"));
    assert_eq!(
        h.pids.as_ref().unwrap().base,
        Path::new("/sys/fs/cgroup/pids")
    );

    // v2 only, the driver in a delegated subtree; memory not offered
    let v2 = "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate";
    let own = "0::/system.slice/mud.service/driver\n";
    let h = Hierarchies::parse(v2, own, |p| {
        (p == Path::new("/sys/fs/cgroup/system.slice/mud.service/driver/cgroup.controllers"))
            .then(|| "cpuset cpu io pids\n".to_string())
    });
    let cpu = h.cpu.as_ref().unwrap();
    assert_eq!(cpu.version, Version::V2);
    assert_eq!(
        cpu.base,
        Path::new("/sys/fs/cgroup/system.slice/mud.service/driver")
    );
    assert!(h.pids.is_ok());
    let why = h.memory.unwrap_err();
    assert!(
        why.contains("does not offer the memory controller")
            && why.contains("no cgroup v1 hierarchy mounts memory"),
        "{why}"
    );

    // a container whose mount root is the driver's group; escaped spaces
    let m = r"40 30 0:40 /docker/x /sys/fs/my\040cg rw - cgroup2 cgroup2 rw";
    let h = Hierarchies::parse(m, "0::/docker/x/sub\n", |_| Some("cpu".into()));
    assert_eq!(h.cpu.as_ref().unwrap().base, Path::new("/sys/fs/my cg/sub"));
    let h = Hierarchies::parse(m, "0::/elsewhere\n", |_| Some("cpu".into()));
    assert!(h.cpu.unwrap_err().contains("not visible"));
    assert!(Hierarchies::parse("", "", |_| None).pids.is_err());
}

#[test]
fn limits_can_live_in_the_endpoint_and_the_setup_in_pre_exec() {
    fn send<T: Send>() {}
    fn send_sync_static<T: Send + Sync + 'static>() {}
    send::<Limits>();
    send_sync_static::<ChildSetup>();
}

#[test]
fn nothing_wanted_makes_nothing() {
    let mut l = Limits::prepare(&Wanted::default()).unwrap();
    assert!(l.dirs.is_empty());
    assert_eq!(l.report(), Value::Mapping(Vec::new()));
    assert!(l.child_setup().procs.is_empty() && l.child_setup().rlimits.is_empty());
    l.started(1);
    assert!(l.next_tick().is_none() && l.tick().is_none());
    assert!(!l.limit_hit(&Ended {
        signal: libc::SIGKILL as i64,
        ..Ended::default()
    }));
    assert!(l.cleanup());
}

#[test]
fn bad_values_are_refused_before_anything_is_applied() {
    let e = env(true, false);
    let max = 100 * e.cores;
    for w in [
        Wanted {
            cpu_percent: Some(0),
            ..Wanted::default()
        },
        Wanted {
            cpu_percent: Some(max + 1),
            ..Wanted::default()
        },
        Wanted {
            memory: Some(MIN_MEMORY - 1),
            ..Wanted::default()
        },
        Wanted {
            processes: Some(0),
            ..Wanted::default()
        },
        Wanted {
            files: Some(2),
            ..Wanted::default()
        },
        Wanted {
            priority: Some(20),
            ..Wanted::default()
        },
    ] {
        assert!(Limits::prepare_with(&w, fallback(), e).is_err(), "{w:?}");
    }
    let mut l = Limits::prepare_with(&Wanted::default(), fallback(), e).unwrap();
    let set = |l: &mut Limits, pairs: Vec<(&str, Value)>| l.set_running(&Value::mapping(pairs));
    let err = set(
        &mut l,
        vec![("cpu", Value::Int(50)), ("color", Value::Int(1))],
    )
    .unwrap_err();
    assert!(err.contains("unknown key \"color\""), "{err}");
    let err = set(&mut l, vec![("cpu", Value::Int(i64::from(max) + 1))]).unwrap_err();
    assert!(err.contains(&format!("1..{max}")), "{err}");
    assert!(set(&mut l, vec![("memory", Value::Int(-1))]).is_err());
    assert!(set(&mut l, vec![("files", Value::Int(0))]).is_err());
    assert!(set(&mut l, vec![("priority", Value::Int(-21))]).is_err());
    let err = set(&mut l, vec![("cpu", Value::str("50"))]).unwrap_err();
    assert!(err.contains("cpu: wants an int"), "{err}");
    assert!(l
        .set_running(&Value::Int(3))
        .unwrap_err()
        .contains("mapping"));
    // valid, but nothing runs
    let err = set(&mut l, vec![("cpu", Value::Int(50))]).unwrap_err();
    assert!(err.contains("not running"), "{err}");
    assert!(l.cpu.is_none());
}

#[test]
fn processes_fallback_only_where_rlimit_nproc_binds() {
    let w = Wanted {
        processes: Some(5),
        ..Wanted::default()
    };
    let err = Limits::prepare_with(&w, fallback(), env(true, false))
        .err()
        .unwrap();
    assert!(err.contains("RLIMIT_NPROC does not bind"), "{err}");
    let l = Limits::prepare_with(&w, fallback(), env(true, true)).unwrap();
    assert_eq!(mech(&l, "processes"), "rlimit_nproc");
    let note = l.report().get("processes").unwrap().get("note").cloned();
    assert!(note.unwrap().as_str().unwrap().contains("every process of"));
    assert!(l
        .setup
        .rlimits
        .iter()
        .any(|&(r, s, h)| r == libc::RLIMIT_NPROC && s == 5 && h == 5));
}

/// A temporary directory standing in for a v2 cgroupfs root that offers
/// `controllers` and has `subtree` enabled, as every hierarchy; removed
/// when the returned guard drops.
fn emulated_v2(name: &str, controllers: &str, subtree: &str) -> (PathBuf, Rm, Hierarchies) {
    let tmp = std::env::temp_dir().join(format!("unisock-limits-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).unwrap();
    let rm = Rm(tmp.clone());
    fs::write(tmp.join("cgroup.controllers"), controllers).unwrap();
    fs::write(tmp.join("cgroup.subtree_control"), subtree).unwrap();
    fs::write(tmp.join("cgroup.procs"), "").unwrap();
    let place = Place {
        version: Version::V2,
        base: tmp.clone(),
        emulated: true,
    };
    let h = Hierarchies {
        cpu: Ok(place.clone()),
        memory: Ok(place.clone()),
        pids: Ok(place),
    };
    (tmp, rm, h)
}

/// cgroup v2's file writing, in a directory tree standing in for cgroupfs
/// (this machine's v2 hierarchy offers no controllers).
#[test]
fn v2_groups_are_written_in_an_emulated_tree() {
    let (tmp, _rm, h) = emulated_v2("v2", "cpuset cpu io memory pids", "io");
    let w = Wanted {
        cpu_percent: Some(50),
        memory: Some(64 << 20),
        processes: Some(10),
        ..Wanted::default()
    };
    let mut l = Limits::prepare_with(&w, Some(h), env(true, false)).unwrap();
    // the controllers were handed down: root, then unisock
    let on = read(&tmp.join("cgroup.subtree_control"));
    assert_eq!(on, "io cpu memory pids");
    assert_eq!(
        read(&tmp.join("unisock/cgroup.subtree_control")),
        "cpu memory pids"
    );
    assert_eq!(l.dirs.len(), 1, "one v2 group for every controller");
    let leaf = l.dirs[0].path.clone();
    assert_eq!(leaf, tmp.join("unisock").join(&l.name));
    assert_eq!(read(&leaf.join("cpu.max")), "50000 100000");
    assert_eq!(read(&leaf.join("memory.max")), (64u64 << 20).to_string());
    assert_eq!(read(&leaf.join("memory.swap.max")), "0");
    assert_eq!(read(&leaf.join("memory.oom.group")), "1");
    assert_eq!(read(&leaf.join("pids.max")), "10");
    assert_eq!(
        l.setup.procs,
        vec![CString::new(leaf.join("cgroup.procs").as_os_str().as_bytes()).unwrap()]
    );
    assert!(l.setup.rlimits.is_empty());
    assert_eq!(mech(&l, "cpu"), "cgroup v2 cpu.max");
    assert_eq!(mech(&l, "memory"), "cgroup v2 memory.max");
    assert_eq!(mech(&l, "processes"), "cgroup v2 pids.max");
    let r = l.report();
    let mem = r.get("memory").unwrap();
    assert_eq!(
        mem.get("swap").unwrap().as_str(),
        Some("limited too (memory.swap.max 0)")
    );
    assert!(mem
        .get("on_exceed")
        .unwrap()
        .as_str()
        .unwrap()
        .contains("whole group"));

    // the exit: SIGKILL is "limit" only with an OOM kill counted
    let killed = Ended {
        signal: libc::SIGKILL as i64,
        ..Ended::default()
    };
    assert!(!l.limit_hit(&killed));
    fs::write(
        leaf.join("memory.events"),
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
    )
    .unwrap();
    assert!(l.limit_hit(&killed));
    assert!(!l.limit_hit(&Ended {
        exit_code: 1,
        ..Ended::default()
    }));
    fs::write(
        leaf.join("cpu.stat"),
        "usage_usec 2500000\nuser_usec 2000000\n",
    )
    .unwrap();
    fs::write(leaf.join("memory.current"), "1048576\n").unwrap();
    assert_eq!(
        l.usage(),
        Usage {
            cpu_ms: Some(2500),
            memory_kb: Some(1024)
        }
    );

    // while running: rewritten in place (no process is touched)
    l.started(i32::MAX);
    let set =
        |l: &mut Limits, k: &str, v: i64| l.set_running(&Value::mapping([(k, Value::Int(v))]));
    set(&mut l, "cpu", 20).unwrap();
    assert_eq!(read(&leaf.join("cpu.max")), "20000 100000");
    set(&mut l, "cpu", 0).unwrap();
    assert_eq!(read(&leaf.join("cpu.max")), "max 100000");
    set(&mut l, "memory", 0).unwrap();
    assert_eq!(read(&leaf.join("memory.max")), "max");
    assert_eq!(read(&leaf.join("memory.swap.max")), "max");
    let r = l.report();
    assert!(r.get("cpu").is_none() && r.get("memory").is_none());
    assert!(r.get("processes").is_some());

    // cleanup: the group and the now empty unisock directory go; the
    // OOM kill seen before stays known
    assert!(l.cleanup());
    assert!(!tmp.join("unisock").exists());
    assert!(l.cleanup(), "a second call is harmless");
}

/// A controller the emulated root does not offer: that limit alone falls
/// back, and says why.
#[test]
fn v2_controller_not_offered_falls_back_for_that_limit_only() {
    let (tmp, _rm, h) = emulated_v2("v2b", "cpu pids", "");
    let w = Wanted {
        cpu_percent: Some(30),
        memory: Some(8 << 20),
        ..Wanted::default()
    };
    let l = Limits::prepare_with(&w, Some(h), env(true, false)).unwrap();
    assert_eq!(mech(&l, "cpu"), "cgroup v2 cpu.max");
    assert_eq!(mech(&l, "memory"), "rlimit_as");
    let why = l
        .report()
        .get("memory")
        .unwrap()
        .get("cgroup_unavailable")
        .cloned();
    assert!(why.unwrap().as_str().unwrap().contains("+memory"));
    assert!(l
        .setup
        .rlimits
        .iter()
        .any(|&(r, s, _)| r == libc::RLIMIT_AS && s == 8 << 20));
    drop(l);
    assert!(!tmp.join("unisock").exists(), "Drop cleaned up");
}

#[test]
fn cgroup_cpu_quota_holds_a_busy_loop_to_its_share() {
    let test = "cgroup_cpu_quota_holds_a_busy_loop_to_its_share";
    let w = Wanted {
        cpu_percent: Some(50),
        ..Wanted::default()
    };
    let mut l = Limits::prepare_with(&w, current(), real_env()).unwrap();
    let Some(dir) = grouped(&l, Ctl::Cpu, test) else {
        return;
    };
    let kid = Kid::spawn(&mut l, "/bin/sh", BUSY, Stdio::null());
    let share = cpu_share(kid.pid, Duration::from_secs(3));
    eprintln!("{test}: {} → {share:.1}% of one core", mech(&l, "cpu"));
    assert!(share <= 55.0, "{share:.1}% under a 50% limit");
    assert!(share > 5.0, "the loop ran ({share:.1}%)");
    assert!(fs::read_to_string(format!("/proc/{}/cgroup", kid.pid))
        .unwrap()
        .contains(&format!("/unisock/{}", l.name)));
    drop(kid);
    assert!(l.cleanup());
    assert!(!dir.path.exists());
}

#[test]
fn fallback_cpu_kills_a_busy_loop_with_sigxcpu() {
    // 1 %: a busy loop passes its share within seconds even when the
    // machine is so loaded that the loop gets little CPU
    let w = Wanted {
        cpu_percent: Some(1),
        ..Wanted::default()
    };
    let mut l = Limits::prepare_with(&w, fallback(), real_env()).unwrap();
    assert_eq!(mech(&l, "cpu"), "rlimit_cpu");
    let mut kid = Kid::spawn(&mut l, "/bin/sh", BUSY, Stdio::null());
    assert_eq!(l.next_tick(), Some(TICK));
    let t0 = Instant::now();
    let ended = kid
        .wait(&mut l, Duration::from_secs(60))
        .expect("killed within 60 s");
    eprintln!(
        "fallback_cpu_kills_a_busy_loop_with_sigxcpu: signal {} after {:.1} s, {} ms CPU",
        ended.signal,
        t0.elapsed().as_secs_f64(),
        ended.cpu_ms
    );
    // the kernel sends SIGXCPU at the soft limit, whatever the hard one
    assert_eq!(ended.signal, libc::SIGXCPU as i64);
    assert!(l.limit_hit(&ended));
}

#[test]
fn fallback_cpu_backstop_kills_what_ignores_sigxcpu_without_cap_resource() {
    let w = Wanted {
        cpu_percent: Some(1),
        ..Wanted::default()
    };
    // as if the driver lacked CAP_SYS_RESOURCE: the hard limit stays put
    let mut l = Limits::prepare_with(&w, fallback(), env(false, false)).unwrap();
    let args = ["-c", "trap '' XCPU; while :; do :; done"];
    let mut kid = Kid::spawn(&mut l, "/bin/sh", &args, Stdio::null());
    let ended = kid
        .wait(&mut l, Duration::from_secs(90))
        .expect("killed within 90 s");
    eprintln!(
        "fallback_cpu_backstop: signal {}, {} ms CPU",
        ended.signal, ended.cpu_ms
    );
    assert_eq!(ended.signal, libc::SIGKILL as i64);
    assert!(l.limit_hit(&ended));
}

#[test]
fn fallback_cpu_spares_a_process_under_its_share() {
    if !python("fallback_cpu_spares_a_process_under_its_share") {
        return;
    }
    let w = Wanted {
        cpu_percent: Some(50),
        ..Wanted::default()
    };
    let mut l = Limits::prepare_with(&w, fallback(), real_env()).unwrap();
    // busy 0.1 s of every 0.4 s for 5 s: about 25 %
    let script = "import time\nend = time.time() + 5\nwhile time.time() < end:\n    \
                  t = time.time()\n    while time.time() - t < 0.1: pass\n    time.sleep(0.3)\n";
    let mut kid = Kid::spawn(&mut l, PYTHON, &["-c", script], Stdio::null());
    let ended = kid.wait(&mut l, Duration::from_secs(30)).expect("ended");
    eprintln!(
        "fallback_cpu_spares: exit {} signal {}, {} ms CPU",
        ended.exit_code, ended.signal, ended.cpu_ms
    );
    assert_eq!((ended.exit_code, ended.signal), (0, 0));
    assert!(!l.limit_hit(&ended));
}

#[test]
fn cgroup_memory_limit_kills_an_allocation_past_it() {
    let test = "cgroup_memory_limit_kills_an_allocation_past_it";
    if !python(test) {
        return;
    }
    let w = Wanted {
        memory: Some(50 << 20),
        ..Wanted::default()
    };
    let mut l = Limits::prepare_with(&w, current(), real_env()).unwrap();
    let Some(dir) = grouped(&l, Ctl::Memory, test) else {
        return;
    };
    eprintln!("{test}: {:?}", l.report().get("memory"));
    let mut kid = Kid::spawn(
        &mut l,
        PYTHON,
        &["-c", "b = b'x' * (200 << 20)\nprint(len(b))"],
        Stdio::null(),
    );
    let ended = kid.wait(&mut l, Duration::from_secs(30)).expect("ended");
    assert_eq!(ended.signal, libc::SIGKILL as i64, "{ended:?}");
    assert!(l.limit_hit(&ended));
    assert!(l.cleanup());
    assert!(!dir.path.exists());
    assert!(l.limit_hit(&ended), "still known after the group is gone");
}

#[test]
fn fallback_memory_makes_the_allocation_fail() {
    if !python("fallback_memory_makes_the_allocation_fail") {
        return;
    }
    let w = Wanted {
        memory: Some(50 << 20),
        ..Wanted::default()
    };
    let mut l = Limits::prepare_with(&w, fallback(), real_env()).unwrap();
    assert_eq!(mech(&l, "memory"), "rlimit_as");
    let mut kid = Kid::spawn(
        &mut l,
        PYTHON,
        &["-c", "b = b'x' * (200 << 20)"],
        Stdio::null(),
    );
    let ended = kid.wait(&mut l, Duration::from_secs(30)).expect("ended");
    // MemoryError: an error exit, not a kill, and not reported as "limit"
    assert_eq!((ended.exit_code, ended.signal), (1, 0));
    assert!(!l.limit_hit(&ended));
    let on = l.report().get("memory").unwrap().get("on_exceed").cloned();
    assert!(on.unwrap().as_str().unwrap().contains("allocations fail"));
}

#[test]
fn set_running_changes_cpu_files_priority_and_adds_memory() {
    let test = "set_running_changes_cpu_files_priority_and_adds_memory";
    let w = Wanted {
        cpu_percent: Some(50),
        ..Wanted::default()
    };
    let mut l = Limits::prepare_with(&w, current(), real_env()).unwrap();
    let Some(dir) = grouped(&l, Ctl::Cpu, test) else {
        return;
    };
    let quota = |d: &Dir| match d.version {
        Version::V1 => read(&d.file("cpu.cfs_quota_us")),
        Version::V2 => read(&d.file("cpu.max")),
    };
    let (q20, q_high, q_none) = match dir.version {
        Version::V1 => ("20000", "150000", "-1"),
        Version::V2 => ("20000 100000", "150000 100000", "max 100000"),
    };
    let kid = Kid::spawn(&mut l, "/bin/sh", BUSY, Stdio::null());
    let set = |l: &mut Limits, pairs: Vec<(&str, Value)>| l.set_running(&Value::mapping(pairs));
    set(&mut l, vec![("cpu", Value::Int(20))]).unwrap();
    assert_eq!(quota(&dir), q20);
    let share = cpu_share(kid.pid, Duration::from_secs(2));
    eprintln!("{test}: lowered to 20% → {share:.1}%");
    assert!(share <= 25.0, "{share:.1}% under 20%");
    if cores() >= 2 {
        set(&mut l, vec![("cpu", Value::Int(150))]).unwrap();
        assert_eq!(quota(&dir), q_high);
    }
    set(
        &mut l,
        vec![("files", Value::Int(64)), ("priority", Value::Int(10))],
    )
    .unwrap();
    assert_eq!(
        limits_line(kid.pid, "Max open files"),
        "Max open files 64 64 files"
    );
    assert_eq!(stat(kid.pid).unwrap().nice, 10);
    let r = l.report();
    assert_eq!(r.get("files").unwrap().get("max"), Some(&Value::Int(64)));
    assert_eq!(
        r.get("priority").unwrap().get("nice"),
        Some(&Value::Int(10))
    );

    // a memory limit it did not have: a new group, or RLIMIT_AS
    set(&mut l, vec![("memory", Value::Int(100 << 20))]).unwrap();
    let m = l.report().get("memory").cloned().unwrap();
    eprintln!("{test}: memory added while running: {m}");
    match &l.memory.as_ref().unwrap().how {
        How::Cgroup { dir, moved } => {
            assert!(*moved);
            assert!(m.get("joined_while_running").is_some());
            let own = fs::read_to_string(format!("/proc/{}/cgroup", kid.pid)).unwrap();
            let rel = dir.path.strip_prefix(&dir.base).unwrap();
            assert!(own.contains(&*rel.to_string_lossy()), "{own}");
        }
        How::Rlimit { .. } => assert_eq!(
            limits_line(kid.pid, "Max address space"),
            format!("Max address space {0} {0} bytes", 100u64 << 20)
        ),
    }

    set(&mut l, vec![("cpu", Value::Int(0))]).unwrap();
    assert_eq!(quota(&dir), q_none);
    assert!(l.report().get("cpu").is_none(), "no longer claimed");
    drop(kid);
    assert!(l.cleanup());
    assert!(!dir.path.exists());
}

#[test]
fn fallback_limits_added_while_running() {
    let mut l = Limits::prepare_with(&Wanted::default(), fallback(), real_env()).unwrap();
    let kid = Kid::spawn(&mut l, "/bin/sleep", &["30"], Stdio::null());
    assert!(l.next_tick().is_none());
    l.set_running(&Value::mapping([
        ("cpu", Value::Int(50)),
        ("memory", Value::Int(64 << 20)),
    ]))
    .unwrap();
    assert_eq!(l.next_tick(), Some(TICK), "the driver must now tick");
    let cpu = limits_line(kid.pid, "Max cpu time");
    if l.env.cap_resource {
        assert_eq!(cpu, "Max cpu time 1 3 seconds");
    } else {
        assert!(cpu.starts_with("Max cpu time 1 "), "{cpu}");
    }
    assert_eq!(
        limits_line(kid.pid, "Max address space"),
        format!("Max address space {0} {0} bytes", 64u64 << 20)
    );
    assert_eq!(mech(&l, "cpu"), "rlimit_cpu");
    assert_eq!(mech(&l, "memory"), "rlimit_as");
    // lowering needs no privilege; raising the hard limit needs CAP_SYS_RESOURCE
    l.set_running(&Value::mapping([("memory", Value::Int(32 << 20))]))
        .unwrap();
    let raised = l.set_running(&Value::mapping([("memory", Value::Int(128 << 20))]));
    if l.env.cap_resource {
        raised.unwrap();
    } else {
        let e = raised.unwrap_err();
        assert!(
            e.starts_with("memory: ") && e.contains("CAP_SYS_RESOURCE"),
            "{e}"
        );
        let bytes = l.report().get("memory").unwrap().get("bytes").cloned();
        assert_eq!(
            bytes,
            Some(Value::Int(32 << 20)),
            "the report keeps what is enforced"
        );
    }
    l.set_running(&Value::mapping([("cpu", Value::Int(0))]))
        .unwrap();
    assert!(l.next_tick().is_none());
    assert!(l.report().get("cpu").is_none());
    drop(kid);
    l.cleanup();
    assert!(l
        .set_running(&Value::mapping([("cpu", Value::Int(5))]))
        .is_err());
}

#[test]
fn cpu_added_to_a_process_started_without_limits_moves_it_into_a_group() {
    let test = "cpu_added_to_a_process_started_without_limits_moves_it_into_a_group";
    let mut l = Limits::prepare(&Wanted::default()).unwrap();
    assert!(l.places.is_none(), "nothing wanted: nothing looked up");
    let kid = Kid::spawn(&mut l, "/bin/sleep", &["30"], Stdio::null());
    l.set_running(&Value::mapping([("cpu", Value::Int(30))]))
        .unwrap();
    let Some(dir) = grouped(&l, Ctl::Cpu, test) else {
        return;
    };
    let own = fs::read_to_string(format!("/proc/{}/cgroup", kid.pid)).unwrap();
    assert!(own.contains(&format!("/unisock/{}", l.name)), "{own}");
    let cpu = l.report().get("cpu").cloned().unwrap();
    assert!(cpu.get("joined_while_running").is_some(), "{cpu}");
    assert!(l.next_tick().is_none());
    drop(kid);
    assert!(l.cleanup());
    assert!(!dir.path.exists());
}

/// A SIGKILL from elsewhere (timeout, close) is not the CPU fallback's,
/// whether the hard limit is finite (CAP_SYS_RESOURCE) or not.
#[test]
fn fallback_cpu_limit_hit_only_for_its_own_kills() {
    let w = Wanted {
        cpu_percent: Some(50),
        ..Wanted::default()
    };
    let killed = |cpu_ms| Ended {
        signal: libc::SIGKILL as i64,
        exit_code: -1,
        cpu_ms,
        ..Ended::default()
    };
    for cap in [false, true] {
        let mut l = Limits::prepare_with(&w, fallback(), env(cap, false)).unwrap();
        l.cpu_hard = if cap { 3 } else { libc::RLIM_INFINITY };
        assert!(!l.limit_hit(&killed(5)), "cap {cap}");
        assert!(!l.limit_hit(&Ended::default()));
        assert!(l.limit_hit(&Ended {
            signal: libc::SIGXCPU as i64,
            ..Ended::default()
        }));
        // at the hard limit: the kernel's SIGKILL
        assert_eq!(l.limit_hit(&killed(3000)), cap, "cap {cap}");
        l.killed_by_limit = true;
        assert!(l.limit_hit(&killed(5)));
    }
}

#[test]
fn pids_max_stops_a_fork_loop_and_cleanup_kills_the_rest() {
    let test = "pids_max_stops_a_fork_loop_and_cleanup_kills_the_rest";
    if !python(test) {
        return;
    }
    let w = Wanted {
        processes: Some(10),
        ..Wanted::default()
    };
    // real_env: as root, RLIMIT_NPROC would not bind, so no pids cgroup is an error
    let mut l = match Limits::prepare_with(&w, current(), real_env()) {
        Ok(l) => l,
        Err(why) => {
            eprintln!("{test}: skipped: {why}");
            return;
        }
    };
    let Some(dir) = grouped(&l, Ctl::Pids, test) else {
        return;
    };
    let script = "import os, time\nn = 0\nfor i in range(50):\n    try:\n        \
                  pid = os.fork()\n    except OSError as e:\n        \
                  print('failed after', n, e.errno, flush=True)\n        break\n    \
                  if pid == 0:\n        time.sleep(60)\n        os._exit(0)\n    n += 1\n\
                  else:\n    print('forked', n, flush=True)\n";
    let mut kid = Kid::spawn(&mut l, PYTHON, &["-c", script], Stdio::piped());
    let line = kid.line();
    eprintln!("{test}: {line}");
    assert_eq!(line, format!("failed after 9 {}", libc::EAGAIN));
    let ended = kid.wait(&mut l, Duration::from_secs(30)).expect("ended");
    assert_eq!(ended.exit_code, 0);
    // its nine children are still in the group; cleanup kills them
    let left = dir.procs();
    assert_eq!(left.len(), 9, "{left:?}");
    assert!(l.cleanup());
    assert!(!dir.path.exists());
    assert!(left.iter().all(|&p| gone_or_zombie(p)), "{left:?}");
}

#[test]
fn cleanup_removes_the_group_with_a_grandchild_alive() {
    let test = "cleanup_removes_the_group_with_a_grandchild_alive";
    let w = Wanted {
        cpu_percent: Some(100),
        memory: Some(64 << 20),
        ..Wanted::default()
    };
    let mut l = Limits::prepare_with(&w, current(), real_env()).unwrap();
    if grouped(&l, Ctl::Cpu, test).is_none() && grouped(&l, Ctl::Memory, test).is_none() {
        return;
    }
    let dirs: Vec<PathBuf> = l.dirs.iter().map(|d| d.path.clone()).collect();
    let mut kid = Kid::spawn(
        &mut l,
        "/bin/sh",
        &["-c", "sleep 100 & echo $!; wait"],
        Stdio::piped(),
    );
    let grandchild: i32 = kid.line().parse().unwrap();
    kill(kid.pid, libc::SIGKILL);
    let ended = kid.wait(&mut l, Duration::from_secs(10)).expect("ended");
    assert_eq!(ended.signal, libc::SIGKILL as i64);
    assert!(
        !l.limit_hit(&ended),
        "a SIGKILL without an OOM kill is not the limit"
    );
    assert!(
        !gone_or_zombie(grandchild),
        "the grandchild outlived its parent"
    );
    assert!(l.cleanup());
    for d in &dirs {
        assert!(!d.exists(), "{}", d.display());
    }
    assert!(gone_or_zombie(grandchild));
}
