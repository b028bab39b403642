"""The admin's policy of host powers (issue 13, docs/SECURITY.md), through the harness's
`policy` verb: with no policy every power that reaches the host is refused with EESECURITY
and a message naming the policy key to change; a policy allows exactly what it names,
compared as the kernel resolves paths (symbolic links, `..`); `policy open` restores
everything. Each test would pass a forbidden power through without the library's checks, but
for the guards that say so in their docstring (they hold a behaviour the checks must keep).
"""
import json
import os
import socket
import subprocess
import time

import pytest

from host import Host

EESECURITY = -7
SECURITY = 7207
WRAPPED = bool(os.environ.get("UNISOCK_E2E_WRAP"))
WAIT = 60.0 if WRAPPED else 10.0


def q(v):
    return json.dumps(v)


def refused(r, key, *also):
    """`r` is an EESECURITY refusal whose message names the policy key `key`."""
    assert r["result"] == "error" and r["code"] == SECURITY and r["ee"] == EESECURITY, r
    assert f'"{key}"' in r["error"] and "unisock policy" in r["error"], r
    for text in also:
        assert text in r["error"], (text, r)
    return r


def canon(p):
    return os.path.realpath(str(p))


def until_exit(h, sid):
    """(stdout, exit mapping) of the process on `sid`."""
    out = b""
    deadline = time.monotonic() + WAIT
    while True:
        e = h.event("read", sid, timeout=max(0.01, deadline - time.monotonic()))
        d = e["data"]
        if d.get("type") == "stdout":
            out += bytes(d["data"]["buffer"]) if isinstance(d["data"], dict) else d["data"].encode()
        if d.get("type") in ("exit", "result"):
            h.event("close", sid, timeout=max(0.01, deadline - time.monotonic()))
            return out, d


@pytest.fixture
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    return d


# ----- no policy: the library's default -----

def test_no_policy_refuses_the_modes_that_reach_the_host(host):
    for mode, number in [("EXTERNAL_PROCESS", 22), ("EXTERNAL_COMMAND_MODE", 23),
                         ("IPC_SERVER", 29), ("IPC_CLIENT", 30)]:
        refused(host.call(f"create 1 {mode}"), "modes", f"{mode} ({number})")
    # upstream's modes and HTTP work as before
    for sid, mode in enumerate(["STREAM", "MUD", "DATAGRAM", "STREAM_TLS", "HTTP_SERVER",
                                "HTTPS_CLIENT"], start=2):
        host.ok(f"create {sid} {mode}")
    v = host.call("policy")["value"]
    assert v["modes"] == [10, 11, 12, 13, 16, 17, 18, 19] and v["open"] == 0 and v["commands"] == [], v


def test_no_policy_refuses_a_tls_file_at_set_time_and_at_use(host, pki):
    for sid, mode in [(1, "HTTPS_SERVER"), (2, "STREAM_TLS")]:
        host.ok(f"create {sid} {mode}")
        for option in ("SO_TLS_CERT", "SO_TLS_KEY"):
            r = refused(host.call(f"set {sid} {option} {q(str(pki / 'cert.pem'))}"), "tls_dirs",
                        option)
            assert host.call(f"get {sid} {option}")["value"] in (None, 0, ""), r
    # a relative path resolves from the working directory, and is refused the same way
    host.ok("create 3 HTTPS_CLIENT")
    refused(host.call("set 3 SO_TLS_CA \"cert.pem\""), "tls_dirs")
    # TLS with the system roots needs nothing
    host.ok("set 3 SO_TLS_VERIFY_PEER 1")


