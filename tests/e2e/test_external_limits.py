"""EXTERNAL_CPU_LIMIT (155) and EXTERNAL_MEMORY_LIMIT (156) through the harness: a cgroup of the
child's own where one is writable (v1 here; v2 elsewhere), else the rlimit fallbacks (forced
with UNISOCK_EXTERNAL_CGROUPS=off); the "limit" exit reason; external_set_resource_limits on a
running process; the "limits" report of external_get_process_stats. options.md 155-157,
docs/modes/external.md "Limits". (src/external/limits/tests.rs goes further.)

The CPU test measures the child's CPU use over a 3 s window: the limit is what is measured.
"""
import os
import time

import pytest

from host import Host
from test_external import WAIT, WRAPPED, q, start, until_end

# Runs children, watches host paths, makes socket files or reads TLS files: the
# admin's policy must allow it (docs/SECURITY.md).
pytestmark = pytest.mark.policy("open")

EEBADDATA = -32
BUSY = ["-c", "while :; do :; done"]
# waits for a line on stdin (so the test reads the stats first), then allocates 200 MB
ALLOC = ["-c", "import sys, time; sys.stdin.readline(); b = bytearray(200 * 1024 * 1024); "
               "b[::4096] = b'x' * len(b[::4096]); print('allocated', flush=True); time.sleep(30)"]


def cgroups_writable():
    try:
        d = "/sys/fs/cgroup/cpu/unisock-probe-%d" % os.getpid()
        os.mkdir(d)
        os.rmdir(d)
        return True
    except OSError:
        pass
    return os.access("/sys/fs/cgroup/cgroup.subtree_control", os.W_OK)


needs_cgroups = pytest.mark.skipif(not cgroups_writable(), reason="no writable cgroup here")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def share_over(pid, seconds=3.0):
    """The share of one core `pid` used over `seconds` of wall time."""
    hz = os.sysconf("SC_CLK_TCK")
    t0, c0 = time.monotonic(), cpu_ticks(pid)
    time.sleep(seconds)  # the measurement window itself, not a synchronisation
    return (cpu_ticks(pid) - c0) / hz / (time.monotonic() - t0)


def stats(h, sid):
    return h.ok(f"ext {sid} stats")["value"]


@needs_cgroups
def test_cpu_limit_holds_a_busy_loop_to_its_share(host):
    start(host, 1, "/bin/sh", EXTERNAL_ARGS=BUSY, EXTERNAL_CPU_LIMIT=50)
    st = stats(host, 1)
    cpu = st["limits"]["cpu"]
    assert cpu["percent"] == 50 and cpu["mechanism"].startswith("cgroup"), cpu
    share = share_over(st["pid"])
    assert share <= 0.55, share
    host.ok("close 1")


@needs_cgroups
def test_memory_limit_kills_and_says_limit(host):
    start(host, 1, "/usr/bin/python3", EXTERNAL_ARGS=ALLOC, EXTERNAL_MEMORY_LIMIT=50 << 20)
    mem = stats(host, 1)["limits"]["memory"]
    assert mem["bytes"] == 50 << 20 and mem["mechanism"].startswith("cgroup"), mem
    host.ok('write 1 "go\\n"')
    end = until_end(host, 1, timeout=WAIT * 3)
    ex = end[-1]["data"]
    assert ex["reason"] == "limit" and ex["signal"] == 9, ex
    assert not [e for e in end if e["data"].get("data") == "allocated\n"]


@needs_cgroups
def test_limits_added_to_a_running_process(host):
    start(host, 1, "/bin/sh", EXTERNAL_ARGS=BUSY)
    pid = stats(host, 1)["pid"]
    assert "cpu" not in stats(host, 1)["limits"]
    host.ok('ext 1 limits {"cpu": 20}')
    cpu = stats(host, 1)["limits"]["cpu"]
    assert cpu["percent"] == 20 and cpu["mechanism"].startswith("cgroup"), cpu
    assert share_over(pid) <= 0.25
    assert host.ok("get 1 EXTERNAL_CPU_LIMIT")["value"] == 20
    r = host.call('ext 1 limits {"memory": 1000}')
    assert r["ee"] == EEBADDATA and "EXTERNAL_MEMORY_LIMIT" in r["error"], r
    host.ok("close 1")


def has_cap_sys_resource():
    with open("/proc/self/status") as f:
        eff = next(int(l.split()[1], 16) for l in f if l.startswith("CapEff:"))
    return bool(eff & (1 << 24))


