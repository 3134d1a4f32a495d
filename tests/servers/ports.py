"""Free loopback port allocation for test servers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """Return a port that was free a moment ago on ``host``.

    Servers such as redis treat port 0 as "no listener", so we ask the kernel
    for an ephemeral port and hand the number to the server ourselves.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """Return True when a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def blackhole(host: str = LOOPBACK) -> Iterator[int]:
    """A port that accepts TCP connections (into the backlog) and never says a word."""
    with socket.socket() as listener:
        listener.bind((host, 0))
        listener.listen(8)
        yield listener.getsockname()[1]