def test_no_policy_the_other_host_powers_are_refused_when_the_modes_are_enabled(tmp_path):
    """A policy that only enables the modes: every key left out allows nothing."""
    h = Host(wrap=os.environ.get("UNISOCK_E2E_WRAP"), policy={"modes": [22, 23, 29, 30]})
    try:
        h.ok("create 1 EXTERNAL_PROCESS")
        refused(h.call(f"set 1 EXTERNAL_COMMAND {q('/bin/true')}"), "commands")
        refused(h.call(f"set 1 EXTERNAL_WATCH_PATH {q(str(tmp_path))}"), "watch_dirs")
        h.ok("create 2 EXTERNAL_PROCESS")
        refused(h.call(f"ext 2 monitor {q(str(tmp_path))}"), "watch_dirs")
        refused(h.call(f"set 1 EXTERNAL_STDOUT_MODE {q('file:' + str(tmp_path / 'out'))}"),
                "file_dirs")
        refused(h.call("set 1 EXTERNAL_SHELL 1"), "shell")
        h.ok("create 3 IPC_SERVER")
        refused(h.call(f"set 3 IPC_SOCKET_DIR {q(str(tmp_path))}"), "socket_dirs")
        # the default directory, used when IPC_SOCKET_DIR is unset, is checked too (at bind)
        h.ok("set 3 IPC_EVENT_NAME \"bus\"")
        refused(h.call("bind 3 0"), "socket_dirs", "IPC_SOCKET_DIR (unset, so the default)")
        # the TCP transport reaches no host path: unaffected
        h.ok("create 4 IPC_SERVER")
        h.ok("set 4 IPC_EVENT_NAME \"bus\"")
        h.ok("set 4 IPC_TRANSPORT \"tcp\"")
        h.ok("set 4 IPC_HOST \"127.0.0.1\"")
        h.ok("bind 4 0")
        h.ok("create 5 IPC_CLIENT")
        h.ok("set 5 IPC_EVENT_NAME \"bus\"")
        refused(h.call("connect 5 /run/some.sock"), "socket_dirs")
        assert not os.listdir(tmp_path)
    finally:
        assert h.close() == 0, "".join(h.log[-20:]) + "".join(h.stderr[-20:])


# ----- with a policy -----

@pytest.fixture
def tree(tmp_path):
    """bin/ (allowed commands: a script and a link pointing out), allowed/ (watch, socket,
    TLS and file directories, with a link pointing out), outside/ (not allowed)."""
    bin_ = tmp_path / "bin"
    allowed = tmp_path / "allowed"
    outside = tmp_path / "outside"
    for d in (bin_, allowed, outside):
        d.mkdir()
    tool = bin_ / "tool"
    tool.write_text("#!/bin/sh\necho tool ran \"$@\"\n")
    tool.chmod(0o755)
    other = outside / "other"
    other.write_text("#!/bin/sh\necho other ran\n")
    other.chmod(0o755)
    (bin_ / "escape").symlink_to(other)
    (allowed / "out").symlink_to(outside)
    (outside / "secret").write_text("not for LPC\n")
    return {"root": tmp_path, "bin": bin_, "tool": tool, "other": other, "allowed": allowed,
            "outside": outside}


def narrow(tree, **extra):
    a = str(tree["allowed"])
    p = {"modes": [10, 11, 12, 13, 22, 23, 29, 30], "commands": [str(tree["bin"]) + "/", "/bin/echo"],
         "watch_dirs": [a], "socket_dirs": [a], "tls_dirs": [a], "file_dirs": [a]}
    p.update(extra)
    return p


@pytest.fixture
def hp(tree):
    h = Host(wrap=os.environ.get("UNISOCK_E2E_WRAP"), policy=narrow(tree))
    yield h
    assert h.close() == 0, "".join(h.log[-20:]) + "".join(h.stderr[-20:])


def test_the_policy_reads_back_canonical(hp, tree):
    v = hp.call("policy")["value"]
    assert v["commands"] == [canon("/bin/echo"), canon(tree["bin"]) + "/"], v
    assert v["file_dirs"] == [canon(tree["allowed"])] and v["shell"] == 0 and v["open"] == 0, v
    # a refused policy leaves the one in force
    r = hp.call('policy {"modes":[22],"commandz":[]}')
    assert r["result"] == "error" and "commandz" in r["error"], r
    assert hp.call("policy")["value"] == v


