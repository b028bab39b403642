"""The WebSocket upgrade on an HTTP_SERVER / HTTPS_SERVER port (callbacks.md "WebSocket (16–19)",
decided details): the request mapping carries "upgrade": "websocket"; LPC accepts with
([ "upgrade": "websocket", "subprotocol", "headers" ]) and the same id then delivers "open" and the
messages; any other reply refuses it as an HTTP response. Peers: curl, Python websockets and
headless Chromium (a page served by our HTTP_SERVER that opens a WebSocket to the same port and
one to a WEBSOCKET_SERVER, both with WS_COMPRESSION 1). Every wait is bounded.
"""
import html
import json
import os
import re
import subprocess
import tempfile
import threading
import time

import pytest

import tls_material
from wsutil import (HERE, buf, chromium_path, client_ssl, closed_with, message, need_websockets,
                    opened, py_connect, tls_options, unbuf, write, ws_server)

pytestmark = pytest.mark.policy("open")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return tls_material.make(tmp_path_factory.mktemp("pki"))


def http_server(host, sid=1, mode="HTTP_SERVER", options=(), first_id=100):
    return ws_server(host, sid=sid, mode=mode, options=options, first_id=first_id)


class Background:
    """Runs fn() in a thread; .result() returns its value or raises its exception (bounded)."""

    def __init__(self, fn):
        self.value, self.error = None, None

        def run():
            try:
                self.value = fn()
            except BaseException as e:  # handed to result()
                self.error = e
        self.t = threading.Thread(target=run, daemon=True)
        self.t.start()

    def result(self, timeout=20):
        self.t.join(timeout)
        assert not self.t.is_alive(), "the peer did not finish"
        if self.error:
            raise self.error
        return self.value


def upgrade_request(host, sid=None, timeout=10):
    e = host.event("read", sid, timeout=timeout)
    m = e["data"]
    assert isinstance(m, dict) and m.get("upgrade") == "websocket", e
    return e["socket"], m


def test_page_and_upgrade_on_the_same_port(host):
    port = http_server(host)
    p = Background(lambda: subprocess.run(["curl", "-sS", "--max-time", "20",
                                           f"http://127.0.0.1:{port}/index.html"],
                                          capture_output=True, timeout=30))
    e = host.event("read", timeout=10)
    req = e["data"]
    assert req["path"] == "/index.html" and "upgrade" not in req, req
    write(host, e["socket"], {"status": 200, "headers": {"Content-Type": "text/html"},
                              "body": "<h1>the page</h1>"})
    out = p.result()
    assert out.returncode == 0 and out.stdout == b"<h1>the page</h1>", out

    client = Background(lambda: py_connect(f"ws://127.0.0.1:{port}/chat?room=1",
                                           subprotocols=["chat", "superchat"],
                                           origin="http://page.test"))
    sid, req = upgrade_request(host)
    assert req["method"] == "GET" and req["path"] == "/chat" and req["query"] == "room=1", req
    assert req["headers"]["upgrade"].lower() == "websocket"
    assert req["headers"]["origin"] == "http://page.test"
    write(host, sid, {"upgrade": "websocket", "subprotocol": "chat", "headers": {"X-Hello": "there"}})
    ws = client.result()
    assert ws.subprotocol == "chat"
    assert ws.response.status_code == 101 and ws.response.headers.get("X-Hello") == "there"
    sid2, m = opened(host, sid)
    assert sid2 == sid
    assert m["type"] == "open" and m["subprotocol"] == "chat" and m["path"] == "/chat?room=1", m
    assert m["headers"]["origin"] == "http://page.test"

    ws.send("over the upgrade ✓")
    assert message(host, sid)[1] == {"type": "text", "data": "over the upgrade ✓"}
    ws.send(b"\x00\x01\xfe\xff")
    assert unbuf(message(host, sid)[1]["data"]) == b"\x00\x01\xfe\xff"
    write(host, sid, "from lpc")
    assert ws.recv(timeout=10) == "from lpc"
    write(host, sid, buf(b"\x05\x06"))
    assert ws.recv(timeout=10) == b"\x05\x06"
    r = host.call(f"get {sid} WS_SUBPROTOCOL")  # "reads the result back on both sides"
    ws.close(4000, "leaving")
    m, _ = closed_with(host, sid)
    assert (m["code"], m["reason"]) == (4000, "leaving")
    assert r.get("value") == "chat", r


def test_upgrade_refused_with_403(host):
    need_websockets()
    from websockets.exceptions import InvalidStatus
    port = http_server(host)
    client = Background(lambda: py_connect(f"ws://127.0.0.1:{port}/private"))
    sid, req = upgrade_request(host)
    write(host, sid, {"status": 403, "body": "not for you"})
    with pytest.raises(InvalidStatus) as ei:
        client.result()
    assert ei.value.response.status_code == 403
    assert ei.value.response.body == b"not for you"
    host.call("count")
    assert not [e for e in host.events if e.get("event") == "read" and e.get("socket") == sid
                and isinstance(e.get("data"), dict) and e["data"].get("type") == "open"]


