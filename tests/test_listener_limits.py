"""The listener under untrusted connections: slow or idle clients, too many of them,
over-long request lines. tocsin runs for real (in this process, or as `tocsin run` in a
child when the test needs its own open-file limit) and is reached over loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.config.loader import load_config
from bot.main import open_tocsin
from bot.runtime import Engine, running_engine
from incidents.clock import SystemClock

TOKEN = "listener-test-heartbeat-token"


def config_text(tmp_path: Path, listener: str, probes: str = "") -> str:
    return (
        f'slack: {{channel: "#ops"}}\nstorage: {{path: {tmp_path / "t.db"}}}\n'
        f"listener: {{port: 0, {listener}}}\n"
        "probes:\n"
        "  - {id: backup, kind: heartbeat, period: 1d, token_env: BACKUP_TOKEN, severity: P3}\n"
        f"{probes}"
    )


@asynccontextmanager
async def listening(tmp_path: Path, listener: str) -> AsyncIterator[Engine]:
    path = tmp_path / "tocsin.yml"
    path.write_text(config_text(tmp_path, listener))
    async with (
        open_tocsin(load_config(path)) as tocsin,
        running_engine(tocsin, SystemClock(), {"BACKUP_TOKEN": TOKEN}) as engine,
    ):
        yield engine


def address(engine: Engine) -> tuple[str, int]:
    host, port = engine.listener_url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def connect(where: tuple[str, int]) -> socket.socket:
    return socket.create_connection(where, timeout=5)


async def answer_of(sock: socket.socket, seconds: float) -> bytes:
    """The head of the listener's answer, read within `seconds` (b"" if none came)."""

    def read() -> bytes:
        sock.settimeout(seconds)
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while b"\r\n\r\n" not in received and (chunk := sock.recv(65536)):
                received += chunk
        return received

    return await asyncio.to_thread(read)


async def closed_within(sock: socket.socket, seconds: float) -> bool:
    def wait() -> bool:
        sock.settimeout(seconds)
        try:
            return sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    return await asyncio.to_thread(wait)


async def test_a_connection_that_never_finishes_its_headers_is_closed_in_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with listening(tmp_path, "header_timeout: 1s") as engine:
        with caplog.at_level(logging.INFO), connect(address(engine)) as half:
            half.sendall(b"GET /healthz HTTP/1.1\r\nHost: tocsin\r\n")  # no blank line
            assert await closed_within(half, 1 + 2)
    assert [r for r in caplog.records if r.exc_info] == []
    assert any("headers" in r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)


async def test_a_body_that_does_not_arrive_in_time_gets_408(tmp_path: Path) -> None:
    async with listening(tmp_path, "body_timeout: 1s") as engine:
        with connect(address(engine)) as slow:
            slow.sendall(
                b"POST /heartbeat/backup HTTP/1.1\r\nHost: tocsin\r\n"
                + f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n".encode()
                + b"only ten b"
            )
            answer = await answer_of(slow, 1 + 2)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert engine.heartbeats.last_ping("backup") is None


async def test_connections_beyond_the_cap_wait_until_one_closes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with listening(tmp_path, "max_connections: 3") as engine:
        where = address(engine)
        with caplog.at_level(logging.INFO), contextlib.ExitStack() as stack:
            idle = [stack.enter_context(connect(where)) for _ in range(3)]
            await asyncio.sleep(0.2)  # accepted, and holding the three places
            waiting = stack.enter_context(connect(where))
            waiting.sendall(b"GET /healthz HTTP/1.1\r\nHost: tocsin\r\nConnection: close\r\n\r\n")
            assert await answer_of(waiting, 1) == b""  # not accepted while three are open
            idle[0].close()
            assert (await answer_of(waiting, 3)).startswith(b"HTTP/1.1 200 ")
    capped = [r for r in caplog.records if "connections open" in r.getMessage()]
    assert len(capped) == 1


async def test_an_over_long_request_line_is_refused_without_logging_its_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with listening(tmp_path, "") as engine:
        with caplog.at_level(logging.DEBUG), connect(address(engine)) as long_line:
            path = f"/heartbeat/backup?token={TOKEN}&pad={'A' * 9000}"
            long_line.sendall(f"GET {path} HTTP/1.1\r\nHost: tocsin\r\n\r\n".encode())
            answer = await answer_of(long_line, 3)
    assert answer.split(b" ", 2)[1] == b"400", answer[:100]
    assert [r for r in caplog.records if r.exc_info] == []
    assert not any(TOKEN in r.getMessage() for r in caplog.records)
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


@pytest.fixture
def open_files_for_1100_connections() -> Iterator[None]:
    """This test process opens 1,100 sockets at once: make room under its own limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_1100_idle_connections_under_a_low_open_file_limit_starve_nothing(
    tmp_path: Path, open_files_for_1100_connections: None
) -> None:
    """The report: 1,100 idle connections under a soft limit of 1024 made /healthz fail and
    every probe an error. Here the soft limit is 512 and the hard one 1100; tocsin raises
    its soft limit, keeps room for probes, closes the idle connections after the header
    timeout and logs the flood in a few lines."""
    target = socket.create_server(("127.0.0.1", 0), backlog=128)  # the probe's target
    probes = (
        f"  - {{id: port-up, kind: tcp, host: 127.0.0.1, port: {target.getsockname()[1]},"
        " interval: 1s, timeout: 500ms, severity: P3}\n"
    )
    config = tmp_path / "tocsin.yml"
    config.write_text(config_text(tmp_path, "header_timeout: 1s", probes))
    child = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "BACKUP_TOKEN": TOKEN},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (512, 1100)),
    )
    assert child.stdout is not None
    idle: list[socket.socket] = []
    try:
        url = started_url(child)
        assert open_file_limit(child.pid) == (1100, 1100)
        host, port = url.removeprefix("http://").rsplit(":", 1)
        for _ in range(1100):
            with contextlib.suppress(OSError):
                idle.append(socket.create_connection((host, int(port)), timeout=2))
        health = http.client.HTTPConnection(host, int(port), timeout=1 + 1 + 5)
        health.request("GET", "/healthz")
        assert health.getresponse().status == 200
        health.close()
        time.sleep(2)  # probes keep running while the flood is cleared
    finally:
        for sock in idle:
            sock.close()
        target.close()
        child.send_signal(signal.SIGTERM)
        output = child.communicate(timeout=30)[0]
    assert child.returncode == 0, output
    assert "Traceback" not in output and "Too many open files" not in output, output[-3000:]
    assert len(output.splitlines()) < 60, output[-3000:]
    with sqlite3.connect(tmp_path / "t.db") as db:
        statuses = db.execute("SELECT status, reason FROM probe_samples").fetchall()
    assert statuses and {status for status, _ in statuses} == {"ok"}, statuses


def started_url(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    deadline = time.monotonic() + 60
    seen: list[str] = []
    while not any("Stop with Ctrl-C or SIGTERM" in line for line in seen):
        assert time.monotonic() < deadline and child.poll() is None, "".join(seen)
        seen.append(child.stdout.readline())
    line = next(line for line in seen if "heartbeats at " in line)
    return line.split("heartbeats at ", 1)[1].split("/heartbeat/", 1)[0]


def open_file_limit(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-file limit in /proc")
