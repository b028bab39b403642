"""WEBSOCKET_SERVER under abuse: oversize messages and frames, a compression bomb, bad UTF-8,
unmasked and malformed frames, a reader that never reads, a pong that never comes, 10 000 idle
connections, and handshake garbage. The frames are written out by hand (wsutil.RawWS). After
each case the same server still serves a well-behaved client.

Codes and reasons: callbacks.md "WebSocket (16–19)" (1009 over WS_MAX_MESSAGE_SIZE or
WS_FRAME_SIZE_LIMIT, 1007 bad UTF-8, 1002 protocol errors, 1011 no pong within WS_PONG_TIMEOUT;
the close mapping names the limit, then close_cb). Every wait is bounded.
"""
import json
import os
import resource
import struct
import time

import pytest

from host import Host, wait_count
from wsutil import (EECALLBACK, EEWOULDBLOCK, RawWS, closed_with, deflate, message, opened, rss_kb,
                    unbuf, write, ws_server)

pytestmark = pytest.mark.policy("open")
WRAPPED = bool(os.environ.get("UNISOCK_E2E_WRAP"))


def still_serves(host, port, text="a good client after the abuse"):
    """A well-behaved client is served: handshake, open, a text message echoed by LPC, close."""
    c = RawWS(port)
    c.handshake()
    sid, _ = opened(host)
    c.text(text)
    _, m = message(host, sid)
    assert m == {"type": "text", "data": text}, m
    write(host, sid, m["data"])
    op, data, _, _ = c.recv_message()
    assert (op, data) == (1, text.encode())
    c.close(1000, "done")
    assert c.recv_close()[0] is not None
    closed_with(host, sid)
    c.shutdown()


def unisock_closes(host, c, sid, code, names=None):
    """The client gets a close frame with `code`, the connection ends, and LPC gets the close
    mapping with the same code (its reason naming `names` when given) and then close_cb."""
    got, reason = c.recv_close()
    assert got == code, (got, reason)
    try:
        c.close(got)  # our half of the closing handshake
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may have closed already (a peer still sending when it failed it)
    assert c.at_eof()
    m, ev = closed_with(host, sid)
    assert m["code"] == code, m
    if names:
        assert names in m["reason"], m
    c.shutdown()
    return m, ev


# ---- sizes ----------------------------------------------------------------------------------

def test_oversize_message_in_one_frame_and_in_fragments(host):
    port = ws_server(host)  # WS_MAX_MESSAGE_SIZE 65536 by default
    c = RawWS(port)
    c.handshake()
    sid, _ = opened(host)
    c.binary(b"\x01" * 65536)
    assert len(unbuf(message(host, sid)[1]["data"])) == 65536
    c.binary(b"\x01" * 65537)
    unisock_closes(host, c, sid, 1009, "WS_MAX_MESSAGE_SIZE")

    c = RawWS(port)
    c.handshake()
    sid, _ = opened(host)
    for _ in range(16):  # 16 x 4096 = 65536 so far, then one byte more
        c.binary(b"\x02" * 4096, fin=False) if _ == 0 else c.send_frame(0, b"\x02" * 4096, fin=False)
    c.send_frame(0, b"\x02", fin=True)
    unisock_closes(host, c, sid, 1009, "WS_MAX_MESSAGE_SIZE")
    still_serves(host, port)


def test_declared_huge_frame_is_refused_before_its_payload(host):
    port = ws_server(host, options=["WS_FRAME_SIZE_LIMIT 1024"])
    c = RawWS(port)
    c.handshake()
    sid, _ = opened(host)
    # a header announcing 2^40 bytes, then nothing: the close must not wait for the payload
    c.send(struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 40) + os.urandom(4))
    unisock_closes(host, c, sid, 1009, "WS_FRAME_SIZE_LIMIT")

    c = RawWS(port)
    c.handshake()
    sid, _ = opened(host)
    c.send(struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 62) + os.urandom(4))  # and near 2^63
    unisock_closes(host, c, sid, 1009)
    still_serves(host, port)


