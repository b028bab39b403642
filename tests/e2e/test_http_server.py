"""HTTP_SERVER / HTTPS_SERVER (modes 10, 12) through the harness against real peers:
curl, wrk, Python sockets and ssl, openssl (certificates).

The contract is callbacks.md "HTTP / HTTPS / REST server" and options.md (options 3/4,
15-17, 100, 104, 109 and the server limits). Every wait is bounded; nothing sleeps for
synchronisation: tests wait on harness events or on socket reads with timeouts.
"""
import json
import os
import re
import select
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

WRAPPED = bool(os.environ.get("UNISOCK_E2E_WRAP"))  # under valgrind: slow, skip the load tests
EEWOULDBLOCK, EECALLBACK, EEBADDATA = -17, -29, -32
REQUEST_KEYS = {"method", "uri", "path", "query", "query_params", "version", "headers", "body",
                "body_is_binary", "addr", "scheme", "host", "request_id"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return tls_material.make(tmp_path_factory.mktemp("pki"))


# ---- helpers -----------------------------------------------------------------------------

def server(host, sid=1, mode="HTTP_SERVER", options=(), first_id=100):
    """A listening HTTP server socket `sid` with autoaccept; returns its port."""
    escaped = [o.replace("{", "{{").replace("}", "}}") for o in options]
    port = host.listen_port(sid, mode, extra=["set {id} " + o for o in escaped])
    host.ok(f"autoaccept {sid} {first_id}")
    return port


def tls_options(pki):
    return ["SO_TLS_CERT " + json.dumps(pki["cert"]), "SO_TLS_KEY " + json.dumps(pki["key"])]


def write(host, sid, value):
    """socket_write of a reply; returns the result (ok, or EECALLBACK when output waits)."""
    r = host.call(f"write {sid} " + json.dumps(value))
    assert r["ee"] in (1, EECALLBACK), r
    return r


def request_on(host, sid=None, timeout=10):
    """The next request mapping (and the id it arrived on)."""
    e = host.event("read", sid, timeout=timeout)
    return e["socket"], e["data"]


class Peer:
    """A program run in the background (curl, wrk); .wait() returns its CompletedProcess."""

    def __init__(self, args, input=None, timeout=40):
        self.args = args
        self.result = None
        self.error = None

        def run():
            try:
                self.result = subprocess.run(args, input=input, capture_output=True, timeout=timeout)
            except Exception as e:  # reported by wait()
                self.error = e

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def wait(self, timeout=45):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.args[0]} did not finish"
        if self.error:
            raise self.error
        return self.result


def curl(*args, input=None):
    return Peer(["curl", "-sS", "-v", "--max-time", "30", *args], input=input)


class Resp:
    def __init__(self, version, status, reason, headers, body):
        self.version, self.status, self.reason = version, status, reason
        self.headers, self.body = headers, body

    def header(self, name):
        vals = [v for n, v in self.headers if n == name.lower()]
        return vals[0] if vals else None

    def __repr__(self):
        return f"<{self.version} {self.status} {self.headers} {self.body[:200]!r}>"


