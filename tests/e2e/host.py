"""Drives scripts/unisock-host (the C harness that plays the driver) from tests.

Host.call(line) sends one command and returns its JSON result; events that
arrive meanwhile are kept, and Host.event(...) finds or waits for one. Every
wait is bounded; nothing sleeps for synchronisation.
"""
import json
import os
import queue
import socket
import subprocess
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HOST = os.path.join(ROOT, "scripts", "unisock-host")
DEFAULT_TIMEOUT = 10.0


class HostError(AssertionError):
    pass


class Host:
    """One harness process. `policy` is the admin's policy it runs with (docs/SECURITY.md):
    None leaves the library's default (upstream's modes and HTTP, nothing that reaches the
    host), "open" allows everything, a dict or a JSON string is put in force as given. A
    test that needs a host power says so; one that forgets fails with EESECURITY."""

    def __init__(self, wrap=None, policy=None):
        env = dict(os.environ)
        env.setdefault("UNISOCK_HOST_NO_BUILD", "1")  # built once beforehand
        if wrap:
            env["UNISOCK_HOST_WRAP"] = wrap
        self.proc = subprocess.Popen(
            [HOST], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.events = []
        self.log = []
        self.stderr = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()
        if policy is not None:
            self.set_policy(policy)

    def set_policy(self, policy):
        """Puts `policy` in force ("open", a dict or a JSON string); returns the reply."""
        text = policy if isinstance(policy, str) else json.dumps(policy)
        return self.ok(f"policy {text}")

    @staticmethod
    def _pump(stream, q):
        for line in stream:
            q.put(line)
        q.put(None)

    def _pump_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def _next(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise queue.Empty
        line = self.lines.get(timeout=left)
        if line is None:
            raise HostError("unisock-host exited; output so far:\n" + "".join(self.log[-30:]) +
                            "\nstderr:\n" + "".join(self.stderr[-30:]))
        self.log.append(line)
        return json.loads(line)

    def call(self, line, timeout=DEFAULT_TIMEOUT):
        """Sends a command; returns its result object (events are kept)."""
        self.send(line)
        deadline = time.monotonic() + timeout
        while True:
            try:
                obj = self._next(deadline)
            except queue.Empty:
                raise HostError(f"no answer to {line!r} within {timeout}s")
            if "event" in obj or "accepted" in obj:
                self.events.append(obj)
                continue
            return obj

    def ok(self, line, timeout=DEFAULT_TIMEOUT):
        r = self.call(line, timeout)
        if r.get("result") != "ok":
            raise HostError(f"{line!r} failed: {r}")
        return r

    def event(self, kind, socket=None, timeout=DEFAULT_TIMEOUT, pred=None):
        """Returns (and removes) the first event of `kind` (or of any kind in a tuple) for
        `socket`, waiting if needed."""
        kinds = kind if isinstance(kind, tuple) else (kind,)

        def match(e):
            return (e.get("event") in kinds and (socket is None or e.get("socket") == socket)
                    and (pred is None or pred(e)))
        for i, e in enumerate(self.events):
            if match(e):
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            try:
                obj = self._next(deadline)
            except queue.Empty:
                raise HostError(f"no {kind} event for socket {socket} within {timeout}s; "
                                f"pending events: {self.events[-10:]}")
            if "event" in obj and match(obj):
                return obj
            self.events.append(obj)

    def accepted(self, timeout=DEFAULT_TIMEOUT):
        """The id of the next connection autoaccept took."""
        for i, e in enumerate(self.events):
            if "accepted" in e:
                return self.events.pop(i)["accepted"]
        deadline = time.monotonic() + timeout
        while True:
            try:
                obj = self._next(deadline)
            except queue.Empty:
                raise HostError("no accepted connection")
            if "accepted" in obj:
                return obj["accepted"]
            self.events.append(obj)

    def read_data(self, socket, size, timeout=DEFAULT_TIMEOUT):
        """Collects read events on `socket` until `size` characters/bytes arrived."""
        got = []
        total = 0
        deadline = time.monotonic() + timeout
        while total < size:
            e = self.event("read", socket, timeout=max(0.01, deadline - time.monotonic()))
            d = e["data"]
            if isinstance(d, dict):
                d = bytes(d["buffer"])
            got.append(d)
            total += len(d)
        return got[0][:0].join(got) if got else ""

    def listen_port(self, sid, mode="STREAM", extra=()):
        self.ok(f"create {sid} {mode}")
        for line in extra:
            self.ok(line.format(id=sid))
        self.ok(f"bind {sid} 0 127.0.0.1")
        self.ok(f"listen {sid}")
        addr = self.ok(f"address {sid} local")["value"]
        return int(addr.split()[1])

    def fds(self):
        return self.call("fds")["value"]

    def close(self, timeout=20):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        # Drain what is left so the final line (failures) can be read.
        rest = []
        while True:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                break
            if line is None:
                break
            rest.append(line)
        self.log.extend(rest)
        return self.proc.returncode


def free_port():
    """An ephemeral port for a peer that cannot report the one it bound (openssl s_server)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_block(n):
    """n sockets bound (not listening: a connect is refused) to n consecutive loopback
    ports: (the first port, the sockets). The caller closes them."""
    for _ in range(200):
        first = socket.socket()
        first.bind(("127.0.0.1", 0))
        base = first.getsockname()[1]
        if base + n - 1 > 65535:
            first.close()
            continue
        socks = [first]
        try:
            for p in range(base + 1, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base, socks
        except OSError:
            for s in socks:
                s.close()
    raise AssertionError("no block of consecutive free ports")


def wait_count(host, want_open, timeout=20):
    """Polls `count` (the harness runs its loop 50 ms between looks) until `open` sockets
    remain and none is flushing; returns the last count."""
    deadline = time.monotonic() + timeout
    while True:
        c = host.call("count")
        if c["open"] == want_open and c["flushing"] == 0:
            return c
        assert time.monotonic() < deadline, f"sockets still open: {c}"
        host.ok("run 50")


def oldest_stalled_were_closed(host, stalled, reader, totals, limit, at_least=4):
    """After a listener's connections passed their total (16 x SO_MAX_BUFFERED = `limit`):
    the close events are those of the stalled connections, oldest first (`stalled` is in the
    order they stalled), never the `reader`'s; every total sampled stayed within `limit`, and
    the newer stalled connections still hold their output."""
    host.call("run 200")  # the chosen connections are closed from their own (immediate) timers
    closed = [e for e in host.events if e.get("event") == "close"]
    ids = [e["socket"] for e in closed]
    assert reader not in ids, closed
    assert len(ids) >= at_least, (closed, totals)
    assert ids == stalled[:len(ids)], (ids, stalled)
    for e in closed:
        assert e["data"].startswith(f"too slow: the listener's connections would queue over {limit}") \
            and "SO_MAX_BUFFERED" in e["data"], e
    assert max(totals) <= limit, totals
    for sid in stalled[len(ids):]:
        assert host.ok(f"status {sid}")["value"]["queued"] > 0