@needs_cgroups
@pytest.mark.skipif(has_cap_sys_resource(), reason="with CAP_SYS_RESOURCE nothing here is refused")
def test_a_refusal_after_a_limit_was_applied_keeps_that_limit_and_says_so(host):
    start(host, 1, "/bin/sleep", EXTERNAL_ARGS=["30"])
    host.ok('ext 1 limits {"files": 100}')  # the child's hard limit is now 100
    r = host.call('ext 1 limits {"memory": 104857600, "files": 200}')  # memory, then files
    assert r["ee"] == EEBADDATA and "files: 200" in r["error"] and "(memory applied)" in r["error"], r
    # what took effect is what the options and the report say
    assert host.ok("get 1 EXTERNAL_MEMORY_LIMIT")["value"] == 104857600
    assert host.ok("get 1 EXTERNAL_FILE_LIMIT")["value"] == 100
    limits = stats(host, 1)["limits"]
    assert limits["memory"]["bytes"] == 104857600 and limits["files"]["max"] == 100, limits
    host.ok("close 1")


def test_normal_exits_are_not_limits(host):
    start(host, 1, "exit 3", EXTERNAL_SHELL=1, EXTERNAL_MEMORY_LIMIT=64 << 20,
          EXTERNAL_CPU_LIMIT=50)
    ex = until_end(host, 1)[-1]["data"]
    assert ex["reason"] == "exited" and ex["exit_code"] == 3


# ---- without cgroups: the rlimit fallbacks ---------------------------------------------------

@pytest.fixture
def fallback_host():
    os.environ["UNISOCK_EXTERNAL_CGROUPS"] = "off"
    try:
        h = Host(policy="open", wrap=os.environ.get("UNISOCK_E2E_WRAP"))
    finally:
        del os.environ["UNISOCK_EXTERNAL_CGROUPS"]
    yield h
    assert h.close() == 0


def test_fallback_cpu_limit_kills_a_busy_loop(fallback_host):
    h = fallback_host
    start(h, 1, "/bin/sh", EXTERNAL_ARGS=BUSY, EXTERNAL_CPU_LIMIT=10)
    cpu = stats(h, 1)["limits"]["cpu"]
    assert cpu["mechanism"] == "rlimit_cpu" and "cgroup_unavailable" in cpu, cpu
    ex = until_end(h, 1, timeout=WAIT * 3)[-1]["data"]
    assert ex["reason"] == "limit" and ex["signal"] in (9, 24), ex  # SIGKILL or SIGXCPU


def test_fallback_cpu_limit_spares_a_process_within_its_share(fallback_host):
    h = fallback_host
    start(h, 1, "/bin/sleep", EXTERNAL_ARGS=["2"], EXTERNAL_CPU_LIMIT=10)
    ex = until_end(h, 1, timeout=WAIT)[-1]["data"]
    assert ex["reason"] == "exited" and ex["exit_code"] == 0


def test_fallback_memory_limit_makes_allocation_fail(fallback_host):
    h = fallback_host
    start(h, 1, "/usr/bin/python3", EXTERNAL_ARGS=ALLOC, EXTERNAL_MEMORY_LIMIT=100 << 20)
    mem = stats(h, 1)["limits"]["memory"]
    assert mem["mechanism"] == "rlimit_as" and "not killed" in mem["on_exceed"], mem
    h.ok('write 1 "go\\n"')
    end = until_end(h, 1)
    err = "".join(e["data"]["data"] for e in end if e["data"]["type"] == "stderr")
    assert "MemoryError" in err and end[-1]["data"]["exit_code"] == 1
    assert end[-1]["data"]["reason"] == "exited"  # the limit did not kill it: no claim of one


@pytest.mark.skipif(WRAPPED, reason="valgrind keeps fds of its own above a small limit")
def test_file_limit_gives_emfile(host):
    prog = ("import os\nn = 0\ntry:\n    while True:\n        os.open('/dev/null', os.O_RDONLY); n += 1\n"
            "except OSError as e:\n    print(n, e.errno)")
    start(host, 1, "/usr/bin/python3", EXTERNAL_ARGS=["-c", prog], EXTERNAL_FILE_LIMIT=16)
    assert stats(host, 1)["limits"]["files"] == {"max": 16, "mechanism": "rlimit_nofile"}
    out = "".join(e["data"]["data"] for e in until_end(host, 1) if e["data"]["type"] == "stdout")
    n, errno = map(int, out.split())
    assert errno == 24 and n < 16  # EMFILE
