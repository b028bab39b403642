#!/usr/bin/env python3
"""inotify event latency for scripts/bench-external: write -> event.

    inotify_latency.py unisock|inotifywait DIR WRITES GAP_MS -- WATCHER_COMMAND...

Runs WATCHER_COMMAND with its stdin and stdout on pipes and makes it watch
DIR: for `unisock` the command is the harness (scripts/unisock-host), sent

    timestamps on
    policy {"modes": [22], "watch_dirs": ["DIR"]}
    create 1 EXTERNAL_PROCESS
    set 1 EXTERNAL_WATCH_PATH "DIR"

(option 143; no process is started, the watch is active once the option is
set); for `inotifywait` it is `inotifywait -m -e modify --format ... DIR`
(ready once it says "Watches established." on stderr). DIR/f exists before
the watch starts and is kept open (O_APPEND) by this script, so each write
gives exactly one IN_MODIFY and nothing else.

Then WRITES times: sleep GAP_MS, t0 = CLOCK_MONOTONIC, write 2 bytes to
DIR/f, read the watcher's stdout until the line that reports a modification
of f, t1 = CLOCK_MONOTONIC. "e2e" latency = t1 - t0: the same path for both
watchers (inotify -> watcher -> a line on a pipe -> this script). For
unisock the harness also stamps each event with CLOCK_MONOTONIC when it takes
it from unisock's queue (`timestamps on`), so "host" latency = t_us - t0
is write -> event in the host's hands, the same clock.

Prints one JSON line: {"watcher", "writes", "e2e_us": [...], "host_us":
[...] (unisock only)}. When unisock refuses option 143 (not built yet, or
unknown) it prints {"watcher": "unisock", "skipped": "<error text>"} and
exits 3. Every read is bounded (5 s); the watcher is stopped at the end.
"""
import json
import os
import select
import subprocess
import sys
import time

READ_TIMEOUT = 5.0


class Lines:
    """Line reader over a pipe with a deadline per line."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""

    def next(self, timeout=READ_TIMEOUT):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line from the watcher")
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError("the watcher's output ended: " + self.buf.decode(errors="replace"))
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")


def now_us():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def main():
    if len(sys.argv) < 7 or sys.argv[5] != "--":
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    kind, d, writes, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]) / 1000
    cmd = sys.argv[6:]
    # One file per write: unisock drops an event identical to one reported for the same
    # file less than 50 ms before (its debounce), so writes 5 ms apart to one file would
    # be coalesced; distinct files make every write an event for both watchers.
    fds = [os.open(os.path.join(d, f"f{i}"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
           for i in range(writes)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE if kind == "inotifywait" else None)
    out = Lines(proc.stdout.fileno())
    try:
        if kind == "unisock":
            # The admin's policy (docs/SECURITY.md): mode 22 and this directory only.
            policy = json.dumps({"modes": [22], "watch_dirs": [d]})
            setup = ["timestamps on", "policy " + policy, "create 1 EXTERNAL_PROCESS",
                     "set 1 EXTERNAL_WATCH_PATH " + json.dumps(d), "echo ready"]
            proc.stdin.write(("\n".join(setup) + "\n").encode())
            proc.stdin.flush()
            refused = None
            while True:
                line = out.next()
                obj = json.loads(line)
                if obj.get("cmd") == "create" and obj.get("result") != "ok":
                    raise RuntimeError("create failed: " + line)
                if obj.get("cmd") == "set" and obj.get("result") != "ok":
                    refused = obj.get("error") or line
                if obj.get("echo") == "ready":
                    break
            if refused is not None:
                print(json.dumps({"watcher": kind, "skipped": refused}))
                return 3
        else:
            err = Lines(proc.stderr.fileno())
            while "Watches established" not in err.next():
                pass

        e2e, host = [], []
        for i in range(writes):
            fname = f"f{i}"
            time.sleep(gap)
            t0 = now_us()
            os.write(fds[i], b"x\n")
            while True:
                line = out.next()
                if kind == "unisock":
                    obj = json.loads(line)
                    data = obj.get("data")
                    if (obj.get("event") == "read" and isinstance(data, dict)
                            and data.get("type") == "file_event"
                            and "modified" in data.get("events", [])
                            and (data.get("name") == fname
                                 or str(data.get("path", "")).endswith("/" + fname))):
                        t1 = now_us()
                        host.append(obj["t_us"] - t0)
                        break
                else:
                    # --format '%w%f %e'
                    if line.startswith(os.path.join(d, fname) + " ") and "MODIFY" in line:
                        t1 = now_us()
                        break
            e2e.append(t1 - t0)
        res = {"watcher": kind, "writes": writes, "gap_ms": gap * 1000, "e2e_us": e2e}
        if kind == "unisock":
            res["host_us"] = host
        print(json.dumps(res))
        return 0
    finally:
        for fd in fds:
            os.close(fd)
        try:
            if kind == "unisock":
                proc.stdin.write(b"quit\n")
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        if kind != "unisock":
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
