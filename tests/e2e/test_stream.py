"""STREAM / STREAM_BINARY through the harness against real peers (Python sockets, nc)."""
import json
import os
import selectors
import socket
import ssl
import subprocess
import threading
import time

import pytest

import tls_material
from host import oldest_stalled_were_closed, wait_count

# Runs children, watches host paths, makes socket files or reads TLS files: the
# admin's policy must allow it (docs/SECURITY.md).
pytestmark = pytest.mark.policy("open")

WRAPPED = bool(os.environ.get("UNISOCK_E2E_WRAP"))  # under valgrind everything is ~20x slower


def connect_to_python(host, sid=1, target="127.0.0.1", options=(), rcvbuf=None):
    """STREAM socket `sid` connected to a Python listener, once its write
    callback fired. Returns (listener, accepted connection, port)."""
    srv = socket.socket()
    if rcvbuf:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    host.ok(f"create {sid} STREAM")
    for line in options:
        host.ok(line.format(id=sid))
    host.ok(f"connect {sid} {target} {port}")
    conn, _ = srv.accept()
    host.event("write", sid)  # the write callback says the connection is ready
    return srv, conn, port


def read_in_background(conn, size, timeout):
    """Reads `size` bytes (or until EOF) from `conn` on a thread: (the thread, the pieces)."""
    got = []

    def reader():
        conn.settimeout(timeout)
        total = 0
        while total < size:
            d = conn.recv(1 << 16)
            if not d:
                break
            got.append(d)
            total += len(d)

    t = threading.Thread(target=reader)
    t.start()
    return t, got


def echo_server(host, sid=1, mode="STREAM"):
    port = host.listen_port(sid, mode)
    host.ok(f"autoaccept {sid}")
    host.ok("autoecho all")
    return port


def test_echo_with_python_client(host):
    port = echo_server(host)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall("héllo wörld\n".encode())
        got = b""
        while len(got) < len("héllo wörld\n".encode()):
            got += c.recv(100)
    assert got.decode() == "héllo wörld\n"
    ev = host.event("read")
    assert ev["data"] == "héllo wörld\n"  # a string, whole characters


def test_echo_with_nc(host):
    port = echo_server(host)
    out = subprocess.run(["nc", "-W", "1", "127.0.0.1", str(port)], input=b"ping from nc",
                         capture_output=True, timeout=10)
    assert out.stdout == b"ping from nc"


def test_binary_mode_delivers_buffers(host):
    port = echo_server(host, mode="STREAM_BINARY")
    payload = bytes(range(256))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += c.recv(4096)
    assert got == payload
    assert host.read_data(host.accepted(), len(payload)) == payload


def test_hundred_concurrent_connections(host):
    port = echo_server(host)
    host.ok("autoecho all quiet")
    sel = selectors.DefaultSelector()
    want = {}
    got = {}
    for i in range(100):
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        msg = f"message {i} ".encode() * 50
        c.sendall(msg)
        c.setblocking(False)
        want[c] = msg
        got[c] = b""
        sel.register(c, selectors.EVENT_READ)
    deadline = time.monotonic() + 20
    while any(len(got[c]) < len(want[c]) for c in want) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            data = key.fileobj.recv(65536)
            got[key.fileobj] += data
    for c in want:
        assert got[c] == want[c]
    assert host.call("count")["open"] == 101  # the listener and 100 accepted connections
    for c in want:
        c.close()


def test_client_connects_to_python_server(host):
    srv, conn, port = connect_to_python(host)
    host.ok('write 1 "hi there"')
    conn.settimeout(5)
    assert conn.recv(100) == b"hi there"
    conn.sendall(b"yo")
    assert host.read_data(1, 2) == "yo"
    status = host.ok("status 1")["value"]
    assert status["state"] == "DATA_XFER" and status["remote"] == f"127.0.0.1 {port}"
    conn.close()
    host.event("close", 1)  # remote close reaches close_cb
    assert host.call("write 1 \"x\"")["ee"] == -6  # EEBADF: the socket is gone
    srv.close()


def test_connect_by_host_name_is_resolved(host):
    srv, conn, _ = connect_to_python(host, target="localhost")
    conn.close()
    srv.close()


