"""WEBSOCKET_CLIENT / WEBSOCKET_TLS_CLIENT (modes 17, 19) through the harness against real
servers: Python `websockets` (wsutil.PyServer, a thread) and npm `ws`
(tests/e2e/peers/ws_server.js), plus a raw server written out here where the wire is checked.

The contract is callbacks.md "WebSocket (16–19)": socket_connect(id, "ws://host:port/path?q")
("host port" works too, path "/"), Origin from WS_ORIGIN, Sec-WebSocket-Protocol from
WS_PROTOCOL, permessage-deflate offered with WS_COMPRESSION 1; failures arrive as
([ "error", "error_code" ]) then close_cb. Every wait is bounded.
"""
import base64
import json
import socket
import struct
import ssl
import threading

import pytest

import tls_material
from wsutil import (PyServer, RawWS, accept_key, buf, closed_with, deflate, inflate, message,
                    no_events_for, node_server, opened, server_ssl, unbuf, write)

pytestmark = pytest.mark.policy("open")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return tls_material.make(tmp_path_factory.mktemp("pki"))


def client(host, sid=1, mode="WEBSOCKET_CLIENT", options=()):
    host.ok(f"create {sid} {mode}")
    for o in options:
        host.ok(f"set {sid} {o}")


def failed(host, sid=1, timeout=15):
    """The error mapping, then close_cb, and never "open"."""
    e = host.event("read", sid, timeout=timeout)
    m = e["data"]
    assert isinstance(m, dict) and "error" in m and isinstance(m.get("error_code"), int), e
    assert m["error"], m
    ev = host.event("close", sid, timeout=timeout)
    return m, ev


@pytest.fixture
def pyserver():
    servers = []

    def make(**kw):
        s = PyServer(**kw)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def nodeserver():
    peers = []

    def make(**cfg):
        p, port = node_server(**cfg)
        peers.append(p)
        return p, port
    yield make
    for p in peers:
        p.stop()


# ---- ws:// against websockets --------------------------------------------------------------

def test_ws_client_against_python_server(host, pyserver):
    s = pyserver(subprotocols=["chat"])
    client(host, options=['WS_PROTOCOL ["chat", "other"]', 'WS_ORIGIN "http://mud.example"'])
    host.ok(f"connect 1 ws://127.0.0.1:{s.port}/game/lobby?room=3&x=a%20b")
    sid, m = opened(host, 1)
    assert set(m) == {"type", "subprotocol", "headers", "path"}, m
    assert m["subprotocol"] == "chat" and m["path"] == "/game/lobby?room=3&x=a%20b"
    assert all(k == k.lower() for k in m["headers"])  # the server's response headers
    assert host.ok("get 1 WS_SUBPROTOCOL")["value"] == "chat"
    info = s.conns.get(timeout=5)
    assert info["path"] == "/game/lobby?room=3&x=a%20b"
    assert info["headers"]["origin"] == "http://mud.example"
    assert [p.strip() for p in info["headers"]["sec-websocket-protocol"].split(",")] == ["chat", "other"]
    assert info["headers"]["host"] == f"127.0.0.1:{s.port}"

    write(host, 1, "hello ✓ server")
    assert message(host, 1)[1] == {"type": "text", "data": "hello ✓ server"}
    raw = bytes(range(256)) * 3
    write(host, 1, buf(raw))
    _, m = message(host, 1)
    assert m["type"] == "binary" and unbuf(m["data"]) == raw
    write(host, 1, {"type": "text", "data": "via mapping"})
    assert message(host, 1)[1]["data"] == "via mapping"
    big = "B" * 60000
    write(host, 1, big)
    assert message(host, 1)[1]["data"] == big


def test_host_port_address_form_uses_path_slash(host, pyserver):
    s = pyserver()
    client(host)
    host.ok(f"connect 1 127.0.0.1 {s.port}")
    _, m = opened(host, 1)
    assert m["path"] == "/" and m["subprotocol"] == ""
    assert s.conns.get(timeout=5)["path"] == "/"


def test_server_closes_client_gets_code_and_reason(host, pyserver):
    s = pyserver()
    client(host)
    host.ok(f"connect 1 ws://127.0.0.1:{s.port}/")
    opened(host, 1)
    write(host, 1, "close:4002:server bye")  # the server closes with these
    m, ev = closed_with(host, 1)
    assert m == {"type": "close", "code": 4002, "reason": "server bye"}
    assert s.closes.get(timeout=5)[0] != 1006  # unisock answered the server's close frame


