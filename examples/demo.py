"""The unisock demonstration: the C host harness plays the driver and serves
real clients (nc, openssl, curl, a UDP peer, Python's websockets) through
unisock, then shows the option errors a mudlib coder would see. Run: scripts/demo"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request

from websockets.sync.client import connect as ws_connect

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from host import Host  # noqa: E402
import tls_material  # noqa: E402


def say(text):
    print(f"\n\033[1m{text}\033[0m", flush=True)


def show(obj):
    print("   ", json.dumps(obj), flush=True)


def in_thread(fn):
    """Runs fn in a thread; returns (thread, result dict: "value" or "error")."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except Exception as e:  # shown, not raised: the demo goes on to say what happened
            out["error"] = repr(e)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def websocket_chapter(h):
    say("6. WEBSOCKET_SERVER (mode 16) and Python's websockets as the client")
    # Connections the earlier chapters' listeners took are not this chapter's.
    h.events[:] = [e for e in h.events if "accepted" not in e]
    wport = h.listen_port(10, "WEBSOCKET_SERVER", extra=['set {id} WS_PROTOCOL ["chat"]'])
    h.ok("autoaccept 10 3000")

    def client():
        with ws_connect(f"ws://127.0.0.1:{wport}/room?name=demo", subprotocols=["chat"],
                        open_timeout=10, close_timeout=5) as ws:
            ws.send("hello from websockets")
            text = ws.recv(timeout=10)
            ws.send(b"\x00\x01\xff")
            data = ws.recv(timeout=10)
            ws.close(4000, "demo done")
            return text, data
    t, out = in_thread(client)
    sid = h.accepted()
    print("    what LPC's read callback gets, one mapping per message:")
    opened = h.event("read", sid)["data"]
    show({"type": opened["type"], "path": opened["path"], "subprotocol": opened["subprotocol"],
          "headers": {k: opened["headers"][k] for k in ("user-agent", "sec-websocket-protocol")
                      if k in opened["headers"]}})
    show(h.event("read", sid)["data"])
    h.ok(f'write {sid} "hello back from LPC"')
    show(h.event("read", sid)["data"])
    h.ok(f'write {sid} {{"buffer": [0, 1, 255]}}')
    show(h.event("read", sid)["data"])
    show(h.event("close", sid))
    t.join(20)
    print(f"    the client got {out.get('value') or out.get('error')!r}")

    say("7. One HTTP_SERVER port for the page and its WebSocket: LPC accepts the upgrade")
    hport = h.listen_port(11, "HTTP_SERVER")
    h.ok("autoaccept 11 4000")
    t, out = in_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{hport}/", timeout=10).read())
    page_id = h.accepted()
    req = h.event("read", page_id)["data"]
    print(f"    a request for {req['path']!r}: LPC answers with the page")
    h.ok(f'write {page_id} {{"headers": {{"Content-Type": "text/html"}}, '
         '"body": "<script>new WebSocket(\'ws://\' + location.host + \'/ws\')</script>"}')
    t.join(20)
    print(f"    the browser's side got {out.get('value') or out.get('error')!r}")

    def upgrader():
        with ws_connect(f"ws://127.0.0.1:{hport}/ws", subprotocols=["chat"],
                        open_timeout=10, close_timeout=5) as ws:
            ws.send("hi over the page's port")
            return ws.recv(timeout=10)
    t, out = in_thread(upgrader)
    up_id = h.accepted()
    req = h.event("read", up_id)["data"]
    print(f"    a request for {req['path']!r} with \"upgrade\": {req.get('upgrade')!r}: "
          "LPC writes ([ \"upgrade\": \"websocket\", \"subprotocol\": \"chat\" ])")
    h.ok(f'write {up_id} {{"upgrade": "websocket", "subprotocol": "chat"}}')
    opened = h.event("read", up_id)["data"]
    show({k: opened[k] for k in ("type", "path", "subprotocol")})
    show(h.event("read", up_id)["data"])
    h.ok(f'write {up_id} "and hello from the same id"')
    t.join(20)
    print(f"    the client got {out.get('value') or out.get('error')!r}")
    show(h.event("read", up_id)["data"])     # the client's close
    h.event("close", up_id)