def test_connect_refused_reports_close_with_reason(host):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    host.ok("create 1 STREAM")
    host.ok(f"connect 1 127.0.0.1 {port}")
    ev = host.event("close", 1)
    assert "refused" in ev["data"].lower()


def test_partial_write_gives_eecallback_then_write_callback(host):
    srv, conn, _ = connect_to_python(host, options=["set {id} SO_SNDBUF 4096"], rcvbuf=4096)
    big = "x" * 2_000_000
    r = host.call(f'write 1 "{big}"')
    assert r["ee"] == -29, r  # EECALLBACK: accepted, not all written
    assert host.call('write 1 "more"')["ee"] == -22  # EEALREADY while blocked
    t, received = read_in_background(conn, len(big), 10)
    host.event("write", 1, timeout=20)  # drained: the write callback fires
    t.join(20)
    assert len(b"".join(received)) == len(big)
    assert host.ok('write 1 "after"')["ee"] == 1
    conn.close()
    srv.close()


def test_remote_close_fires_close_callback_on_accepted_socket(host):
    port = host.listen_port(1)
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    host.event("listen", 1)
    host.ok("accept 1 2")
    host.event("close", 2)


def test_socket_close_flushes_and_sends_no_callback(host):
    srv, conn, _ = connect_to_python(host)
    host.ok('write 1 "last words"')
    host.ok("close 1")
    conn.settimeout(5)
    data = b""
    while True:
        d = conn.recv(100)
        if not d:
            break
        data += d
    assert data == b"last words"
    host.ok("run 50")
    assert not [e for e in host.events if e.get("event") == "close"]
    conn.close()
    srv.close()


def test_max_connections_refuses_beyond_limit(host):
    port = host.listen_port(1, extra=["set {id} SO_MAX_CONNECTIONS 2"])
    host.ok("autoaccept 1")
    conns = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
    host.accepted()
    host.accepted()
    extra = socket.create_connection(("127.0.0.1", port), timeout=5)
    extra.settimeout(5)
    assert extra.recv(10) == b""  # closed at once by unisock
    for c in conns + [extra]:
        c.close()


@pytest.mark.parametrize("bad", ["garbage", "127.0.0.1", "1.2.3.4 99999"])
def test_bad_connect_address(host, bad):
    host.ok("create 1 STREAM")
    assert host.call(f"connect 1 {bad}")["ee"] == -21  # EEBADADDR


def test_state_errors_match_upstream(host):
    host.ok("create 1 STREAM")
    assert host.call("listen 1")["ee"] == -13  # EENOADDR
    assert host.call('write 1 "x"')["ee"] == -25  # EENOTCONN
    assert host.call("accept 1 2")["ee"] == -16  # EENOTLISTN
    host.ok("bind 1 0 127.0.0.1")
    assert host.call("bind 1 0 127.0.0.1")["ee"] == -8  # EEISBOUND
    host.ok("listen 1")
    assert host.call("connect 1 127.0.0.1 9")["ee"] == -20  # EEISLISTEN
    assert host.call("accept 1 2")["ee"] == -17  # EEWOULDBLOCK: nobody waiting
    assert host.call("close 7")["ee"] == -6  # EEBADF
    assert host.call("create 3 8")["ee"] == -12  # EEMODENOTSUPP: 7-9 unused
    assert host.call("create 4 REST_SERVER")["ee"] == -12  # not built yet


def test_release_and_acquire(host):
    host.ok("create 1 STREAM")
    host.ok("release 1")
    assert host.call("release 1")["ee"] == -30  # EESOCKRLSD
    host.ok("acquire 1")
    assert host.call("acquire 1")["ee"] == -31  # EESOCKNOTRLSD


def test_no_fd_left_after_closing_everything(host):
    before = host.fds()
    port = echo_server(host)
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(10)]
    ids = [host.accepted() for _ in clients]
    host.ok("create 2 STREAM")
    host.ok(f"connect 2 127.0.0.1 {port}")
    host.event("write", 2)
    host.ok("create 3 DATAGRAM")
    host.ok("bind 3 0 127.0.0.1")
    for i in ids + [1, 2, 3]:
        host.ok(f"close {i}")
    for c in clients:
        c.close()
    # The accepted end of socket 2 closes when its peer goes.
    host.event("close", pred=lambda e: e["socket"] >= 1000)
    assert host.call("count") == {"cmd": "count", "open": 0, "flushing": 0}
    assert host.fds() == before