def test_client_closes_with_a_mapping(host, pyserver):
    s = pyserver()
    client(host)
    host.ok(f"connect 1 ws://127.0.0.1:{s.port}/")
    opened(host, 1)
    write(host, 1, {"type": "close", "code": 4003, "reason": "client bye"})
    assert s.closes.get(timeout=10) == (4003, "client bye")
    m, _ = closed_with(host, 1)  # the server's answer (websockets echoes the code)
    assert m["code"] == 4003


def test_socket_close_sends_1000(host, pyserver):
    s = pyserver()
    client(host)
    host.ok(f"connect 1 ws://127.0.0.1:{s.port}/")
    opened(host, 1)
    host.ok("close 1")
    assert s.closes.get(timeout=10)[0] == 1000
    no_events_for(host, 1)


def test_subprotocol_offered_but_none_chosen_fails(host, pyserver):
    s = pyserver(select_subprotocol=lambda conn, offered: None)
    client(host, options=['WS_PROTOCOL ["chat"]'])
    host.ok(f"connect 1 ws://127.0.0.1:{s.port}/")
    m, ev = failed(host)
    assert "subprotocol" in m["error"].lower() or "protocol" in m["error"].lower(), m


def test_handshake_refused_is_reported(host, pyserver):
    s = pyserver(process_request=lambda conn, req: conn.respond(403, "go away\n"))
    client(host)
    host.ok(f"connect 1 ws://127.0.0.1:{s.port}/")
    m, _ = failed(host)
    assert "403" in m["error"], m


def test_connection_refused_is_reported(host):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))  # bound, not listening: a connect is refused
    port = srv.getsockname()[1]
    try:
        client(host)
        r = host.call(f"connect 1 ws://127.0.0.1:{port}/")
        if r["result"] == "ok":
            failed(host)
        else:
            assert r["ee"] < 0, r
    finally:
        srv.close()


# ---- compression ----------------------------------------------------------------------------

def test_compression_with_python_server(host, pyserver):
    s = pyserver(compression="deflate")
    client(host, options=["WS_COMPRESSION 1"])
    host.ok(f"connect 1 ws://127.0.0.1:{s.port}/")
    _, m = opened(host, 1)
    info = s.conns.get(timeout=5)
    assert "permessage-deflate" in info["headers"].get("sec-websocket-extensions", ""), info
    assert (info["extensions"] or "").startswith("permessage-deflate"), info
    big = ("lorem ipsum dolor sit amet " * 2300)[:60000]
    write(host, 1, big)
    assert message(host, 1)[1]["data"] == big
    write(host, 1, buf(bytes(50000)))
    assert unbuf(message(host, 1)[1]["data"]) == bytes(50000)
    assert "permessage-deflate" in m["headers"].get("sec-websocket-extensions", ""), m


def test_compression_not_offered_by_default(host, pyserver):
    s = pyserver(compression="deflate")
    client(host)
    host.ok(f"connect 1 ws://127.0.0.1:{s.port}/")
    opened(host, 1)
    info = s.conns.get(timeout=5)
    assert "sec-websocket-extensions" not in info["headers"], info


class RawServer:
    """One connection accepted by hand: reads the request, answers 101 with `extensions`,
    then hands the socket to the test as a RawWS-like reader."""

    def __init__(self, extensions="permessage-deflate"):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1)
        self.ls.settimeout(10)
        self.port = self.ls.getsockname()[1]
        self.extensions = extensions
        self.request = None
        self.conn = None
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        s, _ = self.ls.accept()
        s.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        head, rest = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {}
        for line in lines[1:]:
            n, v = line.split(":", 1)
            hdrs[n.strip().lower()] = v.strip()
        self.request = (lines[0], hdrs)
        resp = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
                "Sec-WebSocket-Accept: " + accept_key(hdrs["sec-websocket-key"])]
        if self.extensions:
            resp.append("Sec-WebSocket-Extensions: " + self.extensions)
        s.sendall(("\r\n".join(resp) + "\r\n\r\n").encode())
        self.conn = RawWS(self.port, sock=s)
        self.conn.buf = rest
        self.done.set()

    def wait(self):
        assert self.done.wait(15), "no WebSocket client came"
        return self.conn

    def read_masked_frame(self):
        """A client frame: (fin, rsv, opcode, unmasked payload); it must be masked."""
        c = self.conn
        b0, b1 = c._exact(2)
        assert b1 & 0x80, "a client frame is not masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", c._exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", c._exact(8))[0]
        key = c._exact(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(c._exact(n)))
        return bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, payload

    def close(self):
        self.ls.close()
        if self.conn:
            self.conn.shutdown()


