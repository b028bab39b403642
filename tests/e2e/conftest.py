import os
import subprocess

import pytest

from host import Host, ROOT


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "policy(p): the admin's policy the `host` fixture runs with (\"open\", a dict "
        "or JSON); without it, the library's default")
    # Build the library and the harness once.
    subprocess.run([os.path.join(ROOT, "scripts", "unisock-host"), "/dev/null"], check=True,
                   stdout=subprocess.DEVNULL)


@pytest.fixture
def host(request):
    m = request.node.get_closest_marker("policy")
    h = Host(wrap=os.environ.get("UNISOCK_E2E_WRAP"), policy=m.args[0] if m else None)
    yield h
    rc = h.close()
    assert rc == 0, "unisock-host reported failures:\n" + "".join(h.log[-20:]) + "".join(h.stderr[-20:])
