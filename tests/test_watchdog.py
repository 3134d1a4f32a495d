"""A blocked event loop is seen: its stack is logged once, /healthz fails, systemd's
watchdog pings stop, and the Dockerfile's health check reports it.

tocsin runs in this process, so a test blocks the very loop tocsin runs on with a
plain `time.sleep`, as a blocking call in a library would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import aiohttp
import pytest

from bot.config.loader import load_config
from bot.main import open_tocsin
from bot.runtime import Engine, running_engine
from incidents.clock import SystemClock

REPO = Path(__file__).resolve().parent.parent
STALL_AFTER = 1.0


@asynccontextmanager
async def watched(tmp_path: Path, environ: dict[str, str] | None = None) -> AsyncIterator[Engine]:
    path = tmp_path / "tocsin.yml"
    path.write_text(
        f'slack: {{channel: "#ops"}}\nstorage: {{path: {tmp_path / "t.db"}}}\n'
        f"listener: {{port: 0}}\nwatchdog: {{stall_after: {STALL_AFTER:g}s}}\n"
    )
    async with (
        open_tocsin(load_config(path)) as tocsin,
        running_engine(tocsin, SystemClock(), environ or {}) as engine,
    ):
        yield engine


async def health_of(engine: Engine) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{engine.listener_url}/healthz") as answer,
    ):
        return answer.status, json.loads(await answer.text())


async def healthy_within(engine: Engine, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (await health_of(engine))[0] == 200:
            return True
        await asyncio.sleep(0.2)
    return False


def block_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # tocsin's event loop is stuck right here


async def test_a_stuck_loop_is_logged_once_with_its_stack_and_fails_health(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with watched(tmp_path) as engine:
        assert (await health_of(engine))[0] == 200
        with caplog.at_level(logging.INFO):
            block_the_loop(STALL_AFTER + 1.5)
            status, report = await health_of(engine)
            assert (status, report["status"]) == (503, "stalled"), report
            assert await healthy_within(engine, STALL_AFTER + 3)
    stuck = [r for r in caplog.records if "event loop has not turned" in r.getMessage()]
    assert len(stuck) == 1
    assert "block_the_loop" in stuck[0].getMessage()
    assert "time.sleep(seconds)" in stuck[0].getMessage()
    assert any("event loop turned again" in r.getMessage() for r in caplog.records)


@contextmanager
def notify_socket() -> Iterator[tuple[str, list[tuple[float, str]]]]:
    """A datagram socket standing in for systemd's; yields its address and what arrived."""
    name = f"tocsin-test-{secrets.token_hex(6)}"
    received: list[tuple[float, str]] = []
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(0.1)
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                state = sock.recv(4096).decode()
            except TimeoutError:
                continue
            received.append((time.monotonic(), state))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield "@" + name, received
    finally:
        done.set()
        reader.join(2)
        sock.close()


async def test_systemd_watchdog_pings_stop_while_the_loop_is_stuck(tmp_path: Path) -> None:
    with notify_socket() as (address, received):
        async with watched(tmp_path, {"NOTIFY_SOCKET": address}):
            await asyncio.sleep(0.5)
            blocked_at = time.monotonic()
            block_the_loop(STALL_AFTER + 1.5)
            unblocked_at = time.monotonic()
            await asyncio.sleep(0.5)
        await asyncio.sleep(0.3)
    states = [state for _, state in received]
    assert states[0] == "READY=1" and states[-1] == "STOPPING=1", states
    pings = [at for at, state in received if state == "WATCHDOG=1"]
    assert any(at < blocked_at for at in pings)
    assert not [at for at in pings if blocked_at + STALL_AFTER + 0.5 < at <= unblocked_at]
    assert any(at > unblocked_at for at in pings)


def docker_health_check() -> list[str]:
    """The command of the Dockerfile's HEALTHCHECK (exec form)."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    [line] = [line for line in text.splitlines() if line.startswith("HEALTHCHECK")]
    command: list[str] = json.loads(line.split(" CMD ", 1)[1])
    return command


async def test_the_docker_health_check_fails_after_a_stall(tmp_path: Path) -> None:
    command = docker_health_check()
    assert command[0] == "python"

    def check(url: str) -> int:
        environ = {**os.environ, "TOCSIN_HEALTH_URL": f"{url}/healthz"}
        run = [sys.executable, *command[1:]]
        return subprocess.run(run, env=environ, timeout=30, check=False).returncode

    async with watched(tmp_path) as engine:
        assert await asyncio.to_thread(check, engine.listener_url) == 0, shlex.join(command)
        block_the_loop(STALL_AFTER + 1.5)
        assert await asyncio.to_thread(check, engine.listener_url) != 0