def test_compression_is_used_on_the_wire(host):
    srv = RawServer()
    try:
        client(host, options=["WS_COMPRESSION 1"])
        host.ok(f"connect 1 ws://127.0.0.1:{srv.port}/wire")
        srv.wait()
        line, hdrs = srv.request
        assert line == "GET /wire HTTP/1.1", line
        assert hdrs.get("sec-websocket-extensions", "").startswith("permessage-deflate"), hdrs
        opened(host, 1)
        text = "squeeze " * 7000
        write(host, 1, text)
        fin, rsv, op, payload = srv.read_masked_frame()
        assert (fin, op) == (True, 1) and rsv & 4, (fin, rsv, op)  # RSV1: compressed
        assert len(payload) < 2000 and inflate(payload) == text.encode()
        # and a compressed frame from the server is inflated for LPC
        srv.conn.send(RawWS.frame(1, deflate(b"inflated " * 5000), mask=False, rsv=4))
        assert message(host, 1)[1] == {"type": "text", "data": "inflated " * 5000}
    finally:
        srv.close()


def test_client_refuses_an_extension_it_did_not_offer(host):
    srv = RawServer(extensions="permessage-deflate")  # answered though not offered
    try:
        client(host)
        host.ok(f"connect 1 ws://127.0.0.1:{srv.port}/")
        srv.wait()
        assert "sec-websocket-extensions" not in srv.request[1]
        failed(host)
    finally:
        srv.close()


# ---- wss:// ---------------------------------------------------------------------------------

def test_wss_client_verifies_with_the_test_ca(host, pki, pyserver):
    s = pyserver(ssl_context=server_ssl(pki))
    client(host, mode="WEBSOCKET_TLS_CLIENT", options=["SO_TLS_CA " + json.dumps(pki["ca"])])
    host.ok(f"connect 1 wss://localhost:{s.port}/secure?x=1")
    _, m = opened(host, 1)
    assert m["path"] == "/secure?x=1"
    assert s.conns.get(timeout=5)["headers"]["host"] == f"localhost:{s.port}"
    write(host, 1, "secret")
    assert message(host, 1)[1]["data"] == "secret"
    write(host, 1, {"type": "close", "code": 1000, "reason": "done"})
    m, _ = closed_with(host, 1)
    assert m["code"] == 1000


def test_wss_client_presents_its_certificate(host, pki):
    """Mutual TLS: a server that requires a client certificate accepts the one set with
    SO_TLS_CERT / SO_TLS_KEY, and refuses a client without one (error mapping, close)."""
    ctx = server_ssl(pki)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(pki["self_cert"])  # the client's own (self-signed) certificate
    s = PyServer(ssl_context=ctx)
    try:
        client(host, mode="WEBSOCKET_TLS_CLIENT",
               options=["SO_TLS_CA " + json.dumps(pki["ca"]),
                        "SO_TLS_CERT " + json.dumps(pki["self_cert"]),
                        "SO_TLS_KEY " + json.dumps(pki["self_key"])])
        host.ok(f"connect 1 wss://localhost:{s.port}/mtls")
        _, m = opened(host, 1)
        assert m["path"] == "/mtls"
        write(host, 1, "with a certificate")
        assert message(host, 1)[1]["data"] == "with a certificate"
        client(host, sid=2, mode="WEBSOCKET_TLS_CLIENT",
               options=["SO_TLS_CA " + json.dumps(pki["ca"])])
        host.ok(f"connect 2 wss://localhost:{s.port}/mtls")
        m, ev = failed(host, 2)
        assert m["error"].startswith("tls:") or "certificate" in m["error"], m
    finally:
        s.stop()


def test_wss_unknown_issuer_fails(host, pki):
    ctx = server_ssl(pki)
    ctx.load_cert_chain(pki["self_cert"], pki["self_key"])  # self-signed, not from the CA
    s = PyServer(ssl_context=ctx)
    try:
        client(host, mode="WEBSOCKET_TLS_CLIENT", options=["SO_TLS_CA " + json.dumps(pki["ca"])])
        host.ok(f"connect 1 wss://localhost:{s.port}/")
        m, ev = failed(host)
        assert "issuer" in m["error"] or "certificate" in m["error"], m
    finally:
        s.stop()