def main():
    pki_dir = tempfile.mkdtemp(prefix="unisock-demo-")
    pki = tls_material.make(pki_dir)
    # The admin's policy (docs/SECURITY.md): upstream's modes, HTTP, WebSocket, and TLS files
    # from the demo's own directory; nothing else that reaches the host.
    h = Host(policy={"modes": [10, 11, 12, 13, 16, 17, 18, 19], "tls_dirs": [pki_dir]})
    try:
        say("1. A STREAM echo server, as a mudlib would create it: socket_create(STREAM), bind, listen")
        port = h.listen_port(1, "STREAM")
        h.ok("autoaccept 1 1000")
        h.ok("autoecho 1000")
        out = subprocess.run(["nc", "-W", "1", "127.0.0.1", str(port)], input=b"hello from nc",
                             capture_output=True, timeout=10)
        print(f"    nc sent 'hello from nc' and got back {out.stdout.decode()!r}")
        show(h.event("read", h.accepted()))

        say("2. STREAM_TLS server (rustls, TLS 1.3) with SO_TLS_CERT / SO_TLS_KEY, reached with curl")
        tport = h.listen_port(2, "STREAM_TLS", extra=[
            "set {id} SO_TLS_CERT " + json.dumps(pki["cert"]),
            "set {id} SO_TLS_KEY " + json.dumps(pki["key"])])
        h.ok("autoaccept 2 2000")
        result = {}
        t = threading.Thread(target=lambda: result.update(p=subprocess.run(
            ["curl", "-sS", "--cacert", pki["ca"], f"https://localhost:{tport}/who"],
            capture_output=True, timeout=20)))
        t.start()
        sid = h.accepted()
        req = h.event("read", sid)["data"]
        print(f"    unisock received: {req.splitlines()[0]!r}")
        show(h.ok(f"status {sid}")["value"])
        h.ok(f"write {sid} " + json.dumps(
            "HTTP/1.1 200 OK\r\nContent-Length: 21\r\nConnection: close\r\n\r\nhello from unisock!\r\n"))
        t.join(20)
        print(f"    curl printed: {result['p'].stdout.decode().strip()!r}")

        say("3. STREAM_TLS client that verifies the server (SO_TLS_VERIFY_PEER 1, SO_TLS_CA) and a wrong host name")
        h.ok("create 3 STREAM_TLS")
        h.ok("set 3 SO_TLS_VERIFY_PEER 1")
        h.ok("set 3 SO_TLS_CA " + json.dumps(pki["ca"]))
        h.ok(f"connect 3 localhost {tport}")
        h.event("write", 3)
        print("    verified handshake done; write callback fired")
        h.ok("create 4 STREAM_TLS")
        h.ok("set 4 SO_TLS_VERIFY_PEER 1")
        h.ok("set 4 SO_TLS_CA " + json.dumps(pki["ca"]))
        h.ok('set 4 SO_TLS_SNI_HOSTNAME "evil.example"')
        h.ok(f"connect 4 127.0.0.1 {tport}")
        show(h.event("close", 4))

        say("4. DATAGRAM: a UDP peer talks to unisock")
        h.ok("create 5 DATAGRAM")
        h.ok("bind 5 0 127.0.0.1")
        uport = int(h.ok("address 5 local")["value"].split()[1])
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(5)
        peer.sendto(b"ping", ("127.0.0.1", uport))
        show(h.event("read", 5))
        h.ok(f'write 5 "pong" 127.0.0.1 {peer.getsockname()[1]}')
        print(f"    the peer got {peer.recvfrom(10)[0]!r}")
        peer.close()

        say("5. What a mudlib coder sees for a misconfigured option")
        h.ok("create 6 STREAM")
        for line in ["set 6 SO_RCVBUF 12", 'set 6 SO_KEEPALIVE "yes"', "set 6 SO_HTTP_TIMEOUT 5000",
                     "set 6 777 1", "get 6 SO_STATISTICS"]:
            r = h.call(line)
            print(f"    {line:32} -> {r.get('error') or r.get('value')}")
        print("    create 7 REST_SERVER             -> " + h.call("create 7 REST_SERVER")["error"])
        print("    create 8 EXTERNAL_PROCESS        -> " + h.call("create 8 EXTERNAL_PROCESS")["error"])
        h.ok("create 9 STREAM_TLS")
        r = h.call("set 9 SO_TLS_CA \"/etc/hostname\"")
        print("    set 9 SO_TLS_CA \"/etc/hostname\"  -> " + r.get("error", "accepted?!"))

        websocket_chapter(h)

        say("8. Everything closed, nothing left open")
        for i in [1, 2, 3, 5, 6, 9, 10, 11]:
            h.call(f"close {i}")
        print("    ", h.call("count"))
    finally:
        h.close()


if __name__ == "__main__":
    main()
