"""Shared pieces of the WebSocket e2e tests (test_websocket_*.py): the harness side (a
WEBSOCKET_SERVER listener, reading the mappings of callbacks.md "WebSocket (16–19)"), a raw
RFC 6455 peer built by hand (for exact frames, abuse and wire checks), the npm `ws` peers
(tests/e2e/peers/*.js, driven by JSON lines) and a Python `websockets` server in a thread.

Peers are required: a missing one fails the test (as curl and openssl do elsewhere), unless
UNISOCK_E2E_ALLOW_MISSING_PEERS=1, which skips instead (for a machine set up by hand).
"""
import base64
import hashlib
import json
import os
import queue
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import zlib

import pytest

from host import ROOT

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_MODULES = os.path.join(ROOT, "tests", "peers", "node", "node_modules")
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
EECALLBACK, EEWOULDBLOCK = -29, -17


# ---- peers that must be there ------------------------------------------------------------

def missing(what, how):
    msg = f"{what} is missing ({how}; scripts/install-deps installs it)"
    if os.environ.get("UNISOCK_E2E_ALLOW_MISSING_PEERS") == "1":
        pytest.skip(msg)
    pytest.fail(msg)


def need_websockets():
    try:
        import websockets  # noqa: F401
        import websockets.sync.client  # noqa: F401
    except ImportError:
        missing("the Python package websockets", "pip install websockets")


def need_node_ws():
    if not shutil.which("node"):
        missing("node", "apt-get install nodejs")
    if not os.path.isdir(os.path.join(NODE_MODULES, "ws")):
        missing(f"npm ws in {NODE_MODULES}", "npm install ws in tests/peers/node")


def chromium_path():
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    missing("chromium", "apt-get install chromium")


# ---- the harness side ---------------------------------------------------------------------

def ws_server(host, sid=1, mode="WEBSOCKET_SERVER", options=(), first_id=100):
    """A listening WebSocket server socket `sid` with autoaccept; returns its port. `options`
    are "NAME JSON" strings set on the listener before bind."""
    escaped = [o.replace("{", "{{").replace("}", "}}") for o in options]
    port = host.listen_port(sid, mode, extra=["set {id} " + o for o in escaped])
    host.ok(f"autoaccept {sid} {first_id}")
    return port


def tls_options(pki):
    return ["SO_TLS_CERT " + json.dumps(pki["cert"]), "SO_TLS_KEY " + json.dumps(pki["key"])]


def write(host, sid, value, ok=(1, EECALLBACK)):
    """socket_write(sid, value) (value as JSON: a str is a string, {"buffer": [...]} a buffer)."""
    r = host.call(f"write {sid} " + json.dumps(value))
    assert r["ee"] in ok, r
    return r


def buf(data):
    """The JSON form of an LPC buffer."""
    return {"buffer": list(data)}


def unbuf(v):
    assert isinstance(v, dict) and "buffer" in v, v
    return bytes(v["buffer"])


def message(host, sid=None, timeout=10, kinds=None):
    """The next read mapping (and its socket id); `kinds` restricts the "type"."""
    pred = None
    if kinds:
        pred = lambda e: isinstance(e.get("data"), dict) and e["data"].get("type") in kinds  # noqa: E731
    e = host.event("read", sid, timeout=timeout, pred=pred)
    return e["socket"], e["data"]


def opened(host, sid=None, timeout=10):
    """Waits for the "open" mapping; returns (id, mapping). With `sid`, fails on any other
    first mapping of that id; without, takes the next "open" of any id."""
    pred = None
    if sid is None:
        pred = lambda e: isinstance(e.get("data"), dict) and e["data"].get("type") == "open"  # noqa: E731
    e = host.event("read", sid, timeout=timeout, pred=pred)
    assert isinstance(e["data"], dict) and e["data"].get("type") == "open", e
    return e["socket"], e["data"]


def closed_with(host, sid, timeout=10):
    """The close mapping and then the close event of `sid`: returns (mapping, close event)."""
    _, m = message(host, sid, timeout=timeout)
    assert m.get("type") == "close", m
    ev = host.event("close", sid, timeout=timeout)
    return m, ev


def no_events_for(host, sid, kinds=("read", "close")):
    host.call("count")
    bad = [e for e in host.events if e.get("socket") == sid and e.get("event") in kinds]
    assert not bad, bad


def python_echo(host, sid, n, timeout=10):
    """Echoes `n` text/binary mappings from Python (as LPC would: read_cb → socket_write)."""
    got = []
    for _ in range(n):
        _, m = message(host, sid, timeout=timeout)
        assert m["type"] in ("text", "binary"), m
        got.append(m)
        write(host, sid, m["data"])
    return got


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# ---- a raw RFC 6455 peer ------------------------------------------------------------------

