"""STREAM_TLS / STREAM_TLS_BINARY against openssl s_server/s_client, curl and Python ssl."""
import json
import socket
import ssl
import subprocess
import threading

import pytest

import tls_material
from host import free_port

# Runs children, watches host paths, makes socket files or reads TLS files: the
# admin's policy must allow it (docs/SECURITY.md).
pytestmark = pytest.mark.policy("open")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return tls_material.make(tmp_path_factory.mktemp("pki"))


class SServer:
    """openssl s_server on 127.0.0.1; ready once it prints ACCEPT."""

    def __init__(self, cert, key, extra=()):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["openssl", "s_server", "-accept", f"127.0.0.1:{self.port}", "-cert", cert, "-key", key,
             "-naccept", "1", *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.out = []
        ready = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self.out.append(line.decode(errors="replace"))
                if line.startswith(b"ACCEPT"):
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        assert ready.wait(10), "s_server did not start"

    def wait_for(self, text, timeout=10):
        import time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in l for l in self.out):
                return True
            if self.proc.poll() is not None:
                return any(text in l for l in self.out)
            threading.Event().wait(0.02)  # bounded look at a peer's log, not our own sync
        return False

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def verifying_client(host, pki, sid=1):
    """A STREAM_TLS socket that verifies the server against the test CA."""
    host.ok(f"create {sid} STREAM_TLS")
    host.ok(f"set {sid} SO_TLS_VERIFY_PEER 1")
    host.ok(f"set {sid} SO_TLS_CA " + json.dumps(pki["ca"]))


def test_client_tls13_with_verification(host, pki):
    srv = SServer(pki["cert"], pki["key"], ["-tls1_3"])
    try:
        verifying_client(host, pki)
        assert host.ok("get 1 SO_TLS_VERIFY_PEER")["value"] == 1  # upstream returned the socket id
        host.ok(f"connect 1 localhost {srv.port}")
        host.event("write", 1)  # handshake done
        assert host.ok("status 1")["value"]["tls_version"] == "TLSv1_3"
        host.ok('write 1 "hello over tls\\n"')
        assert srv.wait_for("hello over tls")
    finally:
        srv.stop()


def test_client_rejects_self_signed_when_verifying(host, pki):
    srv = SServer(pki["self_cert"], pki["self_key"])
    try:
        verifying_client(host, pki)
        host.ok(f"connect 1 127.0.0.1 {srv.port}")
        ev = host.event("close", 1)
        assert "unknown issuer" in ev["data"]
    finally:
        srv.stop()


def test_client_refuses_wrong_host_name(host, pki):
    srv = SServer(pki["cert"], pki["key"])
    try:
        verifying_client(host, pki)
        host.ok('set 1 SO_TLS_SNI_HOSTNAME "wrong.example"')
        host.ok(f"connect 1 127.0.0.1 {srv.port}")
        ev = host.event("close", 1)
        assert ev["data"] == "tls: certificate not valid for host wrong.example"
    finally:
        srv.stop()


# Pinning: SO_TLS_CA holding the server's own self-signed certificate, as
# `openssl s_client -CAfile` accepts it. "pin_ca" is CA:TRUE (what `openssl req
# -x509` makes by default), "self" is CA:FALSE.
PINNED = ["pin_ca", "self"]


def pinning_client(host, ca_file, sid=1):
    host.ok(f"create {sid} STREAM_TLS")
    host.ok(f"set {sid} SO_TLS_VERIFY_PEER 1")
    host.ok(f"set {sid} SO_TLS_CA " + json.dumps(ca_file))


@pytest.mark.parametrize("kind", PINNED)
def test_client_accepts_a_pinned_self_signed_certificate(host, pki, kind):
    srv = SServer(pki[f"{kind}_cert"], pki[f"{kind}_key"])
    try:
        pinning_client(host, pki[f"{kind}_cert"])
        host.ok(f"connect 1 localhost {srv.port}")
        host.event("write", 1)  # handshake done, certificate accepted
        host.ok('write 1 "pinned\\n"')
        assert srv.wait_for("pinned")
    finally:
        srv.stop()


@pytest.mark.parametrize("kind", PINNED)
def test_client_pinned_certificate_still_checks_the_host_name(host, pki, kind):
    srv = SServer(pki[f"{kind}_cert"], pki[f"{kind}_key"])
    try:
        pinning_client(host, pki[f"{kind}_cert"])
        host.ok('set 1 SO_TLS_SNI_HOSTNAME "wrong.example"')
        host.ok(f"connect 1 127.0.0.1 {srv.port}")
        ev = host.event("close", 1)
        assert ev["data"] == "tls: certificate not valid for host wrong.example"
    finally:
        srv.stop()


