"""External processes supervised: EXTERNAL_RESTART_POLICY, EXTERNAL_USER/GROUP and the
external_* efuns (write, read, spawn, stats, set_resource_limits), through the harness's
`ext` verb with real programs (/bin/sh, id, cat, sleep, python3). callbacks.md "External
process", options.md 145/146/159, docs/modes/external.md.
"""
import json
import os
import pwd
import time

import pytest

from test_external import WAIT, WRAPPED, children, gone, q, start, until_end, wait_gone

# Runs children, watches host paths, makes socket files or reads TLS files: the
# admin's policy must allow it (docs/SECURITY.md).
pytestmark = pytest.mark.policy("open")

EEISBOUND, EEMODENOTSUPP, EEBADF, EEBADDATA = -8, -12, -6, -32


def ext(h, sid, op, arg=None):
    return h.call(f"ext {sid} {op}" + ("" if arg is None else f" {arg}"))


def reads(h, sid, until_type, timeout=WAIT):
    """Read mappings of `sid` up to and including the first of type `until_type`."""
    got, deadline = [], time.monotonic() + timeout
    while True:
        e = h.event("read", sid, timeout=max(0.01, deadline - time.monotonic()))
        got.append(e["data"])
        if e["data"]["type"] == until_type:
            return got


def until_close(h, sid, timeout=WAIT):
    """The read mappings of `sid` until its close event (across restarts)."""
    got, deadline = [], time.monotonic() + timeout
    while True:
        e = h.event(("read", "close"), sid, timeout=max(0.01, deadline - time.monotonic()))
        if e["event"] == "close":
            return got
        got.append(e["data"])


def nice_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


def open_files_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3]), int(line.split()[4])


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


# ---- restart policy ----------------------------------------------------------------------

def test_on_failure_restarts_with_doubling_delays_then_stops(host):
    policy = {"policy": "on-failure", "max_restarts": 3, "backoff_ms": 40}
    start(host, 1, "echo run; exit 3", EXTERNAL_SHELL=1, EXTERNAL_RESTART_POLICY=policy)
    seen = []
    for attempt in range(1, 4):
        got = reads(host, 1, "restart")
        ex = [d for d in got if d["type"] == "exit"]
        assert len(ex) == 1 and ex[0]["exit_code"] == 3 and ex[0]["restarts"] == attempt - 1
        assert [d["data"] for d in got if d["type"] == "stdout"] == ["run\n"]
        seen.append(got[-1])
    assert seen == [{"type": "restart", "attempt": a, "delay_ms": d}
                    for a, d in ((1, 40), (2, 80), (3, 160))]
    end = until_close(host, 1)  # the fourth run: no restart left, so the close follows
    assert [d["type"] for d in end] == ["stdout", "exit"]
    assert end[-1]["restarts"] == 3 and end[-1]["exit_code"] == 3


def test_on_failure_leaves_a_clean_exit_alone(host):
    start(host, 1, "/bin/true", EXTERNAL_RESTART_POLICY="on-failure")
    end = until_close(host, 1)
    assert [d["type"] for d in end] == ["exit"] and end[-1]["restarts"] == 0


def test_on_failure_restarts_after_a_signal(host):
    policy = {"policy": "on-failure", "max_restarts": 1, "backoff_ms": 0}
    start(host, 1, "kill -9 $$", EXTERNAL_SHELL=1, EXTERNAL_RESTART_POLICY=policy)
    got = reads(host, 1, "restart")
    assert got[0]["signal"] == 9 and got[0]["reason"] == "killed" and got[-1]["delay_ms"] == 0
    end = until_close(host, 1)
    assert [d["type"] for d in end] == ["exit"] and end[-1]["restarts"] == 1


def test_always_restarts_a_clean_exit_and_never_does_not(host):
    start(host, 1, "/bin/true", EXTERNAL_RESTART_POLICY={"policy": "always", "max_restarts": 2,
                                                         "backoff_ms": 0})
    end = until_close(host, 1)
    assert [d["type"] for d in end] == ["exit", "restart", "exit", "restart", "exit"]
    start(host, 2, "exit 1", EXTERNAL_SHELL=1, EXTERNAL_RESTART_POLICY="never")
    assert [d["type"] for d in until_close(host, 2)] == ["exit"]


