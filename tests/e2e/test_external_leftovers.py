"""What an external socket leaves behind (issue 12, item 4). When the child exits, times out or
LPC closes the socket, every process left in its process group — and in its cgroup when the limits
made one — gets SIGTERM, then SIGKILL 5 s after the first SIGTERM; the close callback (or the next
run of a restart policy) waits until nothing is left. EXTERNAL_RESTART_POLICY's kill_mode "process"
keeps them (systemd's KillMode=process), but a restart still starts from a clean group.
docs/modes/external.md "Ending it".

Each test has a shell leave a `sleep` behind (its pid printed) and proves from /proc that it is
gone — or a zombie that its new parent has not reaped yet — when it should be. Every wait is
bounded; the only polling loops wait (with a deadline) for a state nothing reports as an event.
Most tests run twice: with the exit seen through a pidfd (the group then held by the pidfd,
Linux 6.9's PIDFD_SIGNAL_PROCESS_GROUP) and through the exit-watch thread (the leader then left a
zombie until the group is done), which is also what valgrind runs.
"""
import os
import pwd
import signal
import time

import pytest

from host import Host
from test_external import WAIT, WRAPPED, children, gone, q, start, until_end, wait_gone
from test_external_limits import cgroups_writable
from test_external_supervise import until_close

# Runs children, watches host paths, makes socket files or reads TLS files: the
# admin's policy must allow it (docs/SECURITY.md).
pytestmark = pytest.mark.policy("open")

GRACE = 5.0  # KILL_GRACE: SIGTERM, then SIGKILL this long after
# The grace is measured from the exit event's harness timestamp (`timestamps on`: "t_us", the
# CLOCK_MONOTONIC of time.monotonic()), taken in the same dispatch as the SIGTERM at the exit, not
# from when pytest read it (which a busy machine delays by any amount). SLACK covers that dispatch.
SLACK = 0.5
# a background sleep that ignores SIGTERM from its start (it is forked while the shell ignores
# it, and an ignored signal stays ignored across exec); the shell itself takes it again after
STUBBORN = 'trap "" TERM; sleep 60 >/dev/null 2>&1 & trap - TERM;'

WATCHES = ["pidfd"] if WRAPPED else ["pidfd", "thread"]  # valgrind has no pidfd_open anyway


@pytest.fixture(params=WATCHES)
def h(request, monkeypatch):
    if request.param == "thread":
        monkeypatch.setenv("UNISOCK_EXTERNAL_EXIT_WATCH", "thread")
    host = Host(policy="open", wrap=os.environ.get("UNISOCK_E2E_WRAP"))
    host.ok("timestamps on")
    host.ok("create 99 EXTERNAL_PROCESS")  # the reactor's own fds are open from here on
    host.base_fds = host.fds()
    yield host
    rc = host.close()
    assert rc == 0, "unisock-host reported failures:\n" + "".join(host.log[-20:])


class Leftovers:
    """Pids a test left behind, killed at the end whatever happened (a failing run must not
    leave sleeps for the next test)."""

    def __init__(self):
        self.pids = []

    def add(self, pid):
        self.pids.append(int(pid))
        return int(pid)

    def kill(self):
        for p in self.pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def left():
    lo = Leftovers()
    yield lo
    lo.kill()


def ended(pid):
    return gone(pid, allow_zombie=True)  # not our child: its new parent reaps it


def first_line(h, sid):
    return h.event("read", sid, timeout=WAIT)["data"]["data"].split("\n")[0]


def no_leak(h):
    """Nothing of the sockets is left in the harness: no socket, no fd, no child (zombie or not)."""
    deadline = time.monotonic() + WAIT + GRACE
    while (h.call("count")["open"] > 1 or h.call("count")["flushing"]) and time.monotonic() < deadline:
        h.call("run 50")
    assert h.call("count") == {"cmd": "count", "open": 1, "flushing": 0}
    assert h.fds() == h.base_fds
    assert children(h.proc.pid) == []


def at(e):
    """When the harness took event `e` (time.monotonic()'s clock)."""
    return e["t_us"] / 1e6


def close_event_after(h, sid, t0):
    """Waits for `sid`'s close event; the seconds from t0 to when the harness took it."""
    return at(h.event("close", sid, timeout=WAIT + GRACE)) - t0


# ---- the scenario ------------------------------------------------------------------

@pytest.mark.parametrize("mode,sync", [("EXTERNAL_PROCESS", 1), ("EXTERNAL_PROCESS", 0),
                                       ("EXTERNAL_COMMAND_MODE", 1)])
