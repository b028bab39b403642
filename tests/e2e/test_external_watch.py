"""File watches on external sockets (EXTERNAL_WATCH_PATH 143, external_monitor_path,
external_stop_monitoring, external_get_file_events) through the harness, on real inotify in
temporary trees. callbacks.md "External process", docs/modes/external.md "File watches".
(src/external/watch.rs's own tests cover the watch logic in more detail.)
"""
import os
import signal
import time

import pytest

from test_external import WAIT, q

# Runs children, watches host paths, makes socket files or reads TLS files: the
# admin's policy must allow it (docs/SECURITY.md).
pytestmark = pytest.mark.policy("open")

EEBADDATA = -32


def fe(h, sid, pred=None, timeout=WAIT):
    """The next file_event mapping of `sid` (matching `pred`)."""
    def match(e):
        d = e.get("data")
        return isinstance(d, dict) and d.get("type") == "file_event" and (pred is None or pred(d))
    return h.event("read", sid, timeout=timeout, pred=match)["data"]


def named(name, event):
    return lambda d: d["name"] == name and event in d["events"]


def inotify_fds(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:inotify":
                n += 1
        except FileNotFoundError:
            pass
    return n


def test_watch_option_reports_create_modify_move_delete(host, tmp_path):
    host.ok("create 1 EXTERNAL_PROCESS")  # no process needed: the watch works from the set
    host.ok(f"set 1 EXTERNAL_WATCH_PATH {q(str(tmp_path))}")
    f = tmp_path / "a.txt"
    f.write_text("one")
    d = fe(host, 1, named("a.txt", "created"))
    assert d["path"] == str(tmp_path) and d["is_dir"] == 0 and d["watch_id"] == 1
    fe(host, 1, named("a.txt", "modified"))
    fe(host, 1, named("a.txt", "closed_write"))
    f.rename(tmp_path / "b.txt")
    a = fe(host, 1, named("a.txt", "moved_from"))
    b = fe(host, 1, named("b.txt", "moved_to"))
    assert a["cookie"] == b["cookie"] != 0
    (tmp_path / "b.txt").unlink()
    fe(host, 1, named("b.txt", "deleted"))
    (tmp_path / "sub").mkdir()
    assert fe(host, 1, named("sub", "created"))["is_dir"] == 1
    assert host.ok("ext 1 stats")["value"]["watches"] == [str(tmp_path)]


def test_several_paths_and_a_recursive_tree(host, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    (two / "old").mkdir(parents=True)
    host.ok("create 1 EXTERNAL_PROCESS")
    host.ok(f"set 1 EXTERNAL_WATCH_PATH {q([str(one), str(two) + '/**'])}")
    (one / "x").write_text("")
    fe(host, 1, named("x", "created"))
    (two / "old" / "y").write_text("")  # an existing subdirectory is watched
    assert fe(host, 1, named("y", "created"))["path"] == str(two / "old")
    (two / "new" / "deeper").mkdir(parents=True)  # a new one is picked up
    (two / "new" / "deeper" / "z").write_text("")
    assert fe(host, 1, named("z", "created"))["path"] == str(two / "new" / "deeper")
    # the option set again: "one" is no longer watched, "two/**" still is
    host.ok(f"set 1 EXTERNAL_WATCH_PATH {q(str(two) + '/**')}")
    (one / "ignored").write_text("")
    (two / "seen").write_text("")
    d = fe(host, 1, named("seen", "created"))
    assert not [e for e in host.events if e.get("data", {}).get("name") == "ignored"]
    assert d["watch_id"] == 2


def test_a_bad_watch_path_is_refused_and_the_old_set_kept(host, tmp_path):
    host.ok("create 1 EXTERNAL_PROCESS")
    host.ok(f"set 1 EXTERNAL_WATCH_PATH {q(str(tmp_path))}")
    r = host.call(f"set 1 EXTERNAL_WATCH_PATH {q([str(tmp_path), str(tmp_path / 'missing')])}")
    assert r["result"] == "error" and "EXTERNAL_WATCH_PATH (143)" in r["error"]
    assert "missing" in r["error"] and "does not exist" in r["error"], r
    assert host.ok("get 1 EXTERNAL_WATCH_PATH")["value"] == str(tmp_path)
    (tmp_path / "still").write_text("")
    fe(host, 1, named("still", "created"))


def test_monitor_path_with_event_bits_and_stop(host, tmp_path):
    host.ok("create 1 EXTERNAL_PROCESS")
    wid = host.ok(f"ext 1 monitor {q(str(tmp_path))} 0x04")["value"]  # DELETED only
    assert wid == 1
    (tmp_path / "f").write_text("x")
    (tmp_path / "f").unlink()
    d = fe(host, 1, named("f", "deleted"))
    assert d["events"] == ["deleted"] and d["watch_id"] == wid
    assert host.ok(f"ext 1 monitor {q(str(tmp_path))} 0x01")["value"] == wid  # same path: same id
    host.ok(f"ext 1 unmonitor {q(str(tmp_path))}")
    r = host.call(f"ext 1 unmonitor {q(str(tmp_path))}")
    assert r["ee"] == EEBADDATA and "not watched" in r["error"]
    r = host.call(f"ext 1 monitor {q(str(tmp_path / 'nope'))}")
    assert r["ee"] == EEBADDATA and "nope" in r["error"]
    r = host.call('ext 1 monitor "relative"')
    assert r["result"] == "error" and "absolute" in r["error"]


def test_a_path_named_by_the_option_and_the_efun_stays_until_both_let_go(host, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    host.ok("create 1 EXTERNAL_PROCESS")
    host.ok(f"ext 1 monitor {q(str(a) + '/')} 0")  # another spelling of the same path
    host.ok(f"set 1 EXTERNAL_WATCH_PATH {q([str(a), str(b)])}")
    watches = lambda: host.ok("ext 1 stats")["value"]["watches"]
    assert watches() == [str(a), str(b)]
    host.ok(f"set 1 EXTERNAL_WATCH_PATH {q(str(b))}")  # the option lets go of a: the efun's stays
    assert watches() == [str(a), str(b)]
    (a / "kept").write_text("")
    fe(host, 1, named("kept", "created"))
    host.ok("set 1 EXTERNAL_WATCH_PATH []")  # b was the option's alone
    assert watches() == [str(a)]
    host.ok(f"set 1 EXTERNAL_WATCH_PATH {q(str(a))}")
    host.ok(f"ext 1 unmonitor {q(str(a))}")  # an explicit stop wins over the option
    assert watches() == []


def test_pull_style_holds_events_for_get_file_events(host, tmp_path):
    host.ok("create 1 EXTERNAL_PROCESS")
    host.ok("set 1 EXTERNAL_ASYNC 0")
    host.ok(f"ext 1 monitor {q(str(tmp_path))} 0x01")
    for n in ("p", "q"):
        (tmp_path / n).write_text("")
    got, deadline = [], time.monotonic() + WAIT
    while len(got) < 2 and time.monotonic() < deadline:  # pulled: nothing announces them
        host.call("run 20")
        got += host.ok("ext 1 events")["value"]
    assert [d["name"] for d in got] == ["p", "q"] and all(d["type"] == "file_event" for d in got)
    assert host.ok("ext 1 events")["value"] == []
    assert not [e for e in host.events if e.get("socket") == 1]


def test_queue_overflow_is_reported_then_rescanned(host, tmp_path):
    path = "/proc/sys/fs/inotify/max_queued_events"
    if os.geteuid() != 0:
        pytest.skip("shrinking the inotify queue needs root")
    old = open(path).read()
    try:
        with open(path, "w") as f:
            f.write("64")  # applies to inotify instances made from now on
        host.ok("create 1 EXTERNAL_PROCESS")
        host.ok(f"set 1 EXTERNAL_WATCH_PATH {q(str(tmp_path) + '/**')}")
    finally:
        with open(path, "w") as f:
            f.write(old)
    burst = tmp_path / "burst"
    burst.mkdir()
    # The harness is stopped during the burst, so nothing drains the queue: on two cores a
    # running reactor can keep up with Python's touches and the overflow would not happen.
    os.kill(host.proc.pid, signal.SIGSTOP)
    try:
        for i in range(5000):  # far past 64 queued events (distinct: the kernel merges repeats)
            (burst / f"f{i}").touch()
    finally:
        os.kill(host.proc.pid, signal.SIGCONT)
    d = fe(host, 1, lambda d: d["events"] == ["overflow"], timeout=WAIT * 2)
    assert d["path"] == str(tmp_path) + "/**"
    (tmp_path / "after").mkdir()  # still watched after the rescan
    fe(host, 1, named("after", "created"), timeout=WAIT * 2)


def test_watches_go_with_the_socket(host, tmp_path):
    pid = host.proc.pid
    host.ok("create 1 EXTERNAL_PROCESS")
    before = inotify_fds(pid)
    host.ok(f"set 1 EXTERNAL_WATCH_PATH {q(str(tmp_path))}")
    assert inotify_fds(pid) == before + 1
    host.ok("close 1")
    assert inotify_fds(pid) == before
    # and when the process ends, the socket and its watches end with it
    host.ok("create 2 EXTERNAL_PROCESS")
    host.ok(f"set 2 EXTERNAL_WATCH_PATH {q(str(tmp_path))}")
    host.ok('set 2 EXTERNAL_COMMAND "/bin/true"')
    host.ok("bind 2 0")
    host.event("close", 2, timeout=WAIT)
    assert inotify_fds(pid) == before


def test_watches_stay_across_a_restart(host, tmp_path):
    """The first run exits at once and is restarted; the second waits on its stdin, so a file
    made after the restart is reported while the socket is surely still open (with /bin/true
    the second run, and the socket, could end before the file was made)."""
    watched = tmp_path / "w"
    watched.mkdir()
    marker = str(tmp_path / "ran")
    script = 'if [ -e "$0" ]; then read x; else : > "$0"; fi'
    host.ok("create 1 EXTERNAL_PROCESS")
    host.ok(f"set 1 EXTERNAL_WATCH_PATH {q(str(watched))}")
    host.ok('set 1 EXTERNAL_COMMAND "/bin/sh"')
    host.ok(f"set 1 EXTERNAL_ARGS {q(['-c', script, marker])}")
    host.ok('set 1 EXTERNAL_RESTART_POLICY {"policy":"always","max_restarts":1,"backoff_ms":0}')
    host.ok("bind 1 0")
    host.event("read", 1, timeout=WAIT, pred=lambda e: e["data"].get("type") == "restart")
    (watched / "during").write_text("")
    fe(host, 1, named("during", "created"))
    host.ok('write 1 "done\\n"')
    host.event("close", 1, timeout=WAIT)
