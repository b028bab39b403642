use super::landlock::landlock_abi;
use super::namespaces::id_map;
use super::seccomp::{compile, seccomp_available, ARCH, BPF_LD_W_ABS};
use super::*;
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

const PYTHON: &str = "/usr/bin/python3";

/// A directory under /tmp (mode 0755, so the nobody user can enter it),
/// removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "unisock-sandbox-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(p)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn s(&self, name: &str) -> String {
        self.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether the kernel features these tests exercise are here; prints why not.
fn can_run(python: bool) -> bool {
    if let Err(why) = landlock_abi() {
        eprintln!("skipped: {why}");
        return false;
    }
    if let Err(why) = seccomp_available() {
        eprintln!("skipped: {why}");
        return false;
    }
    if python && !Path::new(PYTHON).exists() {
        eprintln!("skipped: no {PYTHON}");
        return false;
    }
    true
}

fn prepared(v: &Value, cwd: &Path) -> Sandbox {
    Sandbox::prepare(v, cwd, is_root())
        .expect("prepare")
        .expect("a sandbox")
}

fn command(sb: Option<&Arc<Sandbox>>, cwd: &Path, argv: &[&str], uid: Option<u32>) -> Command {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..])
        .current_dir(cwd)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(id) = uid {
        cmd.uid(id).gid(id);
    }
    if let Some(sb) = sb {
        let sb = Arc::clone(sb);
        // SAFETY: in_child only makes system calls on prepared data.
        unsafe {
            cmd.pre_exec(move || sb.in_child());
        }
    }
    cmd
}

fn run(sb: Option<&Arc<Sandbox>>, cwd: &Path, argv: &[&str]) -> Output {
    command(sb, cwd, argv, None)
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
}

fn sh(sb: Option<&Arc<Sandbox>>, cwd: &Path, script: &str) -> Output {
    run(sb, cwd, &["/bin/sh", "-c", script])
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn report_of(sb: &Sandbox, key: &str) -> String {
    sb.report()
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn paths(list: &[&Path]) -> Value {
    Value::Array(
        list.iter()
            .map(|p| Value::str(p.display().to_string()))
            .collect(),
    )
}

#[test]
fn the_option_value_is_read_strictly() {
    assert_eq!(Config::from_value(&Value::Int(0)), Ok(None));
    let one = Config::from_value(&Value::Int(1)).unwrap().unwrap();
    assert_eq!(one, Config::default());
    assert!(!one.network && one.read.is_none() && one.processes.is_none());
    let m = Value::mapping([
        ("paths", Value::Array(vec![Value::str("/a")])),
        ("read", Value::Array(vec![])),
        ("network", Value::Int(1)),
        ("processes", Value::Int(7)),
    ]);
    let c = Config::from_value(&m).unwrap().unwrap();
    assert_eq!(c.paths, vec![PathBuf::from("/a")]);
    assert_eq!(c.read, Some(vec![]));
    assert!(c.network);
    assert_eq!(c.processes, Some(7));
    // the validator's normalised form: paths and network always there
    let n = Value::mapping([("paths", Value::Array(vec![])), ("network", Value::Int(0))]);
    assert_eq!(Config::from_value(&n), Ok(Some(Config::default())));
    for bad in [
        Value::str("yes"),
        Value::mapping([("paths", Value::str("/a"))]),
        Value::mapping([("paths", Value::Array(vec![Value::str("rel")]))]),
        Value::mapping([("read", Value::Array(vec![Value::Int(3)]))]),
        Value::mapping([("network", Value::str("on"))]),
        Value::mapping([("processes", Value::Int(-1))]),
        Value::mapping([("netwrok", Value::Int(1))]),
    ] {
        assert!(Config::from_value(&bad).is_err(), "{bad:?}");
    }
    let cwd = std::env::temp_dir();
    assert!(Sandbox::prepare(&Value::Int(0), &cwd, false)
        .unwrap()
        .is_none());
    if landlock_abi().is_ok() {
        let missing = Value::mapping([(
            "paths",
            Value::Array(vec![Value::str("/nonexistent/unisock-sandbox")]),
        )]);
        let e = Sandbox::prepare(&missing, &cwd, false).err().unwrap();
        assert!(e.contains("/nonexistent/unisock-sandbox"), "{e}");
    }
}

#[test]
fn the_filter_is_compiled_with_its_prefix() {
    let Some(_) = ARCH else { return };
    let base = compile(false).unwrap();
    let no_inet = compile(true).unwrap();
    assert!(no_inet.len() > base.len());
    // after the architecture check: load nr, (x32 guard,) clone3 -> ENOSYS
    assert_eq!(base[3].code, BPF_LD_W_ABS);
    assert_eq!(base[3].k, 0);
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let i = base.iter().position(|f| f.k == enosys).unwrap();
    assert_eq!(base[i - 1].k, libc::SYS_clone3 as u32);
    assert!(deny_list().iter().any(|&(n, _)| n == "ptrace"));
    let mut names: Vec<_> = deny_list().iter().map(|&(n, _)| n).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), deny_list().len());
}

