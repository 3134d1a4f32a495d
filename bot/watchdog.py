"""The event loop's watchdog: a thread that notices when the loop stops turning.

Everything tocsin does runs on one event loop; one call that blocks it (a library
resolving a name synchronously, a hung disk, a runaway loop) stops probes, Slack and
the listener at once, and nothing inside the loop can notice. The loop ticks the
watchdog several times per `stall_after`; a daemon thread looks as often. When the last
tick is older than `stall_after`, the thread logs, once per stall, the stack the loop's
thread is stuck in and the task it runs; the health report says "stalled" until the
loop has turned steadily for `stall_after` again, so `/healthz` answers 503 (while the
loop is stuck, /healthz cannot answer at all: a health check with a timeout fails).
While the loop turns, the thread tells systemd `WATCHDOG=1`; a stuck loop stops those
pings and `WatchdogSec=` restarts tocsin.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from typing import Any

from bot.systemd_notify import SystemdNotifier

log = logging.getLogger(__name__)

TICKS_PER_STALL = 5
LONGEST_TICK = 1.0


class LoopWatchdog:
    def __init__(self, stall_after: float, systemd: SystemdNotifier | None = None) -> None:
        self._stall_after = stall_after
        self._every = min(LONGEST_TICK, stall_after / TICKS_PER_STALL)
        self._systemd = systemd
        self._last_tick = time.monotonic()
        self._stalled_since: float | None = None
        self._turning_since = 0.0
        self._last_stall = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._ticking: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start watching the running loop (call from inside it)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._tick()
        self._thread = threading.Thread(target=self._watch, name="tocsin-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ticking is not None:
            self._ticking.cancel()
        if self._thread is not None:
            self._thread.join(timeout=2 * self._every + 1)

    def health(self) -> dict[str, Any]:
        """The loop's part of the health report; not ok for `stall_after` after a stall."""
        now = time.monotonic()
        if self._stalled_since is not None:
            return {"loop": "stalled", "stalled_for_s": round(now - self._stalled_since, 1)}
        if now - self._turning_since < self._stall_after:
            return {"loop": "recovering", "last_stall_s": round(self._last_stall, 1)}
        return {"loop": "ok"}

    def _tick(self) -> None:
        self._last_tick = time.monotonic()
        assert self._loop is not None
        self._ticking = self._loop.call_later(self._every, self._tick)

    def _watch(self) -> None:
        while not self._stop.wait(self._every):
            silent = time.monotonic() - self._last_tick
            if silent > self._stall_after:
                if self._stalled_since is None:
                    self._stalled_since = self._last_tick
                    log.error("%s", self._stuck_report(silent))
                continue
            if self._stalled_since is not None:
                self._last_stall = self._last_tick - self._stalled_since
                self._turning_since = self._last_tick  # before the stall ends, for health()
                self._stalled_since = None
                log.warning("event loop turned again after %.1f s", self._last_stall)
            if self._systemd is not None:
                self._systemd.send("WATCHDOG=1")

    def _stuck_report(self, silent: float) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(not found)\n"
        task = asyncio.current_task(self._loop) if self._loop is not None else None
        running = task.get_coro() if task is not None else None
        return (
            f"event loop has not turned for {silent:.1f} s (watchdog.stall_after "
            f"{self._stall_after:g} s); /healthz fails until it turns steadily again. "
            f"Running task: {getattr(running, '__qualname__', 'none')}. "
            f"The loop's thread is at:\n{stack.rstrip()}"
        )
