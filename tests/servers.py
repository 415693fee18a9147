"""A Jupyter server started for a test: a free port on localhost, and waiting until it answers."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(url: str, server: subprocess.Popen, seconds: float = 120) -> None:
    """Return once ``url`` answers; fail the test (killing ``server``) if it has not within ``seconds`` or the
    server exited."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"the Jupyter server did not answer at {url.split('?')[0]}")
            time.sleep(0.5)