def test_window_counts_only_recent_restarts(host):
    """max_restarts 1 per 1 s window: a run outlasting the window frees the restart again;
    quick runs use it up."""
    policy = {"policy": "always", "max_restarts": 1, "backoff_ms": 0, "window": 1}
    start(host, 1, "/bin/sleep", EXTERNAL_ARGS=["1.2"], EXTERNAL_RESTART_POLICY=policy)
    for attempt in (1, 2):
        assert reads(host, 1, "restart", timeout=WAIT + 3)[-1]["attempt"] == attempt
    host.ok("close 1")
    start(host, 2, "/bin/true", EXTERNAL_RESTART_POLICY=policy)
    assert [d["type"] for d in until_close(host, 2)] == ["exit", "restart", "exit"]


def test_close_during_the_restart_delay_starts_nothing(host):
    policy = {"policy": "always", "backoff_ms": 60000}
    start(host, 1, "/bin/true", EXTERNAL_RESTART_POLICY=policy)
    got = reads(host, 1, "restart")
    assert got[-1]["delay_ms"] == 60000
    host.ok("close 1")
    assert host.call("count")  # the socket is gone at once
    assert children(host.proc.pid) == []
    r = ext(host, 1, "stats")
    assert r["ee"] == EEBADF


def test_a_restart_that_cannot_start_is_an_exit_with_the_error(host, tmp_path):
    script = tmp_path / "once.sh"
    script.write_text(f"#!/bin/sh\nrm -f {script}\nexit 1\n")
    script.chmod(0o755)
    policy = {"policy": "on-failure", "max_restarts": 2, "backoff_ms": 0}
    start(host, 1, str(script), EXTERNAL_RESTART_POLICY=policy)
    exits = [d for d in until_close(host, 1) if d["type"] == "exit"]
    assert exits[0]["exit_code"] == 1 and "error" not in exits[0]
    assert exits[1]["exit_code"] == -1 and str(script) in exits[1]["error"]
    assert "No such file" in exits[1]["error"]
    assert len(exits) == 3 and exits[-1]["restarts"] == 2


def test_fifty_restarts_leak_no_fd_and_no_zombie(host):
    pid = host.proc.pid
    host.ok("create 2 EXTERNAL_PROCESS")  # the reactor's own fds are open from here on
    fds = fd_count(pid)
    n = 10 if WRAPPED else 50
    policy = {"policy": "always", "max_restarts": n, "backoff_ms": 0}
    start(host, 1, "/bin/true", EXTERNAL_RESTART_POLICY=policy)
    end = until_close(host, 1, timeout=WAIT * 6)
    assert sum(1 for d in end if d["type"] == "restart") == n
    assert end[-1]["restarts"] == n
    assert fd_count(pid) == fds
    assert children(pid) == []


def test_policy_is_refused_on_command_mode_and_checked(host):
    host.ok("create 1 EXTERNAL_COMMAND_MODE")
    r = host.call('set 1 EXTERNAL_RESTART_POLICY "always"')
    assert r["result"] == "error" and "EXTERNAL_RESTART_POLICY" in r["error"]
    host.ok("create 2 EXTERNAL_PROCESS")
    r = host.call('set 2 EXTERNAL_RESTART_POLICY {"policy":"sometimes"}')
    assert r["result"] == "error" and "sometimes" in r["error"]
    r = host.call('set 2 EXTERNAL_RESTART_POLICY {"policy":"always","backoff_ms":70000}')
    assert r["result"] == "error" and "backoff_ms" in r["error"]


# ---- user and group ----------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


@needs_root
def test_user_by_name_takes_its_primary_group_and_drops_the_others(host):
    nobody = pwd.getpwnam("nobody")
    start(host, 1, "id -u; id -g; id -G", EXTERNAL_SHELL=1, EXTERNAL_USER="nobody")
    out = "".join(d["data"]["data"] for d in until_end(host, 1) if d["data"]["type"] == "stdout")
    assert out.split() == [str(nobody.pw_uid), str(nobody.pw_gid), str(nobody.pw_gid)]


@needs_root
def test_user_and_group_by_number(host):
    start(host, 1, "id -u; id -g", EXTERNAL_SHELL=1, EXTERNAL_USER=12345, EXTERNAL_GROUP=23456)
    end = until_end(host, 1)
    out = "".join(d["data"]["data"] for d in end if d["data"]["type"] == "stdout")
    assert out.split()[:2] == ["12345", "23456"]


