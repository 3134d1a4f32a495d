"""`tocsin run` for real: a probe fails against nginx, an incident opens, nginx is fixed,
the incident resolves; SIGTERM stops the process cleanly with every result saved."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bot.cli import main
from bot.config.loader import load_config
from bot.main import open_tocsin
from bot.runtime import running_engine
from incidents.clock import SystemClock
from incidents.model import Status
from tests.servers.nginx import NginxServer


def write_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "tocsin.yml"
    path.write_text(
        f"""
slack: {{channel: "#ops"}}
storage: {{path: {tmp_path / "tocsin.db"}}}
listener: {{port: 0}}
detection: {{group_wait: 0s}}
probes:
  - id: shop-flag
    kind: http
    url: {url}
    interval: 1s
    timeout: 500ms
    fail_after: 2
    recover_after: 2
    severity: P1
    labels: {{service: shop}}
{extra}"""
    )
    return path


async def wait_for(predicate: Callable[[], Awaitable[bool]], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not true within {seconds}s")


async def test_probe_failure_opens_and_recovery_resolves_an_incident(
    nginx_server: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = nginx_server.root / f"flag-{os.getpid()}.txt"
    flag.unlink(missing_ok=True)
    config = write_config(tmp_path, nginx_server.url(flag.name))
    loaded = load_config(config)
    async with (
        open_tocsin(loaded) as tocsin,
        running_engine(tocsin, SystemClock(), {}) as engine,
    ):

        async def opened() -> bool:
            return bool(await tocsin.incidents.list_incidents([Status.OPEN]))

        await wait_for(opened, 6)
        [incident] = await tocsin.incidents.list_incidents()
        assert incident.severity.value == "P1"
        assert incident.title == "shop-flag failing: HTTP 404 (expected 200)"
        flag.write_text("up\n")
        flag.chmod(0o644)

        async def resolved() -> bool:
            return (await tocsin.incidents.get(incident.id)).status is Status.RESOLVED

        await wait_for(resolved, 6)
        kinds = [e.kind for e in await tocsin.incidents.timeline(incident.id)]
        assert kinds == ["opened", "recovered", "resolved"]
        assert engine.scheduler.stale_runs == 0
    flag.unlink()
    code = await asyncio.to_thread(
        main, ["probe", "--history", "shop-flag", "--json", "-c", str(config)]
    )
    history = json.loads(capsys.readouterr().out)
    assert code == 0
    transitions = [(c["from"], c["to"]) for c in history["changes"]]
    assert ("pending", "firing") in transitions and ("firing", "ok") in transitions
    assert {s["status"] for s in history["samples"]} == {"ok", "fail"}
    assert history["samples"][0]["reason"] == "HTTP 404 (expected 200)"


def test_sigterm_stops_cleanly_and_keeps_results(nginx_server: NginxServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, nginx_server.url("/health"))
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # each line as it is printed
    )
    assert process.stdout is not None
    started: list[str] = []  # what it printed until it said it is probing (start-up time varies)
    deadline = time.monotonic() + 60
    while not any("Stop with Ctrl-C or SIGTERM" in line for line in started):
        assert time.monotonic() < deadline and process.poll() is None, "".join(started)
        started.append(process.stdout.readline())
    time.sleep(2.5)  # two or three runs at a 1 s interval
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=20)
    output = "".join(started) + rest
    assert process.returncode == 0, output
    assert (
        "Stopped: in-flight probes finished, results saved, Slack messages sent or queued."
        in output
    )
    with sqlite3.connect(tmp_path / "tocsin.db") as db:
        samples = db.execute("SELECT status FROM probe_samples").fetchall()
        (state,) = db.execute("SELECT state FROM probe_states").fetchone()
    assert len(samples) >= 2
    assert {row[0] for row in samples} == {"ok"}
    assert '"health":"ok"' in state
