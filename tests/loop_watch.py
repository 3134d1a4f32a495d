"""An event loop in its own thread, watched from outside for blocks, for hostile-input tests.

A probe that loops over received bytes without yielding freezes its event loop; inside
that loop, no timeout and no assertion can notice. Here the loop runs in a thread, a task
on it stamps the time every few milliseconds, and a watcher thread records the longest
gap between stamps. A test runs its coroutine with `run()` and then checks `longest_block`.
A loop still blocked when a run's limit passes is broken out of with an exception raised
in its thread, so a failing test fails instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

T = TypeVar("T")
STAMP_EVERY = 0.005


class LoopBlocked(Exception):
    """Raised in the loop's thread to stop a loop that never yields again."""


class WatchedLoop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.last_turn = time.monotonic()
        self.longest_block = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watched-loop", daemon=True)
        self._watcher = threading.Thread(target=self._watch, name="loop-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._watcher.start()
        asyncio.run_coroutine_threadsafe(self._stamp(), self.loop)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        with suppress(LoopBlocked):
            self.loop.run_forever()

    async def _stamp(self) -> None:
        while True:
            self.last_turn = time.monotonic()
            await asyncio.sleep(STAMP_EVERY)

    def _watch(self) -> None:
        while not self._stop.wait(STAMP_EVERY):
            gap = time.monotonic() - self.last_turn - STAMP_EVERY
            self.longest_block = max(self.longest_block, gap)

    def reset(self) -> None:
        self.longest_block = 0.0

    def run(self, work: Coroutine[Any, Any, T], limit: float) -> T:
        """The result of `work`, or AssertionError once `limit` seconds have passed."""
        future = asyncio.run_coroutine_threadsafe(work, self.loop)
        try:
            return future.result(limit)
        except concurrent.futures.TimeoutError:
            blocked = time.monotonic() - self.last_turn
            if blocked > 1.0:
                self._break_out()
                raise AssertionError(f"the event loop was blocked for {blocked:.1f}s") from None
            future.cancel()
            raise AssertionError(f"still running after {limit:.1f}s") from None

    def _break_out(self) -> None:
        ident = self._thread.ident
        assert ident is not None
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(ident), ctypes.py_object(LoopBlocked)
        )
        self._thread.join(timeout=5)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(_cancel_the_rest(), self.loop).result(5)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
        self._watcher.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


async def _cancel_the_rest() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@contextmanager
def watched_loop() -> Iterator[WatchedLoop]:
    watched = WatchedLoop()
    watched.start()
    try:
        yield watched
    finally:
        watched.close()