@needs_root
def test_group_alone_keeps_the_user(host):
    start(host, 1, "id -u; id -g", EXTERNAL_SHELL=1, EXTERNAL_GROUP="nogroup")
    out = "".join(d["data"]["data"] for d in until_end(host, 1) if d["data"]["type"] == "stdout")
    assert out.split() == ["0", "65534"]


def test_unknown_user_is_refused_at_set_time(host):
    host.ok("create 1 EXTERNAL_PROCESS")
    r = host.call('set 1 EXTERNAL_USER "no-such-user-here"')
    assert r["result"] == "error" and "no such user" in r["error"]
    r = host.call('set 1 EXTERNAL_GROUP "no-such-group-here"')
    assert r["result"] == "error" and "no such group" in r["error"]


def test_user_switch_needs_privilege_when_not_root():
    """The driver without root: another user is refused at set time, naming the capability."""
    if os.geteuid() != 0:
        pytest.skip("needs root to start the harness as another user")
    from host import Host
    h = Host(policy="open", wrap=("setpriv --reuid=65534 --regid=65534 --clear-groups "
                   + os.environ.get("UNISOCK_E2E_WRAP", "")).strip())
    try:
        h.ok("create 1 EXTERNAL_PROCESS")
        r = h.call("set 1 EXTERNAL_USER 0")
        assert r["result"] == "error" and "CAP_SETUID" in r["error"], r
        h.ok("set 1 EXTERNAL_USER 65534")  # its own user is fine
    finally:
        assert h.close() == 0


# ---- the external_* efuns ----------------------------------------------------------------

def test_write_process_counts_bytes_and_feeds_stdin(host):
    start(host, 1, "/bin/cat")
    r = ext(host, 1, "write", q("héllo"))
    assert r["result"] == "ok" and r["value"] == len("héllo".encode())
    e = host.event("read", 1, timeout=WAIT)
    assert e["data"]["data"] == "héllo"
    host.ok('write 1 {"eof":1}')
    until_end(host, 1)
    start(host, 2, "/bin/sleep", EXTERNAL_ARGS=["30"])  # lives on after its stdin closes
    r = ext(host, 2, "write", "42")
    assert r["ee"] == EEBADDATA and "external_write_process" in r["error"]
    host.ok('write 2 {"eof":1}')
    r = ext(host, 2, "write", q("x"))
    assert r["result"] == "error" and "external_write_process: the process's stdin" in r["error"]
    host.ok("close 2")


def test_read_process_pulls_output_held_for_the_result(host):
    prog = "import sys, time; print('first', flush=True); sys.stdin.read(); print('second')"
    start(host, 1, "/usr/bin/python3", EXTERNAL_ARGS=["-c", prog], EXTERNAL_ASYNC=0)
    deadline = time.monotonic() + WAIT
    got = 0
    while got == 0 and time.monotonic() < deadline:  # pulled: nothing tells when it is there
        got = ext(host, 1, "read")["value"]
        if got == 0:
            host.call("run 20")
    assert got == "first\n"
    assert ext(host, 1, "read")["value"] == 0
    host.ok('write 1 {"eof":1}')
    end = until_end(host, 1)
    assert end[-1]["data"]["type"] == "result" and end[-1]["data"]["stdout"] == "second\n"


def test_read_process_limits_bytes_and_keeps_characters_whole(host):
    start(host, 1, "printf 'aé€z'; exec sleep 30", EXTERNAL_SHELL=1, EXTERNAL_ASYNC=0)
    deadline, first = time.monotonic() + WAIT, 0
    while first == 0 and time.monotonic() < deadline:
        host.call("run 20")
        first = ext(host, 1, "read", "2")["value"]
    assert first == "a"  # "aé" is 3 bytes: é is not cut in half
    assert ext(host, 1, "read", "3")["value"] == "é"
    assert ext(host, 1, "read")["value"] == "€z"
    host.ok("close 1")


def test_read_process_is_0_when_output_streams(host):
    start(host, 1, "echo hi; exec sleep 30", EXTERNAL_SHELL=1)
    e = host.event("read", 1, timeout=WAIT)
    assert e["data"]["data"] == "hi\n"
    assert ext(host, 1, "read")["value"] == 0
    host.ok("close 1")


