"""A throwaway tinyproxy on a free loopback port: the egress proxy of the proxy tests.

tinyproxy is a real forward proxy (absolute-form requests for http, CONNECT tunnels for
https, Basic credentials), small enough to start per test session. It runs in the
foreground (`-d`) and is stopped by pid.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers.ports import LOOPBACK, free_port
from tests.servers.process import ServerProcess, current_user, find_binary

PACKAGE = "tinyproxy"


@dataclass(frozen=True)
class ProxyServer:
    host: str
    port: int
    user: str | None
    password: str | None
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def running_tinyproxy(
    base_dir: Path, user: str | None = None, password: str | None = None
) -> Iterator[ProxyServer]:
    """tinyproxy for the block; with `user`, it wants Basic credentials (407 without)."""
    binary = find_binary("tinyproxy", PACKAGE)
    port = free_port()
    lines = [
        f"User {current_user()}",
        f"Port {port}",
        f"Listen {LOOPBACK}",
        "Timeout 30",
        f'PidFile "{base_dir / "tinyproxy.pid"}"',
        "LogLevel Info",
        "MaxClients 50",
        f"Allow {LOOPBACK}",
        "DisableViaHeader Yes",
    ]
    if user is not None:
        lines.append(f"BasicAuth {user} {password}")
    config = base_dir / "tinyproxy.conf"
    config.write_text("\n".join(lines) + "\n")
    process = ServerProcess("tinyproxy", [binary, "-d", "-c", str(config)], base_dir / "log")
    process.start(lambda: _listening(port))
    try:
        yield ProxyServer(LOOPBACK, port, user, password, process.log_path)
    finally:
        process.stop()