def test_upgrade_without_a_subprotocol_and_ws_options_on_the_listener(host):
    port = http_server(host, options=["WS_MAX_MESSAGE_SIZE 1000"])
    client = Background(lambda: py_connect(f"ws://127.0.0.1:{port}/"))
    sid, req = upgrade_request(host)
    write(host, sid, {"upgrade": "websocket"})
    ws = client.result()
    assert ws.subprotocol is None
    _, m = opened(host, sid)
    assert m["subprotocol"] == ""
    ws.send("k" * 1000)
    assert message(host, sid)[1]["data"] == "k" * 1000
    ws.send("k" * 1001)  # WS_MAX_MESSAGE_SIZE set on the HTTP listener applies
    need_websockets()
    from websockets.exceptions import ConnectionClosedError
    with pytest.raises(ConnectionClosedError) as ei:
        ws.recv(timeout=10)
    assert ei.value.rcvd.code == 1009
    m, _ = closed_with(host, sid)
    assert m["code"] == 1009 and "WS_MAX_MESSAGE_SIZE" in m["reason"]


def test_upgrade_on_https_server(host, pki):
    port = http_server(host, mode="HTTPS_SERVER", options=tls_options(pki))
    client = Background(lambda: py_connect(f"wss://localhost:{port}/secure", ssl=client_ssl(pki)))
    sid, req = upgrade_request(host)
    assert req["scheme"] == "https"
    write(host, sid, {"upgrade": "websocket"})
    ws = client.result()
    opened(host, sid)
    ws.send("secure upgrade")
    assert message(host, sid)[1]["data"] == "secure upgrade"
    write(host, sid, "and back")
    assert ws.recv(timeout=10) == "and back"
    ws.close()
    closed_with(host, sid)


# ---- headless Chromium ----------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--mute-audio"]


def test_chromium_page_opens_websockets_on_the_upgrade_and_a_websocket_server(host):
    chromium = chromium_path()
    with open(os.path.join(HERE, "peers", "ws_page.html"), encoding="utf-8") as f:
        page = f.read()
    http_port = http_server(host, sid=1, options=["WS_COMPRESSION 1"], first_id=100)
    ws_port = ws_server(host, sid=2, options=["WS_COMPRESSION 1", 'WS_PROTOCOL ["chat"]'],
                        first_id=5000)
    profile = tempfile.mkdtemp(prefix="unisock-chromium-")
    url = f"http://127.0.0.1:{http_port}/?wsport={ws_port}"
    browser = Background(lambda: subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True, text=True, timeout=60))

    hold = None  # the /hold request, answered last: the page's load event waits for it
    done_body = None
    opens, reports, closes, echoed = {}, {}, {}, {}
    deadline = time.monotonic() + 45
    while done_body is None or len(closes) < 2:
        left = deadline - time.monotonic()
        assert left > 0, (f"the page did not finish: opens={opens} reports={reports} "
                          f"closes={closes} done={done_body!r}; browser stderr: "
                          f"{(browser.value.stderr[-2000:] if browser.value else '')}")
        e = host.event(("read", "close"), timeout=left)
        sid, m = e["socket"], e.get("data")
        if e["event"] == "close":
            continue
        if isinstance(m, dict) and "method" in m:  # an HTTP request (or an upgrade)
            if m.get("upgrade") == "websocket":
                assert m["path"] == "/upgrade" and m["query"] == "via=http", m
                write(host, sid, {"upgrade": "websocket", "subprotocol": "chat"})
            elif m["path"] == "/":
                write(host, sid, {"status": 200, "headers": {"Content-Type": "text/html; charset=utf-8"},
                                  "body": page})
            elif m["path"] == "/hold":
                hold = sid
            elif m["path"] == "/done":
                done_body = m["body"]
                write(host, sid, {"status": 204})
            else:
                write(host, sid, {"status": 404, "body": "no"})
            continue
        assert isinstance(m, dict) and "type" in m, e
        if m["type"] == "open":
            opens[sid] = m
        elif m["type"] in ("text", "binary"):
            if m["type"] == "text" and m["data"].startswith("report "):
                reports[sid] = json.loads(m["data"][len("report "):])
            echoed.setdefault(sid, []).append(m["type"])
            write(host, sid, m["data"])  # the echo the page expects
        elif m["type"] == "close":
            closes[sid] = m
    assert hold is not None, "the page never asked for /hold"
    write(host, hold, {"status": 200, "headers": {"Content-Type": "image/gif"}, "body": ""})
    out = browser.result(timeout=40)

    # the page's own view, through the harness (POST /done) and in the dumped DOM
    results = json.loads(done_body)
    dom = re.search(r'<pre id="result">(.*?)</pre>', out.stdout, re.S)
    assert dom, out.stdout[-2000:] + out.stderr[-2000:]
    assert json.loads(html.unescape(dom.group(1))) == results
    assert len(results) == 2
    for r in results:
        assert "error" not in r, r
        assert r["protocol"] == "chat", r
        assert r["text"] == "hello from chromium ✓", r
        assert r["binary"] == [0, 1, 2, 127, 128, 255], r
        assert r["big"] is True and r["reportEcho"] is True, r
        assert (r["closeCode"], r["wasClean"]) == (1000, True), r  # unisock's answer to our close
    # the harness side: one connection through the upgrade, one to the WEBSOCKET_SERVER
    assert sorted(m["path"] for m in opens.values()) == ["/direct?via=ws", "/upgrade?via=http"], opens
    for sid, m in opens.items():
        assert m["subprotocol"] == "chat"
        assert echoed[sid] == ["text", "binary", "text", "text"], echoed
        assert (closes[sid]["code"], closes[sid]["reason"]) == (1000, "done"), closes
        assert reports[sid]["text"] == "hello from chromium ✓"
    # compression negotiated on both (WS_COMPRESSION 1 on the HTTP listener and the WS server)
    for r in results:
        assert "permessage-deflate" in r["extensions"], r
    for sid, m in opens.items():
        assert "permessage-deflate" in m["headers"].get("sec-websocket-extensions", ""), m