def test_wss_wrong_host_name_fails(host, pki):
    s = PyServer(ssl_context=server_ssl(pki))
    try:
        client(host, mode="WEBSOCKET_TLS_CLIENT",
               options=["SO_TLS_CA " + json.dumps(pki["ca"]), 'SO_TLS_SNI_HOSTNAME "wrong.example"'])
        host.ok(f"connect 1 wss://127.0.0.1:{s.port}/")
        m, ev = failed(host)
        assert "wrong.example" in m["error"], m
    finally:
        s.stop()


# ---- against npm ws -------------------------------------------------------------------------

def test_ws_client_against_node_server(host, nodeserver):
    p, port = nodeserver(protocols=["v2", "v1"], echo=True)
    client(host, options=['WS_PROTOCOL ["v1", "v2"]', 'WS_ORIGIN "https://origin.test"'])
    host.ok(f"connect 1 ws://127.0.0.1:{port}/node/path?k=v")
    _, m = opened(host, 1)
    conn = p.event("connection")
    assert conn["url"] == "/node/path?k=v" and conn["headers"]["origin"] == "https://origin.test"
    assert conn["protocol"] == "v2" and m["subprotocol"] == "v2"  # the server's choice
    write(host, 1, "to node")
    assert message(host, 1)[1]["data"] == "to node"
    write(host, 1, buf(b"\x01\x02\x03"))
    assert unbuf(message(host, 1)[1]["data"]) == b"\x01\x02\x03"
    p.cmd(cmd="send", text="frag-1 ", fin=False)
    p.cmd(cmd="send", text="frag-2")
    assert message(host, 1)[1] == {"type": "text", "data": "frag-1 frag-2"}
    p.cmd(cmd="close", code=4444, reason="node closes")
    m, _ = closed_with(host, 1)
    assert (m["code"], m["reason"]) == (4444, "node closes")


def test_node_server_choosing_no_subprotocol_fails_the_client(host, nodeserver):
    p, port = nodeserver(chooseNone=True)
    client(host, options=['WS_PROTOCOL "chat"'])
    host.ok(f"connect 1 ws://127.0.0.1:{port}/")
    assert p.event("offered")["protocols"] == ["chat"]
    failed(host)


def test_compression_with_node_server(host, nodeserver):
    p, port = nodeserver(deflate=True, echo=True)
    client(host, options=["WS_COMPRESSION 1"])
    host.ok(f"connect 1 ws://127.0.0.1:{port}/")
    opened(host, 1)
    conn = p.event("connection")
    assert "permessage-deflate" in conn["headers"].get("sec-websocket-extensions", "")
    assert conn["extensions"] == "permessage-deflate"
    big = "compressible " * 5000
    write(host, 1, big)
    assert message(host, 1)[1]["data"] == big
    p.cmd(cmd="send", b64=base64.b64encode(bytes(40000)).decode())
    assert unbuf(message(host, 1)[1]["data"]) == bytes(40000)


def test_wss_client_against_node_server(host, pki, nodeserver):
    p, port = nodeserver(cert=pki["cert"], key=pki["key"], echo=True)
    client(host, mode="WEBSOCKET_TLS_CLIENT", options=["SO_TLS_CA " + json.dumps(pki["ca"])])
    host.ok(f"connect 1 wss://localhost:{port}/tls")
    _, m = opened(host, 1)
    assert p.event("connection")["url"] == "/tls"
    write(host, 1, "over tls to node")
    assert message(host, 1)[1]["data"] == "over tls to node"
    write(host, 1, {"type": "close", "code": 4000, "reason": "bye node"})
    e = p.event("close")
    assert (e["code"], e["reason"]) == (4000, "bye node")
    closed_with(host, 1)


def test_client_open_mapping_carries_the_response_headers(host, pyserver):
    """callbacks.md: the open mapping has "headers" on the client too: the server's response."""
    s = pyserver(subprotocols=["chat"])
    client(host, options=['WS_PROTOCOL "chat"'])
    host.ok(f"connect 1 ws://127.0.0.1:{s.port}/")
    _, m = opened(host, 1)
    h = m["headers"]
    assert h.get("upgrade", "").lower() == "websocket", m
    assert h.get("sec-websocket-protocol") == "chat", m
    assert h.get("server", "").startswith("Python/"), m