def test_the_allowed_commands_run(hp, tree):
    hp.ok("create 1 EXTERNAL_PROCESS")
    hp.ok(f"set 1 EXTERNAL_COMMAND {q(str(tree['tool']))}")
    hp.ok(f"set 1 EXTERNAL_ARGS {q(['a', 'b'])}")
    hp.ok("bind 1 0")
    out, end = until_exit(hp, 1)
    assert out == b"tool ran a b\n" and end["exit_code"] == 0, (out, end)
    # a link to an allowed executable runs it; its output file lies in file_dirs
    hp.ok("create 2 EXTERNAL_PROCESS")
    hp.ok(f"set 2 EXTERNAL_COMMAND {q('/bin/echo')}")
    hp.ok(f"set 2 EXTERNAL_ARGS {q(['to a file'])}")
    target = tree["allowed"] / "echo.out"
    hp.ok(f"set 2 EXTERNAL_STDOUT_MODE {q('file:' + str(target))}")
    hp.ok("bind 2 0")
    until_exit(hp, 2)
    assert target.read_text() == "to a file\n"


def test_another_path_a_link_out_and_a_dotdot_path_are_refused(hp, tree):
    hp.ok("create 1 EXTERNAL_PROCESS")
    for cmd, seen in [
        (str(tree["other"]), None),                                   # another path
        ("/bin/cat", None),                                            # another system program
        (str(tree["bin"] / "escape"), f"(it is {canon(tree['other'])})"),  # a link pointing out
        (str(tree["bin"]) + "/../outside/other", f"(it is {canon(tree['other'])})"),  # ..
        ("tool", "(a relative path)"),
    ]:
        r = refused(hp.call(f"set 1 EXTERNAL_COMMAND {q(cmd)}"), "commands", "EXTERNAL_COMMAND")
        if seen:
            assert seen in r["error"], r
    assert hp.call("get 1 EXTERNAL_COMMAND")["value"] in (None, 0, "")
    # the same for directories: a link in an allowed directory that points out, and ..
    hp.ok("create 2 EXTERNAL_PROCESS")
    a = tree["allowed"]
    for path in [str(a / "out"), str(a / "out") + "/**", str(tree["outside"])]:
        refused(hp.call(f"set 2 EXTERNAL_WATCH_PATH {q(path)}"), "watch_dirs")
        refused(hp.call(f"ext 2 monitor {q(path)}"), "watch_dirs")
    refused(hp.call(f"ext 2 monitor {q(str(a) + '/../outside')}"), "watch_dirs")
    for path in [str(a / "out" / "secret"), str(tree["outside"] / "new")]:
        refused(hp.call(f"set 2 EXTERNAL_STDIN_MODE {q('file:' + path)}"), "file_dirs")
        refused(hp.call(f"set 2 EXTERNAL_STDERR_MODE {q('file:' + path)}"), "file_dirs")
    hp.ok("create 3 IPC_SERVER")
    refused(hp.call(f"set 3 IPC_SOCKET_DIR {q(str(a / 'out'))}"), "socket_dirs")
    # options whose paths the catalog takes without ".." refuse it before the policy looks
    for option, value in [("EXTERNAL_WATCH_PATH", str(a) + "/../outside"),
                          ("EXTERNAL_STDOUT_MODE", "file:" + str(a) + "/../outside/x"),
                          ("IPC_SOCKET_DIR", str(a) + "/../outside")]:
        sid = 3 if option.startswith("IPC") else 2
        r = hp.call(f"set {sid} {option} {q(value)}")
        assert r["result"] == "error" and r["code"] in (7102, SECURITY), r
    # a TLS path may hold "..": resolved as the kernel does, it is outside
    hp.ok("create 5 HTTPS_CLIENT")
    refused(hp.call(f"set 5 SO_TLS_CA {q(str(a) + '/../outside/secret')}"), "tls_dirs",
            f"(it is {canon(tree['outside'] / 'secret')})")
    hp.ok("create 4 HTTPS_SERVER")
    refused(hp.call(f"set 4 SO_TLS_KEY {q(str(a / 'out' / 'secret'))}"), "tls_dirs",
            f"(it is {canon(tree['outside'] / 'secret')})")
    # the driver's own answer for a missing file outside: the same refusal (nothing learnt)
    refused(hp.call(f"set 4 SO_TLS_KEY {q(str(tree['outside'] / 'missing'))}"), "tls_dirs")


