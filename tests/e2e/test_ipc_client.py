"""IPC_CLIENT (mode 30) through the harness against a real peer: a small threaded Python
bus server (socketserver, unix and tcp) speaking MessagePack; and an IPC_SERVER and an
IPC_CLIENT in the same harness talking to each other.

The contract is callbacks.md "IPC message bus" and options.md 440-453. Every wait is
bounded; nothing sleeps for synchronisation: tests wait on harness events or on queues
with timeouts. The only sleeps prove that something does NOT happen in a window.
"""
import datetime
import json
import os
import queue
import shutil
import socket
import socketserver
import tempfile
import threading
import time

import msgpack
import pytest

from host import free_port, port_block

# Runs children, watches host paths, makes socket files or reads TLS files: the
# admin's policy must allow it (docs/SECURITY.md).
pytestmark = pytest.mark.policy("open")

WRAPPED = bool(os.environ.get("UNISOCK_E2E_WRAP"))  # under valgrind everything is slower
WAIT = 60.0 if WRAPPED else 10.0
EECALLBACK, EECONNREFUSED, EENOTCONN, EEWOULDBLOCK = -29, -23, -25, -17
MESSAGE_KEYS = {"event_name", "timestamp_ms", "timestamp_iso", "message_type", "data"}


# ---- a Python bus server -----------------------------------------------------------------

