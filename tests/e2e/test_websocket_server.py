"""WEBSOCKET_SERVER / WEBSOCKET_TLS_SERVER (modes 16, 18) through the harness against real
clients: Python `websockets` (sync client), npm `ws` (tests/e2e/peers/ws_client.js) and a raw
RFC 6455 client written out in wsutil.RawWS where the wire itself is checked.

The contract is callbacks.md "WebSocket (16–19)" with its decided details and options.md
rows 120–129. The LPC side echoes from Python (read the mapping, `write` it back), as LPC's
read_cb would. Every wait is bounded; nothing sleeps for synchronisation.
"""
import pytest

import tls_material
from wsutil import (EECALLBACK, RawWS, buf, client_ssl, closed_with, deflate, message,
                    need_websockets, no_events_for, node_client, opened, py_connect,
                    tls_options, unbuf, write, ws_server)

pytestmark = pytest.mark.policy("open")

OPEN_KEYS = {"type", "subprotocol", "headers", "path"}
UNICODE = "héllo wörld ✓ 🎲"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return tls_material.make(tmp_path_factory.mktemp("pki"))


def py_recv(ws, timeout=10):
    return ws.recv(timeout=timeout)


# ---- the open mapping ---------------------------------------------------------------------

def test_open_mapping_with_python_client(host):
    port = ws_server(host, options=['WS_PROTOCOL ["chat", "superchat"]'])
    ws = py_connect(f"ws://127.0.0.1:{port}/room/7?x=1&name=a%20b",
                    subprotocols=["superchat", "chat"], origin="http://mud.test",
                    additional_headers={"X-Test-Header": "Yes", "X-Multi": "one"})
    sid, m = opened(host)
    assert sid == 100
    assert set(m) == OPEN_KEYS, m
    assert m["path"] == "/room/7?x=1&name=a%20b"
    assert m["subprotocol"] == "chat"  # the server's order wins
    h = m["headers"]
    assert all(k == k.lower() for k in h), h
    assert h["x-test-header"] == "Yes" and h["origin"] == "http://mud.test"
    assert h["upgrade"].lower() == "websocket" and h["sec-websocket-version"] == "13"
    assert ws.subprotocol == "chat"
    assert host.ok("get 100 WS_SUBPROTOCOL")["value"] == "chat"
    ws.close()
    closed_with(host, sid)


def test_open_mapping_with_node_client(host):
    port = ws_server(host, options=['WS_PROTOCOL ["v2.game", "v1.game"]'])
    c = node_client(f"ws://127.0.0.1:{port}/node?q=1", protocols=["v1.game", "v2.game"],
                    options={"headers": {"X-From": "node"}, "origin": "http://node.test"})
    try:
        sid, m = opened(host)
        e = c.event("open")
        assert e["protocol"] == "v2.game" and m["subprotocol"] == "v2.game"
        assert m["path"] == "/node?q=1"
        assert m["headers"]["x-from"] == "node" and m["headers"]["origin"] == "http://node.test"
        assert host.ok(f"get {sid} WS_SUBPROTOCOL")["value"] == "v2.game"
    finally:
        c.stop()


def test_no_subprotocol_in_common_opens_without_one(host):
    port = ws_server(host, options=['WS_PROTOCOL ["alpha"]'])
    ws = py_connect(f"ws://127.0.0.1:{port}/", subprotocols=["beta", "gamma"])
    sid, m = opened(host)
    assert m["subprotocol"] == ""
    assert ws.subprotocol is None
    assert ws.response.headers.get("Sec-WebSocket-Protocol") is None
    ws.send("still works")
    assert message(host, sid)[1] == {"type": "text", "data": "still works"}
    ws.close()


# ---- messages both ways -------------------------------------------------------------------