def test_a_shell_another_user_and_loader_variables_are_refused(hp, tree):
    hp.ok("create 1 EXTERNAL_PROCESS")
    hp.ok(f"set 1 EXTERNAL_COMMAND {q(str(tree['tool']))}")
    refused(hp.call("set 1 EXTERNAL_SHELL 1"), "shell")
    refused(hp.call(f"set 1 EXTERNAL_SHELL {q('/bin/bash')}"), "shell")
    # another user or group (the driver's own is allowed: it grants nothing)
    me = os.geteuid()
    other = 65534 if me != 65534 else 0
    refused(hp.call(f"set 1 EXTERNAL_USER {other}"), "users")
    refused(hp.call(f"set 1 EXTERNAL_GROUP {other}"), "groups")
    hp.ok(f"set 1 EXTERNAL_USER {me}")
    # variables that make an allowed program load other code
    for env in [{"LD_PRELOAD": "/tmp/x.so"}, {"LD_LIBRARY_PATH": "/tmp"},
                {"GCONV_PATH": "/tmp"}, {"BASH_ENV": "/tmp/x"}, {"PYTHONPATH": "/tmp"},
                {"OPENSSL_CONF": "/tmp/x.cnf"}, {"HOME": "/tmp"}, {"XDG_CONFIG_HOME": "/tmp"},
                {"LESSOPEN": "|/tmp/x %s"}, {"GIT_SSH_COMMAND": "/tmp/x"},
                {"JAVA_TOOL_OPTIONS": "-javaagent:/tmp/x.jar"}, {"GEM_PATH": "/tmp"},
                {"PATH": str(tree["outside"])}]:
        refused(hp.call(f"set 1 EXTERNAL_ENV {q(env)}"), "shell" if "PATH" not in env
                else "commands", "EXTERNAL_ENV")
    hp.ok(f"set 1 EXTERNAL_ENV {q({'LANG': 'C', 'PATH': str(tree['bin'])})}")
    hp.ok("bind 1 0")
    out, end = until_exit(hp, 1)
    assert out == b"tool ran\n", out


def test_the_start_checks_again_with_the_policy_in_force(hp, tree):
    hp.ok("create 1 EXTERNAL_PROCESS")
    hp.ok(f"set 1 EXTERNAL_COMMAND {q(str(tree['tool']))}")
    hp.ok(f"set 1 EXTERNAL_STDOUT_MODE {q('file:' + str(tree['allowed'] / 'o'))}")
    hp.set_policy(narrow(tree, commands=["/bin/echo"]))
    refused(hp.call("bind 1 0"), "commands")
    hp.set_policy(narrow(tree, file_dirs=[]))
    refused(hp.call("bind 1 0"), "file_dirs")
    hp.set_policy(narrow(tree))
    hp.ok("bind 1 0")
    until_exit(hp, 1)
    assert (tree["allowed"] / "o").read_text() == "tool ran\n"


def test_watches_stay_in_the_allowed_tree(hp, tree):
    """A guard, not a test of the policy: a recursive watch never followed a symbolic link
    inside its tree, with or without a policy, so this passes without the policy's checks too.
    It holds that the descriptor-based walk the policy brought keeps it so."""
    a = tree["allowed"]
    (a / "sub").mkdir()
    hp.ok("create 1 EXTERNAL_PROCESS")
    hp.ok(f"set 1 EXTERNAL_WATCH_PATH {q(str(a) + '/**')}")
    # what happens behind the link that points out is not reported
    (tree["outside"] / "behind-the-link").write_text("")
    (a / "sub" / "inside").write_text("")
    e = hp.event("read", 1, pred=lambda e: e["data"].get("name") == "inside", timeout=WAIT)
    assert e["data"]["path"] == str(a / "sub")
    assert not [x for x in hp.events if x.get("data", {}).get("name") == "behind-the-link"]


