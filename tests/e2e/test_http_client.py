"""HTTP_CLIENT / HTTPS_CLIENT (modes 11 and 13) through the harness against real
peers in this process: Python http.server (ThreadingHTTPServer, HTTP/1.1), the
same server wrapped in ssl, and bare sockets for peers that never answer.

Every response a test checks is also checked at the server (what it received),
so a missing feature fails here rather than passing by accident.
"""
import array
import fcntl
import http.server
import json
import os
import select
import socket
import ssl
import struct
import subprocess
import termios
import threading
import time

import pytest

import tls_material

# Runs children, watches host paths, makes socket files or reads TLS files: the
# admin's policy must allow it (docs/SECURITY.md).
pytestmark = pytest.mark.policy("open")

WRAPPED = bool(os.environ.get("UNISOCK_E2E_WRAP"))
# Generous bounds (valgrind runs the harness ~20x slower); never a sleep.
WAIT = 60 if WRAPPED else 15

RESPONSE_KEYS = {"status", "reason", "version", "headers", "body", "body_is_binary", "url",
                 "redirects", "elapsed_ms"}


# ---- peers ------------------------------------------------------------------


class Seen:
    """One request as the server received it."""

    def __init__(self, h, body):
        self.method = h.command
        self.path = h.path
        self.headers = h.headers  # email.message.Message: case-insensitive get / get_all
        self.body = body
        self.port = h.client_address[1]


def send(h, status, body=b"", headers=(), reason=None):
    """A complete response with Content-Length (no body for HEAD)."""
    if isinstance(body, str):
        body = body.encode()
    h.send_response(status, reason)
    for k, v in headers:
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # a handler thread never outlives a test by much

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        pace = self.server.peer.slow_read
        if pace:
            body = b""
            while len(body) < n:  # a slow reader: the peer's pace, not the test's synchronisation
                body += self.rfile.read(min(16384, n - len(body)))
                threading.Event().wait(pace)
        else:
            body = self.rfile.read(n) if n else b""
        seen = Seen(self, body)
        self.server.peer.requests.append(seen)
        route = self.server.peer.routes.get(self.path.split("?")[0])
        if route is None:
            send(self, 200, f"ok {self.command} {self.path}", [("Content-Type", "text/plain")])
        else:
            route(self, seen)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    block_on_close = False  # keep-alive handler threads end on their own

    def finish_request(self, request, client_address):
        ctx = self.peer.tls
        if ctx is None:
            return super().finish_request(request, client_address)
        request.settimeout(30)
        try:
            conn = ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.peer.tls_errors.append(e)
            self.peer.tls_failed.set()
            return
        self.peer.tls_info.append({"version": conn.version(), "peer_cert": conn.getpeercert()})
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()