def test_text_and_binary_both_ways_python(host):
    port = ws_server(host)
    ws = py_connect(f"ws://127.0.0.1:{port}/")
    sid, _ = opened(host)
    raw = bytes(range(256)) * 4
    ws.send(UNICODE)
    assert message(host, sid)[1] == {"type": "text", "data": UNICODE}
    ws.send(raw)
    _, m = message(host, sid)
    assert m["type"] == "binary" and unbuf(m["data"]) == raw
    ws.send("")
    assert message(host, sid)[1] == {"type": "text", "data": ""}

    write(host, sid, UNICODE)  # a string: a text frame
    assert py_recv(ws) == UNICODE
    write(host, sid, buf(raw))  # a buffer: a binary frame
    got = py_recv(ws)
    assert isinstance(got, bytes) and got == raw
    write(host, sid, {"type": "text", "data": "mapped text"})
    assert py_recv(ws) == "mapped text"
    write(host, sid, {"type": "binary", "data": buf(b"\x00\xffmapped")})
    assert py_recv(ws) == b"\x00\xffmapped"
    big = "L" * 60000
    write(host, sid, big)
    assert py_recv(ws) == big
    ws.close()
    closed_with(host, sid)


def test_text_and_binary_both_ways_node(host):
    port = ws_server(host)
    c = node_client(f"ws://127.0.0.1:{port}/")
    try:
        sid, _ = opened(host)
        c.event("open")
        c.cmd(cmd="send", text=UNICODE)
        assert message(host, sid)[1] == {"type": "text", "data": UNICODE}
        raw = bytes(range(256))
        import base64
        c.cmd(cmd="send", b64=base64.b64encode(raw).decode())
        _, m = message(host, sid)
        assert m["type"] == "binary" and unbuf(m["data"]) == raw
        write(host, sid, UNICODE)
        e = c.event("message")
        assert (e["kind"], e["text"]) == ("text", UNICODE)
        write(host, sid, buf(raw))
        e = c.event("message")
        assert e["kind"] == "binary" and base64.b64decode(e["b64"]) == raw
    finally:
        c.stop()


def test_fragmented_messages_are_reassembled(host):
    port = ws_server(host)
    ws = py_connect(f"ws://127.0.0.1:{port}/")
    sid, _ = opened(host)
    ws.send(["frag one, ", "frag two, ", "frag three"])  # one message in three frames
    assert message(host, sid)[1] == {"type": "text", "data": "frag one, frag two, frag three"}
    ws.send([b"\x01\x02", b"\x03", b"\x04\x05"])
    _, m = message(host, sid)
    assert m["type"] == "binary" and unbuf(m["data"]) == b"\x01\x02\x03\x04\x05"
    ws.close()

    # By hand: a UTF-8 character split across frames, a ping between the fragments.
    c = RawWS(port)
    c.handshake()
    sid, _ = opened(host)
    text = "split ✓ here".encode()
    cut = text.index("✓".encode()) + 1
    c.text(text[:cut], fin=False)
    c.send_frame(9, b"between")  # a control frame may come between fragments
    c.send_frame(0, text[cut:], fin=True)
    fin, rsv, op, payload = c.recv_frame()
    assert (op, payload) == (10, b"between")  # answered (WS_AUTO_PING 1)
    assert message(host, sid)[1] == {"type": "text", "data": "split ✓ here"}
    c.shutdown()


def test_fragmented_message_from_node(host):
    port = ws_server(host)
    c = node_client(f"ws://127.0.0.1:{port}/")
    try:
        sid, _ = opened(host)
        c.event("open")
        c.cmd(cmd="send", text="part A|", fin=False)
        c.cmd(cmd="send", text="part B|", fin=False)
        c.cmd(cmd="send", text="part C", fin=True)
        assert message(host, sid)[1] == {"type": "text", "data": "part A|part B|part C"}
    finally:
        c.stop()


# ---- closing --------------------------------------------------------------------------------

def test_close_started_by_the_python_client(host):
    port = ws_server(host)
    ws = py_connect(f"ws://127.0.0.1:{port}/")
    sid, _ = opened(host)
    ws.close(4000, "bye now")
    m, ev = closed_with(host, sid)
    assert m == {"type": "close", "code": 4000, "reason": "bye now"}
    assert ws.protocol.close_rcvd is not None  # unisock answered the close frame


def test_close_started_by_the_raw_client_is_answered(host):
    port = ws_server(host)
    c = RawWS(port)
    c.handshake()
    sid, _ = opened(host)
    c.close(4005, "raw bye")
    code, _ = c.recv_close()
    assert code is not None  # a close frame answers it
    assert c.at_eof()
    m, _ = closed_with(host, sid)
    assert (m["code"], m["reason"]) == (4005, "raw bye")


