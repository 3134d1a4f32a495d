"""The probe scheduler: APScheduler 3 runs each probe on its interval, visibly.

- First runs are spread over the interval by a hash of the probe id, so a start
  or restart never fires every probe at once and phases survive restarts.
- A global cap, per-kind caps and per-kind-per-host caps bound concurrency; a run
  that cannot get a slot before its next run would be due is skipped as stale.
- APScheduler coalesces or drops late and overlapping runs with only an event, so
  the scheduler keeps each probe's own due time: a run that starts late, or finds
  that runs were skipped since the one it expected, marks the probe `stale` and
  is counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.config.runtime_settings import SchedulerConfig
from bot.probe_plan import PlannedProbe
from probes.probe import run_probe
from probes.result import ProbeResult

log = logging.getLogger(__name__)

ResultSink = Callable[[ProbeResult], Awaitable[None]]
StaleSink = Callable[[str, str], None]


PHASE_STEP = 0.05
SLOTS_PER_INTERVAL = 60
LONGEST_SLOT = 0.25


def phase(probe_id: str, interval: float) -> float:
    """A stable offset in [0, interval): the same probe starts at the same phase.

    Offsets fall on slots of 1/60 of the interval, between 50 ms and 250 ms long:
    probes sharing a slot share one wake-up of the event loop and of APScheduler
    (a wake-up costs about as much as an HTTP probe), while a slot stays short
    enough that its probes do not queue behind each other.
    """
    step = min(max(PHASE_STEP, interval / SLOTS_PER_INTERVAL), LONGEST_SLOT)
    offset = (zlib.crc32(probe_id.encode()) / 2**32) * interval
    return min(round(offset / step) * step, max(interval - step, 0.0))


class LoopScheduler(AsyncIOScheduler):  # type: ignore[misc]  # APScheduler 3 is untyped
    """AsyncIOScheduler without a thread-safe hop per wake-up.

    The stock timer calls `wakeup`, which re-schedules itself through
    `call_soon_threadsafe` (a self-pipe write and read) on every wake-up; the
    timer already runs in the loop, so process due jobs directly.
    """

    def _start_timer(self, wait_seconds: float | None) -> None:
        self._stop_timer()
        if wait_seconds is not None:
            self._timeout = self._eventloop.call_later(wait_seconds, self._wake_in_loop)

    def _wake_in_loop(self) -> None:
        self._stop_timer()
        self._start_timer(self._process_jobs())


def stale_after(interval: float) -> float:
    """How late a run may start before it counts as stale."""
    return max(1.0, 0.1 * interval)


class Limits:
    """Semaphores for the global, per-kind and per-kind-per-host caps."""

    def __init__(self, config: SchedulerConfig) -> None:
        self._config = config
        self._all = asyncio.Semaphore(config.max_concurrent)
        self._kinds: dict[str, asyncio.Semaphore] = {}
        self._hosts: dict[tuple[str, str], asyncio.Semaphore] = {}

    def _semaphores(self, kind: str, host: str) -> list[asyncio.Semaphore]:
        """Narrowest cap first: a run queued behind one busy host holds no global slot."""
        chosen = []
        if host and kind in self._config.max_per_host:
            chosen.append(
                self._hosts.setdefault(
                    (kind, host), asyncio.Semaphore(self._config.max_per_host[kind])
                )
            )
        if kind in self._config.max_per_kind:
            chosen.append(
                self._kinds.setdefault(kind, asyncio.Semaphore(self._config.max_per_kind[kind]))
            )
        chosen.append(self._all)
        return chosen

    async def acquire(self, kind: str, host: str, wait: float) -> list[asyncio.Semaphore]:
        """Take every cap that applies (TimeoutError if not free within `wait`).

        The caller releases what it got back. When every cap is free, which is
        the common case, no timer is armed at all.
        """
        semaphores = self._semaphores(kind, host)
        if not any(semaphore.locked() for semaphore in semaphores):
            for semaphore in semaphores:
                await semaphore.acquire()  # free: returns without suspending
            return semaphores
        held: list[asyncio.Semaphore] = []
        try:
            async with asyncio.timeout(wait):
                for semaphore in semaphores:
                    await semaphore.acquire()
                    held.append(semaphore)
        except BaseException:
            release(held)
            raise
        return held


def release(semaphores: list[asyncio.Semaphore]) -> None:
    for semaphore in reversed(semaphores):
        semaphore.release()


class ProbeScheduler:
    def __init__(
        self,
        planned: list[PlannedProbe],
        limits: SchedulerConfig,
        on_result: ResultSink,
        on_stale: StaleSink,
    ) -> None:
        self._planned = {p.id: p for p in planned}
        self._limits_config = limits
        self._on_result = on_result
        self._on_stale = on_stale
        self._scheduler: AsyncIOScheduler | None = None
        self._due: dict[str, float] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._started: set[str] = set()
        self.lateness: deque[float] = deque(maxlen=200_000)
        self.stale_runs = 0
        self.runs = 0

    def start(self, extra_jobs: Sequence[tuple[Callable[[], Awaitable[None]], float]] = ()) -> None:
        """Schedule every probe (must run inside the event loop); `extra_jobs` are tickers."""
        self._limits = Limits(self._limits_config)
        scheduler = LoopScheduler()
        now = time.time()
        slots: dict[tuple[float, float], list[str]] = {}
        for probe_id, planned in self._planned.items():
            # Aligned to wall-clock time, so a restart keeps every probe's phase.
            first = now + (phase(probe_id, planned.interval) - now) % planned.interval
            self._due[probe_id] = first
            slots.setdefault((planned.interval, first), []).append(probe_id)
        for (interval, first), probe_ids in slots.items():
            # One APScheduler job per interval and 50 ms phase slot: its own cost per
            # wake-up is larger than a probe's bookkeeping, so probes sharing a slot
            # share the job. Each probe still keeps its own due time and stale count.
            scheduler.add_job(
                self._launch_slot,
                IntervalTrigger(
                    seconds=interval, start_date=datetime.fromtimestamp(first).astimezone()
                ),
                args=[probe_ids],
                id=f"probes-{interval:g}s-{first:.2f}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(interval)),
            )
        for index, (job, every) in enumerate(extra_jobs):
            scheduler.add_job(
                self._launch_ticker,
                IntervalTrigger(seconds=every),
                args=[f"ticker-{index}", job],
                id=f"ticker-{index}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        scheduler.start()
        self._scheduler = scheduler

    async def stop(self) -> None:
        """Stop scheduling; let in-flight probes finish or reach their timeout."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self._running:
            # Every run ends by its timeout (plus its result handling): wait that long.
            grace = max((p.timeout for p in self._planned.values()), default=0.0) + 5.0
            _, late = await asyncio.wait(set(self._running.values()), timeout=grace)
            for task in late:
                task.cancel()
        for planned in self._planned.values():
            await planned.probe.close()

    async def _launch_slot(self, probe_ids: list[str]) -> None:
        """The APScheduler job of one slot: start each probe's run and return at once.

        APScheduler cancels the jobs it is running when it shuts down; a run in its
        own task can finish (or time out) during a graceful stop instead.
        """
        for probe_id in probe_ids:
            self._launch(probe_id)

    def _launch(self, probe_id: str) -> None:
        if probe_id in self._running:
            self._due[probe_id] += self._planned[probe_id].interval  # counted here, once
            self._stale(probe_id, "run skipped: the previous run was still going")
            return
        task = asyncio.create_task(self._run(probe_id), name=f"probe {probe_id}")
        self._running[probe_id] = task
        task.add_done_callback(lambda _: self._running.pop(probe_id, None))

    async def _launch_ticker(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        """Tickers run in their own task too, so a stop lets them finish their write."""
        if name in self._running:
            return

        async def tick() -> None:
            try:
                await job()
            except Exception:
                log.exception("%s failed", name)

        task = asyncio.create_task(tick(), name=name)
        self._running[name] = task
        task.add_done_callback(lambda _: self._running.pop(name, None))

    async def _run(self, probe_id: str) -> None:
        planned = self._planned[probe_id]
        try:
            late = self._lateness(probe_id, planned.interval)
            wait = max(planned.interval - planned.timeout - late % planned.interval, 0.001)
            try:
                held = await self._limits.acquire(
                    planned.settings.kind, planned.probe.target_host, wait
                )
            except TimeoutError:
                self._stale(probe_id, f"no free slot within {wait:.1f}s (concurrency caps)")
                return
            try:
                result = await run_probe(planned.probe, planned.timeout)
            finally:
                release(held)
            self.runs += 1
            await self._on_result(result)
        except Exception:
            log.exception("probe %s: result handling failed", probe_id)

    def _lateness(self, probe_id: str, interval: float) -> float:
        """Seconds since the run we expected; runs APScheduler coalesced away are counted."""
        expected = self._due[probe_id]
        late = max(time.time() - expected, 0.0)
        if probe_id not in self._started:
            # The first run may land an interval later when start-up took longer than
            # the probe's phase; that is APScheduler's first slot, not a skipped run.
            self._started.add(probe_id)
            expected += interval * int(late // interval)
            late -= interval * int(late // interval)
        skipped = int(late // interval)
        self._due[probe_id] = expected + (skipped + 1) * interval
        self.lateness.append(late)
        if skipped:
            self._stale(probe_id, f"{skipped} run(s) skipped: the loop was blocked {late:.1f}s")
        elif late > stale_after(interval):
            self._stale(probe_id, f"run started {late:.1f}s late")
        return late

    def _stale(self, probe_id: str, why: str) -> None:
        self.stale_runs += 1
        log.warning("probe %s is stale: %s", probe_id, why)
        self._on_stale(probe_id, why)


def lateness_percentile(values: deque[float] | list[float], percent: float) -> timedelta:
    ordered = sorted(values)
    if not ordered:
        return timedelta(0)
    index = min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))
    return timedelta(seconds=ordered[index])