def test_spawn_process_is_socket_bind(host):
    host.ok("create 1 EXTERNAL_PROCESS")
    r = ext(host, 1, "spawn")
    assert r["result"] == "error" and "EXTERNAL_COMMAND" in r["error"]
    host.ok('set 1 EXTERNAL_COMMAND "echo spawned; exec sleep 30"')
    host.ok("set 1 EXTERNAL_SHELL 1")
    host.ok("ext 1 spawn")
    assert host.event("read", 1, timeout=WAIT)["data"]["data"] == "spawned\n"
    assert ext(host, 1, "spawn")["ee"] == EEISBOUND
    assert host.call("bind 1 0")["ee"] == EEISBOUND
    host.ok("close 1")


def test_efuns_refuse_other_modes_and_unknown_ids(host):
    host.ok("create 1 STREAM")
    for op, arg in (("write", q("x")), ("read", None), ("events", None), ("stats", None),
                    ("spawn", None), ("limits", '{"files":10}')):
        r = ext(host, 1, op, arg)
        assert r["ee"] == EEMODENOTSUPP and "not an external process" in r["error"], (op, r)
    assert ext(host, 7, "stats")["ee"] == EEBADF


def test_stats_of_a_running_and_an_ended_process(host):
    # valgrind keeps fds of its own above a small limit: the child could not be given 64 there
    files = {} if WRAPPED else {"EXTERNAL_FILE_LIMIT": 64}
    start(host, 1, "/bin/sleep", EXTERNAL_ARGS=["30"], EXTERNAL_PRIORITY=3, **files)
    st = ext(host, 1, "stats")["value"]
    assert st["running"] == 1 and st["pid"] > 0 and st["restarts"] == 0
    assert st["rss_kb"] > 0 and st["uptime_ms"] >= 0
    if not WRAPPED:
        assert st["limits"]["files"] == {"max": 64, "mechanism": "rlimit_nofile"}
    assert st["limits"]["priority"] == {"nice": 3, "mechanism": "setpriority"}
    assert st["sandbox"] == {}
    host.ok("close 1")
    start(host, 2, "/bin/true")
    until_end(host, 2)
    host.ok("create 3 EXTERNAL_PROCESS")
    st = ext(host, 3, "stats")["value"]
    assert st["running"] == 0 and st["pid"] == 0 and st["limits"] == {}


def test_set_resource_limits_on_a_running_process(host):
    start(host, 1, "/bin/sleep", EXTERNAL_ARGS=["30"])
    pid = ext(host, 1, "stats")["value"]["pid"]
    assert nice_of(pid) == 0
    host.ok('ext 1 limits {"priority": 7, "files": 33}')
    assert nice_of(pid) == 7 and open_files_limit(pid) == (33, 33)
    st = ext(host, 1, "stats")["value"]
    assert st["limits"]["priority"]["nice"] == 7 and st["limits"]["files"]["max"] == 33
    assert host.ok("get 1 EXTERNAL_PRIORITY")["value"] == 7  # the options tell the truth
    r = ext(host, 1, "limits", '{"colour": 1}')
    assert r["result"] == "error" and '"colour"' in r["error"] and '"files"' in r["error"]
    r = ext(host, 1, "limits", '{"files": 2}')
    assert r["result"] == "error" and "EXTERNAL_FILE_LIMIT" in r["error"]
    assert open_files_limit(pid) == (33, 33)  # nothing changed
    r = ext(host, 1, "limits", "[1]")
    assert r["result"] == "error" and "mapping" in r["error"]
    host.ok("close 1")


@pytest.mark.skipif(WRAPPED, reason="valgrind keeps fds of its own above a small limit")
def test_set_resource_limits_before_the_start_become_its_options(host):
    host.ok("create 1 EXTERNAL_PROCESS")
    host.ok('ext 1 limits {"files": 40}')
    assert host.ok("get 1 EXTERNAL_FILE_LIMIT")["value"] == 40
    host.ok('set 1 EXTERNAL_COMMAND "/bin/sleep"')
    host.ok('set 1 EXTERNAL_ARGS ["30"]')
    host.ok("bind 1 0")
    pid = ext(host, 1, "stats")["value"]["pid"]
    assert open_files_limit(pid) == (40, 40)
    host.ok("close 1")
    assert wait_gone(pid)