def test_compression_bomb_is_stopped_at_the_limit(host):
    port = ws_server(host, options=["WS_COMPRESSION 1"])  # WS_MAX_MESSAGE_SIZE 65536
    base_rss = rss_kb(host.proc.pid)
    c = RawWS(port)
    c.handshake(extensions="permessage-deflate")
    assert c.headers.get("sec-websocket-extensions", "").startswith("permessage-deflate"), c.headers
    sid, _ = opened(host)
    exact = deflate(b"\x00" * 65536)  # exactly the limit after inflating: accepted
    c.binary(exact, rsv=4)
    assert unbuf(message(host, sid)[1]["data"]) == bytes(65536)
    bomb = deflate(b"\x00" * (200 << 20))  # 200 MiB of zeros in ~200 KiB
    assert len(bomb) < 300_000
    try:
        c.binary(bomb, rsv=4)
    except (BrokenPipeError, ConnectionResetError):
        pass  # failed before all of it was sent: the close frame is read below
    unisock_closes(host, c, sid, 1009, "WS_MAX_MESSAGE_SIZE")
    grew = rss_kb(host.proc.pid) - base_rss
    assert grew < 32 * 1024, f"the harness grew by {grew} KiB inflating a bomb"

    # the same bomb spread over fragments, each small
    c = RawWS(port)
    c.handshake(extensions="permessage-deflate")
    sid, _ = opened(host)
    piece = 16384
    c.binary(bomb[:piece], rsv=4, fin=False)
    off = piece
    while off < len(bomb):
        nxt = bomb[off:off + piece]
        off += piece
        try:
            c.send_frame(0, nxt, fin=off >= len(bomb))
        except (BrokenPipeError, ConnectionResetError):
            break  # closed already: fine, the close frame was sent before
    unisock_closes(host, c, sid, 1009, "WS_MAX_MESSAGE_SIZE")
    assert rss_kb(host.proc.pid) - base_rss < 32 * 1024
    still_serves(host, port)


# ---- malformed frames -----------------------------------------------------------------------

def _bad_utf8(c):
    c.text(b"valid then \xc3\x28 invalid")


def _bad_utf8_across_fragments(c):
    c.text(b"ends in half a char \xe2\x82", fin=False)
    c.send_frame(0, b"", fin=True)


def _overlong_utf8(c):
    c.text(b"\xc0\xaf")


def _surrogate_utf8(c):
    c.text(b"\xed\xa0\x80")


def _unmasked(c):
    c.send_frame(1, b"not masked", mask=False)


def _reserved_opcode(c):
    c.send_frame(3, b"opcode 3")


def _reserved_control_opcode(c):
    c.send_frame(0xB, b"opcode 11")


def _rsv1_without_extension(c):
    c.send_frame(1, b"rsv1 set", rsv=4)


def _rsv2(c):
    c.send_frame(1, b"rsv2 set", rsv=2)


def _fragmented_ping(c):
    c.send_frame(9, b"half a ping", fin=False)


def _long_ping(c):
    c.send_frame(9, b"p" * 126)


def _continuation_without_start(c):
    c.send_frame(0, b"lost continuation")


def _new_message_inside_a_fragmented_one(c):
    c.text(b"first part", fin=False)
    c.text(b"a new message before the first ended")


def _close_with_one_byte(c):
    c.send_frame(8, b"\x03")


def _close_with_invalid_code(c):
    c.send_frame(8, struct.pack("!H", 1005) + b"reserved code")


def _close_reason_bad_utf8(c):
    c.send_frame(8, struct.pack("!H", 1000) + b"\xff\xfe")