def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def deflate(data):
    """RFC 7692 7.2.1: raw deflate, sync flush, the final 00 00 ff ff removed."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate(data):
    d = zlib.decompressobj(-15)
    return d.decompress(data + b"\x00\x00\xff\xff")


class RawWS:
    """A WebSocket peer written out by hand: exact frames, masking, RSV bits, and the bytes
    of the handshake. Every read is bounded by `timeout`."""

    def __init__(self, port, timeout=10, rcvbuf=None, sock=None):
        if sock is None:
            sock = socket.socket()
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect(("127.0.0.1", port))
        self.s = sock
        self.port = port
        self.buf = b""
        self.status = None
        self.headers = {}

    # -- bytes
    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError(f"connection closed; have {self.buf[:200]!r}")
        self.buf += d

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _until(self, marker):
        while marker not in self.buf:
            self._fill()
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    # -- handshake
    def request_bytes(self, path="/", key=None, version="13", extensions=None, protocols=None,
                      origin=None, extra=()):
        self.key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "Upgrade: websocket",
                 "Connection: Upgrade"]
        if self.key:
            lines.append(f"Sec-WebSocket-Key: {self.key}")
        if version is not None:
            lines.append(f"Sec-WebSocket-Version: {version}")
        if extensions:
            lines.append(f"Sec-WebSocket-Extensions: {extensions}")
        if protocols:
            lines.append(f"Sec-WebSocket-Protocol: {protocols}")
        if origin:
            lines.append(f"Origin: {origin}")
        lines.extend(extra)
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def handshake(self, expect=101, **kw):
        self.send(self.request_bytes(**kw))
        return self.response(expect)

    def response(self, expect=101):
        head = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        self.status = int(head[0].split(" ")[1])
        self.headers = {}
        for line in head[1:]:
            if ":" in line:
                n, v = line.split(":", 1)
                self.headers[n.strip().lower()] = v.strip()
        if expect is not None:
            assert self.status == expect, (head, self.buf[:300])
        if self.status == 101:
            assert self.headers.get("sec-websocket-accept") == accept_key(self.key), self.headers
            assert self.headers.get("upgrade", "").lower() == "websocket", self.headers
        return self.status

    def body(self):
        """The body of a non-101 response (Content-Length, or up to EOF)."""
        n = self.headers.get("content-length")
        if n is not None:
            return self._exact(int(n))
        try:
            while True:
                self._fill()
        except (EOFError, ConnectionResetError):
            pass
        out, self.buf = self.buf, b""
        return out

    # -- frames
    @staticmethod
    def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload) if length is None else length
        m = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, m | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, m | 126, n)
        else:
            head = struct.pack("!BBQ", b0, m | 127, n)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if len(payload) < 4096 \
                else _mask_fast(payload, key)
            return head + key + payload
        return head + payload

    def send_frame(self, opcode, payload=b"", **kw):
        self.send(self.frame(opcode, payload, **kw))

    def text(self, s, **kw):
        self.send_frame(1, s.encode() if isinstance(s, str) else s, **kw)

    def binary(self, b, **kw):
        self.send_frame(2, b, **kw)

    def close(self, code=1000, reason="", **kw):
        payload = b"" if code is None else struct.pack("!H", code) + reason.encode()
        self.send_frame(8, payload, **kw)

    def recv_frame(self):
        """(fin, rsv, opcode, payload); frames from a server must not be masked."""
        b0, b1 = self._exact(2)
        assert not (b1 & 0x80), "a server frame is masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._exact(8))[0]
        return bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, self._exact(n)

    def recv_message(self, skip_control=True):
        """One whole data message: (opcode, payload, rsv1 of its first frame, wire bytes)."""
        parts, first, rsv1, wire = [], None, False, 0
        while True:
            fin, rsv, op, payload = self.recv_frame()
            if op >= 8:
                if skip_control and op in (9, 10):
                    continue
                raise AssertionError(f"control frame {op} {payload!r} inside a message wait")
            if first is None:
                first, rsv1 = op, bool(rsv & 4)
            parts.append(payload)
            wire += len(payload)
            if fin:
                data = b"".join(parts)
                return first, (inflate(data) if rsv1 else data), rsv1, wire

    def recv_close(self):
        """Reads until the close frame: (code or None, reason)."""
        while True:
            fin, rsv, op, payload = self.recv_frame()
            if op == 8:
                if len(payload) >= 2:
                    return struct.unpack("!H", payload[:2])[0], payload[2:].decode()
                return None, ""

    def at_eof(self):
        """True when the server closed the TCP connection (EOF or reset); bounded."""
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True

    def shutdown(self):
        try:
            self.s.close()
        except OSError:
            pass


def _mask_fast(payload, key):
    n = len(payload)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ k).to_bytes(n, "big")


def good_client_round_trip(port, text="still serving", tls_ca=None):
    """A well-behaved raw client: handshake, one text message echoed (by the caller's echo),
    close 1000. Returns the RawWS after the echo (the caller closes)."""
    c = RawWS(port)
    c.handshake()
    c.text(text)
    return c


def py_connect(url, **kw):
    """websockets' sync client (compression off and no keepalive pings unless asked)."""
    need_websockets()
    import inspect
    from websockets.sync.client import connect
    kw.setdefault("compression", None)
    kw.setdefault("open_timeout", 10)
    kw.setdefault("close_timeout", 10)
    kw.setdefault("ping_interval", None)
    if "legacy" in inspect.signature(connect).parameters:
        kw["legacy"] = True  # a connection object, not a context manager (websockets >= 17.1)
    return connect(url, proxy=None, **kw)


def node_client(url, **cfg):
    """tests/e2e/peers/ws_client.js (permessage-deflate off unless asked)."""
    need_node_ws()
    cfg.setdefault("options", {}).setdefault("perMessageDeflate", False)
    return NodePeer("ws_client.js", dict(cfg, url=url))


def node_server(**cfg):
    """tests/e2e/peers/ws_server.js; returns (peer, port)."""
    need_node_ws()
    p = NodePeer("ws_server.js", cfg)
    return p, p.event("listening")["port"]


# ---- node `ws` peers ----------------------------------------------------------------------

class NodePeer:
    """tests/e2e/peers/ws_client.js or ws_server.js: JSON lines out (events), JSON lines in
    (commands). Every wait bounded."""

    def __init__(self, script, config):
        env = dict(os.environ, NODE_PATH=NODE_MODULES)
        self.proc = subprocess.Popen(
            ["node", os.path.join(HERE, "peers", script), json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            text=True, bufsize=1)
        self.q = queue.Queue()
        self.err = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=lambda: self.err.extend(self.proc.stderr), daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            try:
                self.q.put(json.loads(line))
            except ValueError:
                self.err.append(line)
        self.q.put(None)

    def cmd(self, **c):
        self.proc.stdin.write(json.dumps(c) + "\n")
        self.proc.stdin.flush()

    def event(self, kind, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                e = self.q.get(timeout=max(0.01, left))
            except queue.Empty:
                raise AssertionError(f"node peer: no {kind} within {timeout}s; stderr: {''.join(self.err)}")
            if e is None:
                raise AssertionError(f"node peer exited waiting for {kind}; stderr: {''.join(self.err)}")
            if e.get("event") == kind or (isinstance(kind, tuple) and e.get("event") in kind):
                return e
            if e.get("event") == "error" and kind != "error":
                # reported, not fatal by itself: a close usually follows
                self.errors = getattr(self, "errors", []) + [e]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


# ---- a Python `websockets` server in a thread ---------------------------------------------

class PyServer:
    """websockets.sync.server on 127.0.0.1:0 in a thread. Every connection is echoed
    (text and binary) and recorded: `conns` gets (request headers, path, subprotocol,
    response extensions); a text message "close:CODE:REASON" makes the server close with them."""

    def __init__(self, ssl_context=None, subprotocols=None, select_subprotocol=None,
                 compression=None, max_size=2 ** 24, **extra):
        need_websockets()
        from websockets.sync.server import serve
        self.conns = queue.Queue()
        self.closes = queue.Queue()
        self.messages = queue.Queue()

        def handler(ws):
            info = {"headers": dict((k.lower(), v) for k, v in ws.request.headers.raw_items()),
                    "path": ws.request.path, "subprotocol": ws.subprotocol,
                    "extensions": ws.response.headers.get("Sec-WebSocket-Extensions")}
            self.conns.put(info)
            try:
                for msg in ws:
                    self.messages.put(msg)
                    if isinstance(msg, str) and msg.startswith("close:"):
                        _, code, reason = msg.split(":", 2)
                        ws.close(int(code), reason)
                        break
                    ws.send(msg)
            finally:
                self.closes.put((ws.close_code, ws.close_reason))

        kw = dict(extra)
        if select_subprotocol is not None:
            kw["select_subprotocol"] = select_subprotocol
        self.server = serve(handler, "127.0.0.1", 0, ssl=ssl_context, subprotocols=subprotocols,
                            compression=compression, max_size=max_size, **kw)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(10)


def server_ssl(pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["cert"], pki["key"])
    return ctx


def client_ssl(pki):
    return ssl.create_default_context(cafile=pki["ca"])
