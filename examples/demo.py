"""The unisock demonstration: the C host harness plays the driver and serves
real clients (nc, openssl, curl, a UDP peer) through unisock, then shows the
option errors a mudlib coder would see. Run: scripts/demo"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from host import Host  # noqa: E402
import tls_material  # noqa: E402


def say(text):
    print(f"\n\033[1m{text}\033[0m", flush=True)


def show(obj):
    print("   ", json.dumps(obj), flush=True)


def main():
    pki_dir = tempfile.mkdtemp(prefix="unisock-demo-")
    pki = tls_material.make(pki_dir)
    # The admin's policy (docs/SECURITY.md): upstream's modes, HTTP, and TLS files from the
    # demo's own directory; nothing else that reaches the host.
    h = Host(policy={"modes": [10, 11, 12, 13], "tls_dirs": [pki_dir]})
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

        say("6. Everything closed, nothing left open")
        for i in [1, 2, 3, 5, 6, 9]:
            h.call(f"close {i}")
        print("    ", h.call("count"))
    finally:
        h.close()


if __name__ == "__main__":
    main()