def test_idle_timeout_closes_quiet_connections(host):
    port = host.listen_port(1, extra=["set {id} SO_IDLE_TIMEOUT 300"])
    host.ok("autoaccept 1")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        sid = host.accepted()
        ev = host.event("close", sid, timeout=5)
        assert ev["data"] == "idle timeout"
        c.settimeout(5)
        assert c.recv(10) == b""  # the peer sees the close


def test_statistics_count_traffic(host):
    port = echo_server(host)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"12345")
        c.settimeout(5)
        got = b""
        while len(got) < 5:
            got += c.recv(10)
        sid = host.accepted()
        stats = host.ok(f"get {sid} SO_STATISTICS")["value"]
        assert stats["bytes_in"] == 5 and stats["bytes_out"] == 5
        assert stats["messages_in"] == 1 and stats["messages_out"] == 1
        assert stats["state"] == "DATA_XFER" and stats["connected_at"] > 0
        assert host.call(f"set {sid} SO_STATISTICS 1")["code"] == 7103  # read-only


def test_accepted_socket_inherits_a_copy_of_listener_options(host):
    port = host.listen_port(1, extra=["set {id} SO_NODELAY 0", "set {id} SO_KEEPALIVE 1"])
    host.ok("autoaccept 1")
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        sid = host.accepted()
        assert host.ok(f"get {sid} SO_NODELAY")["value"] == 0
        assert host.ok(f"get {sid} SO_KEEPALIVE")["value"] == 1
        host.ok("set 1 SO_NODELAY 1")  # later listener changes do not reach it
        assert host.ok(f"get {sid} SO_NODELAY")["value"] == 0


def test_write_beyond_max_buffered_writes_nothing(host):
    srv, conn, _ = connect_to_python(host, options=["set {id} SO_MAX_BUFFERED 4096"])
    r = host.call('write 1 "' + "y" * 5000 + '"')
    assert r["ee"] == -17 and "SO_MAX_BUFFERED" in r["error"]  # EEWOULDBLOCK
    host.ok('write 1 "fits"')
    conn.settimeout(5)
    assert conn.recv(10) == b"fits"
    conn.close()
    srv.close()



# ---- output that makes no progress: SO_SEND_TIMEOUT and the listener's total (issue 12) ----

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return tls_material.make(tmp_path_factory.mktemp("pki"))


def stalled_peer(port, tls=False):
    """A client that connects (and does the TLS handshake) and then never reads."""
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.settimeout(10)
    c.connect(("127.0.0.1", port))
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = ctx.wrap_socket(c, server_hostname="localhost")
    return c


@pytest.mark.parametrize("mode", ["STREAM", "STREAM_TLS"])
def test_accepted_stream_whose_peer_does_not_read_is_closed_after_send_timeout(host, pki, mode):
    extra = ["set {id} SO_SEND_TIMEOUT 1000", "set {id} SO_SNDBUF 4096"]
    if mode == "STREAM_TLS":
        extra += ["set {id} SO_TLS_CERT " + json.dumps(pki["cert"]),
                  "set {id} SO_TLS_KEY " + json.dumps(pki["key"])]
    port = host.listen_port(1, mode, extra=extra)
    base_fds, base_count = host.fds(), host.call("count")["open"]
    host.ok("autoaccept 1")
    peer = stalled_peer(port, tls=mode == "STREAM_TLS")
    sid = host.accepted()
    if mode == "STREAM_TLS":
        host.event("write", sid)  # the handshake is done
    assert host.call(f'write {sid} "{"x" * 1_000_000}"')["ee"] == -29  # EECALLBACK: it waits
    total = host.ok("status 1")["value"].get("queued")  # the listener's total
    started = time.monotonic()
    ev = host.event("close", sid, timeout=30 if WRAPPED else 10)
    assert ev["data"].startswith("too slow: no write progress for 1000 ms") and \
        "SO_SEND_TIMEOUT" in ev["data"], ev
    assert total > 900_000, total
    assert time.monotonic() - started < (30 if WRAPPED else 10)
    assert host.ok("status 1")["value"]["queued"] == 0  # the queue is gone with the connection
    wait_count(host, base_count)
    assert host.fds() == base_fds
    peer.close()