@pytest.fixture
def mounted(tree):
    """A tmpfs mounted at allowed/mnt (another file system inside the allowed tree)."""
    mnt = tree["allowed"] / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "unisock-test", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN) in this mount namespace: "
                    + (r.stderr.strip() or f"mount exited {r.returncode}"))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_recursive_watches_do_not_cross_into_another_mount(tree, mounted):
    """docs/SECURITY.md: under a policy that is not `open` a recursive watch stays on its
    root's file system (src/external/watch.rs: EXDEV). Events are read from one inotify queue
    in the order they happened, so the event of a file made after the one on the mount proves
    that none came for the mount. Under `open` the same walk crosses into it (as before)."""
    a = tree["allowed"]
    for policy, crosses in [(narrow(tree), False), ("open", True)]:
        for f in ("inside", "after", "first"):
            for d in (a, mounted):
                if (d / f).exists():
                    (d / f).unlink()
        h = Host(wrap=os.environ.get("UNISOCK_E2E_WRAP"), policy=policy)
        try:
            h.ok("create 1 EXTERNAL_PROCESS")
            h.ok(f"set 1 EXTERNAL_WATCH_PATH {q(str(a) + '/**')}")
            (a / "first").write_text("")  # the watch is in place once this is reported
            h.event("read", 1, pred=lambda e: e["data"].get("name") == "first", timeout=WAIT)
            (mounted / "inside").write_text("")
            (a / "after").write_text("")
            h.event("read", 1, pred=lambda e: e["data"].get("name") == "after", timeout=WAIT)
            seen = [x for x in h.events if x.get("data", {}).get("name") == "inside"]
            assert bool(seen) == crosses, (policy, seen)
            # the mount as a root of its own, inside watch_dirs, is watched
            h.ok(f"set 1 EXTERNAL_WATCH_PATH {q(str(mounted))}")
            (mounted / "own").write_text("")
            e = h.event("read", 1, pred=lambda e: e["data"].get("name") == "own", timeout=WAIT)
            assert e["data"]["path"] == str(mounted)
            (mounted / "own").unlink()
        finally:
            assert h.close() == 0, "".join(h.log[-20:]) + "".join(h.stderr[-20:])


def test_ipc_socket_files_in_an_allowed_directory_only(hp, tree):
    a = tree["allowed"]
    hp.ok("create 1 IPC_SERVER")
    hp.ok(f"set 1 IPC_SOCKET_DIR {q(str(a))}")
    hp.ok("set 1 IPC_EVENT_NAME \"bus\"")
    hp.ok("bind 1 0")
    hp.ok("listen 1")
    assert (a / "bus.sock").is_socket()
    hp.ok("create 2 IPC_CLIENT")
    hp.ok(f"set 2 IPC_SOCKET_DIR {q(str(a))}")
    hp.ok("set 2 IPC_EVENT_NAME \"bus\"")
    hp.ok("connect 2 \"\"")
    hp.event("read", 2, pred=lambda e: e["data"].get("type") == "connected", timeout=WAIT)
    # a socket outside, reached directly or through a link in the allowed directory
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(tree["outside"] / "host.sock"))
    srv.listen(1)
    try:
        (a / "host.sock").symlink_to(tree["outside"] / "host.sock")
        for sid, path in [(3, tree["outside"] / "host.sock"), (4, a / "host.sock")]:
            hp.ok(f"create {sid} IPC_CLIENT")
            hp.ok(f"set {sid} IPC_EVENT_NAME \"bus\"")
            refused(hp.call(f"connect {sid} {str(path)}"), "socket_dirs")
        srv.settimeout(0)
        with pytest.raises(BlockingIOError):
            srv.accept()
    finally:
        srv.close()