#[test]
fn id_maps_are_formatted_without_allocating() {
    let mut buf = [0u8; 32];
    let n = id_map(&mut buf, 65534);
    assert_eq!(&buf[..n], b"65534 65534 1");
    let n = id_map(&mut buf, 0);
    assert_eq!(&buf[..n], b"0 0 1");
    let n = id_map(&mut buf, u32::MAX);
    assert_eq!(&buf[..n], b"4294967295 4294967295 1");
}

#[test]
fn writes_outside_the_working_dir_fail() {
    if !can_run(false) {
        return;
    }
    let (cwd, outside, extra) = (TempDir::new("cwd"), TempDir::new("out"), TempDir::new("rw"));
    let escape = format!("echo x > {}", outside.s("f"));
    let o = sh(None, &cwd.0, &escape);
    assert!(o.status.success(), "without the sandbox: {o:?}");
    std::fs::remove_file(outside.join("f")).unwrap();

    let v = Value::mapping([("paths", paths(&[&extra.0]))]);
    let sb = Arc::new(prepared(&v, &cwd.0));
    let o = sh(Some(&sb), &cwd.0, &escape);
    assert!(!o.status.success(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
        "{o:?}"
    );
    assert!(!outside.join("f").exists());
    // nor rename out of, or truncate outside, or make a device
    std::fs::write(outside.join("keep"), "data").unwrap();
    let o = sh(
        Some(&sb),
        &cwd.0,
        &format!("truncate -s 0 {}", outside.s("keep")),
    );
    assert!(!o.status.success(), "{o:?}");
    assert_eq!(
        std::fs::read_to_string(outside.join("keep")).unwrap(),
        "data"
    );

    let inside = format!(
        "echo a > in && mkdir d && echo b > d/f && rm d/f && echo c > {} && echo d > /dev/null",
        extra.s("f")
    );
    let o = sh(Some(&sb), &cwd.0, &inside);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(std::fs::read_to_string(cwd.join("in")).unwrap(), "a\n");
    assert_eq!(std::fs::read_to_string(extra.join("f")).unwrap(), "c\n");
    if is_root() {
        let o = sh(Some(&sb), &cwd.0, "mknod blk b 7 0");
        assert!(!o.status.success(), "{o:?}");
        assert!(!cwd.join("blk").exists());
    }
}

#[test]
fn reads_are_limited_when_read_is_set() {
    if !can_run(false) {
        return;
    }
    let (cwd, secret, allowed) = (
        TempDir::new("cwd"),
        TempDir::new("secret"),
        TempDir::new("ro"),
    );
    std::fs::write(secret.join("f"), "secret").unwrap();
    std::fs::write(allowed.join("f"), "allowed").unwrap();
    let cat_secret = ["/bin/cat", &secret.s("f")];
    let o = run(None, &cwd.0, &cat_secret);
    assert_eq!(stdout(&o), "secret", "without the sandbox: {o:?}");
    // 1: reads everywhere
    let o = run(
        Some(&Arc::new(prepared(&Value::Int(1), &cwd.0))),
        &cwd.0,
        &cat_secret,
    );
    assert_eq!(stdout(&o), "secret", "{o:?}");

    let v = Value::mapping([("read", paths(&[&allowed.0]))]);
    let sb = Arc::new(prepared(&v, &cwd.0));
    let o = run(Some(&sb), &cwd.0, &cat_secret);
    assert!(!o.status.success() && o.stdout.is_empty(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
        "{o:?}"
    );
    // system files, the listed path, the working dir, /dev/urandom: yes
    std::fs::write(cwd.join("mine"), "mine").unwrap();
    let o = sh(
        Some(&sb),
        &cwd.0,
        &format!(
            "cat /etc/passwd >/dev/null && cat {} && cat mine && head -c 4 /dev/urandom | wc -c",
            allowed.s("f")
        ),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "allowedmine4");
    assert!(sb
        .report()
        .get("landlock")
        .unwrap()
        .as_str()
        .unwrap()
        .contains("reads only beneath /usr"));
}

#[test]
fn tcp_connect_fails_with_the_network_off() {
    if !can_run(false) {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cwd = TempDir::new("cwd");
    let connect = format!("exec 3<>/dev/tcp/127.0.0.1/{port}");
    let argv = ["/bin/bash", "-c", &connect];
    let o = run(None, &cwd.0, &argv);
    assert!(o.status.success(), "without the sandbox: {o:?}");

    let sb = Arc::new(prepared(&Value::Int(1), &cwd.0));
    let o = run(Some(&sb), &cwd.0, &argv);
    assert!(!o.status.success(), "{o:?}");
    let net = report_of(&sb, "network");
    if is_root() {
        assert_eq!(net, "off (network namespace)");
    } else {
        assert!(net.starts_with("off"), "{net}");
    }

    let v = Value::mapping([("network", Value::Int(1))]);
    let sb = Arc::new(prepared(&v, &cwd.0));
    let o = run(Some(&sb), &cwd.0, &argv);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(report_of(&sb, "network"), "on");
}

#[test]
fn without_a_namespace_seccomp_denies_inet_sockets() {
    if !can_run(true) {
        return;
    }
    let cwd = TempDir::new("cwd");
    let script = "import socket\n\
        for fam in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):\n\
        \x20   try:\n\
        \x20       socket.socket(fam, socket.SOCK_STREAM).close(); print('ok', end=' ')\n\
        \x20   except OSError as e:\n\
        \x20       print(e.errno, end=' ')\n";
    let argv = [PYTHON, "-c", script];
    let o = run(None, &cwd.0, &argv);
    assert_eq!(stdout(&o), "ok ok ok", "without the sandbox: {o:?}");
    let mut sb = prepared(&Value::Int(1), &cwd.0);
    sb.try_namespaces = false;
    let sb = Arc::new(sb);
    let o = run(Some(&sb), &cwd.0, &argv);
    assert_eq!(stdout(&o), format!("{0} {0} ok", libc::EPERM), "{o:?}");
    let net = report_of(&sb, "network");
    assert!(net.starts_with("off: seccomp"), "{net}");
}

#[test]
fn a_fork_bomb_is_stopped_by_the_process_limit() {
    if !can_run(true) {
        return;
    }
    if !is_root() {
        eprintln!("skipped: running the child as nobody needs root");
        return;
    }
    let cwd = TempDir::new("cwd");
    // 20 forks; each child waits on a pipe; the parent counts, then
    // kills and reaps its children (an orphan's zombie would stay
    // charged to nobody if nothing reaps it).
    let script = "import os, signal\n\
        r, w = os.pipe()\n\
        kids, failed = [], 0\n\
        for i in range(20):\n\
        \x20   try:\n\
        \x20       pid = os.fork()\n\
        \x20   except OSError:\n\
        \x20       failed += 1; continue\n\
        \x20   if pid == 0:\n\
        \x20       os.close(w); os.read(r, 1); os._exit(0)\n\
        \x20   kids.append(pid)\n\
        for pid in kids:\n\
        \x20   os.kill(pid, signal.SIGKILL); os.waitpid(pid, 0)\n\
        print(len(kids), failed)\n";
    let nobody = 65534;
    let bomb = |sb: Option<&Arc<Sandbox>>| -> (usize, usize) {
        let child = command(sb, &cwd.0, &[PYTHON, "-c", script], Some(nobody))
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        let o = child.wait_with_output().unwrap();
        // Everything in its group is gone: the children were reaped, and
        // the group is killed anyway so a failure leaks nothing.
        // SAFETY: kill with plain integers on the group we created.
        let alive = unsafe { libc::kill(-pgid, 0) } == 0;
        // SAFETY: as above.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        assert!(!alive, "processes of group {pgid} survived");
        let out = stdout(&o);
        let mut it = out.split(' ').map(|n| n.parse::<usize>().unwrap_or(999));
        match (it.next(), it.next()) {
            (Some(ok), Some(failed)) => (ok, failed),
            _ => panic!("{o:?}"),
        }
    };
    assert_eq!(bomb(None), (20, 0), "without the sandbox");
    let v = Value::mapping([("processes", Value::Int(5))]);
    let sb = Arc::new(Sandbox::prepare(&v, &cwd.0, false).unwrap().unwrap());
    let (ok, failed) = bomb(Some(&sb));
    assert!(
        ok <= 5 && failed >= 15 && ok + failed == 20,
        "{ok} {failed}"
    );
    let p = report_of(&sb, "processes");
    assert!(p.starts_with("RLIMIT_NPROC 5"), "{p}");
    assert!(report_of(&sb, "network").starts_with("off"));
}

#[test]
fn ptrace_and_namespaces_are_denied() {
    if !can_run(true) {
        return;
    }
    let cwd = TempDir::new("cwd");
    // ptrace(PTRACE_TRACEME); unshare(CLONE_NEWUTS); clone3(NULL, 0);
    // getpid through the x32 ABI. Each prints 0 or its errno.
    let script = "import ctypes, platform\n\
        libc = ctypes.CDLL(None, use_errno=True)\n\
        def r(v):\n\
        \x20   print(0 if v >= 0 else ctypes.get_errno(), end=' ')\n\
        r(libc.ptrace(0, 0, None, None))\n\
        r(libc.unshare(0x04000000))\n\
        r(libc.syscall(435, None, 0))\n\
        r(libc.syscall(0x40000000 + 39) if platform.machine() == 'x86_64' else -1)\n";
    let argv = [PYTHON, "-c", script];
    let o = run(None, &cwd.0, &argv);
    let free: Vec<String> = stdout(&o).split(' ').map(str::to_string).collect();
    assert_eq!(free.len(), 4, "{o:?}");
    assert_eq!(free[0], "0", "ptrace without the sandbox: {o:?}");
    if is_root() {
        assert_eq!(free[1], "0", "unshare without the sandbox: {o:?}");
    }
    assert_eq!(free[2], libc::EINVAL.to_string(), "clone3 without: {o:?}");
    let sb = Arc::new(prepared(&Value::Int(1), &cwd.0));
    let o = run(Some(&sb), &cwd.0, &argv);
    let boxed: Vec<String> = stdout(&o).split(' ').map(str::to_string).collect();
    let eperm = libc::EPERM.to_string();
    assert_eq!(boxed.len(), 4, "{o:?}");
    assert_eq!(boxed[0], eperm, "ptrace: {o:?}");
    assert_eq!(boxed[1], eperm, "unshare: {o:?}");
    assert_eq!(boxed[2], libc::ENOSYS.to_string(), "clone3: {o:?}");
    if cfg!(target_arch = "x86_64") {
        assert_eq!(boxed[3], eperm, "x32: {o:?}");
        assert_ne!(free[3], eperm, "x32 without: {o:?}");
    }
}

#[test]
fn signals_to_the_driver_are_denied() {
    if !can_run(false) || landlock_abi().unwrap_or(0) < 6 {
        return;
    }
    let cwd = TempDir::new("cwd");
    let me = std::process::id().to_string();
    let argv = ["/bin/sh", "-c", "kill -0 \"$1\" && kill -0 $$", "sh", &me];
    let o = run(None, &cwd.0, &argv);
    assert!(o.status.success(), "without the sandbox: {o:?}");
    let sb = Arc::new(prepared(&Value::Int(1), &cwd.0));
    let o = run(Some(&sb), &cwd.0, &argv);
    assert!(!o.status.success(), "{o:?}");
    // its own processes it may still signal
    let o = sh(
        Some(&sb),
        &cwd.0,
        "sleep 5 & kill $! && wait $!; test $? -gt 128",
    );
    assert!(o.status.success(), "{o:?}");
}

#[test]
fn the_landlock_fd_is_not_inherited() {
    if !can_run(false) {
        return;
    }
    let cwd = TempDir::new("cwd");
    let sb = Arc::new(prepared(&Value::Int(1), &cwd.0));
    let fd = sb.landlock.as_ref().unwrap().fd.as_raw_fd();
    // SAFETY: F_GETFD on an fd the Sandbox owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert!(flags >= 0 && flags & libc::FD_CLOEXEC != 0, "{flags}");
    // the name the child would show for it
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
    assert!(link.display().to_string().contains("landlock"), "{link:?}");
    let o = sh(Some(&sb), &cwd.0, "ls -l /proc/self/fd/");
    assert!(o.status.success(), "{o:?}");
    let listing = stdout(&o);
    assert!(
        !listing.is_empty() && !listing.contains("landlock"),
        "{listing}"
    );
}

#[test]
fn the_report_says_what_was_applied() {
    if !can_run(false) {
        return;
    }
    let cwd = TempDir::new("cwd");
    let sb = Arc::new(prepared(&Value::Int(1), &cwd.0));
    for key in ["no_new_privs", "landlock", "seccomp", "network"] {
        assert!(report_of(&sb, key).starts_with("not applied yet"), "{key}");
    }
    assert_eq!(report_of(&sb, "processes"), "not limited");
    let o = run(Some(&sb), &cwd.0, &["/bin/true"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(report_of(&sb, "no_new_privs"), "applied");
    let ll = report_of(&sb, "landlock");
    assert!(ll.starts_with("applied (Landlock ABI "), "{ll}");
    assert!(ll.contains(&cwd.0.display().to_string()), "{ll}");
    assert!(ll.contains("reads allowed everywhere"), "{ll}");
    let sc = report_of(&sb, "seccomp");
    assert!(
        sc.starts_with(&format!("applied: {} system calls", deny_list().len())),
        "{sc}"
    );
    assert!(report_of(&sb, "network").starts_with("off"));
    assert!(sb.child_failure().is_none());

    let v = Value::mapping([("network", Value::Int(1)), ("processes", Value::Int(3))]);
    let sb = Arc::new(Sandbox::prepare(&v, &cwd.0, true).unwrap().unwrap());
    let o = run(Some(&sb), &cwd.0, &["/bin/true"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(report_of(&sb, "network"), "on");
    let p = report_of(&sb, "processes");
    assert!(
        p.contains("RLIMIT_NPROC 3") && p.contains("not enforced"),
        "{p}"
    );
}

#[test]
fn a_layer_failing_in_the_child_stops_the_exec() {
    if !can_run(false) {
        return;
    }
    let cwd = TempDir::new("cwd");
    let marker = cwd.join("ran");
    let mut sb = prepared(&Value::Int(1), &cwd.0);
    // Not a ruleset: landlock_restrict_self fails in the child.
    let null = std::fs::File::open("/dev/null").unwrap();
    sb.landlock.as_mut().unwrap().fd = OwnedFd::from(null);
    let sb = Arc::new(sb);
    let e = command(Some(&sb), &cwd.0, &["/bin/sh", "-c", "touch ran"], None)
        .spawn()
        .expect_err("the spawn must fail");
    assert!(e.raw_os_error().is_some(), "{e}");
    assert_eq!(sb.child_failure(), Some("landlock_restrict_self"));
    assert!(report_of(&sb, "landlock").starts_with("not applied yet"));
    assert!(!marker.exists());
}