class Peer:
    """An HTTP/1.1 server on 127.0.0.1 (TLS when `tls` is an SSLContext).
    `routes` maps a path to fn(handler, seen); other paths answer 200 "ok METHOD PATH"."""

    def __init__(self, routes=None, tls=None, slow_read=0, rcvbuf=None):
        self.routes = dict(routes or {})
        self.slow_read = slow_read
        self.tls = tls
        self.requests = []
        self.tls_errors = []
        self.tls_failed = threading.Event()  # set after its alert went out: wait for it
        self.tls_info = []
        self.sni = []
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: self.sni.append(name)
        self.httpd = Server(("127.0.0.1", 0), Handler, bind_and_activate=False)
        if rcvbuf:  # accepted connections inherit it
            self.httpd.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.httpd.server_bind()
        self.httpd.server_activate()
        self.httpd.peer = self
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, path="/", host="127.0.0.1"):
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def peers():
    made = []

    def make(routes=None, tls=None, **kw):
        p = Peer(routes, tls, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()


@pytest.fixture
def silent():
    """A listening socket nobody accepts from: the kernel completes the TCP
    handshake (backlog), takes the request, and nothing ever comes back."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s
    s.close()


# ---- harness helpers --------------------------------------------------------


def client(host, sid=1, mode="HTTP_CLIENT", **opts):
    host.ok(f"create {sid} {mode}")
    for name, value in opts.items():
        host.ok(f"set {sid} {name} {json.dumps(value)}")


def response(host, sid=1, timeout=WAIT):
    """The next response mapping on `sid` (fails on an error mapping)."""
    data = host.event("read", sid, timeout=timeout)["data"]
    assert "error" not in data, data
    return data


def until_close(host, sid=1, timeout=WAIT):
    """Every event of `sid` up to and including its close event, in order."""
    close = host.event("close", sid, timeout=timeout)
    mine = [e for e in host.events if e.get("socket") == sid]
    host.events = [e for e in host.events if e.get("socket") != sid]
    return mine + [close]


def assert_gone(host, fds_before):
    assert host.call("count") == {"cmd": "count", "open": 0, "flushing": 0}
    assert host.fds() == fds_before


def expect_error(host, sid, fds_before, *words, timeout=WAIT):
    """The documented failure shape: one error mapping, then close_cb, then
    nothing of the socket left. Returns the error mapping."""
    evs = until_close(host, sid, timeout)
    kinds = [e["event"] for e in evs]
    assert kinds == ["read", "close"], evs
    err = evs[0]["data"]
    assert set(err) == {"error", "error_code"}, err
    assert isinstance(err["error_code"], int) and -32 <= err["error_code"] < 0, err
    for w in words:
        assert w in err["error"], (w, err)
    assert_gone(host, fds_before)
    return err


def connect(host, sid, address):
    host.ok(f"connect {sid} {address}")


# ---- plain HTTP: the response mapping ---------------------------------------


def test_get_delivers_the_documented_mapping(host, peers):
    def route(h, seen):
        send(h, 200, "hello", [("Content-Type", "text/plain"), ("X-Multi", "one"), ("X-Multi", "two"),
                               ("X-Case", "Kept")])

    p = peers({"/hello": route})
    client(host)
    connect(host, 1, p.url("/hello?x=1"))
    r = response(host)
    assert set(r) == RESPONSE_KEYS
    assert (r["status"], r["reason"], r["version"]) == (200, "OK", "HTTP/1.1")
    assert r["body"] == "hello" and r["body_is_binary"] == 0
    assert r["url"] == p.url("/hello?x=1") and r["redirects"] == 0
    assert isinstance(r["elapsed_ms"], int) and 0 <= r["elapsed_ms"] < WAIT * 1000
    hdrs = r["headers"]
    assert all(k == k.lower() for k in hdrs)
    assert hdrs["x-multi"] == ["one", "two"]  # repeated → array, in order
    assert hdrs["x-case"] == "Kept" and hdrs["content-length"] == "5"
    assert hdrs["content-type"] == "text/plain"
    [seen] = p.requests
    assert (seen.method, seen.path) == ("GET", "/hello?x=1")
    assert seen.headers["Host"] == f"127.0.0.1:{p.port}"
    assert seen.body == b""


def test_binary_body_arrives_as_a_buffer(host, peers):
    payload = bytes(range(256)) * 3
    p = peers({"/bin": lambda h, s: send(h, 200, payload, [("Content-Type", "application/octet-stream")])})
    client(host)
    connect(host, 1, p.url("/bin"))
    r = response(host)
    assert isinstance(r["body"], dict) and r["body_is_binary"] == 1
    assert bytes(r["body"]["buffer"]) == payload


# ---- the request side: options ----------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"])
def test_method_option(host, peers, method):
    p = peers()
    client(host, SO_HTTP_METHOD=method)
    connect(host, 1, p.url("/m"))
    r = response(host)
    [seen] = p.requests
    assert seen.method == method
    if method == "HEAD":
        # The server announced a length but (rightly) sent no body: nothing must be awaited.
        assert r["headers"]["content-length"] == str(len("ok HEAD /m"))
        assert r["body"] == ""
    else:
        assert r["body"] == f"ok {method} /m"
    if method in ("PUT", "PATCH"):
        assert seen.headers["Content-Length"] == "0"  # a body-carrying method says "no body"


def test_head_response_leaves_the_connection_usable(host, peers):
    p = peers()
    client(host, SO_HTTP_METHOD="HEAD")
    connect(host, 1, p.url("/h"))
    assert response(host)["body"] == ""
    host.ok('write 1 {"path": "/after"}')
    assert response(host)["body"] == "ok GET /after"
    assert len({s.port for s in p.requests}) == 1


def test_url_option_with_empty_address(host, peers):
    p = peers()
    client(host, SO_HTTP_URL=p.url("/from-option"))
    connect(host, 1, '""')
    r = response(host)
    assert r["body"] == "ok GET /from-option" and r["url"] == p.url("/from-option")
    assert p.requests[0].path == "/from-option"


def test_url_option_reached_through_host_port(host, peers):
    p = peers()
    # The URL's host does not resolve: only the "host port" address can reach it.
    url = f"http://service.invalid:{p.port}/via?q=2"
    client(host, SO_HTTP_URL=url)
    connect(host, 1, f"127.0.0.1 {p.port}")
    r = response(host)
    assert r["url"] == url and r["body"] == "ok GET /via?q=2"
    [seen] = p.requests
    assert seen.headers["Host"] == f"service.invalid:{p.port}"  # the URL's host, not the address


def test_url_option_missing_is_refused_at_connect(host):
    client(host)
    r = host.call("connect 1 127.0.0.1 80")
    assert r["result"] == "error" and "SO_HTTP_URL" in r["error"], r


@pytest.mark.parametrize("body, expected", [
    ("héllo wörld", "héllo wörld".encode()),
    ({"buffer": [0, 1, 2, 255, 13, 10]}, bytes([0, 1, 2, 255, 13, 10])),
])
def test_body_option(host, peers, body, expected):
    p = peers()
    client(host, SO_HTTP_METHOD="POST", SO_HTTP_BODY=body)
    connect(host, 1, p.url("/post"))
    assert response(host)["status"] == 200
    [seen] = p.requests
    assert seen.method == "POST"
    assert seen.headers["Content-Length"] == str(len(expected))
    assert seen.body == expected


def test_headers_option_is_sent(host, peers):
    p = peers()
    client(host, SO_HTTP_HEADERS={"X-Api-Key": "k123", "Accept": "application/json",
                                  "Authorization": "Bearer t0k"})
    connect(host, 1, p.url("/h"))
    response(host)
    [seen] = p.requests
    assert seen.headers["X-Api-Key"] == "k123"
    assert seen.headers["Authorization"] == "Bearer t0k"
    assert seen.headers.get_all("Accept") == ["application/json"]  # replaces the default, once


@pytest.mark.parametrize("ua, expected", [(None, "FluffOS/3.0"), ("MyMud/2.1", "MyMud/2.1"), ("", None)])
def test_user_agent_option(host, peers, ua, expected):
    p = peers()
    opts = {} if ua is None else {"SO_HTTP_USER_AGENT": ua}
    client(host, **opts)
    if ua is None:
        assert host.ok("get 1 SO_HTTP_USER_AGENT")["value"] == "FluffOS/3.0"
    connect(host, 1, p.url("/ua"))
    response(host)
    [seen] = p.requests
    assert seen.headers.get_all("User-Agent") == ([expected] if expected else None)


# ---- more requests on one connection ----------------------------------------


def test_second_request_by_write_uses_the_same_connection(host, peers):
    p = peers()
    client(host)
    connect(host, 1, p.url("/first"))
    assert response(host)["body"] == "ok GET /first"
    req = {"method": "post", "path": "/second?n=2", "headers": {"X-Second": "yes"},
           "body": "two bytes?"}
    host.ok("write 1 " + json.dumps(req))
    r = response(host)
    assert r["body"] == "ok POST /second?n=2" and r["url"] == p.url("/second?n=2")
    host.ok("write 1 " + json.dumps({"url": p.url("/third"), "body": {"buffer": [1, 2, 3]},
                                     "method": "PUT"}))
    assert response(host)["body"] == "ok PUT /third"
    first, second, third = p.requests
    assert (second.method, second.path, second.body) == ("POST", "/second?n=2", b"two bytes?")
    assert second.headers["X-Second"] == "yes"
    assert second.headers["Content-Length"] == "10"
    assert (third.method, third.body) == ("PUT", b"\x01\x02\x03")
    assert len({s.port for s in p.requests}) == 1  # one TCP connection carried all three
    assert host.ok("status 1")["value"]["state"] == "DATA_XFER"  # still open for more


def test_requests_written_back_to_back_are_answered_in_order(host, peers):
    p = peers()
    client(host)
    connect(host, 1, p.url("/0"))
    for i in range(1, 4):
        host.ok("write 1 " + json.dumps({"path": f"/{i}"}))
    bodies = [response(host)["body"] for _ in range(4)]
    assert bodies == [f"ok GET /{i}" for i in range(4)]
    assert [s.path for s in p.requests] == ["/0", "/1", "/2", "/3"]
    assert len({s.port for s in p.requests}) == 1


# ---- response framing -------------------------------------------------------


def chunked(h, seen):
    h.send_response(200)
    h.send_header("Transfer-Encoding", "chunked")
    h.send_header("Content-Type", "text/plain")
    h.end_headers()
    for part in (b"hello ", b"chunked" * 1000, b" world"):
        h.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
        h.wfile.flush()
    h.wfile.write(b"0\r\nX-Trailer: t\r\n\r\n")


def test_chunked_response(host, peers):
    p = peers({"/chunked": chunked})
    client(host)
    connect(host, 1, p.url("/chunked"))
    r = response(host)
    assert r["body"] == "hello " + "chunked" * 1000 + " world"
    assert r["headers"]["transfer-encoding"] == "chunked"
    # The framing ended exactly at the last chunk: the connection carries another request.
    host.ok('write 1 {"path": "/chunked"}')
    assert response(host)["body"] == r["body"]
    assert len({s.port for s in p.requests}) == 1


def test_content_length_responses_back_to_back(host, peers):
    sizes = {"/a": 0, "/b": 1, "/c": 100000}
    routes = {path: (lambda n: lambda h, s: send(h, 200, b"x" * n))(n) for path, n in sizes.items()}
    p = peers(routes)
    client(host)
    connect(host, 1, p.url("/a"))
    host.ok('write 1 {"path": "/b"}')
    host.ok('write 1 {"path": "/c"}')
    got = [response(host) for _ in range(3)]
    assert [len(r["body"]) for r in got] == [0, 1, 100000]
    assert [r["url"] for r in got] == [p.url(x) for x in ("/a", "/b", "/c")]


def close_delimited(h, seen):
    h.close_connection = True
    h.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nthe body ends when the server closes")


def test_response_ended_by_close_then_close_cb(host, peers):
    before = host.fds()
    p = peers({"/old": close_delimited})
    client(host)
    connect(host, 1, p.url("/old"))
    evs = until_close(host)
    assert [e["event"] for e in evs] == ["read", "close"], evs
    r = evs[0]["data"]
    assert r["body"] == "the body ends when the server closes"
    assert r["version"] == "HTTP/1.0" and r["status"] == 200
    assert_gone(host, before)


def test_connection_close_response_then_close_cb(host, peers):
    before = host.fds()
    p = peers({"/bye": lambda h, s: send(h, 200, "bye", [("Connection", "close")])})
    client(host)
    connect(host, 1, p.url("/bye"))
    evs = until_close(host)
    assert [e["event"] for e in evs] == ["read", "close"], evs
    assert evs[0]["data"]["body"] == "bye"
    assert_gone(host, before)


def test_truncated_response_is_an_error(host, peers):
    def short(h, seen):
        h.close_connection = True
        h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")

    before = host.fds()
    p = peers({"/short": short})
    client(host)
    connect(host, 1, p.url("/short"))
    expect_error(host, 1, before, "9 of 100")


def test_interim_and_bodiless_responses_keep_the_framing(host, peers):
    def interim(h, s):
        h.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n")
        send(h, 200, "after interim")

    def no_content(h, s):
        # 204 and 304 have no body even when they announce a length.
        h.send_response(s.path == "/204" and 204 or 304)
        h.send_header("Content-Length", "20")
        h.end_headers()

    p = peers({"/interim": interim, "/204": no_content, "/304": no_content})
    client(host)
    connect(host, 1, p.url("/interim"))
    for path in ("/204", "/304", "/interim"):
        host.ok("write 1 " + json.dumps({"path": path}))
    got = [response(host) for _ in range(4)]
    assert [(r["status"], r["body"]) for r in got] == [
        (200, "after interim"), (204, ""), (304, ""), (200, "after interim")]
    assert len({s.port for s in p.requests}) == 1


def test_body_larger_than_one_read_round(host, peers):
    # Text, so that the harness prints one JSON string rather than millions
    # of buffer bytes as numbers (slow under valgrind).
    payload = "".join(f"{i:07d}\n" for i in range(300000))  # 2.4 MB: three 1 MiB read rounds
    p = peers({"/big": lambda h, s: send(h, 200, payload)})
    client(host)
    connect(host, 1, p.url("/big"))
    r = response(host, timeout=WAIT * 2)
    assert r["body_is_binary"] == 0 and r["body"] == payload


def test_large_request_body_by_write_fires_the_write_callback(host, peers):
    body = "0123456789abcdef" * (64 * 1024)  # 1 MiB: more than the kernel takes at once
    p = peers(slow_read=0.01, rcvbuf=4096)  # so that the upload cannot finish inside one write
    client(host, SO_SNDBUF=4096)
    connect(host, 1, p.url("/first"))
    response(host)
    r = host.call("write 1 " + json.dumps({"method": "POST", "path": "/upload", "body": body}))
    assert r["ee"] == -29, r  # EECALLBACK: the rest goes out in the background...
    host.event("write", 1, timeout=WAIT * 2)  # ...and the write callback says when it has
    assert response(host, timeout=WAIT * 2)["body"] == "ok POST /upload"
    upload = p.requests[1]
    assert upload.headers["Content-Length"] == str(len(body)) and upload.body == body.encode()


def test_read_timeout_is_not_counted_while_the_body_uploads(host, peers):
    # ~3 s to upload against a 1 s SO_HTTP_READ_TIMEOUT: bytes moving either
    # way are not a silent server.
    p = peers(slow_read=0.05, rcvbuf=4096)
    body = "u" * (1024 * 1024)
    client(host, SO_SNDBUF=4096, SO_HTTP_READ_TIMEOUT=1000, SO_HTTP_METHOD="PUT", SO_HTTP_BODY=body)
    connect(host, 1, p.url("/upload"))
    assert response(host, timeout=WAIT * 2)["body"] == "ok PUT /upload"
    assert p.requests[0].body == body.encode()


def test_queue_limit(host, peers):
    release = threading.Event()
    p = peers({"/hold": lambda h, s: (release.wait(WAIT), send(h, 200, "held"))})
    client(host)
    connect(host, 1, p.url("/hold"))
    for i in range(64):
        host.ok("write 1 " + json.dumps({"path": f"/q{i}"}))
    r = host.call('write 1 {"path": "/one-too-many"}')
    assert r["result"] == "error" and r["ee"] == -17 and "queued" in r["error"], r  # EEWOULDBLOCK
    assert host.ok("status 1")["value"]["requests_queued"] == 65
    release.set()
    got = [response(host)["body"] for _ in range(65)]
    assert got == ["held"] + [f"ok GET /q{i}" for i in range(64)]


def test_max_buffered_bounds_queued_request_bodies(host, peers):
    release = threading.Event()
    p = peers({"/hold": lambda h, s: (release.wait(WAIT), send(h, 200, "held"))})
    client(host, SO_MAX_BUFFERED=4096)
    connect(host, 1, p.url("/hold"))
    host.ok("write 1 " + json.dumps({"method": "POST", "path": "/a", "body": "x" * 3000}))
    r = host.call("write 1 " + json.dumps({"method": "POST", "path": "/b", "body": "y" * 3000}))
    assert r["result"] == "error" and r["ee"] == -17 and "SO_MAX_BUFFERED" in r["error"], r
    release.set()
    assert response(host)["body"] == "held"
    assert response(host)["body"] == "ok POST /a"
    # Nothing waits any more: the same write is taken now.
    host.ok("write 1 " + json.dumps({"method": "POST", "path": "/b", "body": "y" * 3000}))
    assert response(host)["body"] == "ok POST /b"


def test_response_head_over_64_kib_is_refused_in_one_read(host, peers):
    def big(h, seen):
        head = (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000 + b"\r\nContent-Length: 2\r\n\r\nok")
        h.wfile.write(head)
        h.wfile.flush()

    p = peers({"/big": big})
    fds = host.fds()
    client(host)
    connect(host, 1, p.url("/big"))
    expect_error(host, 1, fds, "response head over")


def test_options_of_families_not_built_are_refused(host):
    client(host)
    for name in ("SO_CACHE_ENABLE", "SO_APACHE_PROXY_ENABLE"):
        r = host.call(f"set 1 {name} 1")
        if name == "SO_APACHE_PROXY_ENABLE" and "does not apply" in r.get("error", ""):
            continue  # front-server options are for servers only
        assert r["result"] == "error" and "not available yet" in r["error"], r
        assert host.ok(f"get 1 {name}")["value"] == 0


# ---- redirects --------------------------------------------------------------


def redirect_routes(extra=None):
    def to(status, location):
        return lambda h, s: send(h, status, "moved", [("Location", location)])

    routes = {f"/r{code}": to(code, "/final?from=" + str(code)) for code in (301, 302, 303, 307, 308)}
    routes["/loop"] = to(302, "/loop")
    for i in range(3, 0, -1):
        routes[f"/chain{i}"] = to(302, f"/chain{i - 1}" if i > 1 else "/final")
    routes.update(extra or {})
    return routes


def follow_client(host, **opts):
    client(host, SO_HTTP_FOLLOW_REDIRECTS=1, **opts)


@pytest.mark.parametrize("code", [301, 302, 303])
def test_redirect_turns_post_into_get_without_body(host, peers, code):
    p = peers(redirect_routes())
    follow_client(host, SO_HTTP_METHOD="POST", SO_HTTP_BODY="form=data",
                  SO_HTTP_HEADERS={"Content-Type": "application/x-www-form-urlencoded"})
    connect(host, 1, p.url(f"/r{code}"))
    r = response(host)
    assert r["status"] == 200 and r["redirects"] == 1
    assert r["url"] == p.url(f"/final?from={code}")
    first, final = p.requests
    assert (first.method, first.body) == ("POST", b"form=data")
    assert (final.method, final.path, final.body) == ("GET", f"/final?from={code}", b"")
    assert final.headers["Content-Length"] is None and final.headers["Content-Type"] is None


@pytest.mark.parametrize("code", [307, 308])
def test_redirect_keeps_method_and_body(host, peers, code):
    p = peers(redirect_routes())
    follow_client(host, SO_HTTP_METHOD="POST", SO_HTTP_BODY="form=data")
    connect(host, 1, p.url(f"/r{code}"))
    r = response(host)
    assert r["status"] == 200 and r["redirects"] == 1 and r["url"] == p.url(f"/final?from={code}")
    final = p.requests[1]
    assert (final.method, final.body) == ("POST", b"form=data")
    assert final.headers["Content-Length"] == "9"


@pytest.mark.parametrize("code", [301, 302])
def test_redirect_keeps_put_on_301_and_302(host, peers, code):
    # Only POST turns into GET on 301/302 (as browsers and curl do); a PUT is repeated as is.
    p = peers(redirect_routes())
    follow_client(host, SO_HTTP_METHOD="PUT", SO_HTTP_BODY="doc")
    connect(host, 1, p.url(f"/r{code}"))
    assert response(host)["redirects"] == 1
    assert (p.requests[1].method, p.requests[1].body) == ("PUT", b"doc")


def test_redirect_chain_counts_and_final_url(host, peers):
    p = peers(redirect_routes())
    follow_client(host)
    connect(host, 1, p.url("/chain3"))
    r = response(host)
    assert (r["status"], r["redirects"], r["url"]) == (200, 3, p.url("/final"))
    assert [s.path for s in p.requests] == ["/chain3", "/chain2", "/chain1", "/final"]
    assert len({s.port for s in p.requests}) == 1  # same origin, kept alive: one connection


def test_redirect_loop_stops_at_max_redirects(host, peers):
    before = host.fds()
    p = peers(redirect_routes())
    follow_client(host, SO_HTTP_MAX_REDIRECTS=2)
    connect(host, 1, p.url("/loop"))
    expect_error(host, 1, before, "SO_HTTP_MAX_REDIRECTS", "2")
    assert len(p.requests) == 3  # the request and two redirects followed


def test_cross_origin_redirect_drops_authorization(host, peers):
    p = peers()
    p.routes.update(redirect_routes({
        "/same": lambda h, s: send(h, 302, "", [("Location", p.url("/final-same"))]),
        "/cross": lambda h, s: send(h, 302, "", [("Location", p.url("/final-cross", host="localhost"))]),
    }))
    follow_client(host, SO_HTTP_HEADERS={"Authorization": "Bearer secret", "X-Other": "kept"})
    connect(host, 1, p.url("/same"))
    r = response(host)
    assert r["url"] == p.url("/final-same")
    host.ok('write 1 {"path": "/cross"}')
    r = response(host)
    assert r["url"] == p.url("/final-cross", host="localhost") and r["redirects"] == 1
    by_path = {s.path: s for s in p.requests}
    assert by_path["/final-same"].headers["Authorization"] == "Bearer secret"
    assert by_path["/cross"].headers["Authorization"] == "Bearer secret"
    assert by_path["/final-cross"].headers["Authorization"] is None
    assert by_path["/final-cross"].headers["X-Other"] == "kept"
    assert by_path["/final-cross"].headers["Host"] == f"localhost:{p.port}"


def test_without_follow_the_redirect_itself_is_delivered(host, peers):
    p = peers(redirect_routes())
    client(host)
    assert host.ok("get 1 SO_HTTP_FOLLOW_REDIRECTS")["value"] == 0
    connect(host, 1, p.url("/r302"))
    r = response(host)
    assert (r["status"], r["redirects"], r["url"]) == (302, 0, p.url("/r302"))
    assert r["headers"]["location"] == "/final?from=302" and r["body"] == "moved"
    assert len(p.requests) == 1


def test_same_origin_redirect_through_host_port_address(host, peers):
    # Reached through "host port": a same-origin redirect must go the same way,
    # not to the URL's (unresolvable) host.
    p = peers(redirect_routes())
    url = f"http://service.invalid:{p.port}/chain2"
    follow_client(host, SO_HTTP_URL=url, SO_HTTP_HEADERS={"Connection": "close"})
    connect(host, 1, f"127.0.0.1 {p.port}")
    evs = until_close(host)
    assert evs[0]["event"] == "read" and "error" not in evs[0]["data"], evs
    r = evs[0]["data"]
    assert (r["status"], r["redirects"], r["url"]) == (200, 2, f"http://service.invalid:{p.port}/final")
    assert [s.path for s in p.requests] == ["/chain2", "/chain1", "/final"]


def test_request_queued_behind_a_cross_origin_redirect_stays_home(host, peers):
    release = threading.Event()

    def slow_redirect(h, s):
        release.wait(WAIT)  # answers once the test has queued its second request
        send(h, 302, "", [("Location", other.url("/elsewhere"))])

    home = peers({"/go": slow_redirect})
    other = peers()
    follow_client(host)
    connect(host, 1, home.url("/go"))
    host.ok('write 1 {"path": "/second"}')
    release.set()
    r1, r2 = response(host), response(host)
    assert r1["url"] == other.url("/elsewhere") and r1["body"] == "ok GET /elsewhere"
    assert r2["url"] == home.url("/second") and r2["body"] == "ok GET /second"
    assert [s.path for s in home.requests] == ["/go", "/second"]
    assert [s.path for s in other.requests] == ["/elsewhere"]


# ---- timeouts and connection failures ---------------------------------------


def test_read_timeout(host, silent):
    before = host.fds()
    port = silent.getsockname()[1]
    client(host, SO_HTTP_READ_TIMEOUT=1000)
    connect(host, 1, f"http://127.0.0.1:{port}/never")
    expect_error(host, 1, before, "SO_HTTP_READ_TIMEOUT", "1000 ms")


def test_whole_request_timeout(host, silent):
    before = host.fds()
    port = silent.getsockname()[1]
    client(host, SO_HTTP_TIMEOUT=1000)  # SO_HTTP_READ_TIMEOUT stays 30000
    connect(host, 1, f"http://127.0.0.1:{port}/never")
    expect_error(host, 1, before, "SO_HTTP_TIMEOUT", "1000 ms")


def test_whole_request_timeout_counts_a_trickling_response(host, peers):
    # Bytes keep arriving (so SO_HTTP_READ_TIMEOUT never fires) but the
    # response never completes: SO_HTTP_TIMEOUT ends it.
    stop = threading.Event()

    def trickle(h, s):
        h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
        while not stop.is_set():
            try:
                h.wfile.write(b"x")
            except OSError:
                return
            stop.wait(0.1)  # the peer's pace, not the test's synchronisation

    before = host.fds()
    p = peers({"/slow": trickle})
    client(host, SO_HTTP_TIMEOUT=1500, SO_HTTP_READ_TIMEOUT=5000)
    connect(host, 1, p.url("/slow"))
    try:
        expect_error(host, 1, before, "SO_HTTP_TIMEOUT")
    finally:
        stop.set()


def test_request_the_server_does_not_read_is_closed_after_read_timeout(host):
    # The server answers (a response trickles in, so bytes keep arriving) but never reads the
    # request body: the queued output makes no progress, and SO_HTTP_READ_TIMEOUT (between
    # bytes, either way) closes the connection, although the other direction is alive.
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # accepted connections inherit it
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    stop = threading.Event()
    heads = []

    def serve():
        c, _ = srv.accept()
        c.settimeout(WAIT)
        head = b""
        while b"\r\n\r\n" not in head:
            head += c.recv(1)  # the head only, byte by byte: the body stays unread
        heads.append(head)
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while not stop.is_set():
            try:
                c.sendall(b"1\r\nx\r\n")
            except OSError:
                break
            stop.wait(0.1)  # the peer's pace, not the test's synchronisation
        c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    before = host.fds()
    client(host, SO_SNDBUF=4096, SO_HTTP_READ_TIMEOUT=1000, SO_HTTP_TIMEOUT=300000,
           SO_HTTP_METHOD="POST", SO_HTTP_BODY="b" * 2_000_000)
    connect(host, 1, f"http://127.0.0.1:{srv.getsockname()[1]}/upload")
    try:
        err = expect_error(host, 1, before, "too slow: no write progress for 1000 ms",
                           "SO_HTTP_READ_TIMEOUT", "bytes queued")
        assert err["error_code"] == -18  # EEINTR, as the other deadlines
        assert heads and heads[0].startswith(b"POST /upload HTTP/1.1")
    finally:
        stop.set()
        t.join(WAIT)
        srv.close()


def test_connect_timeout_backlog_full(host):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    filler = socket.socket()
    filler.setblocking(False)
    filler.connect_ex(("127.0.0.1", port))
    _, w, _ = select.select([], [filler], [], 5)
    assert w, "the first connection should fill the backlog"
    before = host.fds()
    try:
        client(host, SO_HTTP_CONNECT_TIMEOUT=1000)
        connect(host, 1, f"http://127.0.0.1:{port}/")
        expect_error(host, 1, before, "SO_HTTP_CONNECT_TIMEOUT", f"127.0.0.1:{port}")
    finally:
        filler.close()
        srv.close()


def test_connect_timeout_covers_a_tls_handshake_that_never_ends(host, silent):
    before = host.fds()
    port = silent.getsockname()[1]
    client(host, mode="HTTPS_CLIENT", SO_HTTP_CONNECT_TIMEOUT=1000, SO_TLS_VERIFY_PEER=0)
    connect(host, 1, f"https://127.0.0.1:{port}/")
    expect_error(host, 1, before, "SO_HTTP_CONNECT_TIMEOUT")


def test_connection_refused(host):
    # Bound but not listening: the kernel answers a SYN with a reset.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    before = host.fds()
    try:
        client(host)
        connect(host, 1, f"http://127.0.0.1:{port}/")
        err = expect_error(host, 1, before, f"127.0.0.1 {port}")
        assert err["error_code"] == -23  # EECONNREFUSED
    finally:
        s.close()


def test_unresolvable_host(host):
    before = host.fds()
    client(host)
    connect(host, 1, "http://no-such-host.invalid/")
    err = expect_error(host, 1, before, "dns:", "no-such-host.invalid", timeout=max(WAIT, 30))
    assert err["error"].startswith("dns:")


def test_server_closing_without_answering_is_an_error(host, peers):
    def hang_up(h, s):
        h.close_connection = True

    before = host.fds()
    p = peers({"/hangup": hang_up})
    client(host)
    connect(host, 1, p.url("/hangup"))
    expect_error(host, 1, before, "without a response")


def test_bad_response_is_an_error(host, peers):
    def garbage(h, s):
        h.close_connection = True
        h.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")

    before = host.fds()
    p = peers({"/garbage": garbage})
    client(host)
    connect(host, 1, p.url("/garbage"))
    expect_error(host, 1, before, "http:")


# ---- a kept-alive connection the server has closed ---------------------------
# The server may close a kept-alive connection at any time (after answering
# without "Connection: close", or when its idle timer fires just as the next
# request arrives). A request that then gets no byte of response back is sent
# again, once, on a new connection: idempotent methods, on every redirect hop.


def hang_up(conn, how):
    """Closes an accepted socket: "fin" (everything read, so close sends FIN) or
    "rst" (SO_LINGER 0: close sends RST). A RST discards what the kernel has not
    sent yet, so it waits (bounded) until the client's kernel has acknowledged
    every byte written."""
    if how == "rst":
        deadline = time.monotonic() + WAIT
        outq = array.array("i", [1])
        while time.monotonic() < deadline:
            fcntl.ioctl(conn.fileno(), termios.TIOCOUTQ, outq)
            if outq[0] == 0:
                break
            threading.Event().wait(0.001)  # the peer kernel's ACK, not our own sync
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class Closer:
    """A bare HTTP/1.1 server on 127.0.0.1 whose every move is scripted.
    `plan(seen)` gets the request (method, path, conn: connection number from 0,
    nth: its number on that connection from 0) and returns
    ("answer", status, body, after) where `after` is "keep", "fin" or "rst", or
    ("drop", how): close without answering. It never sends "Connection: close".
    With `tls` (an SSLContext) it speaks HTTPS and closes without close_notify."""

    def __init__(self, plan, tls=None):
        self.plan = plan
        self.tls = tls
        self.requests = []  # (conn, nth, method, path)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path="/", host="127.0.0.1"):
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def _accept(self):
        n = 0
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, n), daemon=True).start()
            n += 1

    def _serve(self, conn, n):
        conn.settimeout(WAIT)
        buf = b""
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            for nth in range(16):
                while b"\r\n\r\n" not in buf:
                    got = conn.recv(65536)
                    if not got:
                        return conn.close()
                    buf += got
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                while len(buf) < length:
                    got = conn.recv(65536)
                    if not got:
                        return conn.close()
                    buf += got
                buf = buf[length:]
                seen = {"method": method, "path": path, "conn": n, "nth": nth}
                self.requests.append((n, nth, method, path))
                act = self.plan(seen)
                if act[0] == "drop":
                    return hang_up(conn, act[1])
                _, status, body, after = act
                body = body.encode()
                extra = f"Location: {body.decode()}\r\n" if status in (301, 302, 303, 307, 308) else ""
                if method == "HEAD":
                    body_out = b""
                else:
                    body_out = body
                conn.sendall(f"HTTP/1.1 {status} X\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
                             .encode() + body_out)
                if after != "keep":
                    return hang_up(conn, after)
        except OSError:
            conn.close()

    def stop(self):
        self.stopped.set()
        self.sock.close()


@pytest.fixture
def closers():
    made = []

    def make(plan, tls=None):
        c = Closer(plan, tls)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_redirect_chain_whose_server_closes_after_each_302(host, closers, how):
    # Each hop answers 302 (no "Connection: close") and hangs up, as curl sees
    # it go on: every hop needs a new connection.
    def plan(seen):
        hop = {"/a": "/b", "/b": "/c"}.get(seen["path"])
        if hop:
            return ("answer", 302, hop, how)
        return ("answer", 200, f"done {seen['method']} {seen['path']}", "keep")

    c = closers(plan)
    follow_client(host)
    connect(host, 1, c.url("/a"))
    r = response(host)
    assert (r["status"], r["body"], r["redirects"], r["url"]) == (200, "done GET /c", 2, c.url("/c"))
    # The server read every hop once, each on a connection of its own.
    assert [(n, m, p) for n, _, m, p in c.requests] == [(0, "GET", "/a"), (1, "GET", "/b"),
                                                        (2, "GET", "/c")]


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_redirect_hop_on_a_kept_alive_connection_closed_unanswered_is_sent_again(host, closers, how):
    # The 302 keeps the connection open; the hop sent on it is read and the
    # connection closed without an answer (the server's idle close racing it).
    def plan(seen):
        if seen["path"] == "/a":
            return ("answer", 302, "/b", "keep")
        if seen["conn"] == 0:
            return ("drop", how)
        return ("answer", 200, "done " + seen["path"], "keep")

    c = closers(plan)
    follow_client(host)
    connect(host, 1, c.url("/a"))
    r = response(host)
    assert (r["body"], r["redirects"]) == ("done /b", 1)
    assert [(n, p) for n, _, _, p in c.requests] == [(0, "/a"), (0, "/b"), (1, "/b")]


def idle_close_plan(how):
    """Answers the first request and keeps the connection, then closes it,
    unanswered, when a second request arrives on it; later connections answer."""
    def plan(seen):
        if seen["conn"] == 0 and seen["nth"] == 1:
            return ("drop", how)
        return ("answer", 200, f"ok {seen['method']} {seen['path']}", "keep")
    return plan


@pytest.mark.parametrize("how", ["fin", "rst"])
@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"])
def test_idempotent_request_on_a_connection_closed_meanwhile_is_sent_again(host, closers, method,
                                                                           how):
    c = closers(idle_close_plan(how))
    client(host)
    connect(host, 1, c.url("/one"))
    assert response(host)["body"] == "ok GET /one"
    host.ok("write 1 " + json.dumps({"method": method, "path": "/two", "body": "x" * (method == "PUT")}))
    r = response(host)
    assert r["status"] == 200
    assert r["body"] == ("" if method == "HEAD" else f"ok {method} /two")
    assert [(n, m, p) for n, _, m, p in c.requests] == [(0, "GET", "/one"), (0, method, "/two"),
                                                        (1, method, "/two")]
    host.ok('write 1 {"path": "/three"}')  # the new connection carries on
    assert response(host)["body"] == "ok GET /three"
    assert c.requests[-1] == (1, 1, "GET", "/three")


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_request_is_sent_again_only_once(host, closers, how):
    def plan(seen):
        if seen["path"] == "/two":
            return ("drop", how)  # on the new connection too
        return ("answer", 200, "ok", "keep")

    before = host.fds()
    c = closers(plan)
    client(host)
    connect(host, 1, c.url("/one"))
    response(host)
    host.ok('write 1 {"path": "/two"}')
    expect_error(host, 1, before, "http:" if how == "fin" else "")
    assert [(n, p) for n, _, _, p in c.requests] == [(0, "/one"), (0, "/two"), (1, "/two")]


@pytest.mark.parametrize("how", ["fin", "rst"])
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_non_idempotent_request_on_a_connection_closed_meanwhile_is_not_sent_again(
        host, closers, method, how):
    # The server may have acted on it: the error is LPC's to handle.
    before = host.fds()
    c = closers(idle_close_plan(how))
    client(host)
    connect(host, 1, c.url("/one"))
    response(host)
    host.ok("write 1 " + json.dumps({"method": method, "path": "/two", "body": "once"}))
    err = expect_error(host, 1, before)
    if how == "fin":
        assert "without a response" in err["error"], err
    assert [(n, m, p) for n, _, m, p in c.requests] == [(0, "GET", "/one"), (0, method, "/two")]


# ---- bad writes -------------------------------------------------------------


@pytest.mark.parametrize("value, words", [
    ('{"path": "/x", "colour": "red"}', ["unknown request key", "colour"]),
    ('"GET / HTTP/1.1\\r\\n\\r\\n"', ["request mapping"]),
    ('{"url": "http://127.0.0.1:1/other-origin"}', ["origin"]),
    ('{"path": "no-slash"}', ["path"]),
    ('{"method": "GE T", "path": "/"}', ["method"]),
    ('{"path": "/", "body": 12}', ["body"]),
    ('{"path": "/", "headers": {"X": "a\\r\\nEvil: 1"}}', []),
])
def test_bad_write_is_refused_and_the_connection_keeps_working(host, peers, value, words):
    p = peers()
    client(host)
    connect(host, 1, p.url("/first"))
    response(host)
    r = host.call(f"write 1 {value}")
    assert r["result"] == "error" and r["ee"] < 0 and r["error"], r
    for w in words:
        assert w in r["error"], (w, r)
    host.ok('write 1 {"path": "/after"}')
    assert response(host)["body"] == "ok GET /after"
    assert [s.path for s in p.requests] == ["/first", "/after"]  # nothing bad reached the wire


def test_write_with_an_address_is_refused(host, peers):
    p = peers()
    client(host)
    connect(host, 1, p.url("/"))
    response(host)
    r = host.call(f'write 1 {{"path": "/x"}} 127.0.0.1 {p.port}')
    assert r["result"] == "error" and "url" in r["error"], r


def test_second_connect_is_refused(host, peers):
    p = peers()
    client(host)
    connect(host, 1, p.url("/"))
    r = host.call(f"connect 1 {p.url('/')}")
    assert r["result"] == "error" and "socket_write" in r["error"], r
    response(host)


def test_close_by_lpc_releases_everything(host, peers):
    before = host.fds()
    p = peers()
    client(host)
    connect(host, 1, p.url("/"))
    response(host)
    host.ok("close 1")
    assert_gone(host, before)


def test_idle_connection_closed_by_server_reports_close(host, peers):
    def then_close(h, s):
        send(h, 200, "kept alive, as far as the client knows")
        h.close_connection = True  # ...but the server hangs up once it answered

    before = host.fds()
    p = peers({"/then-close": then_close})
    client(host)
    connect(host, 1, p.url("/then-close"))
    assert response(host)["status"] == 200
    # The server ends the kept-alive connection: close_cb, no error mapping.
    evs = until_close(host)
    assert [e["event"] for e in evs] == ["close"], evs
    assert_gone(host, before)


def test_connection_close_sent_by_the_client_is_honoured(host, peers):
    # The server does not repeat "Connection: close"; the client said it, so
    # it must not send another request on that connection.
    release = threading.Event()
    p = peers({"/once": lambda h, s: (release.wait(WAIT), send(h, 200, "ok GET /once"))})
    client(host, SO_HTTP_HEADERS={"Connection": "close"})
    connect(host, 1, p.url("/once"))
    host.ok('write 1 {"path": "/twice"}')  # queued while /once is unanswered
    release.set()
    assert response(host)["body"] == "ok GET /once"
    assert response(host)["body"] == "ok GET /twice"
    assert [s.path for s in p.requests] == ["/once", "/twice"]
    assert len({s.port for s in p.requests}) == 2  # a new connection for the second


# ---- HTTPS ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    m = tls_material.make(d)

    def run(*args):
        subprocess.run(["openssl", *args], cwd=str(d), check=True, capture_output=True)

    # A client certificate from the same CA, for mutual TLS.
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=unisock test client")
    with open(os.path.join(str(d), "client.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n")
    run("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "client.pem", "-days", "2", "-extfile", "client.ext")
    m["client_cert"] = os.path.join(str(d), "client.pem")
    m["client_key"] = os.path.join(str(d), "client.key")
    return m


def server_ctx(cert, key, version=None, client_ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    return ctx


def test_https_with_test_ca(host, peers, pki):
    p = peers(tls=server_ctx(pki["cert"], pki["key"]))
    client(host, mode="HTTPS_CLIENT", SO_TLS_CA=pki["ca"])
    assert host.ok("get 1 SO_TLS_VERIFY_PEER")["value"] == 1
    connect(host, 1, p.url("/secure", host="localhost"))
    r = response(host)
    assert (r["status"], r["body"]) == (200, "ok GET /secure")
    assert r["url"] == p.url("/secure", host="localhost")
    assert host.ok("status 1")["value"]["tls_version"] in ("TLSv1_3", "TLSv1_2")
    assert p.sni == ["localhost"]  # the URL's host is the server name
    host.ok('write 1 {"path": "/again"}')
    assert response(host)["body"] == "ok GET /again"
    assert len({s.port for s in p.requests}) == 1


def test_https_self_signed_refused_with_an_actionable_message(host, peers, pki):
    before = host.fds()
    p = peers(tls=server_ctx(pki["self_cert"], pki["self_key"]))
    client(host, mode="HTTPS_CLIENT")  # SO_TLS_VERIFY_PEER 1 by default, system roots
    connect(host, 1, p.url("/", host="localhost"))
    err = expect_error(host, 1, before, "localhost", "SO_TLS_VERIFY_PEER", "SO_TLS_CA")
    assert "self-signed" in err["error"] or "unknown issuer" in err["error"], err
    assert p.requests == []


def test_https_without_verification_accepts_self_signed(host, peers, pki):
    p = peers(tls=server_ctx(pki["self_cert"], pki["self_key"]))
    client(host, mode="HTTPS_CLIENT", SO_TLS_VERIFY_PEER=0)
    connect(host, 1, p.url("/insecure"))
    assert response(host)["body"] == "ok GET /insecure"


def test_https_wrong_host_name_is_refused(host, peers, pki):
    before = host.fds()
    p = peers(tls=server_ctx(pki["cert"], pki["key"]))
    # Reached by address, but the URL names a host the certificate does not cover.
    client(host, mode="HTTPS_CLIENT", SO_TLS_CA=pki["ca"],
           SO_HTTP_URL=f"https://wrong.invalid:{p.port}/")
    connect(host, 1, f"127.0.0.1 {p.port}")
    expect_error(host, 1, before, "certificate not valid for host wrong.invalid")
    assert p.sni == ["wrong.invalid"]


# Pinning: SO_TLS_CA holding the server's own self-signed certificate;
# "pin_ca" is CA:TRUE (openssl req -x509's default), "self" CA:FALSE.
@pytest.mark.parametrize("kind", ["pin_ca", "self"])
def test_https_pinned_self_signed_certificate(host, peers, pki, kind):
    p = peers(tls=server_ctx(pki[f"{kind}_cert"], pki[f"{kind}_key"]))
    client(host, mode="HTTPS_CLIENT", SO_TLS_CA=pki[f"{kind}_cert"])
    connect(host, 1, p.url("/pinned", host="localhost"))
    assert response(host)["body"] == "ok GET /pinned"
    assert p.sni == ["localhost"]


@pytest.mark.parametrize("kind", ["pin_ca", "self"])
def test_https_pinned_certificate_still_checks_the_host_name(host, peers, pki, kind):
    before = host.fds()
    p = peers(tls=server_ctx(pki[f"{kind}_cert"], pki[f"{kind}_key"]))
    client(host, mode="HTTPS_CLIENT", SO_TLS_CA=pki[f"{kind}_cert"],
           SO_HTTP_URL=f"https://wrong.invalid:{p.port}/")
    connect(host, 1, f"127.0.0.1 {p.port}")
    expect_error(host, 1, before, "certificate not valid for host wrong.invalid")
    assert p.requests == []


@pytest.mark.parametrize("kind", ["pin_ca", "self"])
def test_https_certificate_sharing_the_pinned_subject_is_refused(host, peers, pki, kind):
    before = host.fds()
    p = peers(tls=server_ctx(pki[f"{kind}_impostor_cert"], pki[f"{kind}_impostor_key"]))
    client(host, mode="HTTPS_CLIENT", SO_TLS_CA=pki[f"{kind}_cert"])
    connect(host, 1, p.url("/", host="localhost"))
    expect_error(host, 1, before, "certificate for localhost is not the one in SO_TLS_CA",
                 "same subject")
    assert p.requests == []


def test_https_pinned_certificate_reached_through_a_redirect(host, peers, pki):
    # Every hop of a redirect chain uses the socket's SO_TLS_CA.
    secure = peers(tls=server_ctx(pki["pin_ca_cert"], pki["pin_ca_key"]))
    first = peers({"/go": lambda h, s: send(h, 302, "", [("Location", secure.url("/there", host="localhost"))])},
                  tls=server_ctx(pki["pin_ca_cert"], pki["pin_ca_key"]))
    client(host, mode="HTTPS_CLIENT", SO_TLS_CA=pki["pin_ca_cert"], SO_HTTP_FOLLOW_REDIRECTS=1)
    connect(host, 1, first.url("/go", host="localhost"))
    r = response(host)
    assert (r["body"], r["redirects"]) == ("ok GET /there", 1)


def test_sni_hostname_option_overrides_the_url_host(host, peers, pki):
    p = peers(tls=server_ctx(pki["cert"], pki["key"]))
    # An IP-address URL sends no SNI of its own; the option names (and verifies) "localhost".
    client(host, mode="HTTPS_CLIENT", SO_TLS_CA=pki["ca"], SO_TLS_SNI_HOSTNAME="localhost")
    connect(host, 1, p.url("/sni"))
    assert response(host)["body"] == "ok GET /sni"
    assert p.sni == ["localhost"]
    assert p.requests[0].headers["Host"] == f"127.0.0.1:{p.port}"  # HTTP still names the URL's host


def test_mutual_tls_presents_the_client_certificate(host, peers, pki):
    p = peers(tls=server_ctx(pki["cert"], pki["key"], client_ca=pki["ca"]))
    client(host, mode="HTTPS_CLIENT", SO_TLS_CA=pki["ca"], SO_TLS_CERT=pki["client_cert"],
           SO_TLS_KEY=pki["client_key"])
    connect(host, 1, p.url("/mtls", host="localhost"))
    assert response(host)["body"] == "ok GET /mtls"
    [info] = p.tls_info
    subject = dict(x[0] for x in info["peer_cert"]["subject"])
    assert subject["commonName"] == "unisock test client"


def test_mutual_tls_without_a_client_certificate_fails(host, peers, pki):
    before = host.fds()
    p = peers(tls=server_ctx(pki["cert"], pki["key"], client_ca=pki["ca"]))
    client(host, mode="HTTPS_CLIENT", SO_TLS_CA=pki["ca"])
    connect(host, 1, p.url("/mtls", host="localhost"))
    expect_error(host, 1, before, "tls:", "SO_TLS_CERT", "SO_TLS_KEY")
    assert p.tls_failed.wait(WAIT), "the server saw no failed handshake"
    assert p.requests == []


@pytest.mark.parametrize("version, name", [(ssl.TLSVersion.TLSv1_2, "TLSv1_2"),
                                           (ssl.TLSVersion.TLSv1_3, "TLSv1_3")])
def test_https_tls_versions(host, peers, pki, version, name):
    p = peers(tls=server_ctx(pki["cert"], pki["key"], version=version))
    client(host, mode="HTTPS_CLIENT", SO_TLS_CA=pki["ca"])
    connect(host, 1, p.url("/v", host="localhost"))
    assert response(host)["body"] == "ok GET /v"
    assert host.ok("status 1")["value"]["tls_version"] == name
    assert [i["version"] for i in p.tls_info] == [name.replace("_", ".")]


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_https_redirect_chain_whose_server_closes_after_each_302(host, closers, pki, how):
    # Over TLS the end comes as "peer closed without close_notify" or a reset.
    def plan(seen):
        hop = {"/a": "/b", "/b": "/c"}.get(seen["path"])
        return ("answer", 302, hop, how) if hop else ("answer", 200, "done", "keep")

    c = closers(plan, tls=server_ctx(pki["cert"], pki["key"]))
    client(host, mode="HTTPS_CLIENT", SO_TLS_CA=pki["ca"], SO_HTTP_FOLLOW_REDIRECTS=1)
    connect(host, 1, c.url("/a", host="localhost"))
    r = response(host)
    assert (r["body"], r["redirects"]) == ("done", 2)
    assert [(n, p) for n, _, _, p in c.requests] == [(0, "/a"), (1, "/b"), (2, "/c")]


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_https_request_on_a_connection_closed_meanwhile_is_sent_again(host, closers, pki, how):
    c = closers(idle_close_plan(how), tls=server_ctx(pki["cert"], pki["key"]))
    client(host, mode="HTTPS_CLIENT", SO_TLS_CA=pki["ca"])
    connect(host, 1, c.url("/one", host="localhost"))
    assert response(host)["body"] == "ok GET /one"
    host.ok('write 1 {"path": "/two"}')
    assert response(host)["body"] == "ok GET /two"
    assert [(n, p) for n, _, _, p in c.requests] == [(0, "/one"), (0, "/two"), (1, "/two")]


def test_https_connection_close_response(host, peers, pki):
    # Python's ssl closes without close_notify; a complete, length-framed
    # response must still be delivered before close_cb.
    before = host.fds()
    p = peers({"/bye": lambda h, s: send(h, 200, "bye", [("Connection", "close")])},
              tls=server_ctx(pki["cert"], pki["key"]))
    client(host, mode="HTTPS_CLIENT", SO_TLS_CA=pki["ca"])
    connect(host, 1, p.url("/bye", host="localhost"))
    evs = until_close(host)
    assert [e["event"] for e in evs] == ["read", "close"], evs
    assert evs[0]["data"]["body"] == "bye"
    assert_gone(host, before)


def test_https_client_refuses_a_redirect_to_http(host, peers, pki):
    before = host.fds()
    plain = peers()
    p = peers({"/down": lambda h, s: send(h, 302, "", [("Location", plain.url("/plain"))])},
              tls=server_ctx(pki["cert"], pki["key"]))
    client(host, mode="HTTPS_CLIENT", SO_TLS_CA=pki["ca"], SO_HTTP_FOLLOW_REDIRECTS=1)
    connect(host, 1, p.url("/down", host="localhost"))
    expect_error(host, 1, before, "redirect from https", plain.url("/plain"))
    assert plain.requests == []


def test_http_client_redirected_to_https_verifies(host, peers, pki):
    before = host.fds()
    secure = peers(tls=server_ctx(pki["self_cert"], pki["self_key"]))
    p = peers({"/up": lambda h, s: send(h, 301, "", [("Location", secure.url("/s", host="localhost"))])})
    client(host, SO_HTTP_FOLLOW_REDIRECTS=1)
    connect(host, 1, p.url("/up"))
    expect_error(host, 1, before, "tls:", "localhost", "SO_TLS_VERIFY_PEER")
    assert secure.requests == []


def test_client_certificate_without_key_is_refused_at_connect(host, pki):
    client(host, mode="HTTPS_CLIENT", SO_TLS_CERT=pki["client_cert"])
    r = host.call("connect 1 https://localhost:1/")
    assert r["result"] == "error" and "SO_TLS_KEY" in r["error"], r


def test_http_client_refuses_an_https_url(host):
    client(host)
    r = host.call("connect 1 https://127.0.0.1:1/")
    assert r["result"] == "error" and "HTTPS_CLIENT" in r["error"], r
    assert host.ok("status 1")["value"]["state"] != "DATA_XFER"


def test_https_client_refuses_an_http_url(host):
    client(host, mode="HTTPS_CLIENT")
    r = host.call("connect 1 http://127.0.0.1:1/")
    assert r["result"] == "error" and "HTTP_CLIENT" in r["error"], r