@pytest.mark.parametrize("send,code", [
    (_bad_utf8, 1007), (_bad_utf8_across_fragments, 1007), (_overlong_utf8, 1007),
    (_surrogate_utf8, 1007), (_close_reason_bad_utf8, (1007, 1002)),
    (_unmasked, 1002), (_reserved_opcode, 1002), (_reserved_control_opcode, 1002),
    (_rsv1_without_extension, 1002), (_rsv2, 1002), (_fragmented_ping, 1002), (_long_ping, 1002),
    (_continuation_without_start, 1002), (_new_message_inside_a_fragmented_one, 1002),
    (_close_with_one_byte, 1002), (_close_with_invalid_code, 1002),
], ids=lambda v: v.__name__.strip("_") if callable(v) else "-".join(map(str, v if isinstance(v, tuple) else (v,))))
def test_malformed_frames_close_with_the_rfc_code(host, send, code):
    port = ws_server(host)
    c = RawWS(port)
    c.handshake()
    sid, _ = opened(host)
    send(c)
    codes = code if isinstance(code, tuple) else (code,)
    got, reason = c.recv_close()
    assert got in codes, (got, reason)
    _, m = message(host, sid)
    assert m["type"] == "close" and m["code"] == got, m
    host.event("close", sid)
    c.shutdown()
    still_serves(host, port)


# ---- peers that do not keep up --------------------------------------------------------------

def test_reader_that_never_reads_is_closed_by_the_send_deadline(host):
    port = ws_server(host, options=["SO_SEND_TIMEOUT 1000", "SO_SNDBUF 4096",
                                    "SO_MAX_BUFFERED 262144"])
    c = RawWS(port, rcvbuf=4096)
    c.handshake()
    sid, _ = opened(host)
    results = []
    piece = "w" * 16384
    for _ in range(200):
        r = host.call(f"write {sid} " + json.dumps(piece))
        results.append(r["ee"])
        if r["ee"] == EEWOULDBLOCK:
            assert "SO_MAX_BUFFERED" in r["error"], r
            break
        assert r["ee"] in (1, EECALLBACK), r
    assert EECALLBACK in results and results[-1] == EEWOULDBLOCK, results
    started = time.monotonic()
    ev = host.event("close", sid, timeout=15)
    assert ev["data"].startswith("too slow: no write progress for 1000 ms") and \
        "SO_SEND_TIMEOUT" in ev["data"], ev
    assert time.monotonic() - started < (15 if WRAPPED else 6)
    c.shutdown()
    still_serves(host, port)


def test_pong_that_never_comes_closes_with_1011(host):
    port = ws_server(host, options=["WS_PING_INTERVAL 1", "WS_PONG_TIMEOUT 1"])
    c = RawWS(port)
    c.handshake()
    sid, _ = opened(host)
    started = time.monotonic()
    fin, rsv, op, payload = c.recv_frame()
    assert op == 9, (op, payload)  # a ping, which this client ignores
    got, reason = c.recv_close()
    assert got == 1011, (got, reason)
    assert time.monotonic() - started < (15 if WRAPPED else 6)
    m, _ = closed_with(host, sid)
    assert m["code"] == 1011 and "WS_PONG_TIMEOUT" in m["reason"], m
    c.shutdown()
    still_serves(host, port)


# ---- handshake garbage ----------------------------------------------------------------------

def _req(**kw):
    def make(c):
        return c.request_bytes(**kw)
    return make


@pytest.mark.parametrize("build,statuses", [
    (lambda c: os.urandom(2048).replace(b"\r\n\r\n", b"xxxx") + b"\r\n\r\n", (400,)),
    (lambda c: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(200) + b"\r\n\r\n", (400,)),
    (_req(key=""), (400,)),
    (_req(key="dG9vIHNob3J0"), (400,)),  # not 16 bytes when decoded
    (_req(version="8"), (426,)),
    (_req(version=None), (400, 426)),
    (lambda c: c.request_bytes().replace(b"GET ", b"POST ", 1), (400, 405)),
    (lambda c: c.request_bytes().replace(b"Upgrade: websocket\r\n", b""), (400, 426)),
    (lambda c: c.request_bytes().replace(b"HTTP/1.1", b"HTTP/1.0", 1), (400, 426, 505)),
], ids=["random", "tls-hello", "no-key", "short-key", "version-8", "no-version", "post",
        "no-upgrade", "http10"])
