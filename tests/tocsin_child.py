"""`tocsin run` as a child process a test can start, wait for, kill -9 and stop.

Its output goes to a log file, read by polling, so an async test never blocks its loop
(the Slack fake answers from that same loop). Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

READY = "Stop with Ctrl-C or SIGTERM."
ROOT = Path(__file__).parent.parent


async def until(what: str, check: Callable[[], bool], seconds: float, every: float = 0.02) -> None:
    """Poll `check` until it holds; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:g} s: {what}")
        await asyncio.sleep(every)


class TocsinChild:
    def __init__(self, config: Path, environ: Mapping[str, str], log: Path) -> None:
        self.config, self.log = config, log
        self.environ = {**os.environ, **environ, "PYTHONUNBUFFERED": "1"}
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    async def start(self, seconds: float = 30) -> None:
        """Start tocsin and wait until it says it is probing (start-up and restore done)."""
        assert self.process is None
        self.starts += 1
        self.process = process = self._spawn()
        await until(
            f"tocsin start {self.starts} (exit code {process.poll()}); see {self.log}",
            lambda: process.poll() is None and self.output().count(READY) >= self.starts,
            seconds,
        )

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run", "-c", str(self.config)],
                cwd=ROOT,
                env=self.environ,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """SIGKILL: no flush, no shutdown, exactly what a crash or the OOM killer leaves."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    async def stop(self, seconds: float = 20) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code."""
        assert self.process is not None
        process, self.process = self.process, None
        process.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(process.wait, seconds)

    def close(self) -> None:
        """After a failed test: make sure no child outlives it."""
        if self.process is not None and self.process.poll() is None:
            self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