def test_tls_files_in_an_allowed_directory_serve(hp, tree, pki):
    a = tree["allowed"]
    for name in ("cert.pem", "key.pem"):
        (a / name).write_bytes((pki / name).read_bytes())
    hp.ok("create 1 HTTPS_SERVER")
    hp.ok(f"set 1 SO_TLS_CERT {q(str(a / 'cert.pem'))}")
    hp.ok(f"set 1 SO_TLS_KEY {q(str(a / 'key.pem'))}")
    hp.ok("bind 1 0 127.0.0.1")
    hp.ok("listen 1")
    # a file swapped for a link pointing out after the check is refused when it is read
    hp.ok("create 2 STREAM_TLS")
    hp.ok(f"set 2 SO_TLS_CERT {q(str(a / 'cert.pem'))}")
    hp.ok(f"set 2 SO_TLS_KEY {q(str(a / 'key.pem'))}")
    (a / "key.pem").unlink()
    (a / "key.pem").symlink_to(tree["outside"] / "secret")
    hp.ok("bind 2 0 127.0.0.1")
    refused(hp.call("listen 2"), "tls_dirs")


def test_a_fifo_in_an_allowed_directory_is_refused_without_blocking(hp, tree):
    """A FIFO (or a device) where a TLS file or a child's file: stdio is expected: opened for
    reading or writing, it would block the driver's thread until a peer opened its other end
    (nobody does here). Each use answers at once with an error saying it is no regular file."""
    a = tree["allowed"]
    fifo = a / "ca.pem"
    os.mkfifo(fifo)
    try:
        hp.ok("create 1 HTTPS_CLIENT")
        r = hp.call(f"set 1 SO_TLS_CA {q(str(fifo))}", timeout=WAIT)
        assert r["result"] == "error" and "a FIFO" in r["error"] and "SO_TLS_CA" in r["error"], r
        for sid, option in [(2, "EXTERNAL_STDOUT_MODE"), (3, "EXTERNAL_STDERR_MODE"),
                            (4, "EXTERNAL_STDIN_MODE")]:
            hp.ok(f"create {sid} EXTERNAL_PROCESS")
            hp.ok(f"set {sid} EXTERNAL_COMMAND {q('/bin/echo')}")
            hp.ok(f"set {sid} {option} {q('file:' + str(fifo))}")
            r = hp.call(f"bind {sid} 0", timeout=WAIT)
            assert r["result"] == "error" and "a FIFO" in r["error"] and option in r["error"], r
        # the same under an open policy, where the path is opened as given
        hp.set_policy("open")
        r = hp.call(f"set 1 SO_TLS_CA {q(str(fifo))}", timeout=WAIT)
        assert r["result"] == "error" and "a FIFO" in r["error"], r
        r = hp.call("bind 2 0", timeout=WAIT)
        assert r["result"] == "error" and "a FIFO" in r["error"], r
        r = hp.call(f"set 1 SO_TLS_CA {q('/dev/zero')}", timeout=WAIT)
        assert r["result"] == "error" and "a character device" in r["error"], r
    finally:
        # a harness stuck in a blocking open is let go (O_RDWR on a FIFO never blocks)
        os.close(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))


def test_a_dangling_link_as_a_new_output_file_is_refused_when_set(hp, tree):
    """An output file: target may be missing (it is made at the start), but not a symbolic
    link pointing to nothing: the file is made without following links, so the start could
    only fail. It is refused at once, saying why, not at the start as "changed after it was
    checked"."""
    a = tree["allowed"]
    (a / "dangling").symlink_to(a / "nowhere")
    hp.ok("create 1 EXTERNAL_PROCESS")
    for option in ("EXTERNAL_STDOUT_MODE", "EXTERNAL_STDERR_MODE"):
        r = hp.call(f"set 1 {option} {q('file:' + str(a / 'dangling'))}")
        assert r["result"] == "error" and r["code"] == 7102, r
        assert "symbolic link to nothing" in r["error"] and option in r["error"], r
    assert not (a / "nowhere").exists()
    # a missing plain name is accepted (made at the start)
    hp.ok(f"set 1 EXTERNAL_STDOUT_MODE {q('file:' + str(a / 'made'))}")