def test_what_the_child_leaves_is_ended_when_it_exits(h, left, mode, sync):
    """`sleep 30 & echo parent-exiting`: the shell exits at once; its background sleep (same
    process group) gets SIGTERM and is gone when the close event comes — in mode 22, in mode 23
    and with EXTERNAL_ASYNC 0. Before: it ran on, re-parented to init."""
    opts = {"EXTERNAL_SHELL": 1}
    if not sync:
        opts["EXTERNAL_ASYNC"] = 0
    start(h, 1, "sleep 30 & echo $!; echo parent-exiting", mode=mode, **opts)
    got = until_end(h, 1, timeout=WAIT + GRACE)
    end = got[-1]["data"]
    out = end["stdout"] if end["type"] == "result" else "".join(
        e["data"]["data"] for e in got[:-1] if e["data"]["type"] == "stdout")
    pid_line, said = out.split("\n")[:2]
    sleeper = left.add(pid_line)
    assert said == "parent-exiting" and end["exit_code"] == 0 and end["reason"] == "exited"
    assert ended(sleeper), "the background sleep outlived its socket"
    no_leak(h)


@pytest.mark.parametrize("cgroup", [False, True], ids=["group", "cgroup"])
def test_a_leftover_that_ignores_sigterm_gets_sigkill_after_the_grace(h, left, cgroup):
    """With a cgroup (a memory limit) what is left of the group is counted there rather than
    by a walk of /proc: the same SIGTERM at the exit, SIGKILL after the grace, close after."""
    if cgroup and not cgroups_writable():
        pytest.skip("no writable cgroup here")
    limits = {"EXTERNAL_MEMORY_LIMIT": 256 << 20} if cgroup else {}
    start(h, 1, STUBBORN + " echo $!", EXTERNAL_SHELL=1, **limits)
    sleeper = left.add(first_line(h, 1))
    e = h.event("read", 1, timeout=WAIT, pred=lambda e: e["data"]["type"] == "exit")
    t0 = at(e)
    assert e["data"]["reason"] == "exited"
    assert not ended(sleeper)  # SIGTERM came at the exit and was ignored
    took = close_event_after(h, 1, t0)
    assert ended(sleeper)
    assert GRACE - SLACK <= took < GRACE + WAIT, took
    no_leak(h)


# ---- timeout and socket_close --------------------------------------------------------------

def test_timeout_ends_the_leftovers_too(h, left):
    """EXTERNAL_TIMEOUT 1: SIGTERM to the group ends the shell (it execs a sleep), not the
    background sleep that ignores SIGTERM; SIGKILL reaches it 5 s after the timeout's SIGTERM.
    Before: the SIGKILL was sent only while the main child ran, so the sleep lived on."""
    t0 = time.monotonic()
    start(h, 1, STUBBORN + " echo $!; exec sleep 60", EXTERNAL_SHELL=1, EXTERNAL_TIMEOUT=1)
    sleeper = left.add(first_line(h, 1))
    e = h.event("read", 1, timeout=WAIT + 2, pred=lambda e: e["data"]["type"] == "exit")
    assert (e["data"]["reason"], e["data"]["signal"]) == ("timeout", 15)
    assert not ended(sleeper)
    took = close_event_after(h, 1, t0)
    assert ended(sleeper)
    assert 1 + GRACE - SLACK <= took, took
    no_leak(h)


def test_close_while_running_ends_the_leftovers_after_the_grace(h, left):
    """socket_close: SIGTERM to the group ends the shell at once; the sleep that ignores it
    gets SIGKILL 5 s later though the main child is gone by then; the socket is kept without
    an id meanwhile, and nothing is left after."""
    start(h, 1, STUBBORN + " echo $!; exec sleep 60", EXTERNAL_SHELL=1)
    sh = h.ok("status 1")["value"]["pid"]
    sleeper = left.add(first_line(h, 1))
    t0 = time.monotonic()
    h.ok("close 1")
    assert wait_gone(sh, allow_zombie=True)
    assert h.call("count")["flushing"] == 1 and not ended(sleeper)
    assert wait_gone(sleeper, allow_zombie=True, timeout=WAIT + GRACE)
    assert time.monotonic() - t0 >= GRACE - SLACK
    no_leak(h)