class PyBus:
    """A threaded bus server on a unix path or a loopback TCP port. Every connection's
    messages go to `inbox` (as (connection number, message)); `conns` fills as they come.
    With `greet`, each connection is first sent a control message naming that bus (as a
    unisock IPC_SERVER's welcome does)."""

    def __init__(self, where, greet=None):
        self.where = where
        self.inbox = queue.Queue()
        self.joined = queue.Queue()
        self.conns = []
        self.lock = threading.Lock()
        bus = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                with bus.lock:
                    n = len(bus.conns)
                    bus.conns.append(self.request)
                bus.joined.put(n)
                if greet is not None:
                    self.request.sendall(msgpack.packb(message({"type": "welcome"}, "control", greet)))
                u = msgpack.Unpacker(raw=False)
                while True:
                    try:
                        d = self.request.recv(65536)
                    except OSError:
                        break
                    if not d:
                        break
                    u.feed(d)
                    for m in u:
                        bus.inbox.put((n, m))
                bus.inbox.put((n, EOFError))

        if isinstance(where, str):
            class Server(socketserver.ThreadingUnixStreamServer):
                daemon_threads = True
                block_on_close = False
        else:
            class Server(socketserver.ThreadingTCPServer):
                daemon_threads = True
                block_on_close = False
                allow_reuse_address = True
        self.server = Server(where if isinstance(where, str) else ("127.0.0.1", where), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def wait_conn(self, timeout=WAIT):
        return self.joined.get(timeout=timeout)

    def recv(self, timeout=WAIT):
        """The next message from any connection (EOFError marks one that ended)."""
        return self.inbox.get(timeout=timeout)

    def message(self, timeout=WAIT):
        while True:
            n, m = self.recv(timeout)
            if m is not EOFError:
                return m

    def send(self, obj, conn=-1):
        self.send_raw(msgpack.packb(obj, use_bin_type=True), conn)

    def send_raw(self, b, conn=-1):
        with self.lock:
            c = self.conns[conn]
        c.sendall(b)

    def stop(self):
        """Closes the listener and every connection (and removes a unix socket file)."""
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
        if isinstance(self.where, str) and os.path.exists(self.where):
            os.unlink(self.where)


def message(payload, kind="data", name="bus"):
    return {"event_name": name, "timestamp_ms": 1700000000123,
            "timestamp_iso": "2023-11-14T22:13:20.123+00:00", "message_type": kind, "data": payload}


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="ipc", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def buses():
    made = []
    yield made
    for b in made:
        try:
            b.stop()
        except OSError:
            pass


def start(buses, transport, sockdir):
    where = os.path.join(sockdir, "bus.sock") if transport == "unix" else free_port()
    b = PyBus(where)
    buses.append(b)
    return b


def client(host, transport, where, sid=2, options=(), address='""'):
    """An IPC_CLIENT set up for the bus at `where` (a unix path or a port) and connecting."""
    host.ok(f"create {sid} IPC_CLIENT")
    host.ok(f'set {sid} IPC_EVENT_NAME "bus"')
    if transport == "unix":
        host.ok(f"set {sid} IPC_SOCKET_DIR " + json.dumps(os.path.dirname(where)))
    else:
        host.ok(f'set {sid} IPC_TRANSPORT "tcp"')
        host.ok(f"set {sid} IPC_PORT_RANGE [{where}, {where}]")
    for o in options:
        host.ok(f"set {sid} {o}")
    return host.call(f"connect {sid} {address}")


def lpc(host, sid=2, type_=None, timeout=WAIT):
    pred = None if type_ is None else (lambda e: isinstance(e.get("data"), dict)
                                       and e["data"].get("type") == type_)
    return host.event("read", sid, timeout=timeout, pred=pred)["data"]


def write(host, value, sid=2):
    r = host.call(f"write {sid} " + json.dumps(value))
    assert r["ee"] in (1, EECALLBACK), r
    return r


def data(d, kind="data"):
    return {"message_type": kind, "data": d}


def check_wire(m, payload, kind="data"):
    assert set(m) == MESSAGE_KEYS, m
    assert m["event_name"] == "bus" and m["message_type"] == kind and m["data"] == payload, m
    iso = datetime.datetime.fromisoformat(m["timestamp_iso"])
    assert round(iso.timestamp() * 1000) == m["timestamp_ms"], m


TRANSPORTS = ["unix", "tcp"]


# ---- against a Python server -------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
def test_messages_both_ways(host, sockdir, buses, transport):
    bus = start(buses, transport, sockdir)
    assert client(host, transport, bus.where)["result"] == "ok"
    e = lpc(host, type_="connected")
    assert e["addr"] == (bus.where if transport == "unix" else f"127.0.0.1 {bus.where}"), e
    bus.wait_conn()
    host.event("write", 2, timeout=WAIT)  # connected: the write callback says it may write
    bus.send(message({"hello": "lpc", "n": [1, 2]}))
    m = lpc(host)
    assert m == message({"hello": "lpc", "n": [1, 2]}), m
    bus.send({"message_type": "control", "data": {}})  # a server that stamps nothing
    m = lpc(host)
    assert set(m) == MESSAGE_KEYS and m["message_type"] == "control" and m["event_name"] == "bus", m
    write(host, data({"from": "lpc"}))
    write(host, data({"n": 2}, "error"))
    check_wire(bus.message(), {"from": "lpc"})
    check_wire(bus.message(), {"n": 2}, "error")
    st = host.ok("status 2")["value"]
    assert st["connected"] == 1 and st["state"] == "DATA_XFER", st


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reconnects_after_the_server_restarts(host, sockdir, buses, transport):
    bus = start(buses, transport, sockdir)
    client(host, transport, bus.where, options=["IPC_RECONNECT_DELAY 50"])
    lpc(host, type_="connected")
    bus.wait_conn()
    bus.stop()
    e = lpc(host, type_="disconnected")
    assert e["retry_in_ms"] == 50 and e["reason"], e
    # Written while the bus is away: kept and sent after the reconnect, in order.
    write(host, data({"queued": 1}))
    write(host, data({"queued": 2}))
    assert host.ok("status 2")["value"]["queued"] == 2
    delays = [lpc(host, type_="connect_failed")["retry_in_ms"] for _ in range(2)]
    assert delays == [100, 200], delays  # doubling
    again = PyBus(bus.where)
    buses.append(again)
    lpc(host, type_="connected", timeout=WAIT + 2)
    again.wait_conn()
    assert again.message()["data"] == {"queued": 1}
    assert again.message()["data"] == {"queued": 2}
    again.send(message({"back": 1}))
    assert lpc(host)["data"] == {"back": 1}
    # The backoff starts over after a good connection.
    again.stop()
    assert lpc(host, type_="disconnected")["retry_in_ms"] == 50


def test_without_auto_reconnect_a_missing_unix_server_fails_in_connect(host, sockdir):
    path = os.path.join(sockdir, "bus.sock")
    r = client(host, "unix", path, options=["IPC_AUTO_RECONNECT 0"])
    assert r["result"] == "error" and r["ee"] == EECONNREFUSED, r
    assert path in r["error"] and "no IPC server" in r["error"], r
    r = host.call('write 2 {"data":{"lost":1}}')
    assert r["result"] == "error" and r["ee"] == EENOTCONN, r  # not queued for nobody
    # The socket stays usable: a later connect, once the server is there, works.
    bus = PyBus(path)
    try:
        host.ok('connect 2 ""')
        lpc(host, type_="connected")
        bus.wait_conn()
    finally:
        bus.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_without_auto_reconnect_a_lost_connection_closes(host, sockdir, buses, transport):
    bus = start(buses, transport, sockdir)
    client(host, transport, bus.where, options=["IPC_AUTO_RECONNECT 0"])
    lpc(host, type_="connected")
    bus.wait_conn()
    bus.stop()
    e = host.event("close", 2, timeout=WAIT)
    assert e.get("data"), e  # the reason
    host.call("count")
    assert not [x for x in host.events if x.get("event") == "read" and x["socket"] == 2], host.events
    r = host.call("status 2")
    assert r["result"] == "error", r  # the socket is gone


def test_without_auto_reconnect_a_refused_tcp_connect_closes(host):
    lo, socks = port_block(1)
    client(host, "tcp", lo, options=["IPC_AUTO_RECONNECT 0"])
    e = host.event("close", 2, timeout=WAIT)
    assert str(lo) in e.get("data", ""), e
    socks[0].close()


def test_tcp_scans_the_port_range_until_its_bus_answers(host, buses):
    """Address "" with a range: each port in turn until a server names this bus. On the way:
    a listener that says nothing (left after 2 s), another bus (left at its first message),
    and a refused port."""
    lo, socks = port_block(4)
    silent = socks[0]
    silent.listen(4)
    socks[1].close()
    other = PyBus(lo + 1, greet="other_bus")
    buses.append(other)
    socks[3].close()
    bus = PyBus(lo + 3, greet="bus")
    buses.append(bus)
    host.ok("create 2 IPC_CLIENT")
    host.ok('set 2 IPC_EVENT_NAME "bus"')
    host.ok('set 2 IPC_TRANSPORT "tcp"')
    host.ok(f"set 2 IPC_PORT_RANGE [{lo}, {lo + 3}]")
    host.ok('connect 2 ""')
    write(host, data({"early": 1}))  # before the bus is found: kept, then sent in order
    assert lpc(host, type_="connected", timeout=WAIT + 5)["addr"] == f"127.0.0.1 {lo + 3}"
    assert other.wait_conn() == 0 and bus.wait_conn() == 0
    # The welcome that proved it is the bus reaches LPC too.
    m = lpc(host)
    assert m["event_name"] == "bus" and m["data"] == {"type": "welcome"}, m
    write(host, data({"found": 1}))
    assert bus.message()["data"] == {"early": 1}
    assert bus.message()["data"] == {"found": 1}
    assert other.recv()[1] is EOFError  # the other bus was left at once, nothing sent to it
    for s in (silent, socks[2]):
        s.close()


def test_tcp_one_port_range_needs_no_welcome(host, buses):
    """A range of one port (or an explicit "host port") is the bus: no welcome needed."""
    bus = PyBus(free_port())
    buses.append(bus)
    host.ok("create 2 IPC_CLIENT")
    host.ok('set 2 IPC_EVENT_NAME "bus"')
    host.ok('set 2 IPC_TRANSPORT "tcp"')
    host.ok(f"set 2 IPC_PORT_RANGE [{bus.where}, {bus.where}]")
    host.ok('connect 2 ""')
    assert lpc(host, type_="connected")["addr"] == f"127.0.0.1 {bus.where}"


def test_tcp_host_name_is_resolved(host, buses):
    bus = PyBus(free_port())
    buses.append(bus)
    host.ok("create 2 IPC_CLIENT")
    host.ok('set 2 IPC_EVENT_NAME "bus"')
    host.ok('set 2 IPC_TRANSPORT "tcp"')
    host.ok('set 2 IPC_HOST "localhost"')  # every address it has is tried (::1, 127.0.0.1)
    host.ok(f"set 2 IPC_PORT_RANGE [{bus.where}, {bus.where}]")
    host.ok('connect 2 ""')
    assert lpc(host, type_="connected")["addr"] == f"127.0.0.1 {bus.where}"
    bus.wait_conn()
    write(host, data({"named": 1}))
    assert bus.message()["data"] == {"named": 1}


def test_tcp_range_with_nobody_answering_retries(host):
    lo, socks = port_block(3)
    host.ok("create 2 IPC_CLIENT")
    host.ok('set 2 IPC_EVENT_NAME "bus"')
    host.ok('set 2 IPC_TRANSPORT "tcp"')
    host.ok(f"set 2 IPC_PORT_RANGE [{lo}, {lo + 2}]")
    host.ok("set 2 IPC_RECONNECT_DELAY 50")
    host.ok('connect 2 ""')
    e = lpc(host, type_="connect_failed")
    assert f"{lo}..{lo + 2}" in e["reason"] and e["retry_in_ms"] == 50, e
    for s in socks:
        s.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("bad", ["c1", "int", "data_not_map"])
def test_malformed_message_from_the_server_drops_and_reconnects(host, sockdir, buses, transport, bad):
    bus = start(buses, transport, sockdir)
    client(host, transport, bus.where, options=["IPC_RECONNECT_DELAY 50"])
    lpc(host, type_="connected")
    first = bus.wait_conn()
    bus.send_raw({"c1": b"\xc1", "int": msgpack.packb(5),
                  "data_not_map": msgpack.packb(message(5))}[bad], first)
    e = lpc(host, type_="disconnected")
    assert "bad message" in e["reason"], e
    while True:  # the first connection ends (the client closed it)
        n, m = bus.recv()
        if n == first and m is EOFError:
            break
    lpc(host, type_="connected")
    second = bus.wait_conn()
    assert second != first
    bus.send(message({"fine": 1}), second)
    assert lpc(host)["data"] == {"fine": 1}
    host.call("count")
    assert not [x for x in host.events if x.get("event") == "read" and x["socket"] == 2
                and "type" not in x["data"]], host.events  # nothing of the bad message reached LPC


def test_malformed_message_without_auto_reconnect_closes(host, sockdir, buses):
    bus = start(buses, "unix", sockdir)
    client(host, "unix", bus.where, options=["IPC_AUTO_RECONNECT 0"])
    lpc(host, type_="connected")
    bus.wait_conn()
    bus.send_raw(b"\xc1")
    e = host.event("close", 2, timeout=WAIT)
    assert "bad message" in e.get("data", ""), e


def test_connect_address_forms(host, sockdir, buses):
    bus = start(buses, "unix", sockdir)
    host.ok("create 2 IPC_CLIENT")
    host.ok('set 2 IPC_EVENT_NAME "bus"')
    host.ok(f"connect 2 {bus.where}")  # an absolute path overrides the options
    lpc(host, type_="connected")
    bus.wait_conn()
    tcp = start(buses, "tcp", sockdir)
    host.ok("create 3 IPC_CLIENT")
    host.ok('set 3 IPC_EVENT_NAME "bus"')
    host.ok(f"connect 3 127.0.0.1 {tcp.where}")
    lpc(host, 3, type_="connected")
    tcp.wait_conn()
    host.ok("create 4 IPC_CLIENT")
    r = host.call('connect 4 ""')
    assert r["result"] == "error" and "IPC_EVENT_NAME" in r["error"], r
    host.ok('set 4 IPC_EVENT_NAME "bus"')
    for bad in ["relative/path", "host", "127.0.0.1 0", "127.0.0.1 99999"]:
        r = host.call(f"connect 4 {bad}")
        assert r["result"] == "error", (bad, r)
    r = host.call('write 4 {"data":{}}')
    assert r["result"] == "error" and "connect" in r["error"], r
    r = host.call('write 2 {"data":{}} client-1')
    assert r["result"] == "error" and "target" in r["error"], r
    r = host.call(f"connect 2 {bus.where}")
    assert r["result"] == "error", r  # already connected


def raw_listener(sockdir, backlog=1):
    """A plain listening unix socket at <sockdir>/bus.sock: a server that reads only
    when the test does. Returns (path, listener)."""
    path = os.path.join(sockdir, "bus.sock")
    lst = socket.socket(socket.AF_UNIX)
    lst.bind(path)
    lst.listen(backlog)
    return path, lst


def test_max_buffered_would_block_then_the_write_callback(host, sockdir):
    path, lst = raw_listener(sockdir)
    client(host, "unix", path, options=["SO_MAX_BUFFERED 4096"])
    lpc(host, type_="connected")
    conn, _ = lst.accept()  # never reads until told
    host.event("write", 2, timeout=WAIT)
    pad = "w" * 8192
    for i in range(200):
        r = host.call("write 2 " + json.dumps(data({"i": i, "pad": pad})))
        if r["ee"] == EEWOULDBLOCK:
            break
        assert r["ee"] in (1, EECALLBACK), r
    else:
        raise AssertionError("socket_write never said EEWOULDBLOCK")
    assert "SO_MAX_BUFFERED" in r["error"], r
    sent = i  # messages 0..i-1 were taken; i was refused
    conn.settimeout(WAIT)
    u = msgpack.Unpacker(raw=False)
    got = []
    while len(got) < sent:
        d = conn.recv(1 << 16)
        assert d, "EOF"
        u.feed(d)
        got += [m["data"]["i"] for m in u]
    assert got == list(range(sent))
    host.event("write", 2, timeout=WAIT)  # drained: LPC may write again
    write(host, data({"i": sent, "pad": pad}))
    while len(got) <= sent:
        u.feed(conn.recv(1 << 16))
        got += [m["data"]["i"] for m in u]
    assert got == list(range(sent + 1))
    conn.close()
    lst.close()


def _fill(host, pad, sid=2):
    """Writes until some output waits in unisock (EECALLBACK); the number written."""
    for i in range(200):
        r = host.call(f"write {sid} " + json.dumps(data({"i": i, "pad": pad})))
        assert r["ee"] in (1, EECALLBACK), r
        if r["ee"] == EECALLBACK:
            return i + 1
    raise AssertionError("the queue never filled")


@pytest.mark.parametrize("reconnect", [1, 0])
def test_send_timeout_drops_a_connection_whose_server_never_reads(host, sockdir, reconnect):
    """A server that stops reading: after SO_SEND_TIMEOUT without a byte written the
    connection is dropped as too slow, then reconnects (or closes, with the reason)."""
    path, lst = raw_listener(sockdir, 4)
    client(host, "unix", path, options=["SO_SEND_TIMEOUT 1000", "IPC_RECONNECT_DELAY 50",
                                        f"IPC_AUTO_RECONNECT {reconnect}"])
    lpc(host, type_="connected")
    conn, _ = lst.accept()  # never reads
    t0 = time.monotonic()
    _fill(host, "w" * 8192)
    if reconnect:
        e = lpc(host, type_="disconnected", timeout=WAIT)
        reason = e["reason"]
    else:
        reason = host.event("close", 2, timeout=WAIT)["data"]
    elapsed = time.monotonic() - t0
    assert reason.startswith("too slow: no write progress for 1000 ms (SO_SEND_TIMEOUT)"), reason
    assert "bytes waiting" in reason, reason
    assert elapsed >= 1.0, elapsed
    conn.settimeout(WAIT)
    while conn.recv(1 << 16):  # what was written, then EOF: the connection is gone
        pass
    if reconnect:
        again, _ = lst.accept()
        lpc(host, type_="connected")
        again.close()
    else:
        assert host.call("status 2")["result"] == "error"  # the socket is gone
    conn.close()
    lst.close()


def test_a_server_that_reads_slowly_is_not_dropped(host, sockdir):
    """SO_SEND_TIMEOUT counts time without progress, not the time output waits: a server
    that reads a little at a time keeps the connection, although output waits the whole
    time, for several SO_SEND_TIMEOUTs. The deadline is wide (the test's own pauses, on a
    loaded machine, must stay below it); output waits for three of them."""
    timeout_ms = 4000 if WRAPPED else 1500
    path, lst = raw_listener(sockdir)
    client(host, "unix", path, options=[f"SO_SEND_TIMEOUT {timeout_ms}"])
    lpc(host, type_="connected")
    conn, _ = lst.accept()
    pad = "r" * 65536
    sent = _fill(host, pad)
    for i in range(sent, sent + 10):  # 640 kB behind: output waits in unisock throughout
        write(host, data({"i": i, "pad": pad}))
    sent += 10
    conn.settimeout(WAIT)
    u = msgpack.Unpacker(raw=False, max_buffer_size=64 << 20)
    got = []

    def read_some():
        d = conn.recv(65536)
        assert d, f"EOF after {len(got)} messages"
        u.feed(d)
        got.extend(m["data"]["i"] for m in u)

    t0 = time.monotonic()
    while time.monotonic() - t0 < 3 * timeout_ms / 1000:  # one message in, one out
        write(host, data({"i": sent, "pad": pad}))
        sent += 1
        read_some()
        host.ok("run 50")  # the reader's pace: about 64 kB per 50 ms
    while len(got) < sent:
        read_some()
    assert got == list(range(sent))
    host.call("count")
    assert not [e for e in host.events if e.get("socket") == 2 and e.get("event") in ("read", "close")
                and (e.get("event") == "close" or e["data"].get("type") == "disconnected")], host.events
    conn.close()
    lst.close()


def test_client_timestamps_in_its_zone(host, sockdir, buses):
    bus = start(buses, "unix", sockdir)
    client(host, "unix", bus.where, options=['IPC_TIMEZONE "Asia/Tokyo"'])
    lpc(host, type_="connected")
    bus.wait_conn()
    write(host, data({}))
    m = bus.message()
    assert m["timestamp_iso"].endswith("+09:00"), m
    check_wire(m, {})
    host.ok('set 2 IPC_TIMEZONE "Asia/Kolkata"')  # live
    write(host, data({}))
    assert bus.message()["timestamp_iso"].endswith("+05:30")


def test_close_frees_everything(host, sockdir, buses):
    base_fds = host.fds()
    bus = start(buses, "unix", sockdir)
    client(host, "unix", bus.where)
    lpc(host, type_="connected")
    bus.wait_conn()
    write(host, data({"last": 1}))
    host.ok("close 2")
    assert bus.message()["data"] == {"last": 1}
    n, m = bus.recv()
    assert m is EOFError
    c = host.call("count")
    assert c["open"] == 0, c
    assert host.fds() == base_fds


def test_close_while_waiting_to_reconnect(host, sockdir):
    base_fds = host.fds()
    path = os.path.join(sockdir, "bus.sock")
    client(host, "unix", path, options=["IPC_RECONNECT_DELAY 50"])
    lpc(host, type_="connect_failed")
    host.ok("close 2")
    c = host.call("count")
    assert c["open"] == 0 and c["flushing"] == 0, c
    assert host.fds() == base_fds


# ---- an IPC_SERVER and an IPC_CLIENT in one harness ----------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
def test_server_and_client_in_one_harness(host, sockdir, transport):
    host.ok("create 1 IPC_SERVER")
    host.ok('set 1 IPC_EVENT_NAME "bus"')
    if transport == "unix":
        host.ok("set 1 IPC_SOCKET_DIR " + json.dumps(sockdir))
    else:
        p = free_port()
        host.ok('set 1 IPC_TRANSPORT "tcp"')
        host.ok(f"set 1 IPC_PORT_RANGE [{p}, {p}]")
    host.ok("bind 1 0")
    host.ok("listen 1")
    host.ok("create 2 IPC_CLIENT")
    host.ok('set 2 IPC_EVENT_NAME "bus"')
    if transport == "unix":
        host.ok("set 2 IPC_SOCKET_DIR " + json.dumps(sockdir))
    else:
        host.ok('set 2 IPC_TRANSPORT "tcp"')
        rng = host.ok("get 1 IPC_PORT_RANGE")["value"]
        host.ok(f"set 2 IPC_PORT_RANGE {json.dumps(rng)}")
    host.ok('connect 2 ""')
    lpc(host, 2, type_="connected")
    cid = lpc(host, 1, type_="client_connected")["client_id"]
    w = lpc(host, 2)  # the server's welcome names the bus and the client
    assert w["message_type"] == "control" and w["data"] == {"type": "welcome", "client_id": cid}, w
    write(host, data({"down": 1}), sid=1)
    m = lpc(host, 2)
    assert set(m) == MESSAGE_KEYS and m["data"] == {"down": 1} and m["event_name"] == "bus", m
    write(host, data({"up": 1}, "control"), sid=2)
    m = lpc(host, 1)
    assert m["data"] == {"up": 1} and m["message_type"] == "control" and m["client_id"] == cid, m
    assert MESSAGE_KEYS <= set(m), m
    # Unicast to the harness's own client by the id the server gave it.
    r = host.call(f'write 1 {json.dumps(data({"only": 1}))} {cid}')
    assert r["ee"] in (1, EECALLBACK), r
    assert lpc(host, 2)["data"] == {"only": 1}
    # The server goes away: the client notices and would reconnect; closing it ends that.
    host.ok("close 1")
    lpc(host, 2, type_="disconnected")
    host.ok("close 2")