def test_close_started_by_the_node_client(host):
    port = ws_server(host)
    c = node_client(f"ws://127.0.0.1:{port}/")
    try:
        sid, _ = opened(host)
        c.event("open")
        c.cmd(cmd="close", code=4100, reason="node leaving")
        m, _ = closed_with(host, sid)
        assert (m["code"], m["reason"]) == (4100, "node leaving")
        c.event("close")  # unisock's close frame answered it
    finally:
        c.stop()


def test_close_started_by_lpc_gets_the_peers_close(host):
    need_websockets()
    from websockets.exceptions import ConnectionClosed
    port = ws_server(host)
    ws = py_connect(f"ws://127.0.0.1:{port}/")
    sid, _ = opened(host)
    write(host, sid, {"type": "close", "code": 4001, "reason": "server says bye"})
    with pytest.raises(ConnectionClosed) as ei:
        ws.recv(timeout=10)
    assert (ei.value.rcvd.code, ei.value.rcvd.reason) == (4001, "server says bye")
    m, ev = closed_with(host, sid)  # the peer's close frame (websockets echoes the code)
    assert m["type"] == "close" and m["code"] == 4001, m


def test_close_started_by_lpc_with_node(host):
    port = ws_server(host)
    c = node_client(f"ws://127.0.0.1:{port}/")
    try:
        sid, _ = opened(host)
        c.event("open")
        write(host, sid, {"type": "close", "code": 4321, "reason": "go away"})
        e = c.event("close")
        assert (e["code"], e["reason"]) == (4321, "go away")
        m, _ = closed_with(host, sid)
        assert m["code"] == 4321
    finally:
        c.stop()


def test_socket_close_sends_1000_and_no_callback(host):
    port = ws_server(host)
    c = RawWS(port)
    c.handshake()
    sid, _ = opened(host)
    host.ok(f"close {sid}")
    code, reason = c.recv_close()
    assert code == 1000, (code, reason)
    c.close(1000)  # our half of the closing handshake
    assert c.at_eof()
    no_events_for(host, sid)

    ws = py_connect(f"ws://127.0.0.1:{port}/")
    sid, _ = opened(host)
    host.ok(f"close {sid}")
    need_websockets()
    from websockets.exceptions import ConnectionClosedOK
    with pytest.raises(ConnectionClosedOK):
        ws.recv(timeout=10)
    assert ws.close_code == 1000
    no_events_for(host, sid)


# ---- subprotocol, origin --------------------------------------------------------------------

def test_origin_allow_list(host):
    port = ws_server(host, options=['WS_ORIGIN ["http://good.test", "https://also.good"]'])
    c = RawWS(port)
    c.handshake(origin="https://also.good")
    sid, m = opened(host)
    assert m["headers"]["origin"] == "https://also.good"
    c.shutdown()
    host.event("close", sid)

    bad = RawWS(port)
    bad.handshake(expect=403, origin="http://evil.test")
    bad.body()
    assert bad.at_eof()
    ev = host.event("close", 101)  # close_cb with a reason, never "open"
    assert ev["data"], ev
    no_events_for(host, 101, kinds=("read",))

    # websockets' client sees a failed handshake
    need_websockets()
    from websockets.exceptions import InvalidStatus
    with pytest.raises(InvalidStatus) as ei:
        py_connect(f"ws://127.0.0.1:{port}/", origin="http://evil.test")
    assert ei.value.response.status_code == 403


# ---- limits ---------------------------------------------------------------------------------

def test_max_message_size_exact_is_accepted_one_more_is_1009(host):
    port = ws_server(host, options=["WS_MAX_MESSAGE_SIZE 1000"])
    c = RawWS(port)
    c.handshake()
    sid, _ = opened(host)
    c.text("x" * 1000)
    assert message(host, sid)[1] == {"type": "text", "data": "x" * 1000}
    c.binary(b"\x07" * 1000)
    assert unbuf(message(host, sid)[1]["data"]) == b"\x07" * 1000
    # fragments adding up to exactly the limit
    c.text("a" * 600, fin=False)
    c.send_frame(0, b"b" * 400)
    assert message(host, sid)[1]["data"] == "a" * 600 + "b" * 400
    # one byte more, in fragments
    c.text("a" * 600, fin=False)
    c.send_frame(0, b"b" * 401)
    code, reason = c.recv_close()
    assert code == 1009, (code, reason)
    m, ev = closed_with(host, sid)
    assert m["code"] == 1009 and "WS_MAX_MESSAGE_SIZE" in m["reason"], m

    # and with websockets: one byte over in a single frame
    need_websockets()
    from websockets.exceptions import ConnectionClosedError
    ws = py_connect(f"ws://127.0.0.1:{port}/")
    sid, _ = opened(host)
    ws.send(b"y" * 1001)
    with pytest.raises(ConnectionClosedError) as ei:
        ws.recv(timeout=10)
    assert ei.value.rcvd.code == 1009
    m, _ = closed_with(host, sid)
    assert m["code"] == 1009


