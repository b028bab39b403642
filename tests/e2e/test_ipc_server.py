"""IPC_SERVER (mode 29) through the harness against real peers: Python clients that read
the bus with msgpack.Unpacker straight off a Unix or TCP socket (no framing code).

The contract is callbacks.md "IPC message bus" and options.md 440-453 (plus SO_MAX_BUFFERED).
Every wait is bounded; nothing sleeps for synchronisation: tests wait on harness events or on
socket reads with timeouts. The only sleeps prove that something does NOT happen in a window.
"""
import datetime
import json
import os
import shutil
import socket
import stat
import tempfile
import threading
import time

import msgpack
import pytest

from host import port_block, wait_count

# Runs children, watches host paths, makes socket files or reads TLS files: the
# admin's policy must allow it (docs/SECURITY.md).
pytestmark = pytest.mark.policy("open")

WRAPPED = bool(os.environ.get("UNISOCK_E2E_WRAP"))  # under valgrind everything is slower
WAIT = 60.0 if WRAPPED else 10.0
EEADDRINUSE, EEBADADDR, EESEND, EECALLBACK = -9, -21, -28, -29
MESSAGE_KEYS = {"event_name", "timestamp_ms", "timestamp_iso", "message_type", "data"}
MAX_MESSAGE = 1 << 20  # src/ipc/link.rs


# ---- helpers -----------------------------------------------------------------------------

