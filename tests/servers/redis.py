"""A throwaway redis-server on a free loopback port, with persistence off."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers.ports import LOOPBACK, free_port
from tests.servers.process import ServerProcess, find_binary

PACKAGE = "redis-server"


@dataclass(frozen=True)
class RedisServer:
    """Where the test redis listens and where its files live."""

    host: str
    port: int
    dir: Path
    log_path: Path
    pid: int

    @property
    def url(self) -> str:
        """Connection URL for ``redis.asyncio.from_url`` (database 0)."""
        return f"redis://{self.host}:{self.port}/0"


def _answers_ping(host: str, port: int) -> bool:
    """True once redis replies +PONG (or asks for a password); an open port may still be loading."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


@contextmanager
def running_redis(base_dir: Path, extra_args: Sequence[str] = ()) -> Iterator[RedisServer]:
    """Run redis-server in ``base_dir`` for the duration of the block.

    ``extra_args`` are more options, e.g. ``["--requirepass", "secret"]``.
    """
    binary = find_binary("redis-server", PACKAGE)
    port = free_port()
    argv = [
        binary,
        "--port", str(port),
        "--bind", LOOPBACK,
        "--save", "",
        "--appendonly", "no",
        "--dir", str(base_dir),
        "--daemonize", "no",
        *extra_args,
    ]  # fmt: skip
    process = ServerProcess("redis-server", argv, base_dir / "redis.log")
    process.start(lambda: _answers_ping(LOOPBACK, port))
    try:
        yield RedisServer(
            host=LOOPBACK, port=port, dir=base_dir, log_path=process.log_path, pid=process.pid
        )
    finally:
        process.stop()
