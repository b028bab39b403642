import os
import subprocess

import pytest

from host import Host, ROOT


def pytest_configure(config):
    # Build the library and the harness once.
    subprocess.run([os.path.join(ROOT, "scripts", "unisock-host"), "/dev/null"], check=True,
                   stdout=subprocess.DEVNULL)


@pytest.fixture
def host():
    h = Host(wrap=os.environ.get("UNISOCK_E2E_WRAP"))
    yield h
    rc = h.close()
    assert rc == 0, "unisock-host reported failures:\n" + "".join(h.log[-20:]) + "".join(h.stderr[-20:])