def test_close_after_the_exit_still_ends_the_leftovers(h, left):
    """LPC closes the socket while the sweep after the exit runs (the close callback has not
    come: it waits for the leftovers): the id is gone at once and the SIGKILL still comes."""
    start(h, 1, STUBBORN + " echo $!", EXTERNAL_SHELL=1)
    sleeper = left.add(first_line(h, 1))
    t0 = at(h.event("read", 1, timeout=WAIT, pred=lambda e: e["data"]["type"] == "exit"))
    h.ok("close 1")
    assert h.call("count")["flushing"] == 1 and not ended(sleeper)
    assert wait_gone(sleeper, allow_zombie=True, timeout=WAIT + GRACE)
    assert time.monotonic() - t0 >= GRACE - SLACK
    no_leak(h)


# ---- kill_mode "process": keep them --------------------------------------------------------

KEEP = {"policy": "never", "kill_mode": "process"}


def test_kill_mode_process_keeps_the_leftovers(h, left):
    h.ok("create 1 EXTERNAL_PROCESS")
    h.ok("set 1 EXTERNAL_RESTART_POLICY " + q(KEEP))
    assert h.ok("get 1 EXTERNAL_RESTART_POLICY")["value"]["kill_mode"] == "process"
    h.ok("set 1 EXTERNAL_SHELL 1")
    h.ok("set 1 EXTERNAL_COMMAND " + q("sleep 60 >/dev/null 2>&1 & echo $!"))
    h.ok("bind 1 0")
    sleeper = left.add(first_line(h, 1))
    assert until_close(h, 1)[-1]["exit_code"] == 0
    assert not ended(sleeper), "kill_mode process must keep what the child started"
    os.kill(sleeper, signal.SIGKILL)  # ours to end now
    assert wait_gone(sleeper, allow_zombie=True)
    no_leak(h)


def test_kill_mode_process_close_signals_only_the_main_process(h, left):
    start(h, 1, "sleep 60 >/dev/null 2>&1 & echo $!; exec sleep 60", EXTERNAL_SHELL=1,
          EXTERNAL_RESTART_POLICY=KEEP)
    sh = h.ok("status 1")["value"]["pid"]
    sleeper = left.add(first_line(h, 1))
    h.ok("close 1")
    assert wait_gone(sh, allow_zombie=True)
    no_leak(h)
    assert not ended(sleeper)


@pytest.mark.skipif(not cgroups_writable(), reason="no writable cgroup here")
def test_kill_mode_process_leaves_the_cgroup_until_it_is_empty(h, left):
    """A kept process stays in its cgroup (with its limits); the directory goes once it is
    empty, at the next start of an external process."""
    h.ok("create 1 EXTERNAL_PROCESS")
    h.ok("set 1 EXTERNAL_RESTART_POLICY " + q(KEEP))
    h.ok("set 1 EXTERNAL_MEMORY_LIMIT " + str(256 << 20))
    h.ok("set 1 EXTERNAL_SHELL 1")
    h.ok("set 1 EXTERNAL_COMMAND " + q("sleep 60 >/dev/null 2>&1 & echo $!; read x"))
    h.ok("bind 1 0")
    cgroup = h.ok("ext 1 stats")["value"]["limits"]["memory"]["cgroup"]
    sleeper = left.add(first_line(h, 1))
    h.ok('write 1 "go\\n"')
    assert until_close(h, 1)[-1]["exit_code"] == 0
    assert not ended(sleeper)
    with open(os.path.join(cgroup, "cgroup.procs")) as f:
        assert str(sleeper) in f.read().split()
    os.kill(sleeper, signal.SIGKILL)
    assert wait_gone(sleeper, allow_zombie=True)
    start(h, 2, "/bin/true")
    until_end(h, 2)
    assert not os.path.exists(cgroup)
    no_leak(h)


def test_kill_mode_is_checked(h):
    h.ok("create 1 EXTERNAL_PROCESS")
    r = h.call('set 1 EXTERNAL_RESTART_POLICY ' + q({"policy": "never", "kill_mode": "none"}))
    assert r["result"] == "error" and "EXTERNAL_RESTART_POLICY" in r["error"]
    assert '"kill_mode" "none" is not "group"' in r["error"] and '"process"' in r["error"]
    r = h.call('set 1 EXTERNAL_RESTART_POLICY ' + q({"policy": "never", "kill_mode": 1}))
    assert r["result"] == "error" and '"kill_mode" is' in r["error"]
    assert h.ok("get 1 EXTERNAL_RESTART_POLICY")["value"] == "never"  # nothing stored
    h.ok('set 1 EXTERNAL_RESTART_POLICY {"policy":"always"}')
    assert h.ok("get 1 EXTERNAL_RESTART_POLICY")["value"]["kill_mode"] == "group"
    h.ok("close 1")


# ---- restarts start from a clean group -----------------------------------------------------