def test_stream_client_whose_server_does_not_read_is_closed_after_send_timeout(host):
    before = host.fds()
    srv, conn, _ = connect_to_python(host, options=["set {id} SO_SNDBUF 4096",
                                                    "set {id} SO_SEND_TIMEOUT 1000"], rcvbuf=4096)
    assert host.call(f'write 1 "{"c" * 1_000_000}"')["ee"] == -29  # EECALLBACK
    ev = host.event("close", 1, timeout=30 if WRAPPED else 10)
    assert ev["data"].startswith("too slow: no write progress for 1000 ms") and \
        "bytes queued" in ev["data"] and "SO_SEND_TIMEOUT" in ev["data"], ev
    assert host.call("count") == {"cmd": "count", "open": 0, "flushing": 0}
    conn.close()
    srv.close()
    assert host.fds() == before


def test_send_timeout_0_keeps_upstream_behaviour(host):
    # Upstream never closed a socket whose peer stopped reading: with SO_SEND_TIMEOUT 0 the
    # output waits as long as it takes, and goes out once the peer reads.
    srv, conn, _ = connect_to_python(host, options=["set {id} SO_SNDBUF 4096",
                                                    "set {id} SO_SEND_TIMEOUT 0"], rcvbuf=4096)
    big = "u" * 1_000_000
    assert host.call(f'write 1 "{big}"')["ee"] == -29
    host.ok("run 2500")  # past the 1 s the other tests use: a window to show nothing happens
    assert not [e for e in host.events if e.get("event") == "close"], host.events
    assert host.ok("status 1")["value"]["queued"] > 900_000
    t, got = read_in_background(conn, len(big), 20)
    host.event("write", 1, timeout=30)  # drained: the write callback, as upstream
    t.join(30)
    assert b"".join(got) == big.encode()
    conn.close()
    srv.close()


def test_send_timeout_set_on_a_live_connection_applies_at_once(host):
    srv, conn, _ = connect_to_python(host, options=["set {id} SO_SNDBUF 4096",
                                                    "set {id} SO_SEND_TIMEOUT 300000"], rcvbuf=4096)
    assert host.call(f'write 1 "{"l" * 1_000_000}"')["ee"] == -29
    host.ok("set 1 SO_SEND_TIMEOUT 1000")  # sooner than the timer armed for 300 s
    ev = host.event("close", 1, timeout=30 if WRAPPED else 10)
    assert "no write progress for 1000 ms" in ev["data"], ev
    conn.close()
    srv.close()


def test_listener_total_closes_the_longest_stalled_stream_first_while_a_reader_is_served(host):
    # SO_MAX_BUFFERED 32768: the connections of the listener may queue 16 x 32 KiB = 512 KiB
    # together. Stalled peers get 32 KiB each (most of it stays queued); when a write would
    # pass the total, the connections stalled longest are closed, oldest first, while a peer
    # that reads keeps being served. SO_SEND_TIMEOUT 0: no deadline interferes.
    limit = 16 * 32768
    port = host.listen_port(1, extra=["set {id} SO_MAX_BUFFERED 32768", "set {id} SO_SNDBUF 4096",
                                      "set {id} SO_SEND_TIMEOUT 0"])
    host.ok("autoaccept 1")
    reader = socket.create_connection(("127.0.0.1", port), timeout=10)
    rid = host.accepted()
    peers, stalled, totals = [], [], []
    for i in range(30):
        peers.append(stalled_peer(port))
        sid = host.accepted()
        r = host.call(f'write {sid} "{"s" * 32768}"')
        assert r["ee"] == -29, r  # EECALLBACK: it waits
        stalled.append(sid)
        totals.append(host.ok("status 1")["value"].get("queued"))
        piece = f"{i:04d}" * 8192
        r = host.call(f'write {rid} "{piece}"')
        assert r["ee"] in (1, -29), r
        got = b""
        while len(got) < len(piece):
            got += reader.recv(65536)
        assert got == piece.encode()
        if r["ee"] == -29:
            host.event("write", rid)  # drained
        totals.append(host.ok("status 1")["value"].get("queued"))
    oldest_stalled_were_closed(host, stalled, rid, totals, limit)
    reader.close()
    for p in peers:
        p.close()