def test_frame_size_limit(host):
    port = ws_server(host, options=["WS_FRAME_SIZE_LIMIT 500", "WS_MAX_MESSAGE_SIZE 4000"])
    c = RawWS(port)
    c.handshake()
    sid, _ = opened(host)
    c.binary(b"f" * 500)  # a frame of exactly the limit
    assert unbuf(message(host, sid)[1]["data"]) == b"f" * 500
    c.binary(b"g" * 500, fin=False)  # a message larger than a frame, in frames within it
    c.send_frame(0, b"h" * 500, fin=False)
    c.send_frame(0, b"i" * 500)
    assert unbuf(message(host, sid)[1]["data"]) == b"g" * 500 + b"h" * 500 + b"i" * 500
    c.binary(b"j" * 501)
    code, reason = c.recv_close()
    assert code == 1009, (code, reason)
    m, _ = closed_with(host, sid)
    assert m["code"] == 1009 and "WS_FRAME_SIZE_LIMIT" in m["reason"], m


# ---- compression ----------------------------------------------------------------------------

def test_compression_with_python_client(host):
    port = ws_server(host, options=["WS_COMPRESSION 1"])
    ws = py_connect(f"ws://127.0.0.1:{port}/", compression="deflate")
    sid, m = opened(host)
    ext = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
    assert ext.startswith("permessage-deflate"), ws.response.headers
    big = ("the quick brown fox jumps over the lazy dog " * 1400)[:60000]
    ws.send(big)
    assert message(host, sid)[1] == {"type": "text", "data": big}
    write(host, sid, big)
    assert py_recv(ws) == big
    blob = bytes(50000)
    ws.send(blob)
    _, m = message(host, sid)
    assert unbuf(m["data"]) == blob
    write(host, sid, buf(blob))
    assert py_recv(ws) == blob
    ws.close()


def test_compression_with_node_client(host):
    port = ws_server(host, options=["WS_COMPRESSION 1"])
    c = node_client(f"ws://127.0.0.1:{port}/", options={"perMessageDeflate": True})
    try:
        sid, _ = opened(host)
        assert "permessage-deflate" in c.event("open")["extensions"]
        big = "abcdefgh" * 7000
        c.cmd(cmd="send", text=big)
        assert message(host, sid)[1] == {"type": "text", "data": big}
        write(host, sid, big)
        e = c.event("message")
        assert e["text"] == big
    finally:
        c.stop()


def test_compression_is_used_on_the_wire(host):
    port = ws_server(host, options=["WS_COMPRESSION 1"])
    c = RawWS(port)
    c.handshake(extensions="permessage-deflate; client_max_window_bits")
    assert c.headers.get("sec-websocket-extensions", "").startswith("permessage-deflate"), c.headers
    sid, _ = opened(host)
    text = "compress me please " * 3000
    c.text(deflate(text.encode()), rsv=4)  # RSV1: a compressed message
    assert message(host, sid)[1] == {"type": "text", "data": text}
    write(host, sid, "z" * 50000)
    op, data, rsv1, wire = c.recv_message()
    assert (op, rsv1) == (1, True) and data == b"z" * 50000
    assert wire < 2000, wire  # 50 000 bytes went as a few hundred
    c.shutdown()


