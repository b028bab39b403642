"""Every close event carries its reason, and says whether the end was abnormal
(issue 12, item 5): the driver passes the reason to close_cb and logs the
abnormal ends. Through the harness against real peers (Python sockets and
ssl, openssl-made certificates, /bin/sh).
"""
import http.server
import json
import socket
import ssl
import threading

import pytest

import tls_material

# Runs children, watches host paths, makes socket files or reads TLS files: the
# admin's policy must allow it (docs/SECURITY.md).
pytestmark = pytest.mark.policy("open")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return tls_material.make(tmp_path_factory.mktemp("pki"))


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def test_peer_close_is_a_normal_end_with_a_reason(host):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    host.ok("create 1 STREAM")
    host.ok(f"connect 1 127.0.0.1 {port}")
    conn, _ = srv.accept()
    host.event("write", 1)
    conn.close()
    ev = host.event("close", 1)
    assert ev["data"] == "closed by the peer"
    assert ev["abnormal"] == 0
    srv.close()


def test_refused_connect_names_the_address_and_is_abnormal(host):
    port = closed_port()
    host.ok("create 1 STREAM")
    host.ok(f"connect 1 127.0.0.1 {port}")
    ev = host.event("close", 1)
    assert ev["data"].startswith(f"connect 127.0.0.1 {port}: "), ev
    assert "refused" in ev["data"].lower()
    assert ev["abnormal"] == 1


def test_untrusted_tls_server_is_abnormal_with_the_tls_reason(host, pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["self_cert"], pki["self_key"])
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]

    def serve():  # one handshake attempt; the client refuses the certificate
        conn, _ = srv.accept()
        conn.settimeout(10)
        try:
            ctx.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    host.ok("create 1 STREAM_TLS")
    host.ok("set 1 SO_TLS_VERIFY_PEER 1")
    host.ok("set 1 SO_TLS_CA " + json.dumps(pki["ca"]))
    host.ok(f"connect 1 127.0.0.1 {port}")
    ev = host.event("close", 1)
    assert ev["data"].startswith("tls: "), ev
    assert ev["abnormal"] == 1
    t.join(10)
    srv.close()


def test_idle_timeout_is_abnormal(host):
    port = host.listen_port(1, extra=["set {id} SO_IDLE_TIMEOUT 200"])
    host.ok("autoaccept 1")
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        sid = host.accepted()
        ev = host.event("close", sid)
        assert ev["data"] == "idle timeout"
        assert ev["abnormal"] == 1


class CloseHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10

    def do_GET(self):
        body = b"bye"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_connection_close_exchange_is_a_normal_end_on_both_sides(host):
    # unisock's client against a Python server that says "Connection: close".
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CloseHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host.ok("create 1 HTTP_CLIENT")
        host.ok(f"connect 1 http://127.0.0.1:{server.server_address[1]}/")
        assert host.event("read", 1)["data"]["status"] == 200
        ev = host.event("close", 1)
        assert ev["data"] == "closed after the response (Connection: close)"
        assert ev["abnormal"] == 0
    finally:
        server.shutdown()
        server.server_close()

    # unisock's server answering a client that asked for "Connection: close".
    port = host.listen_port(2, "HTTP_SERVER")
    host.ok("autoaccept 2")
    host.ok('autoreply all {"status":200,"body":"ok"}')
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = b""
        while True:
            chunk = c.recv(4096)
            if not chunk:
                break
            got += chunk
    assert got.startswith(b"HTTP/1.1 200")
    ev = host.event("close", None, pred=lambda e: e["socket"] != 2)
    assert ev["data"] == "closed after the reply (Connection: close)"
    assert ev["abnormal"] == 0


def test_process_exit_is_normal_and_a_timeout_abnormal(host):
    host.ok("create 1 EXTERNAL_PROCESS")
    host.ok('set 1 EXTERNAL_COMMAND "/bin/true"')
    host.ok("bind 1 0")
    ev = host.event("close", 1)
    assert ev["data"] == "the process exited"
    assert ev["abnormal"] == 0

    host.ok("create 2 EXTERNAL_PROCESS")
    host.ok('set 2 EXTERNAL_COMMAND "/bin/sleep"')
    host.ok('set 2 EXTERNAL_ARGS ["30"]')
    host.ok("set 2 EXTERNAL_TIMEOUT 1")
    host.ok("bind 2 0")
    ev = host.event("close", 2)
    assert ev["data"] == "the process ended: timeout"
    assert ev["abnormal"] == 1


def http_exchange(port, raw, half_close=False):
    """Sends `raw` to unisock's HTTP server, returns all it answered until it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(raw)
        if half_close:
            c.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = c.recv(4096)
            if not chunk:
                return got
            got += chunk


def test_http_server_ends_say_who_ended_them(host):
    port = host.listen_port(1, "HTTP_SERVER")
    host.ok("autoaccept 1 100")
    host.ok('autoreply all {"status":200,"body":"ok"}')
    # A request the server refuses: its answer, then an abnormal end.
    got = http_exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 400")
    ev = host.event("close", 100)
    assert ev["data"].startswith("http: answered 400: "), ev
    assert ev["abnormal"] == 1
    # A client that sends its request and closes its side: the reply goes out,
    # then the end is the peer's.
    got = http_exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", half_close=True)
    assert got.startswith(b"HTTP/1.1 200")
    ev = host.event("close", 101)
    assert ev["data"] == "closed by the peer"
    assert ev["abnormal"] == 0