@pytest.fixture
def sockdir():
    """A short private directory for socket files (sun_path holds 107 bytes)."""
    d = tempfile.mkdtemp(prefix="ipc", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def server(host, sockdir, sid=1, name="bus", options=(), listen=True):
    """A bound (and listening) unix IPC_SERVER; returns the socket path."""
    host.ok(f"create {sid} IPC_SERVER")
    host.ok(f'set {sid} IPC_EVENT_NAME "{name}"')
    host.ok(f"set {sid} IPC_SOCKET_DIR " + json.dumps(sockdir))
    for o in options:
        host.ok(f"set {sid} {o}")
    host.ok(f"bind {sid} 0")
    if listen:
        host.ok(f"listen {sid}")
    return os.path.join(sockdir, name + ".sock")


def lpc(host, sid=1, type_=None, timeout=WAIT):
    """The next read event's mapping on `sid` (of the given "type" when named)."""
    pred = None if type_ is None else (lambda e: isinstance(e.get("data"), dict)
                                       and e["data"].get("type") == type_)
    return host.event("read", sid, timeout=timeout, pred=pred)["data"]


def write(host, value, target=None, sid=1):
    r = host.call(f"write {sid} " + json.dumps(value) + (f" {target}" if target else ""))
    assert r["ee"] in (1, EECALLBACK), r
    return r


def data(d, kind="data"):
    return {"message_type": kind, "data": d}


class Bus:
    """A Python bus client: the raw socket and an Unpacker fed from it."""

    def __init__(self, where, timeout=WAIT):
        if isinstance(where, str):
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            where = ("127.0.0.1", where)
        self.s.settimeout(timeout)
        self.s.connect(where)
        self.u = msgpack.Unpacker(raw=False, max_buffer_size=64 << 20)
        self.id = None
        self.first = True
        self.welcome = None  # the server's first message, a control "welcome"

    def recv(self):
        """The next message after the welcome; EOFError when the server closed first."""
        while True:
            try:
                m = next(self.u)
                first, self.first = self.first, False
                if first and m.get("message_type") == "control" and \
                        isinstance(m.get("data"), dict) and m["data"].get("type") == "welcome":
                    self.welcome = m
                    continue
                return m
            except StopIteration:
                pass
            d = self.s.recv(1 << 16)
            if not d:
                raise EOFError("the server closed the connection")
            self.u.feed(d)

    def send(self, obj):
        self.s.sendall(msgpack.packb(obj, use_bin_type=True))

    def send_raw(self, b):
        self.s.sendall(b)

    def at_eof(self):
        """True when nothing more comes but EOF (or a reset); bounded by the timeout."""
        try:
            m = self.recv()
        except (EOFError, ConnectionResetError):
            return True
        raise AssertionError(f"unexpected message before EOF: {m!r}")

    def quiet(self, window=0.3):
        """Nothing arrives within `window` seconds (a bounded negative check)."""
        self.s.settimeout(window)
        try:
            m = self.recv()
        except socket.timeout:
            return True
        finally:
            self.s.settimeout(WAIT)
        raise AssertionError(f"unexpected message: {m!r}")

    def close(self):
        self.s.close()


def join(host, where, n=1, sid=1):
    """n clients connected one after the other, each with the client id LPC was told."""
    out = []
    for _ in range(n):
        c = Bus(where)
        e = lpc(host, sid, type_="client_connected")
        c.id = e["client_id"]
        out.append(c)
    return out


def test_each_client_is_welcomed_first_with_its_client_id(host, sockdir):
    """The first message names the bus and the client (before anything queued)."""
    where = server(host, sockdir)
    write(host, data({"queued": 1}))
    c = Bus(where)
    e = lpc(host, type_="client_connected")
    assert c.recv()["data"] == {"queued": 1}
    assert c.welcome is not None, "no welcome before the queued message"
    check_message(c.welcome, {"type": "welcome", "client_id": e["client_id"]}, kind="control")
    c.close()


def check_message(m, payload, kind="data", name="bus"):
    assert set(m) == MESSAGE_KEYS, m
    assert m["event_name"] == name and m["message_type"] == kind and m["data"] == payload, m
    assert isinstance(m["timestamp_ms"], int) and isinstance(m["timestamp_iso"], str), m


def settle(host):
    """Every event of what the loop has done so far is printed (and kept in host.events)."""
    host.call("count")


def pending_reads(host, sid=1):
    return [e for e in host.events if e.get("event") == "read" and e.get("socket") == sid]


def test_broadcast_reaches_every_client_exactly_once(host, sockdir):
    path = server(host, sockdir)
    clients = join(host, path, 3)
    assert [c.id for c in clients] == ["client-1", "client-2", "client-3"]
    write(host, data({"n": 1, "text": "héllo", "list": [1, 2.5, "x"]}))
    write(host, data({"n": 2}, "control"))
    for c in clients:
        m = c.recv()
        check_message(m, {"n": 1, "text": "héllo", "list": [1, 2.5, "x"]})
        check_message(c.recv(), {"n": 2}, kind="control")  # the first one came once only
    for c in clients:
        c.close()


def test_unicast_reaches_only_its_target(host, sockdir):
    path = server(host, sockdir)
    a, b, c = join(host, path, 3)
    write(host, data({"to": "b"}), target=b.id)
    check_message(b.recv(), {"to": "b"})
    write(host, data({"all": 1}))
    for x in (a, b, c):  # a and c see the broadcast first: the unicast never reached them
        check_message(x.recv(), {"all": 1})
    r = host.call('write 1 {"data":{"x":1}} client-99')
    assert r["result"] == "error" and r["ee"] == EEBADADDR and "client-99" in r["error"], r
    for x in (a, b, c):
        x.quiet(0.2)
        x.close()


def test_messages_written_while_nobody_listens_are_queued(host, sockdir):
    path = server(host, sockdir, options=["IPC_QUEUE_SIZE 3"])
    for n in range(1, 6):
        write(host, data({"n": n}))
    assert host.ok("status 1")["value"]["queued"] == 3
    first = Bus(path)
    lpc(host, type_="client_connected")
    # The oldest were dropped; the last three arrive in order, to the first to connect.
    assert [first.recv()["data"]["n"] for _ in range(3)] == [3, 4, 5]
    assert host.ok("status 1")["value"]["queued"] == 0
    second = Bus(path)
    lpc(host, type_="client_connected")
    write(host, data({"n": 6}))
    assert first.recv()["data"] == {"n": 6}
    assert second.recv()["data"] == {"n": 6}  # the queue went to the first client only
    first.close()
    second.close()


def test_queue_size_zero_keeps_nothing(host, sockdir):
    path = server(host, sockdir, options=["IPC_QUEUE_SIZE 0"])
    write(host, data({"n": 1}))
    c = Bus(path)
    lpc(host, type_="client_connected")
    write(host, data({"n": 2}))
    assert c.recv()["data"] == {"n": 2}
    c.close()


def test_write_checks_the_message(host, sockdir):
    host.ok("create 1 IPC_SERVER")
    host.ok('set 1 IPC_EVENT_NAME "bus"')
    r = host.call('write 1 {"data":{}}')
    assert r["result"] == "error" and "bind" in r["error"], r
    server(host, sockdir, sid=2)
    for bad, words in [('"text"', "mapping"), ('{"data":5}', '"data" must be a mapping'),
                       ('{"message_type":"data"}', 'needs "data"'),
                       ('{"data":{},"message_type":"bogus"}', "message_type"),
                       ('{"data":{},"extra":1}', '"extra"')]:
        r = host.call(f"write 2 {bad}")
        assert r["result"] == "error" and words in r["error"], (bad, r)


# ---- connections ---------------------------------------------------------------------------

def test_connect_and_disconnect_events_and_the_clients_option(host, sockdir):
    path = server(host, sockdir)
    assert host.ok("get 1 IPC_CLIENTS")["value"] == []
    before = int(time.time())
    a = Bus(path)
    e = host.event("read", 1, timeout=WAIT)
    assert e["data"] == {"type": "client_connected", "client_id": "client-1", "addr": path}, e
    b = Bus(path)
    assert lpc(host, type_="client_connected")["client_id"] == "client-2"
    clients = host.ok("get 1 IPC_CLIENTS")["value"]
    assert [c["client_id"] for c in clients] == ["client-1", "client-2"], clients
    for c in clients:
        assert set(c) == {"client_id", "connected_at", "addr"} and c["addr"] == path, c
        assert before - 1 <= c["connected_at"] <= time.time() + 1, c
    r = host.call("set 1 IPC_CLIENTS []")
    assert r["result"] == "error" and "read-only" in r["error"], r
    a.send({"message_type": "data", "data": {"from": "a"}})
    m = lpc(host)
    assert m["client_id"] == "client-1" and m["data"] == {"from": "a"}, m
    assert MESSAGE_KEYS <= set(m), m
    a.close()
    e = lpc(host, type_="client_disconnected")
    assert e["client_id"] == "client-1" and e["reason"], e
    assert [c["client_id"] for c in host.ok("get 1 IPC_CLIENTS")["value"]] == ["client-2"]
    b.close()
    lpc(host, type_="client_disconnected")
    assert host.ok("get 1 IPC_CLIENTS")["value"] == []


def test_client_message_keeps_what_it_sent_and_gets_the_rest(host, sockdir):
    path = server(host, sockdir)
    (c,) = join(host, path)
    c.send({"data": {"k": [1, 2]}})  # message_type, event_name and the stamps left out
    m = lpc(host)
    assert m["message_type"] == "data" and m["event_name"] == "bus" and m["data"] == {"k": [1, 2]}, m
    assert isinstance(m["timestamp_ms"], int) and m["timestamp_iso"].endswith("+00:00"), m
    c.send({"event_name": "other", "timestamp_ms": 5, "timestamp_iso": "x", "message_type": "ERROR",
            "data": {}, "client_id": "forged"})
    m = lpc(host)
    assert (m["event_name"], m["timestamp_ms"], m["message_type"]) == ("other", 5, "error"), m
    assert m["client_id"] == c.id, m  # the server says who sent it, whatever the client claims
    c.close()


def test_max_connections_refuses_the_third(host, sockdir):
    path = server(host, sockdir, options=["IPC_MAX_CONNECTIONS 2"])
    a, b = join(host, path, 2)
    third = Bus(path)
    m = third.recv()
    assert m["message_type"] == "error" and m["data"]["error"] == "max_connections", m
    assert "IPC_MAX_CONNECTIONS" in m["data"]["message"], m
    assert third.at_eof()
    settle(host)
    assert pending_reads(host) == [], host.events  # LPC never heard of it
    write(host, data({"still": "here"}))
    assert a.recv()["data"] == {"still": "here"}
    assert b.recv()["data"] == {"still": "here"}
    b.send({"data": {"b": 1}})
    assert lpc(host)["client_id"] == b.id
    # A place frees up when one leaves; the refused one took no client id.
    a.close()
    lpc(host, type_="client_disconnected")
    (d,) = join(host, path)
    assert d.id == "client-3"
    for x in (b, d, third):
        x.close()


def test_client_send_refused_when_disabled(host, sockdir):
    path = server(host, sockdir, options=["IPC_ALLOW_CLIENT_SEND 0"])
    (c,) = join(host, path)
    c.send({"message_type": "data", "data": {"x": 1}})
    m = c.recv()
    assert m["message_type"] == "error" and m["data"]["error"] == "client_send_disabled", m
    settle(host)
    assert pending_reads(host) == [], host.events  # LPC got nothing
    write(host, data({"y": 2}))  # the connection stays
    assert c.recv()["data"] == {"y": 2}
    assert [x["client_id"] for x in host.ok("get 1 IPC_CLIENTS")["value"]] == [c.id]
    host.ok("set 1 IPC_ALLOW_CLIENT_SEND 1")  # takes effect on the live bus
    c.send({"data": {"x": 3}})
    assert lpc(host)["data"] == {"x": 3}
    c.close()


@pytest.mark.parametrize("bad", ["c1", "int", "data_not_map", "bad_type", "oversized"])
def test_bad_messages_drop_only_the_offender(host, sockdir, bad):
    path = server(host, sockdir)
    offender, other = join(host, path, 2)
    if bad == "oversized":
        blob = msgpack.packb({"message_type": "data", "data": {"b": b"x" * (MAX_MESSAGE + 16)}})
        # Sent from a thread: the server reads, refuses, then drains what is left.
        t = threading.Thread(target=lambda: _send_quietly(offender, blob), daemon=True)
        t.start()
    else:
        offender.send_raw({"c1": b"\xc1",
                           "int": msgpack.packb(5),
                           "data_not_map": msgpack.packb({"message_type": "data", "data": 5}),
                           "bad_type": msgpack.packb({"message_type": "nope", "data": {}})}[bad])
    m = offender.recv()
    assert m["message_type"] == "error" and m["data"]["error"] == "bad_message", m
    assert offender.at_eof()
    e = lpc(host, type_="client_disconnected")
    assert e["client_id"] == offender.id and e["reason"], e
    if bad == "oversized":
        assert str(MAX_MESSAGE) in e["reason"], e
        t.join(WAIT)
    settle(host)
    assert pending_reads(host) == [], host.events  # nothing of the bad message reached LPC
    write(host, data({"after": 1}))
    assert other.recv()["data"] == {"after": 1}
    other.send({"data": {"ok": 1}})
    assert lpc(host)["data"] == {"ok": 1}
    offender.close()
    other.close()


def _send_quietly(bus, blob):
    try:
        bus.send_raw(blob)
    except OSError:
        pass


def test_a_message_just_under_the_limit_is_taken(host, sockdir):
    path = server(host, sockdir)
    (c,) = join(host, path)
    text = "y" * (MAX_MESSAGE - 100)
    blob = msgpack.packb({"message_type": "data", "data": {"t": text}})
    assert len(blob) <= MAX_MESSAGE
    t = threading.Thread(target=lambda: _send_quietly(c, blob), daemon=True)
    t.start()
    m = lpc(host)
    assert m["data"]["t"] == text
    t.join(WAIT)
    c.close()


def test_messages_split_across_reads_and_several_per_read(host, sockdir):
    path = server(host, sockdir)
    (c,) = join(host, path)
    blob = b"".join(msgpack.packb({"data": {"i": i}}) for i in range(5))
    c.send_raw(blob[:3])
    c.send_raw(blob[3:20])
    c.send_raw(blob[20:])
    assert [lpc(host)["data"]["i"] for _ in range(5)] == [0, 1, 2, 3, 4]
    c.close()


def test_slow_client_is_dropped_and_fast_ones_get_everything(host, sockdir):
    path = server(host, sockdir, options=["SO_MAX_BUFFERED 4096"])  # the option's minimum
    fast1, fast2, slow = join(host, path, 3)
    count, size = 60, 8192  # well past what the kernel buffers for a unix stream (~200 KiB)
    for i in range(count):
        write(host, data({"i": i, "pad": "p" * size}))
        # The fast ones read each message before the next is sent: nothing of
        # theirs ever waits in unisock, so only the slow one can pass the limit.
        for c in (fast1, fast2):
            assert c.recv()["data"]["i"] == i
    e = lpc(host, type_="client_disconnected")
    assert e["client_id"] == slow.id and "SO_MAX_BUFFERED" in e["reason"], e
    assert [x["client_id"] for x in host.ok("get 1 IPC_CLIENTS")["value"]] == [fast1.id, fast2.id]
    write(host, data({"i": "after"}))
    for c in (fast1, fast2):
        assert c.recv()["data"]["i"] == "after"
    # The slow one gets whole messages in order, then EOF (what was queued is dropped).
    got = []
    try:
        while True:
            got.append(slow.recv()["data"]["i"])
    except EOFError:
        pass
    assert got == list(range(len(got))) and 0 < len(got) < count, got
    for c in (fast1, fast2, slow):
        c.close()


def test_unicast_to_a_client_that_cannot_keep_up_fails_and_drops_it(host, sockdir):
    path = server(host, sockdir, options=["SO_MAX_BUFFERED 4096"])
    slow, other = join(host, path, 2)
    for i in range(200):
        r = host.call(f"write 1 {json.dumps(data({'i': i, 'pad': 'u' * 8192}))} {slow.id}")
        if r["ee"] not in (1, EECALLBACK):
            break
    else:
        raise AssertionError("the slow client was never dropped")
    assert r["ee"] == EESEND and slow.id in r["error"], r
    e = lpc(host, type_="client_disconnected")
    assert e["client_id"] == slow.id and "SO_MAX_BUFFERED" in e["reason"], e
    write(host, data({"other": 1}))
    assert other.recv()["data"] == {"other": 1}
    slow.close()
    other.close()


def _reader(bus, want, pause=0.0, chunk=1 << 16, stamps=None):
    """Reads `bus` on a thread until `want` data messages came (or EOF / the timeout);
    returns (thread, the list of their "i" or "s" lengths as they arrive). `stamps`, a list,
    gets the time.monotonic() of each read."""
    got = []

    def run():
        u = msgpack.Unpacker(raw=False, max_buffer_size=64 << 20)
        bus.s.settimeout(WAIT * 3)
        try:
            while len(got) < want:
                d = bus.s.recv(chunk)
                if stamps is not None:
                    stamps.append(time.monotonic())
                if not d:
                    return
                u.feed(d)
                got.extend(m["data"].get("i", -1) for m in u if m["message_type"] == "data")
                if pause:
                    time.sleep(pause)  # the pace of a slow reader, not synchronisation
        except OSError:
            return

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, got


def queued_bytes(host, sid=1):
    """Output waiting in the server's client queues, all together (socket_status)."""
    return host.ok(f"status {sid}")["value"].get("queued_bytes")


def test_a_stuck_client_cannot_stall_the_bus(host, sockdir):
    """Issue 12: one client never reads, one does; LPC broadcasts 300 messages of 60 kB the
    documented way (after EECALLBACK it waits for the write callback). The callbacks keep
    coming, the stuck client is dropped as too slow once its queue passes SO_MAX_BUFFERED,
    and the reading one gets all 300 (all defaults: 4 MiB, SO_SEND_TIMEOUT 60 s)."""
    path = server(host, sockdir)
    stuck, good = join(host, path, 2)
    t, got = _reader(good, 300)
    body = json.dumps(data({"i": 7, "s": "x" * 60000}))
    r = host.call(f"burst 1 300 {body}", timeout=WAIT * 3)
    # The harness gives up on a write callback after 10 s (a {"wait":"timeout"} line).
    assert r["result"] == "ok" and r["written"] == 300 and r["callbacks"] > 0, r
    assert r["us"] < WAIT * 1e6, r
    e = lpc(host, type_="client_disconnected")
    assert e["client_id"] == stuck.id and e["reason"].startswith("too slow"), e
    assert "SO_MAX_BUFFERED" in e["reason"], e
    t.join(WAIT * 3)
    assert len(got) == 300, len(got)
    assert [c["client_id"] for c in host.ok("get 1 IPC_CLIENTS")["value"]] == [good.id]
    assert queued_bytes(host) == 0
    stuck.close()
    good.close()


def test_send_timeout_drops_a_stuck_client_when_lpc_stops_writing(host, sockdir):
    """The queue of a client that never reads stays under SO_MAX_BUFFERED when LPC stops
    writing: SO_SEND_TIMEOUT alone drops it (client_disconnected, "too slow") and frees
    its queue, while a client with nothing queued stays however long it is quiet."""
    path = server(host, sockdir, options=["SO_SEND_TIMEOUT 1000"])
    stuck, good = join(host, path, 2)
    t, got = _reader(good, 10)
    t0 = time.monotonic()
    results = [write(host, data({"i": i, "s": "y" * 60000}))["ee"] for i in range(10)]
    assert EECALLBACK in results, results  # 600 kB: past what the kernel holds for a unix stream
    t.join(WAIT)
    assert got == list(range(10)), got
    host.event("write", 1, timeout=WAIT)  # the write callback does not wait for the stuck one
    waiting = queued_bytes(host)
    e = lpc(host, type_="client_disconnected", timeout=WAIT)
    elapsed = time.monotonic() - t0
    assert 0 < waiting < 4 << 20, waiting
    assert e["client_id"] == stuck.id, e
    assert e["reason"].startswith("too slow: no write progress for 1000 ms"), e
    assert "SO_SEND_TIMEOUT" in e["reason"] and f"{waiting} bytes waiting" in e["reason"], e
    assert elapsed >= 1.0, elapsed
    assert queued_bytes(host) == 0
    assert [c["client_id"] for c in host.ok("get 1 IPC_CLIENTS")["value"]] == [good.id]
    write(host, data({"i": "after"}))
    assert good.recv()["data"]["i"] == "after"
    # What was queued for the stuck client is gone: whole messages, then EOF.
    n = 0
    try:
        while True:
            assert stuck.recv()["data"]["i"] == n
            n += 1
    except EOFError:
        pass
    assert 0 < n < 10, n
    stuck.close()
    good.close()


def test_send_timeout_changed_on_a_live_bus_takes_effect(host, sockdir):
    """SO_SEND_TIMEOUT is settable any time: lowered while a client is stuck, it applies
    to the queue already waiting (0 = no deadline until then)."""
    path = server(host, sockdir, options=["SO_SEND_TIMEOUT 0"])
    (stuck,) = join(host, path)
    for i in range(10):
        write(host, data({"i": i, "s": "z" * 60000}))
    host.ok("run 300")  # a bounded window in which nothing may happen
    assert not [e for e in pending_reads(host) if e["data"].get("type") == "client_disconnected"]
    host.ok("set 1 SO_SEND_TIMEOUT 200")
    e = lpc(host, type_="client_disconnected", timeout=WAIT)
    assert e["client_id"] == stuck.id and "no write progress for 200 ms" in e["reason"], e
    stuck.close()


STALLED = 1.0  # src/ipc/server.rs: a client that has written nothing this long is stalled


def test_a_slow_client_that_reads_still_holds_the_write_callback(host, sockdir):
    """Back-pressure stays for a client that reads, however slowly: LPC's burst goes at its
    pace and it is neither dropped nor left behind (what the stall rule must not break).
    A reader that itself went STALLED without reading (this process starved on a loaded
    machine, or the harness under valgrind) is a stalled client by definition, so such a
    run proves nothing either way: it is made again, at most three times. A run with the
    reader keeping its pace must end with nothing dropped."""
    count = 100  # 1.6 MB: six times the queue and the kernel's buffer together
    body = json.dumps(data({"i": 0, "pad": "s" * 16000}))
    starved = []
    for sid in (1, 2, 3):
        path = server(host, sockdir, sid=sid, name=f"bus{sid}",
                      options=["SO_MAX_BUFFERED 262144", "SO_SEND_TIMEOUT 5000"])
        (slow,) = join(host, path, sid=sid)
        stamps = [time.monotonic()]
        t, got = _reader(slow, count, pause=0.005, chunk=16384, stamps=stamps)
        r = host.call(f"burst {sid} {count} {body}", timeout=WAIT * 3)
        t.join(WAIT * 3)
        settle(host)
        dropped = [e for e in pending_reads(host, sid)
                   if e["data"].get("type") == "client_disconnected"]
        gap = max(b - a for a, b in zip(stamps, stamps[1:])) if len(stamps) > 1 else 0
        slow.close()
        host.ok(f"close {sid}")
        if dropped and gap >= STALLED:
            starved.append(round(gap, 2))
            continue
        assert not dropped, (dropped, f"longest pause between reads: {gap:.2f} s")
        assert r["result"] == "ok" and r["written"] == count, r
        assert len(got) == count, len(got)
        return
    pytest.skip(f"the reader was starved for a stall in every run ({starved} s): "
                "nothing could be judged")


def test_clients_together_queue_at_most_16_times_max_buffered(host, sockdir):
    """Many stuck clients, each under SO_MAX_BUFFERED, together past 16 x SO_MAX_BUFFERED:
    the one that has written nothing for longest goes first, until the total is back
    under; a reading client is never chosen."""
    limit = 16 * 65536
    path = server(host, sockdir, options=["SO_MAX_BUFFERED 65536", "IPC_MAX_CONNECTIONS 30"])
    stuck = join(host, path, 20)
    (good,) = join(host, path)
    dropped = []
    for i in range(400):  # the kernel holds ~200 kB per client before unisock queues
        write(host, data({"i": i, "pad": "t" * 8000}))
        assert good.recv()["data"]["i"] == i
        assert (queued_bytes(host) or 0) <= limit
        settle(host)
        dropped += [e["data"] for e in pending_reads(host)
                    if e["data"].get("type") == "client_disconnected"]
        host.events.clear()
        if any("16 × SO_MAX_BUFFERED" in d["reason"] for d in dropped):
            break
    else:
        raise AssertionError(f"no client was dropped for the total; dropped: {dropped}")
    assert {d["client_id"] for d in dropped} <= {c.id for c in stuck}, dropped
    first = next(d for d in dropped if "16 × SO_MAX_BUFFERED" in d["reason"])
    assert first["reason"].startswith("too slow"), first
    left = [c["client_id"] for c in host.ok("get 1 IPC_CLIENTS")["value"]]
    assert good.id in left and len(left) == 21 - len(dropped), (left, dropped)
    for c in stuck + [good]:
        c.close()


def test_dropping_a_client_mid_message_never_splices_into_its_stream(host, sockdir):
    """A client behind on reading (part of a message already out, the rest queued) that
    then sends garbage is dropped; what it reads is whole messages then at most the
    start of one: an ERROR message is never written into the middle of another."""
    path = server(host, sockdir)
    (c,) = join(host, path)
    pad = "p" * 65536
    for i in range(64):  # until the kernel is full and the rest waits in unisock
        if write(host, data({"i": i, "pad": pad}))["ee"] == EECALLBACK:
            break
    else:
        raise AssertionError("the client's queue never filled")
    raw = b""
    while len(raw) < 98304:  # room, but not enough for the kernel to wake the writer
        raw += c.s.recv(98304 - len(raw))
    c.send_raw(b"\xc1")
    e = lpc(host, type_="client_disconnected")
    assert e["client_id"] == c.id, e
    while True:
        d = c.s.recv(1 << 16)
        if not d:
            break
        raw += d
    u = msgpack.Unpacker(raw=False, max_buffer_size=64 << 20)
    u.feed(raw)
    whole = list(u)
    assert whole[0]["data"]["type"] == "welcome", whole[0]
    whole = whole[1:]
    for n, m in enumerate(whole):
        if m["message_type"] == "error":  # sent at a message boundary: fine, and last
            assert m["data"]["error"] == "bad_message" and n == len(whole) - 1, whole[n:]
        else:
            assert m["data"] == {"i": n, "pad": pad}, (n, str(m)[:200])
    tail = raw[u.tell():]
    assert b"bad_message" not in tail, tail[-300:]
    c.close()


def test_idle_timeout_drops_silent_clients_not_listening_ones(host, sockdir):
    path = server(host, sockdir, options=["SO_IDLE_TIMEOUT 1000"])
    silent, listener = join(host, path, 2)
    # A message to one client every 100 ms: a client that only listens is not idle.
    sent = 0
    deadline = time.monotonic() + WAIT
    gone = None
    while gone is None or sent < gone + 10:
        write(host, data({"tick": sent}), target=listener.id)
        sent += 1
        time.sleep(0.1)
        host.call("count")
        if gone is None:
            drops = [e for e in pending_reads(host) if e["data"].get("type") == "client_disconnected"]
            if drops:
                assert [e["data"]["client_id"] for e in drops] == [silent.id], drops
                assert "SO_IDLE_TIMEOUT" in drops[0]["data"]["reason"], drops
                gone = sent
        assert time.monotonic() < deadline, "the silent client was never dropped"
    assert [c["client_id"] for c in host.ok("get 1 IPC_CLIENTS")["value"]] == [listener.id]
    assert [listener.recv()["data"]["tick"] for _ in range(sent)] == list(range(sent))
    m = silent.recv()
    assert m["message_type"] == "error" and m["data"]["error"] == "idle_timeout", m
    assert silent.at_eof()
    listener.close()
    silent.close()


# ---- the socket file -----------------------------------------------------------------------

def test_socket_file_mode_is_0600_by_default(host, sockdir):
    path = server(host, sockdir)
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert host.ok("get 1 IPC_PERMISSIONS")["value"] == 0o600


def test_socket_file_mode_follows_ipc_permissions(host, sockdir):
    path = server(host, sockdir, options=[f"IPC_PERMISSIONS {0o660}"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    assert os.listdir(sockdir) == ["bus.sock"]  # no temporary name left behind
    (c,) = join(host, path)
    c.close()


def test_socket_file_removed_on_close(host, sockdir):
    path = server(host, sockdir)
    assert os.path.exists(path)
    host.ok("close 1")
    assert not os.path.exists(path)


def test_auto_remove_0_keeps_the_file_on_close(host, sockdir):
    path = server(host, sockdir, options=["IPC_AUTO_REMOVE 0"])
    host.ok("close 1")
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    s = socket.socket(socket.AF_UNIX)
    with pytest.raises(ConnectionRefusedError):
        s.connect(path)  # nobody listens behind it any more
    s.close()


def test_stale_socket_file_is_removed_at_bind(host, sockdir):
    path = os.path.join(sockdir, "bus.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)
    dead.listen(1)
    dead.close()  # the file stays, nobody listens: stale
    assert os.path.exists(path)
    server(host, sockdir)
    (c,) = join(host, path)
    write(host, data({"fresh": 1}))
    assert c.recv()["data"] == {"fresh": 1}
    c.close()


def test_stale_socket_file_kept_when_auto_remove_is_0(host, sockdir):
    path = os.path.join(sockdir, "bus.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)
    dead.close()
    ino = os.lstat(path).st_ino
    host.ok("create 1 IPC_SERVER")
    host.ok('set 1 IPC_EVENT_NAME "bus"')
    host.ok("set 1 IPC_SOCKET_DIR " + json.dumps(sockdir))
    host.ok("set 1 IPC_AUTO_REMOVE 0")
    r = host.call("bind 1 0")
    assert r["result"] == "error" and "stale" in r["error"] and "IPC_AUTO_REMOVE" in r["error"], r
    assert os.lstat(path).st_ino == ino


def test_regular_file_at_the_path_is_never_removed(host, sockdir):
    path = os.path.join(sockdir, "bus.sock")
    with open(path, "w") as f:
        f.write("precious")
    host.ok("create 1 IPC_SERVER")
    host.ok('set 1 IPC_EVENT_NAME "bus"')
    host.ok("set 1 IPC_SOCKET_DIR " + json.dumps(sockdir))
    r = host.call("bind 1 0")
    assert r["result"] == "error" and r["ee"] == EEADDRINUSE, r
    assert path in r["error"] and "not a socket" in r["error"], r
    with open(path) as f:
        assert f.read() == "precious"
    assert os.listdir(sockdir) == ["bus.sock"]


def test_live_server_at_the_path_makes_bind_fail(host, sockdir):
    path = server(host, sockdir)
    (c,) = join(host, path)
    host.ok("create 2 IPC_SERVER")
    host.ok('set 2 IPC_EVENT_NAME "bus"')
    host.ok("set 2 IPC_SOCKET_DIR " + json.dumps(sockdir))
    r = host.call("bind 2 0")
    assert r["result"] == "error" and r["ee"] == EEADDRINUSE and "listening" in r["error"], r
    host.ok("close 2")
    assert os.path.exists(path)  # the failed one did not touch the live one's file
    settle(host)
    assert pending_reads(host) == [], host.events  # no phantom client came and went
    write(host, data({"alive": 1}))
    assert c.recv()["data"] == {"alive": 1}
    (d,) = join(host, path)  # and it still accepts
    assert d.id == "client-2"
    c.close()
    d.close()


def test_live_server_of_another_program_makes_bind_fail(host, sockdir):
    path = os.path.join(sockdir, "bus.sock")
    live = socket.socket(socket.AF_UNIX)
    live.bind(path)
    live.listen(1)
    ino = os.lstat(path).st_ino
    host.ok("create 1 IPC_SERVER")
    host.ok('set 1 IPC_EVENT_NAME "bus"')
    host.ok("set 1 IPC_SOCKET_DIR " + json.dumps(sockdir))
    r = host.call("bind 1 0")
    assert r["result"] == "error" and r["ee"] == EEADDRINUSE, r
    assert os.lstat(path).st_ino == ino
    live.close()


def test_default_socket_dir(host):
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    want = xdg if xdg.startswith("/") and os.path.isdir(xdg) else "/tmp"
    name = f"unisock-test-{os.getpid()}-{time.monotonic_ns()}"
    path = os.path.join(want, name + ".sock")
    host.ok("create 1 IPC_SERVER")
    host.ok(f'set 1 IPC_EVENT_NAME "{name}"')
    try:
        host.ok("bind 1 0")
        host.ok("listen 1")
        assert host.ok("status 1")["value"]["bus"] == path
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        c = Bus(path)
        assert lpc(host, type_="client_connected")["client_id"] == "client-1"
        c.close()
        host.ok("close 1")
        assert not os.path.exists(path)
    finally:
        if os.path.exists(path):
            os.unlink(path)


def test_socket_dir_is_checked_at_set_time(host, sockdir):
    host.ok("create 1 IPC_SERVER")
    for bad in ["/tmp/../etc", "relative/dir", "/" + "d" * 120]:
        r = host.call("set 1 IPC_SOCKET_DIR " + json.dumps(bad))
        assert r["result"] == "error" and "IPC_SOCKET_DIR" in r["error"], (bad, r)
    r = host.call("set 1 IPC_SOCKET_DIR " + json.dumps("/tmp/../etc"))
    assert ".." in r["error"], r
    r = host.call('set 1 IPC_EVENT_NAME "../x"')
    assert r["result"] == "error", r
    host.ok("set 1 IPC_SOCKET_DIR " + json.dumps(sockdir))
    assert host.ok("get 1 IPC_SOCKET_DIR")["value"] == sockdir


def test_missing_socket_dir_fails_at_bind(host, sockdir):
    host.ok("create 1 IPC_SERVER")
    host.ok('set 1 IPC_EVENT_NAME "bus"')
    host.ok("set 1 IPC_SOCKET_DIR " + json.dumps(os.path.join(sockdir, "nope")))
    r = host.call("bind 1 0")
    assert r["result"] == "error" and "nope" in r["error"], r
    host.ok("create 2 IPC_SERVER")
    r = host.call("bind 2 0")
    assert r["result"] == "error" and "IPC_EVENT_NAME" in r["error"], r


# ---- TCP transport ---------------------------------------------------------------------------

def test_tcp_takes_the_first_free_port_of_the_range(host):
    lo, socks = port_block(2)
    busy, spare = socks
    busy.listen(1)
    spare.close()  # lo + 1 is free again
    host.ok("create 1 IPC_SERVER")
    host.ok('set 1 IPC_EVENT_NAME "bus"')
    host.ok('set 1 IPC_TRANSPORT "tcp"')
    host.ok(f"set 1 IPC_PORT_RANGE [{lo}, {lo + 1}]")
    host.ok("bind 1 0")
    host.ok("listen 1")
    assert host.ok("get 1 IPC_PORT_RANGE")["value"] == [lo + 1, lo + 1]
    assert host.ok("address 1 local")["value"] == f"127.0.0.1 {lo + 1}"
    c = Bus(lo + 1)
    e = lpc(host, type_="client_connected")
    assert e["addr"].startswith("127.0.0.1 "), e
    write(host, data({"tcp": 1}))
    check_message(c.recv(), {"tcp": 1})
    c.send({"data": {"back": 1}})
    assert lpc(host)["data"] == {"back": 1}
    c.close()
    busy.close()


def test_tcp_with_every_port_busy_fails_naming_the_range(host):
    lo, socks = port_block(2)
    host.ok("create 1 IPC_SERVER")
    host.ok('set 1 IPC_EVENT_NAME "bus"')
    host.ok('set 1 IPC_TRANSPORT "tcp"')
    host.ok(f"set 1 IPC_PORT_RANGE [{lo}, {lo + 1}]")
    r = host.call("bind 1 0")
    assert r["result"] == "error" and r["ee"] == EEADDRINUSE, r
    assert f"{lo}..{lo + 1}" in r["error"] and "IPC_PORT_RANGE" in r["error"], r
    assert host.ok("get 1 IPC_PORT_RANGE")["value"] == [lo, lo + 1]
    for s in socks:
        s.close()


def test_port_range_is_checked_at_set_time(host):
    host.ok("create 1 IPC_SERVER")
    for bad in ["[5, 4]", "[0, 10]", "[1, 70000]", "[1]", '"50000"']:
        r = host.call(f"set 1 IPC_PORT_RANGE {bad}")
        assert r["result"] == "error" and "IPC_PORT_RANGE" in r["error"], (bad, r)
    assert host.ok("get 1 IPC_PORT_RANGE")["value"] == [50000, 50100]


# ---- timestamps --------------------------------------------------------------------------------

def iso_ms(iso):
    return round(datetime.datetime.fromisoformat(iso).timestamp() * 1000)


def test_timestamps_are_in_the_configured_zone(host, sockdir):
    path = server(host, sockdir, options=['IPC_TIMEZONE "Asia/Tokyo"'])
    (c,) = join(host, path)
    write(host, data({"t": 1}))
    m = c.recv()
    assert m["timestamp_iso"].endswith("+09:00"), m
    assert iso_ms(m["timestamp_iso"]) == m["timestamp_ms"], m
    assert abs(m["timestamp_ms"] - time.time() * 1000) < 60_000, m
    # Messages a client leaves unstamped are stamped in the zone too.
    c.send({"data": {}})
    assert lpc(host)["timestamp_iso"].endswith("+09:00")
    # An unknown zone is refused at set time and nothing changes.
    r = host.call('set 1 IPC_TIMEZONE "Mars/Olympus_Mons"')
    assert r["result"] == "error" and "IPC_TIMEZONE" in r["error"], r
    assert host.ok("get 1 IPC_TIMEZONE")["value"] == "Asia/Tokyo"
    # A zone set on the live bus applies to the next message.
    host.ok('set 1 IPC_TIMEZONE "Asia/Kolkata"')
    write(host, data({"t": 2}))
    m = c.recv()
    assert m["timestamp_iso"].endswith("+05:30") and iso_ms(m["timestamp_iso"]) == m["timestamp_ms"], m
    c.close()


def test_default_zone_is_utc(host, sockdir):
    path = server(host, sockdir)
    (c,) = join(host, path)
    write(host, data({}))
    m = c.recv()
    assert m["timestamp_iso"].endswith("+00:00") and iso_ms(m["timestamp_iso"]) == m["timestamp_ms"], m
    c.close()


# ---- closing -------------------------------------------------------------------------------------

def test_close_with_clients_connected_frees_everything(host, sockdir):
    base_fds, base_count = host.fds(), host.call("count")
    path = server(host, sockdir, options=["IPC_MAX_CONNECTIONS 3"])
    clients = join(host, path, 3)
    refused = Bus(path)  # lingering after its ERROR message, never reading further
    assert refused.recv()["data"]["error"] == "max_connections"
    write(host, data({"bye": 1}))
    host.ok("close 1")
    for c in clients:
        assert c.recv()["data"] == {"bye": 1}
        assert c.at_eof()
    assert refused.at_eof()
    assert not os.path.exists(path)
    wait_count(host, base_count["open"], timeout=WAIT)
    assert host.fds() == base_fds
    settle(host)
    assert pending_reads(host) == [], host.events  # LPC closed it: no client_disconnected
    for c in clients + [refused]:
        c.close()


def test_close_flushes_queued_output_in_the_background(host, sockdir):
    base_fds = host.fds()
    path = server(host, sockdir)
    (c,) = join(host, path)
    n, pad = 40, "q" * 16384  # more than the kernel takes at once for a unix stream
    for i in range(n):
        write(host, data({"i": i, "pad": pad}))
    host.ok("close 1")
    assert not os.path.exists(path)
    assert [c.recv()["data"]["i"] for _ in range(n)] == list(range(n))
    assert c.at_eof()
    wait_count(host, 0, timeout=WAIT)
    assert host.fds() == base_fds
    c.close()


def test_accept_is_refused_with_a_pointer_to_the_read_callback(host, sockdir):
    server(host, sockdir)
    r = host.call("accept 1 5")
    assert r["result"] == "error" and "client_connected" in r["error"], r