@pytest.mark.parametrize("kind", PINNED)
def test_client_refuses_a_certificate_that_only_shares_the_pinned_subject(host, pki, kind):
    # Same subject, same names, same CA flag, another key: not the pinned certificate.
    srv = SServer(pki[f"{kind}_impostor_cert"], pki[f"{kind}_impostor_key"])
    try:
        pinning_client(host, pki[f"{kind}_cert"])
        host.ok(f"connect 1 localhost {srv.port}")
        ev = host.event("close", 1)
        assert ev["data"].startswith(
            "tls: certificate for localhost is not the one in SO_TLS_CA: a certificate there "
            "has the same subject"), ev
    finally:
        srv.stop()


def test_client_certificate_naming_its_host_only_in_the_cn_says_so(host, pki):
    # The bare `openssl req -x509 -subj /CN=localhost` certificate: pinned, but rustls
    # (like browsers) reads host names from subjectAltName only.
    srv = SServer(pki["no_san_cert"], pki["no_san_key"])
    try:
        pinning_client(host, pki["no_san_cert"])
        host.ok(f"connect 1 localhost {srv.port}")
        ev = host.event("close", 1)
        assert ev["data"] == ('tls: certificate not valid for host localhost: it names no host in '
                              'subjectAltName (the CN is not used; make it with -addext '
                              '"subjectAltName=DNS:localhost")'), ev
    finally:
        srv.stop()


def test_client_pinned_bundle_still_verifies_chains(host, pki):
    # A bundle may hold pinned certificates and CAs alike: the CA's server
    # certificate still verifies through its chain.
    bundle = pki["ca"] + ".bundle"
    with open(bundle, "w") as out:
        for name in ("pin_ca_cert", "ca"):
            with open(pki[name]) as f:
                out.write(f.read())
    srv = SServer(pki["cert"], pki["key"])
    try:
        pinning_client(host, bundle)
        host.ok(f"connect 1 localhost {srv.port}")
        host.event("write", 1)
    finally:
        srv.stop()


def test_default_mode5_does_not_verify_like_upstream(host, pki):
    srv = SServer(pki["self_cert"], pki["self_key"])
    try:
        host.ok("create 1 STREAM_TLS")
        assert host.ok("get 1 SO_TLS_VERIFY_PEER")["value"] == 0
        host.ok(f"connect 1 127.0.0.1 {srv.port}")
        host.event("write", 1)
        host.ok('write 1 "unverified but encrypted\\n"')
        assert srv.wait_for("unverified but encrypted")
    finally:
        srv.stop()


def test_sni_is_seen_by_the_server(host, pki):
    seen = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["cert"], pki["key"])
    ctx.sni_callback = lambda sslsock, name, c: seen.append(name)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    host.ok("create 1 STREAM_TLS_BINARY")
    host.ok('set 1 SO_TLS_SNI_HOSTNAME "localhost"')
    host.ok(f"connect 1 127.0.0.1 {port}")
    raw, _ = srv.accept()
    raw.settimeout(10)
    conn = ctx.wrap_socket(raw, server_side=True)
    host.event("write", 1)
    conn.sendall(b"\x00\x01binary")
    assert host.read_data(1, 8) == b"\x00\x01binary"
    assert seen == ["localhost"]
    conn.close()
    srv.close()


def tls_server(host, pki, sid=1):
    port = host.listen_port(sid, "STREAM_TLS", extra=[
        "set {id} SO_TLS_CERT " + json.dumps(pki["cert"]),
        "set {id} SO_TLS_KEY " + json.dumps(pki["key"]),
    ])
    host.ok(f"autoaccept {sid}")
    return port


def test_server_with_openssl_s_client(host, pki):
    port = tls_server(host, pki)
    host.ok("autoecho all")
    result = {}

    def run_client():
        result["p"] = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", pki["ca"],
             "-verify_return_error", "-servername", "localhost", "-tls1_3", "-quiet"],
            input=b"echo me\n", capture_output=True, timeout=20)

    t = threading.Thread(target=run_client)
    t.start()
    sid = host.accepted()
    assert host.read_data(sid, len("echo me\n")) == "echo me\n"
    host.event("write", sid)  # handshake done fired first; echo queued after
    host.ok(f"close {sid}")  # s_client leaves when the server closes
    t.join(20)
    p = result["p"]
    assert b"echo me" in p.stdout, p.stderr
    assert b"verify error" not in p.stderr


def test_server_with_curl(host, pki):
    port = tls_server(host, pki)
    result = {}

    def run_curl():
        result["p"] = subprocess.run(
            ["curl", "-sS", "--cacert", pki["ca"], "--tlsv1.2", "-w", "\n%{http_version}",
             f"https://localhost:{port}/hello"], capture_output=True, timeout=20)

    t = threading.Thread(target=run_curl)
    t.start()
    sid = host.accepted()
    request = host.event("read", sid)["data"]
    assert request.startswith("GET /hello HTTP/1.1\r\n")
    host.ok(f"write {sid} " + json.dumps("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"))
    t.join(20)
    p = result["p"]
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().startswith("ok")


def test_listener_without_certificate_says_what_is_missing(host):
    host.ok("create 1 STREAM_TLS")
    host.ok("bind 1 0 127.0.0.1")
    r = host.call("listen 1")
    assert r["ee"] == -15 and "SO_TLS_CERT" in r["error"]