class Client:
    """A raw TCP client that reads whole HTTP/1.x responses, every read bounded."""

    def __init__(self, port, timeout=10, rcvbuf=None, ca=None):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.s.connect(("127.0.0.1", port))
        if ca:  # HTTPS, verifying the server against the test CA
            self.s = ssl.create_default_context(cafile=ca).wrap_socket(self.s, server_hostname="localhost")
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError(f"connection closed; have {self.buf[:300]!r}")
        self.buf += d

    def _until(self, marker):
        while marker not in self.buf:
            self._fill()
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, head_only=False):
        head = self._until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")[:-2]
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        status = int(status)
        headers = []
        for line in lines[1:]:
            n, v = line.split(":", 1)
            headers.append((n.strip().lower(), v.strip()))
        r = Resp(version, status, reason, headers, b"")
        if head_only or status < 200 or status in (204, 304):
            return r
        if (r.header("transfer-encoding") or "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    while self._until(b"\r\n") != b"\r\n":
                        pass
                    break
                body += self._exact(size)
                assert self._exact(2) == b"\r\n"
            r.body = body
        elif r.header("content-length") is not None:
            r.body = self._exact(int(r.header("content-length")))
        else:
            while True:
                try:
                    self._fill()
                except EOFError:
                    break
            r.body, self.buf = self.buf, b""
        return r

    def at_eof(self):
        """True when the server closed (EOF or reset) with nothing more sent; bounded by the timeout."""
        try:
            d = self.s.recv(65536)
        except ConnectionResetError:
            return True
        assert d == b"" and self.buf == b"", f"unexpected bytes after the response: {self.buf + d!r}"
        return True

    def close(self):
        self.s.close()


def ask(c, path="/", extra=b""):
    c.send(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n")


def test_get_request_mapping_is_exact(host):
    port = server(host)
    p = curl("-H", "X-Multi: one", "-H", "X-Multi: two", "-H", "X-Case-Test: Yes",
             "-w", "\n%{local_port}", f"http://localhost:{port}/dir/a%20b?x=1&y=two+words&x=2&x=3&flag")
    sid, req = request_on(host)
    write(host, sid, {"status": 200, "body": "got it"})
    out = p.wait()
    assert out.returncode == 0, out.stderr
    body, local_port = out.stdout.decode().rsplit("\n", 1)
    assert body == "got it"
    assert set(req) == REQUEST_KEYS
    assert req["method"] == "GET"
    assert req["uri"] == "/dir/a%20b?x=1&y=two+words&x=2&x=3&flag"
    assert req["path"] == "/dir/a b"
    assert req["query"] == "x=1&y=two+words&x=2&x=3&flag"
    assert req["query_params"] == {"x": ["1", "2", "3"], "y": "two words", "flag": ""}
    assert req["version"] == "HTTP/1.1"
    h = req["headers"]
    assert all(k == k.lower() for k in h), h
    assert h["x-multi"] == ["one", "two"] and h["x-case-test"] == "Yes"
    assert h["host"] == f"localhost:{port}" and h["user-agent"].startswith("curl/")
    assert req["body"] == "" and req["body_is_binary"] == 0
    assert req["addr"] == f"127.0.0.1 {local_port}"
    assert req["scheme"] == "http" and req["host"] == "localhost" and req["request_id"] == 1


def test_post_with_body(host, tmp_path):
    port = server(host)
    p = curl("-d", "name=ünï&n=1", f"http://127.0.0.1:{port}/form")
    sid, req = request_on(host)
    write(host, sid, "posted")
    assert p.wait().stdout == b"posted"
    assert req["method"] == "POST" and req["path"] == "/form"
    assert req["body"] == "name=ünï&n=1" and req["body_is_binary"] == 0
    assert req["headers"]["content-length"] == str(len("name=ünï&n=1".encode()))
    assert req["headers"]["content-type"] == "application/x-www-form-urlencoded"

    raw = bytes([0, 255, 254, 1, 128]) * 10
    f = tmp_path / "bin"
    f.write_bytes(raw)
    p = curl("--data-binary", f"@{f}", "-H", "Content-Type: application/octet-stream",
             f"http://127.0.0.1:{port}/bin")
    sid, req = request_on(host)
    write(host, sid, "bin ok")
    assert p.wait().stdout == b"bin ok"
    assert req["body_is_binary"] == 1 and bytes(req["body"]["buffer"]) == raw


def test_chunked_upload(host, tmp_path):
    port = server(host)
    data = "".join(f"line {i} of the chunked upload\n" for i in range(20000))  # ~600 KB
    f = tmp_path / "up.txt"
    f.write_text(data)
    p = curl("-H", "Transfer-Encoding: chunked", "--data-binary", f"@{f}", f"http://127.0.0.1:{port}/up")
    sid, req = request_on(host, timeout=30)
    write(host, sid, {"status": 201, "body": str(len(req["body"]))})
    out = p.wait()
    assert "Transfer-Encoding: chunked" in out.stderr.decode()
    assert req["headers"]["transfer-encoding"] == "chunked" and "content-length" not in req["headers"]
    assert req["body"] == data
    assert out.stdout == str(len(data)).encode()


def test_keep_alive_reuses_the_connection(host):
    port = server(host)
    p = curl(f"http://127.0.0.1:{port}/first", f"http://127.0.0.1:{port}/second")
    sid1, r1 = request_on(host)
    write(host, sid1, "one")
    sid2, r2 = request_on(host)
    write(host, sid2, "two")
    out = p.wait()
    assert out.returncode == 0 and out.stdout == b"onetwo", out.stderr
    assert "Re-using existing connection" in out.stderr.decode()
    assert sid1 == sid2 == 100
    assert (r1["path"], r1["request_id"]) == ("/first", 1)
    assert (r2["path"], r2["request_id"]) == ("/second", 2)


def test_absolute_form_target(host):
    """RFC 9112 3.2.2: the authority of an absolute-form target wins over the Host header."""
    port = server(host)
    c = Client(port)
    c.send(b"GET http://example.test:8080/p/q?x=1 HTTP/1.1\r\nHost: other.test\r\n\r\n")
    sid, req = request_on(host)
    assert (req["host"], req["path"], req["query"]) == ("example.test", "/p/q", "x=1")
    assert req["uri"] == "http://example.test:8080/p/q?x=1"
    write(host, sid, "ok")
    assert c.response().body == b"ok"
    c.close()


def test_head_sends_no_body_but_the_length(host):
    port = server(host)
    c = Client(port)
    c.send(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\nGET /g HTTP/1.1\r\nHost: t\r\n\r\n")
    sid, req = request_on(host)
    assert req["method"] == "HEAD"
    write(host, sid, "hello")
    sid, req = request_on(host)
    assert req["method"] == "GET"
    write(host, sid, "world!")
    head = c.response(head_only=True)
    assert head.status == 200 and head.header("content-length") == "5"
    # The next bytes on the wire are the GET's response: no body followed the HEAD's.
    get = c.response()
    assert get.status == 200 and get.body == b"world!"
    c.close()


def test_expect_100_continue(host):
    port = server(host)
    c = Client(port)
    c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
    interim = c.response()  # waits (bounded) for the 100 before any body byte is sent
    assert (interim.version, interim.status) == ("HTTP/1.1", 100)
    c.send(b"hello there")
    sid, req = request_on(host)
    assert req["body"] == "hello there" and req["headers"]["expect"] == "100-continue"
    write(host, sid, "continued")
    assert c.response().body == b"continued"
    c.close()

    # curl too: it waits for the 100 before sending the body.
    p = curl("-H", "Expect: 100-continue", "--expect100-timeout", "20", "-d", "x" * 2000,
             f"http://127.0.0.1:{port}/curl")
    sid, req = request_on(host)
    write(host, sid, "ok")
    out = p.wait()
    assert "< HTTP/1.1 100 Continue" in out.stderr.decode()
    assert req["body"] == "x" * 2000 and out.stdout == b"ok"


@pytest.mark.parametrize("version,curl_flags", [
    ("TLSv1.2", ["--tlsv1.2", "--tls-max", "1.2"]),
    ("TLSv1.3", ["--tlsv1.3"]),
])
def test_https_with_curl(host, pki, version, curl_flags):
    port = server(host, mode="HTTPS_SERVER", options=tls_options(pki))
    p = curl("--cacert", pki["ca"], *curl_flags, f"https://localhost:{port}/secure?a=1")
    sid, req = request_on(host)
    assert req["scheme"] == "https" and req["path"] == "/secure" and req["host"] == "localhost"
    status = host.ok(f"status {sid}")["value"]
    assert status["tls_version"] == version.replace(".", "_")
    write(host, sid, {"json": {"secure": 1}})
    out = p.wait()
    err = out.stderr.decode()
    assert out.returncode == 0, err
    assert json.loads(out.stdout) == {"secure": 1}
    assert f"SSL connection using {version}" in err
    assert "ALPN: server accepted http/1.1" in err


def test_http10_gets_a_10_response_and_close(host):
    port = server(host)
    p = curl("-0", f"http://127.0.0.1:{port}/old")
    sid, req = request_on(host)
    assert req["version"] == "HTTP/1.0"
    write(host, sid, "old school")
    host.event("close", sid)  # the server ends the connection after the reply
    out = p.wait()
    err = out.stderr.decode()
    assert out.stdout == b"old school"
    assert "< HTTP/1.0 200 OK" in err and "< Connection: close" in err


# ---- replies -------------------------------------------------------------------------------

def test_reply_shapes(host):
    port = server(host)
    c = Client(port)

    ask(c, "/mapping")
    sid, _ = request_on(host)
    write(host, sid, {"status": 201, "headers": {"X-Thing": "a", "Location": "/x/1"}, "body": "made"})
    r = c.response()
    assert (r.version, r.status, r.reason) == ("HTTP/1.1", 201, "Created")
    assert r.header("x-thing") == "a" and r.header("location") == "/x/1" and r.body == b"made"
    assert r.header("content-length") == "4"
    assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", r.header("date"))

    ask(c, "/json")
    sid, _ = request_on(host)
    write(host, sid, {"json": {"list": [1, 2.5, "three"], "nested": {"k": "v"}}})
    r = c.response()
    assert r.status == 200 and r.header("content-type") == "application/json"
    assert json.loads(r.body) == {"list": [1, 2.5, "three"], "nested": {"k": "v"}}

    ask(c, "/binary")
    sid, _ = request_on(host)
    raw = bytes(range(256))
    write(host, sid, {"status": 200, "body": {"buffer": list(raw)}})
    r = c.response()
    assert r.body == raw and r.header("content-type") == "application/octet-stream"

    ask(c, "/bare-buffer")
    sid, _ = request_on(host)
    write(host, sid, {"buffer": [1, 2, 3, 250]})
    r = c.response()
    assert r.status == 200 and r.body == bytes([1, 2, 3, 250])
    assert r.header("content-type") == "application/octet-stream"

    ask(c, "/plain")
    sid, _ = request_on(host)
    write(host, sid, "just text")
    r = c.response()
    assert r.status == 200 and r.body == b"just text"
    assert r.header("content-type").startswith("text/plain")
    c.close()


def test_streamed_reply_is_chunked(host):
    port = server(host)
    p = curl(f"http://127.0.0.1:{port}/stream")
    sid, _ = request_on(host)
    write(host, sid, {"status": 200, "stream": 1, "headers": {"Content-Type": "text/event-stream"}})
    write(host, sid, "first,")
    write(host, sid, {"buffer": list(b"second,")})
    write(host, sid, "third")
    write(host, sid, {"end": 1})
    out = p.wait()
    err = out.stderr.decode()
    assert out.returncode == 0, err
    assert out.stdout == b"first,second,third"
    assert "< Transfer-Encoding: chunked" in err and "Content-Length" not in err
    assert "left intact" in err  # the stream ended cleanly and the connection stays usable


def test_streamed_reply_to_http10_is_raw_then_close(host):
    """HTTP/1.0 has no chunked coding: the stream goes out as it is and the close ends it."""
    port = server(host)
    c = Client(port)
    c.send(b"GET /old-stream HTTP/1.0\r\n\r\n")
    sid, _ = request_on(host)
    write(host, sid, {"stream": 1})
    write(host, sid, "abc")
    write(host, sid, {"end": 1, "body": "def"})
    r = c.response()
    assert (r.version, r.status) == ("HTTP/1.0", 200)
    assert r.header("transfer-encoding") is None and r.header("content-length") is None
    assert r.header("connection") == "close" and r.body == b"abcdef"  # read until EOF
    host.event("close", sid)
    c.close()


def test_listener_headers_are_added_to_every_response(host):
    port = server(host, options=['SO_HTTP_HEADERS {"X-Powered-By":"unisock","X-Frame-Options":"DENY"}'])
    c = Client(port)
    ask(c, "/a")
    sid, _ = request_on(host)
    assert host.ok(f"get {sid} SO_HTTP_HEADERS")["value"]["X-Powered-By"] == "unisock"  # inherited
    write(host, sid, "a")
    r = c.response()
    assert r.header("x-powered-by") == "unisock" and r.header("x-frame-options") == "DENY"
    ask(c, "/b")
    sid, _ = request_on(host)
    write(host, sid, {"json": [1], "headers": {"X-Frame-Options": "SAMEORIGIN"}})
    r = c.response()
    assert r.header("x-powered-by") == "unisock"
    assert [v for n, v in r.headers if n == "x-frame-options"] == ["SAMEORIGIN"]  # the reply wins
    ask(c, "/c")
    sid, _ = request_on(host)
    write(host, sid, {"stream": 1})
    write(host, sid, {"end": 1, "body": "streamed"})
    r = c.response()
    assert r.header("x-powered-by") == "unisock" and r.body == b"streamed"
    c.close()


def test_listener_headers_cannot_misframe_responses(host):
    """Content-Length / Transfer-Encoding in SO_HTTP_HEADERS would lie about every body: ignored."""
    port = server(host, options=['SO_HTTP_HEADERS {"Content-Length":"5","Transfer-Encoding":"chunked",'
                                 '"X-Default":"d"}'])
    c = Client(port)
    ask(c, "/a")
    sid, _ = request_on(host)
    write(host, sid, "hello world")
    r = c.response()
    assert r.body == b"hello world" and r.header("content-length") == "11"
    assert r.header("transfer-encoding") is None and r.header("x-default") == "d"
    ask(c, "/b")  # the connection is still in step
    sid, _ = request_on(host)
    write(host, sid, {"stream": 1})
    write(host, sid, {"end": 1, "body": "streamed"})
    r = c.response()
    assert r.body == b"streamed" and r.header("content-length") is None
    assert [v for n, v in r.headers if n == "transfer-encoding"] == ["chunked"]
    c.close()


def test_listener_connection_close_closes(host):
    port = server(host, options=['SO_HTTP_HEADERS {"Connection":"close"}'])
    c = Client(port)
    ask(c)
    sid, _ = request_on(host)
    write(host, sid, "bye")
    r = c.response()
    assert r.body == b"bye" and r.header("connection") == "close"
    assert c.at_eof()  # and the server does close, as the response said
    host.event("close", sid)
    c.close()


def test_bad_replies_are_refused_and_the_connection_survives(host):
    port = server(host)
    c = Client(port)
    ask(c, "/x")
    sid, _ = request_on(host)
    for bad, why in [({"status": 99}, "200..599"),
                     ({"headers": {"X-Bad": "a\r\nInjected: yes"}}, "CR"),
                     ({"headers": {"Bad Name": "v"}}, "name"),
                     ({"status": 200, "bogus": 1}, "unknown reply key"),
                     (42, "mapping, string or buffer")]:
        r = host.call(f"write {sid} " + json.dumps(bad))
        assert r["ee"] == EEBADDATA and why in r["error"], (bad, r)
    write(host, sid, {"status": 202, "body": "fine"})
    r = c.response()
    assert r.status == 202 and r.body == b"fine"
    assert r.header("injected") is None
    ask(c, "/again")  # and the connection still serves
    sid2, _ = request_on(host)
    assert sid2 == sid
    write(host, sid, "again")
    assert c.response().body == b"again"
    r = host.call(f'write {sid} "one too many"')  # every request has had its reply
    assert r["ee"] == EEBADDATA and "no request" in r["error"], r
    c.close()


def test_pipelined_requests_are_answered_in_order(host):
    port = server(host)
    c = Client(port)
    c.send(b"".join(b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in (1, 2, 3)))
    got = [request_on(host) for _ in range(3)]  # all three arrive before any reply
    assert [r["path"] for _, r in got] == ["/1", "/2", "/3"]
    assert [r["request_id"] for _, r in got] == [1, 2, 3]
    sid = got[0][0]
    assert all(s == sid for s, _ in got)
    for i in (1, 2, 3):
        write(host, sid, f"reply {i}")
    assert [c.response().body for _ in range(3)] == [b"reply 1", b"reply 2", b"reply 3"]
    c.close()


# ---- abuse ---------------------------------------------------------------------------------

def many_headers(n, size):
    return b"".join(b"X-H%d: %s\r\n" % (i, b"v" * size) for i in range(n))


ABUSE = {
    "cl_and_te": (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"0\r\n\r\n", 400),
    "differing_cl": (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    "bad_chunk_size": (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n",
                       400),
    "obs_fold": (b"GET / HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n  b\r\n\r\n", 400),
    "bare_lf": (b"GET / HTTP/1.1\nHost: t\n\n", 400),
    "bare_lf_in_field": (b"GET / HTTP/1.1\r\nHost: t\nX-A: 1\r\n\r\n", 400),
    "header_block_over_16k": (b"GET / HTTP/1.1\r\nHost: t\r\n" + many_headers(20, 1000) + b"\r\n", 431),
    "header_block_over_16k_unfinished": (b"GET / HTTP/1.1\r\nHost: t\r\n" + many_headers(20, 1000), 431),
    "request_line_over_8k": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    "over_100_headers": (b"GET / HTTP/1.1\r\nHost: t\r\n" + many_headers(100, 1) + b"\r\n", 431),
    "body_over_8m": (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 9000000\r\n\r\n", 413),
    "chunk_over_8m": (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n900000\r\n", 413),
}


@pytest.mark.parametrize("case", list(ABUSE))
def test_abuse_is_rejected_while_others_are_served(host, case):
    payload, status = ABUSE[case]
    port = server(host)
    host.ok('autoreply all "served"')
    normal = Client(port)  # id 100
    ask(normal)
    assert normal.response().body == b"served"
    bad = Client(port)  # id 101
    bad.send(payload)
    ask(normal)  # served meanwhile
    assert normal.response().body == b"served"
    r = bad.response()
    assert r.status == status, r
    assert r.header("connection") == "close" and r.body.startswith(str(status).encode())
    assert bad.at_eof()
    host.event("close", 101)
    ask(normal)
    assert normal.response().body == b"served"
    assert not [e for e in host.events if e.get("event") == "read" and e["socket"] == 101]
    normal.close()
    bad.close()


def test_limits_just_inside_are_served(host):
    port = server(host)
    host.ok('autoreply all "served"')
    c = Client(port)
    # 100 header fields (Host and 99 more), a request line of almost 8 KiB, a head of almost 16 KiB.
    ask(c, "/", many_headers(99, 1))
    assert c.response().body == b"served"
    ask(c, "/" + "a" * 8000)
    assert c.response().body == b"served"
    ask(c, "/", many_headers(15, 1000))
    assert c.response().body == b"served"
    got = [request_on(host)[1] for _ in range(3)]
    assert len(got[0]["headers"]) == 100 and len(got[1]["path"]) == 8001
    assert len(got[2]["headers"]) == 16
    c.close()


@pytest.mark.skipif(WRAPPED, reason="slowloris paces at one byte per second; too slow under valgrind")
def test_slowloris_gets_408_while_others_are_served(host):
    port = server(host, options=["SO_HTTP_TIMEOUT 2000"])
    host.ok('autoreply all "served"')
    result = {}

    def attack():
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        start = time.monotonic()
        got = b""
        try:
            for b in b"GET / HTTP/1.1\r\nHost: slow\r\nX-Long: " + b"x" * 60:
                try:
                    s.send(bytes([b]))
                except OSError:
                    break
                # One byte a second is the attack itself; a reply ends it early.
                if select.select([s], [], [], 1.0)[0]:
                    break
            while True:
                d = s.recv(4096)
                if not d:
                    break
                got += d
        except (ConnectionResetError, socket.timeout):
            pass
        result["got"], result["elapsed"] = got, time.monotonic() - start
        s.close()

    t = threading.Thread(target=attack)
    t.start()
    served = 0
    while t.is_alive() and served < 100:  # a normal client keeps being served meanwhile
        out = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://127.0.0.1:{port}/"],
                             capture_output=True, timeout=15)
        assert out.stdout == b"served", out.stderr
        served += 1
    t.join(20)
    assert not t.is_alive()
    assert served >= 1
    assert result["got"].startswith(b"HTTP/1.1 408 "), result
    assert b"SO_HTTP_TIMEOUT" in result["got"]
    assert result["elapsed"] < 15, result  # bounded: closed long before the attack would finish


# ---- options -------------------------------------------------------------------------------

def test_http_timeout_408_and_quiet_close(host):
    port = server(host, options=["SO_HTTP_TIMEOUT 1000"])
    c = Client(port)
    c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n")  # never finished
    r = c.response()
    assert r.status == 408 and b"SO_HTTP_TIMEOUT" in r.body
    assert c.at_eof()
    host.event("close", 100)
    # A connection that sends nothing at all is closed without a response.
    quiet = Client(port)
    assert quiet.at_eof()
    host.event("close", 101)
    c.close()
    quiet.close()


def test_http_read_timeout_408(host):
    port = server(host, options=["SO_HTTP_READ_TIMEOUT 1000", "SO_HTTP_TIMEOUT 300000"])
    c = Client(port)
    c.send(b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")  # body stalls
    r = c.response()
    assert r.status == 408 and b"SO_HTTP_READ_TIMEOUT" in r.body
    assert c.at_eof()
    host.event("close", 100)
    c.close()


def test_idle_keep_alive_connection_is_closed(host):
    port = server(host, options=["SO_IDLE_TIMEOUT 1000"])
    host.ok('autoreply all "hi"')
    c = Client(port)
    ask(c)
    assert c.response().body == b"hi"
    assert c.at_eof()  # idle after the reply: the server closes it
    host.event("close", 100)
    c.close()
    # A new connection that sends nothing is idle too (SO_HTTP_TIMEOUT is still 30 s).
    silent = Client(port)
    assert silent.at_eof()
    assert host.event("close", 101)["data"] == "idle timeout"
    silent.close()


def test_max_connections_turns_the_third_away_with_503(host):
    port = server(host, options=["SO_MAX_CONNECTIONS 2"])
    host.ok('autoreply all "in"')
    a, b = Client(port), Client(port)
    for c in (a, b):
        ask(c)
        assert c.response().body == b"in"
    assert (host.accepted(), host.accepted()) == (100, 101)
    third = Client(port)
    r = third.response()
    assert r.status == 503 and b"SO_MAX_CONNECTIONS" in r.body
    assert third.at_eof()
    host.call("count")  # every event of the refusal is out by now
    listens = [e for e in host.events if e.get("event") == "listen"]
    assert len(listens) == 2, host.events
    assert host.ok("status 1")["value"]["connections"] == 2
    # A place frees up when one leaves; the next one is accepted (and gets the next id).
    a.close()
    host.event("close", 100)
    d = Client(port)
    ask(d)
    assert d.response().body == b"in"
    assert host.accepted() == 102  # the refused one never reached LPC, so it took no id
    b.close()
    d.close()
    third.close()


def test_max_buffered_would_block_then_write_callback_below_half(host):
    port = server(host, options=["SO_MAX_BUFFERED 262144", "SO_SNDBUF 4096"])
    c = Client(port, rcvbuf=4096)
    ask(c, "/big")
    sid, _ = request_on(host)
    write(host, sid, {"stream": 1})
    big = "z" * 262144
    assert write(host, sid, big)["ee"] == EECALLBACK  # an empty queue takes any size; it waits
    r = host.call(f"write {sid} " + json.dumps("m" * 32768))  # would pass the limit
    assert r["ee"] == EEWOULDBLOCK and "SO_MAX_BUFFERED" in r["error"], r
    # The client reads part of the reply: once the queue is below half, the write callback fires.
    assert b"chunked" in c._until(b"\r\n\r\n").lower()
    assert int(c._until(b"\r\n"), 16) == len(big)
    first = c._exact(192 * 1024)
    host.event("write", sid)
    queued = host.ok(f"status {sid}")["value"]["queued"]
    assert 0 < queued < 131072, queued  # below half, not necessarily empty
    write(host, sid, {"end": 1, "body": "tail"})
    rest = c._exact(len(big) - len(first) + 2)
    assert first + rest == big.encode() + b"\r\n"
    assert c._until(b"0\r\n\r\n") == b"4\r\ntail\r\n0\r\n\r\n"
    c.close()


def test_tls_cert_and_key_are_checked_at_set_time(host, pki, tmp_path):
    host.ok("create 1 HTTPS_SERVER")
    host.ok("set 1 SO_TLS_CERT " + json.dumps(pki["cert"]))
    host.ok("set 1 SO_TLS_KEY " + json.dumps(pki["key"]))
    junk = tmp_path / "junk.pem"
    junk.write_text("this is not PEM at all\n")
    missing = str(tmp_path / "missing.pem")
    for option, value, why in [
        ("SO_TLS_CERT", missing, missing),
        ("SO_TLS_CERT", str(junk), "SO_TLS_CERT"),
        ("SO_TLS_KEY", missing, missing),
        ("SO_TLS_KEY", str(junk), "SO_TLS_KEY"),
        ("SO_TLS_KEY", pki["self_key"], "match"),
        ("SO_TLS_CERT", pki["self_cert"], "match"),
    ]:
        r = host.call(f"set 1 {option} " + json.dumps(value))
        assert r["result"] == "error" and r["code"] == 7300, r
        assert option in r["error"] and why in r["error"], r
        assert host.ok("get 1 SO_TLS_CERT")["value"] == pki["cert"]
        assert host.ok("get 1 SO_TLS_KEY")["value"] == pki["key"]
    # The kept pair still serves.
    host.ok("bind 1 0 127.0.0.1")
    host.ok("listen 1")


def test_timeout_options_set_on_a_live_connection_take_effect(host):
    port = server(host)
    host.ok('autoreply all "hi"')
    c = Client(port)
    ask(c)
    assert c.response().body == b"hi"
    assert host.accepted() == 100
    host.ok("set 100 SO_IDLE_TIMEOUT 1000")  # set on the idle connection itself
    assert c.at_eof()
    host.event("close", 100)
    c.close()
    c = Client(port)
    c.send(b"GET / HTTP/1.1\r\n")  # a request starts, then stalls
    assert host.accepted() == 101
    host.ok("set 101 SO_HTTP_READ_TIMEOUT 1000")
    r = c.response()
    assert r.status == 408 and b"SO_HTTP_READ_TIMEOUT" in r.body
    c.close()


def test_request_deadline_waits_while_the_server_holds_the_request(host):
    """A 100 Continue owed behind an unanswered request, and reading paused at 16 unanswered
    requests, are the server's doing: SO_HTTP_TIMEOUT must not give the client a 408 for them.
    (The 1.5 s `run` is an observation window for something that must not happen.)"""
    port = server(host, options=["SO_HTTP_TIMEOUT 1000"])
    c = Client(port)
    c.send(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
           b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    sid, req = request_on(host)
    assert req["path"] == "/a"
    host.ok("run 1500")
    write(host, sid, "a")
    assert c.response().body == b"a"
    assert c.response().status == 100  # now due, and no 408 before it
    c.send(b"hello")
    sid, req = request_on(host)
    assert req["body"] == "hello"
    write(host, sid, "b")
    assert c.response().body == b"b"

    c.send(b"".join(b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(16))
           + b"GET /last HTTP/1.1\r\n")
    got = [request_on(host)[1]["path"] for _ in range(16)]
    assert got == [f"/{i}" for i in range(16)]
    host.ok("run 1500")
    for i in range(16):
        write(host, sid, f"r{i}")
    assert [c.response().body for _ in range(16)] == [f"r{i}".encode() for i in range(16)]
    c.send(b"Host: t\r\n\r\n")
    sid, req = request_on(host)
    assert req["path"] == "/last"
    write(host, sid, "last")
    assert c.response().body == b"last"
    c.close()


# ---- lifetime ------------------------------------------------------------------------------

@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_client_gone_mid_reply_frees_everything(host, pki, tls):
    if tls:
        port = server(host, mode="HTTPS_SERVER", options=tls_options(pki))
    else:
        port = server(host)
    base_fds, base_count = host.fds(), host.call("count")
    c = Client(port, rcvbuf=4096, ca=pki["ca"] if tls else None)
    ask(c, "/huge")
    sid, _ = request_on(host)
    write(host, sid, {"stream": 1})
    piece = "y" * 65536
    write(host, sid, piece)
    c._until(b"\r\n\r\n")
    c._exact(1000)  # some of the reply arrived
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()  # unread data and linger 0: a reset
    for _ in range(500):
        if any(e.get("event") == "close" and e.get("socket") == sid for e in host.events):
            break
        r = host.call(f"write {sid} " + json.dumps(piece))
        if r["ee"] not in (1, EECALLBACK, EEWOULDBLOCK):
            break
    host.event("close", sid)
    wait_count(host, base_count["open"])
    assert host.fds() == base_fds


def test_half_closed_client_still_gets_the_whole_reply(host):
    port = server(host)
    c = Client(port, rcvbuf=4096)
    ask(c)
    sid, _ = request_on(host)
    body = "Q" * 3_000_000
    assert write(host, sid, body)["ee"] == EECALLBACK  # most of it is still queued
    c.s.shutdown(socket.SHUT_WR)  # the client is done sending, not reading
    host.call("count")
    r = c.response()
    assert len(r.body) == len(body) and r.body == body.encode()
    assert c.at_eof()
    host.event("close", sid)
    c.close()


# ---- output that makes no progress (issue 12) ----------------------------------------------

def stalled_client(port, requests=1, path="/big"):
    """A client that pipelines `requests` GETs and never reads (4 KiB receive buffer)."""
    c = Client(port, rcvbuf=4096)
    c.send(b"".join(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n" for _ in range(requests)))
    return c


def closes(host, ids, timeout):
    """The close events of `ids` (any order), waiting at most `timeout` s in all."""
    deadline = time.monotonic() + timeout
    got = {}
    for sid in ids:
        got[sid] = host.event("close", sid, timeout=max(0.1, deadline - time.monotonic()))
    return got


def test_clients_that_do_not_read_are_closed_and_their_output_freed(host):
    # The scenario, scaled for CI: 20 clients pipeline requests for 64 KiB replies and
    # never read. Their output stops making progress; SO_HTTP_READ_TIMEOUT (the between-bytes
    # deadline, applied to output as nginx's send_timeout) closes each connection, and what it
    # had queued is freed. The deadline is long while the requests come in (under valgrind
    # that takes seconds) and then set to 1000 ms on each live connection, which applies at once.
    n, per = 20, 8
    port = server(host, options=["SO_HTTP_READ_TIMEOUT 300000", "SO_SNDBUF 4096"])
    host.ok("autoreply all " + json.dumps({"body": "r" * 65536}))
    base_fds, base_count = host.fds(), host.call("count")["open"]
    clients = [stalled_client(port, per) for _ in range(n)]
    ids = set()
    for _ in range(n * per):  # every request reaches LPC and is answered at once
        ids.add(request_on(host, timeout=30)[0])
    assert len(ids) == n
    queued = {sid: host.ok(f"status {sid}")["value"].get("queued", 0) for sid in ids}
    total = host.ok("status 1")["value"].get("queued")  # the listener: its connections' sum
    assert all(q > 200_000 for q in queued.values()), queued
    started = time.monotonic()
    for sid in ids:
        host.ok(f"set {sid} SO_HTTP_READ_TIMEOUT 1000")
    gone = closes(host, ids, timeout=30 if WRAPPED else 10)
    elapsed = time.monotonic() - started
    for e in gone.values():
        assert e["data"].startswith("too slow: no write progress for 1000 ms") and \
            "SO_HTTP_READ_TIMEOUT" in e["data"], e
    assert total >= sum(queued.values()) > n * 200_000, (total, queued)  # ~10 MiB were queued
    assert host.ok("status 1")["value"]["queued"] == 0  # nothing left queued: each connection's
    wait_count(host, base_count)  # output went with it, and no connection is left
    assert host.fds() == base_fds
    assert elapsed < (30 if WRAPPED else 10), elapsed
    for c in clients:
        c.close()


def test_output_progress_keeps_a_slow_reader_connected(host):
    # A client that reads, slowly, is not stalled: only a deadline without any byte going out
    # closes. It reads 4 KiB about every 0.2 s (its own pace) for 2.5 deadlines; the deadline
    # (2 s, 5 s under valgrind) leaves room for this process to be starved on a loaded machine.
    deadline = 5.0 if WRAPPED else 2.0
    port = server(host, options=[f"SO_HTTP_READ_TIMEOUT {int(deadline * 1000)}",
                                 "SO_SNDBUF 4096"])
    c = Client(port, rcvbuf=4096)
    ask(c)
    sid, _ = request_on(host)
    body = "p" * 4096 * int(2.5 * deadline / 0.2 + 10)
    assert write(host, sid, body)["ee"] == EECALLBACK
    got = c._until(b"\r\n\r\n")
    pace = threading.Event()
    data = b""
    started = time.monotonic()
    while len(data) < len(body):
        data += c._exact(min(4096, len(body) - len(data)))
        if time.monotonic() - started < 2.5 * deadline:
            pace.wait(0.2)  # the reader's pace, not the test's synchronisation
    assert b"200 OK" in got and data == body.encode()
    assert not any(e.get("event") == "close" for e in host.events), host.events
    ask(c)  # still kept alive
    sid2, _ = request_on(host)
    assert sid2 == sid
    write(host, sid, "again")
    assert c.response().body == b"again"
    c.close()


def test_listener_total_closes_the_longest_stalled_first_while_a_reader_is_served(host):
    # SO_MAX_BUFFERED 65536: the listener's connections may queue 16 x 64 KiB = 1 MiB together.
    # Clients that never read each get a 256 KiB reply (one reply always fits an empty queue);
    # once a write would take the total past 1 MiB, the connections stalled longest are closed,
    # oldest first, while a client that reads keeps being served. No deadline interferes.
    limit = 16 * 65536
    port = server(host, options=["SO_MAX_BUFFERED 65536", "SO_SNDBUF 4096",
                                 "SO_HTTP_READ_TIMEOUT 300000"])
    reader = Client(port)
    reply = {"body": "s" * 262144}
    stalled, clients, totals = [], [], []
    rid = None
    for i in range(12):
        c = stalled_client(port, path=f"/stall{i}")
        clients.append(c)
        sid, req = request_on(host)
        assert req["path"] == f"/stall{i}"
        assert write(host, sid, reply)["ee"] == EECALLBACK
        stalled.append(sid)
        totals.append(host.ok("status 1")["value"].get("queued"))
        ask(reader, f"/read{i}")
        rid, req = request_on(host)
        assert req["path"] == f"/read{i}"
        write(host, rid, {"body": f"served {i} " + "r" * 200_000})
        assert reader.response().body.startswith(f"served {i} ".encode())
        totals.append(host.ok("status 1")["value"].get("queued"))
    oldest_stalled_were_closed(host, stalled, rid, totals, limit)
    reader.close()
    for c in clients:
        c.close()


@pytest.mark.skipif(WRAPPED, reason="a 10 s load run is not meaningful under valgrind")
def test_wrk_keep_alive_load(host):
    port = server(host)
    host.ok('autoreply all {"status":200,"body":"hello from unisock"} quiet')
    base_fds = host.fds()
    out = subprocess.run(["wrk", "-t2", "-c64", "-d10s", f"http://127.0.0.1:{port}/"],
                         capture_output=True, timeout=60, text=True)
    assert out.returncode == 0, out.stderr
    report = out.stdout
    assert "Socket errors" not in report, report
    assert "Non-2xx" not in report, report
    m = re.search(r"(\d+) requests in", report)
    assert m and int(m.group(1)) > 1000, report
    wait_count(host, 1)  # wrk closed its connections: only the listener is left
    assert host.fds() == base_fds


def test_options_of_families_not_built_are_refused(host):
    host.ok("create 1 HTTP_SERVER")
    for name in ("SO_CACHE_ENABLE", "SO_APACHE_FASTCGI_ENABLE"):
        r = host.call(f"set 1 {name} 1")
        assert r["result"] == "error" and "not available yet" in r["error"], r
        assert host.ok(f"get 1 {name}")["value"] == 0