def test_an_ipc_socket_path_that_cannot_be_resolved_says_why(hp, tree):
    """Without auto-reconnect, connect's error is the resolution's own (not a directory, a
    loop of links), not always "no such file"."""
    a = tree["allowed"]
    (a / "plain").write_text("")
    (a / "loop").symlink_to(a / "loop")
    for sid, path, why in [(1, a / "plain" / "bus.sock", "Not a directory"),
                           (2, a / "loop", "Too many levels of symbolic links")]:
        hp.ok(f"create {sid} IPC_CLIENT")
        hp.ok(f"set {sid} IPC_EVENT_NAME \"bus\"")
        hp.ok(f"set {sid} IPC_AUTO_RECONNECT 0")
        r = hp.call(f"connect {sid} {path}")
        assert r["result"] == "error" and why in r["error"], r
        assert "no IPC server" not in r["error"], r
    # a missing socket file is still "no IPC server"
    hp.ok("create 3 IPC_CLIENT")
    hp.ok("set 3 IPC_EVENT_NAME \"bus\"")
    hp.ok("set 3 IPC_AUTO_RECONNECT 0")
    r = hp.call(f"connect 3 {a / 'none.sock'}")
    assert r["result"] == "error" and "no IPC server" in r["error"], r


def test_pem_errors_never_quote_the_file(tmp_path):
    h = Host(wrap=os.environ.get("UNISOCK_E2E_WRAP"), policy="open")
    try:
        # a malformed section start, and a section with no end: rustls's own texts repeat
        # the line (as a list of byte values) or the label
        bad_start = tmp_path / "bad-start"
        bad_start.write_text("-----BEGIN hunter2-password\nroot:hunter2-hash\n")
        no_end = tmp_path / "no-end"
        no_end.write_text("-----BEGIN hunter2-----\nAAAA\n")
        spelled = ", ".join(str(b) for b in b"hunter2")
        h.ok("create 1 HTTPS_SERVER")
        for path in (bad_start, no_end):
            for option in ("SO_TLS_CERT", "SO_TLS_KEY"):
                r = h.call(f"set 1 {option} {q(str(path))}")
                assert r["result"] == "error" and option in r["error"], r
                assert "hunter2" not in r["error"] and spelled not in r["error"], r
    finally:
        assert h.close() == 0


def test_policy_open_restores_everything(tmp_path, pki):
    h = Host(wrap=os.environ.get("UNISOCK_E2E_WRAP"), policy="open")
    try:
        assert h.call("policy")["value"]["open"] == 1
        h.ok("create 1 EXTERNAL_PROCESS")
        h.ok("set 1 EXTERNAL_COMMAND \"echo $0 via a shell\"")
        h.ok("set 1 EXTERNAL_SHELL 1")
        h.ok(f"set 1 EXTERNAL_ENV {q({'LD_LIBRARY_PATH': '/nonexistent'})}")
        h.ok("bind 1 0")
        out, _ = until_exit(h, 1)
        assert out == b"/bin/sh via a shell\n", out
        h.ok("create 2 EXTERNAL_PROCESS")
        h.ok(f"set 2 EXTERNAL_WATCH_PATH {q(str(tmp_path))}")
        h.ok("create 3 HTTPS_SERVER")
        h.ok(f"set 3 SO_TLS_CERT {q(str(pki / 'cert.pem'))}")
        h.ok(f"set 3 SO_TLS_KEY {q(str(pki / 'key.pem'))}")
        h.ok("create 4 IPC_SERVER")
        h.ok(f"set 4 IPC_SOCKET_DIR {q(str(tmp_path))}")
        h.ok("set 4 IPC_EVENT_NAME \"bus\"")
        h.ok("bind 4 0")
        assert (tmp_path / "bus.sock").is_socket()
    finally:
        assert h.close() == 0
