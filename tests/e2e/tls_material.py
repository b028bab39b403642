"""Throw-away TLS material made with the openssl CLI for each test run (never committed)."""
import os
import subprocess


def _run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


SAN = "subjectAltName=DNS:localhost,IP:127.0.0.1"


def _self_signed(name, subject, ca, cwd, san=True):
    """`openssl req -x509` as docs/modes/http.md tells admins to run it: CA:TRUE is
    what openssl puts in by default; `ca=False` asks for an end-entity one."""
    extra = [] if ca else ["-addext", "basicConstraints=critical,CA:FALSE"]
    if san:
        extra += ["-addext", SAN]
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", subject,
         *extra, cwd=cwd)


def make(dirpath):
    """CA, a server cert for localhost/127.0.0.1 signed by it, and self-signed ones
    for pinning: `self` (CA:FALSE), `pin_ca` (CA:TRUE, openssl's default), and an
    impostor of each (same subject and names, another key); `no_san` names its host
    only in the CN."""
    d = str(dirpath)
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=unisock test CA", cwd=d)
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    _run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext", cwd=d)
    _self_signed("self", "/CN=localhost", False, d)
    _self_signed("self_impostor", "/CN=localhost", False, d)
    _self_signed("pin_ca", "/CN=localhost/O=unisock pinned", True, d)
    _self_signed("pin_ca_impostor", "/CN=localhost/O=unisock pinned", True, d)
    _self_signed("no_san", "/CN=localhost", True, d, san=False)
    files = {"ca": "ca.pem", "cert": "server.pem", "key": "server.key"}
    for name in ("self", "self_impostor", "pin_ca", "pin_ca_impostor", "no_san"):
        files[f"{name}_cert"] = f"{name}.pem"
        files[f"{name}_key"] = f"{name}.key"
    return {k: os.path.join(d, v) for k, v in files.items()}
