"""EXTERNAL_SANDBOX (158) through the harness: each escape fails inside the sandbox and works
without it, so the sandbox is what stopped it; external_get_process_stats reports each layer.
options.md 158, docs/modes/external.md "Sandbox". (src/external/sandbox/tests.rs checks
each layer in more detail.)
"""
import os
import socket

import pytest

from test_external import WAIT, q, until_end

pytestmark = [
    # Runs children: the admin's policy must allow it (docs/SECURITY.md).
    pytest.mark.policy("open"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox tests run as root here"),
    # valgrind knows neither landlock's nor seccomp's filter calls: under it the report says
    # "unavailable" and nothing is confined, so these tests have nothing to check there
    pytest.mark.skipif(bool(os.environ.get("UNISOCK_E2E_WRAP")), reason="not under valgrind"),
]


def run(h, sid, script, tmp_path, sandbox, **opts):
    """Runs `script` with /bin/sh in `tmp_path`/work under `sandbox`; returns (stdout, exit)."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    h.ok(f"create {sid} EXTERNAL_PROCESS")
    h.ok(f"set {sid} EXTERNAL_COMMAND {q(script + '; exec cat >/dev/null')}")
    h.ok(f"set {sid} EXTERNAL_SHELL 1")
    h.ok(f"set {sid} EXTERNAL_WORKING_DIR {q(str(work))}")
    h.ok(f"set {sid} EXTERNAL_STDERR_MODE \"merge\"")
    h.ok(f"set {sid} EXTERNAL_SANDBOX {q(sandbox)}")
    for k, v in opts.items():
        h.ok(f"set {sid} {k} {q(v)}")
    h.ok(f"bind {sid} 0")
    stats = h.ok(f"ext {sid} stats")["value"]  # the script waits for stdin's end
    h.ok(f'write {sid} {{"eof":1}}')
    end = until_end(h, sid)
    out = "".join(e["data"]["data"] for e in end if e["data"]["type"] == "stdout")
    return out, end[-1]["data"], stats


def test_writes_stay_in_the_working_dir(host, tmp_path):
    outside = tmp_path / "outside"
    script = f"echo in > inside && echo ok-in; echo out > {outside} && echo ok-out; true"
    out, _, _ = run(host, 1, script, tmp_path, 0)
    assert "ok-in" in out and "ok-out" in out
    outside.unlink()
    out, ex, stats = run(host, 2, script, tmp_path, 1)
    assert "ok-in" in out and "ok-out" not in out and not outside.exists(), out
    assert ex["exit_code"] == 0
    sb = stats["sandbox"]
    assert sb["no_new_privs"].startswith("applied") and sb["landlock"].startswith("applied"), sb
    assert sb["seccomp"].startswith("applied") and sb["network"].startswith("off"), sb


def test_paths_add_writable_dirs(host, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    out, _, _ = run(host, 1, f"echo x > {extra}/f && echo wrote", tmp_path,
                    {"paths": [str(extra)]})
    assert out == "wrote\n" and (extra / "f").read_text() == "x\n"


def test_read_limits_what_can_be_read(host, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "f").write_text("fine\n")
    script = f"cat {secret}; cat {allowed}/f; cat /etc/hostname >/dev/null && echo sys-ok"
    out, _, _ = run(host, 1, script, tmp_path, 1)
    assert "s3cret" in out  # 1 alone: read-only everywhere
    out, _, stats = run(host, 2, script, tmp_path, {"read": [str(allowed)]})
    assert "s3cret" not in out and "fine" in out and "sys-ok" in out, out
    assert "Permission denied" in out
    assert str(allowed) in stats["sandbox"]["landlock"]


def test_no_network_unless_asked(host, tmp_path):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    try:
        script = f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected"
        out, _, _ = run(host, 1, script, tmp_path, 0, EXTERNAL_SHELL="/bin/bash")
        assert "connected" in out
        out, _, stats = run(host, 2, script, tmp_path, 1, EXTERNAL_SHELL="/bin/bash")
        assert "connected" not in out, out
        assert stats["sandbox"]["network"].startswith("off")
        out, _, stats = run(host, 3, script, tmp_path, {"network": 1}, EXTERNAL_SHELL="/bin/bash")
        assert "connected" in out and stats["sandbox"]["network"] == "on"
    finally:
        srv.close()


PTRACE = ("import ctypes; l = ctypes.CDLL(None, use_errno=True); "
          "print('ptrace', l.ptrace(0, 0, 0, 0), ctypes.get_errno())")


def test_ptrace_is_denied(host, tmp_path):
    out, _, _ = run(host, 1, f'/usr/bin/python3 -c "{PTRACE}"', tmp_path, 0)
    assert out.strip() == "ptrace 0 0"
    out, _, _ = run(host, 2, f'/usr/bin/python3 -c "{PTRACE}"', tmp_path, 1)
    assert out.strip() == "ptrace -1 1"  # EPERM


FORKS = """
import os, time
pids = []
for i in range(20):
    try:
        pid = os.fork()
    except OSError:
        continue
    if pid == 0:
        time.sleep(10)
        os._exit(0)
    pids.append(pid)
print('started', len(pids), flush=True)
for p in pids:
    os.kill(p, 9)
    os.waitpid(p, 0)
"""


def test_a_fork_bomb_meets_the_process_limit(host, tmp_path):
    """20 forks under "processes" 5 as user nobody: most fail."""
    cmd = '/usr/bin/python3 -c "$1"'  # as nobody, who may not read the test's files
    out, _, _ = run(host, 1, cmd, tmp_path, 0, EXTERNAL_USER="nobody", EXTERNAL_ARGS=[FORKS])
    assert out.strip() == "started 20", out
    out, _, stats = run(host, 2, cmd, tmp_path, {"processes": 5}, EXTERNAL_USER="nobody",
                        EXTERNAL_ARGS=[FORKS])
    assert int(out.strip().split()[-1]) < 5, out  # python itself counts
    assert "5" in stats["sandbox"]["processes"], stats


def test_report_before_the_start_is_empty_and_bad_values_are_refused(host):
    host.ok("create 1 EXTERNAL_PROCESS")
    assert host.ok("ext 1 stats")["value"]["sandbox"] == {}
    for bad in ('{"paths": ["relative"]}', '{"net": 1}', '{"processes": -1}', '{"read": "/tmp"}'):
        r = host.call(f"set 1 EXTERNAL_SANDBOX {bad}")
        assert r["result"] == "error" and "EXTERNAL_SANDBOX" in r["error"], (bad, r)
    v = host.ok('set 1 EXTERNAL_SANDBOX {"network": 1}') and host.ok("get 1 EXTERNAL_SANDBOX")
    assert v["value"] == {"paths": [], "network": 1, "processes": 0}