def test_handshake_garbage_is_refused(host, build, statuses):
    port = ws_server(host)
    c = RawWS(port)
    c.send(build(c))
    status = c.response(expect=None)
    assert status in statuses, (status, c.headers)
    if status == 426:
        assert c.headers.get("sec-websocket-version") == "13", c.headers
    c.body()
    assert c.at_eof()
    ev = host.event("close", 100)  # close_cb with a reason; no "open" ever
    assert ev["data"], ev
    host.call("count")
    assert not [e for e in host.events if e.get("event") == "read" and e.get("socket") == 100]
    c.shutdown()
    still_serves(host, port)


def test_slow_handshake_is_timed_out(host):
    port = ws_server(host, options=["SO_IDLE_TIMEOUT 1000"])
    c = RawWS(port)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the rest
    assert c.at_eof()
    host.event("close", 100, timeout=10)
    c.shutdown()
    still_serves(host, port)


def test_idle_open_connection_is_closed_by_the_idle_timeout(host):
    port = ws_server(host, options=["SO_IDLE_TIMEOUT 1000", "WS_PING_INTERVAL 0"])
    c = RawWS(port)
    c.handshake()
    sid, _ = opened(host)
    started = time.monotonic()
    ev = host.event("close", sid, timeout=10)
    assert time.monotonic() - started < (10 if WRAPPED else 5)
    assert "idle" in ev["data"], ev
    c.shutdown()
    still_serves(host, port)


# ---- many idle connections ------------------------------------------------------------------

@pytest.mark.skipif(WRAPPED, reason="10 000 connections under valgrind take too long")
def test_ten_thousand_idle_connections():
    n = 10_000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n + 500
    assert hard >= need, f"RLIMIT_NOFILE hard limit {hard} < {need}: raise it (ulimit -Hn) to run this"
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))  # the harness inherits it
    host = Host(policy="open")
    clients = []
    try:
        port = ws_server(host, options=[f"SO_MAX_CONNECTIONS {n + 100}"])
        still_serves(host, port, "before")
        base_rss, base_fds = rss_kb(host.proc.pid), host.fds()
        started = time.monotonic()
        batch = 200
        for start in range(0, n, batch):
            group = []
            for _ in range(min(batch, n - start)):
                c = RawWS(port, timeout=20)
                c.send(c.request_bytes())
                group.append(c)
            for c in group:
                c.response()
            clients.extend(group)
            host.events.clear()  # the accepted/open lines: counted below, not kept
        elapsed = time.monotonic() - started
        count = host.call("count", timeout=30)
        assert count["open"] == n + 1, count
        grew = rss_kb(host.proc.pid) - base_rss
        per = grew * 1024 / n
        print(f"{n} idle connections: {per:.0f} bytes each ({grew} KiB), {elapsed:.1f} s")
        assert per < 16 * 1024, f"{per:.0f} bytes per idle connection ({grew} KiB for {n})"
        assert host.fds() - base_fds == n
        host.events.clear()
        still_serves(host, port, "served beside 10 000 idle connections")
        assert elapsed < 60, elapsed
        for c in clients:
            c.shutdown()
        clients = []
        host.events.clear()
        wait_count(host, 1, timeout=60)
        host.events.clear()
        assert host.fds() == base_fds
        still_serves(host, port, "after")
    finally:
        for c in clients:
            c.shutdown()
        rc = host.close()
    assert rc == 0, "".join(host.log[-20:]) + "".join(host.stderr[-20:])