# Each run says whether the sleep the last run left (its pid in $1) still lives, leaves one
# itself, and fails, so that "on-failure" starts it again at once.
RUN = ('p=$(cat "$1" 2>/dev/null); s=; [ -n "$p" ] && s=$(cut -d" " -f3 /proc/$p/stat 2>/dev/null); '
       'if [ -n "$s" ] && [ "$s" != Z ]; then echo prev-alive; else echo prev-gone; fi; '
       '{sleep} echo $! > "$1"; exit 1')


@pytest.mark.parametrize("kill_mode,sleep", [
    ("group", "sleep 60 >/dev/null 2>&1 &"),
    ("process", STUBBORN),  # kept otherwise, and ignores SIGTERM: SIGKILL before the restart
])
def test_a_restart_starts_from_a_clean_group(h, left, tmp_path, kill_mode, sleep):
    pidfile = tmp_path / "pid"
    policy = {"policy": "on-failure", "max_restarts": 1, "backoff_ms": 0}
    if kill_mode != "group":  # the default: the same test ran before kill_mode existed
        policy["kill_mode"] = kill_mode
    start(h, 1, RUN.replace("{sleep}", sleep), EXTERNAL_SHELL=1, EXTERNAL_ARGS=[str(pidfile)],
          EXTERNAL_RESTART_POLICY=policy)
    got = until_close(h, 1, timeout=WAIT + 2 * GRACE)
    left.add(pidfile.read_text())
    said = [d["data"].strip() for d in got if d["type"] == "stdout"]
    assert [d["type"] for d in got if d["type"] != "stdout"] == ["exit", "restart", "exit"]
    assert said == ["prev-gone", "prev-gone"], said


# ---- escaped with setsid: only the cgroup reaches them --------------------------------------

ESCAPE = ('setsid sh -c \'trap "echo term > $0/marker; exit 0" TERM; echo $$ > $0/pid; '
          'while :; do sleep 0.05; done\' "$1" >/dev/null 2>&1 & '
          'i=0; while [ ! -s "$1/pid" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; '
          'cat "$1/pid"; '
          # the child stays until the test has seen its cgroup (the test makes $1/go)
          'i=0; while [ ! -e "$1/go" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done')


@pytest.mark.skipif(not cgroups_writable(), reason="no writable cgroup here: a process that "
                    "left the process group with setsid can only be found through a cgroup")
def test_a_setsid_escapee_is_ended_through_the_cgroup(h, left, tmp_path):
    """The child's memory limit gives it a cgroup; a grandchild that made a session of its own
    (another process group) is still in it, gets SIGTERM (its trap writes the marker) when the
    child exits, and the cgroup directory is removed. Before: SIGKILL at once, no SIGTERM."""
    start(h, 1, ESCAPE, EXTERNAL_SHELL=1, EXTERNAL_ARGS=[str(tmp_path)],
          EXTERNAL_MEMORY_LIMIT=256 << 20)
    cgroup = h.ok("ext 1 stats")["value"]["limits"]["memory"]["cgroup"]
    assert os.path.isdir(cgroup)
    escapee = left.add(first_line(h, 1))
    with open(f"/proc/{escapee}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[2]) == escapee  # leads its own group
    (tmp_path / "go").touch()  # now the child exits
    assert until_close(h, 1, timeout=WAIT + GRACE)[-1]["type"] == "exit"
    assert ended(escapee)
    assert (tmp_path / "marker").read_text() == "term\n"
    assert not os.path.exists(cgroup)
    no_leak(h)


# ---- another user, in the sandbox -----------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
@pytest.mark.skipif(WRAPPED, reason="valgrind has neither landlock nor seccomp filters")
def test_leftovers_of_a_sandboxed_child_of_another_user(h, left, tmp_path):
    """The child runs as nobody in the sandbox (no network namespace, landlock, seccomp); the
    root driver still ends what it left."""
    nobody = pwd.getpwnam("nobody").pw_uid
    os.chmod(tmp_path, 0o777)
    start(h, 1, "sleep 30 & echo $!; id -u", EXTERNAL_SHELL=1, EXTERNAL_USER="nobody",
          EXTERNAL_SANDBOX=1, EXTERNAL_WORKING_DIR=str(tmp_path))
    got = until_end(h, 1, timeout=WAIT + GRACE)
    out = "".join(e["data"]["data"] for e in got[:-1] if e["data"]["type"] == "stdout").split()
    sleeper = left.add(out[0])
    assert out[1] == str(nobody)
    assert ended(sleeper)
    no_leak(h)