def test_ws_extensions_option_negotiates_deflate_too(host):
    port = ws_server(host, options=['WS_EXTENSIONS ["permessage-deflate"]'])
    c = RawWS(port)
    c.handshake(extensions="permessage-deflate")
    assert c.headers.get("sec-websocket-extensions", "").startswith("permessage-deflate"), c.headers
    sid, _ = opened(host)
    c.text(deflate(b"via WS_EXTENSIONS"), rsv=4)
    assert message(host, sid)[1] == {"type": "text", "data": "via WS_EXTENSIONS"}
    c.shutdown()


def test_compression_off_declines_the_offer(host):
    port = ws_server(host)
    c = RawWS(port)
    c.handshake(extensions="permessage-deflate")
    assert "sec-websocket-extensions" not in c.headers, c.headers
    sid, _ = opened(host)
    write(host, sid, "z" * 5000)
    op, data, rsv1, wire = c.recv_message()
    assert not rsv1 and wire == 5000
    c.shutdown()


# ---- ping / pong ----------------------------------------------------------------------------

def test_auto_ping_0_delivers_pings_and_pongs(host):
    port = ws_server(host, options=["WS_AUTO_PING 0"])
    ws = py_connect(f"ws://127.0.0.1:{port}/")
    sid, _ = opened(host)
    pong_seen = ws.ping(b"are you there")
    _, m = message(host, sid)
    assert m["type"] == "ping" and unbuf(m["data"]) == b"are you there"
    assert not pong_seen.wait(0.3)  # observation window: LPC answers, not unisock
    write(host, sid, {"type": "pong", "data": buf(b"are you there")})
    assert pong_seen.wait(10)
    write(host, sid, {"type": "ping", "data": buf(b"lpc ping")})
    _, m = message(host, sid)  # websockets answers; LPC sees the pong
    assert m["type"] == "pong" and unbuf(m["data"]) == b"lpc ping"
    ws.close()


def test_auto_ping_1_answers_without_lpc(host):
    port = ws_server(host)
    ws = py_connect(f"ws://127.0.0.1:{port}/")
    sid, _ = opened(host)
    assert ws.ping(b"auto").wait(10)
    ws.send("after ping")
    assert message(host, sid)[1] == {"type": "text", "data": "after ping"}  # no ping mapping first
    ws.close()


def test_server_pings_and_a_client_that_answers_stays(host):
    port = ws_server(host, options=["WS_PING_INTERVAL 1", "WS_PONG_TIMEOUT 1"])
    c = RawWS(port)
    c.handshake()
    sid, _ = opened(host)
    for _ in range(3):  # three pings, each answered: still connected after 3 pong timeouts
        fin, rsv, op, payload = c.recv_frame()
        assert op == 9, (op, payload)
        c.send_frame(10, payload)
    c.text("alive")
    assert message(host, sid)[1] == {"type": "text", "data": "alive"}
    c.shutdown()


# ---- TLS ------------------------------------------------------------------------------------

def test_tls_server_with_verifying_clients(host, pki):
    port = ws_server(host, mode="WEBSOCKET_TLS_SERVER", options=tls_options(pki))
    ws = py_connect(f"wss://localhost:{port}/secure?t=1", ssl=client_ssl(pki))
    sid, m = opened(host)
    assert m["path"] == "/secure?t=1"
    ws.send("over tls")
    assert message(host, sid)[1] == {"type": "text", "data": "over tls"}
    write(host, sid, buf(b"\x00tls\xff"))
    assert py_recv(ws) == b"\x00tls\xff"
    ws.close(4000, "tls bye")
    m, _ = closed_with(host, sid)
    assert m["code"] == 4000

    c = node_client(f"wss://localhost:{port}/n", ca=pki["ca"])
    try:
        sid, _ = opened(host)
        c.event("open")
        c.cmd(cmd="send", text="node over tls")
        assert message(host, sid)[1] == {"type": "text", "data": "node over tls"}
        write(host, sid, "back")
        assert c.event("message")["text"] == "back"
    finally:
        c.stop()


def test_write_returns_eecallback_when_output_waits(host):
    port = ws_server(host, options=["SO_SNDBUF 4096"])
    c = RawWS(port, rcvbuf=4096)
    c.handshake()
    sid, _ = opened(host)
    r = write(host, sid, "q" * 60000)
    assert r["ee"] == EECALLBACK, r
    op, data, _, _ = c.recv_message()
    assert data == b"q" * 60000
    host.event("write", sid)
    c.shutdown()
