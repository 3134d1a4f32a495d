"""The probe scheduler in real time: hung probes, caps, stale runs, spread starts."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import Counter
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.config.probe_settings import ProbeSettings
from bot.config.runtime_settings import SchedulerConfig
from bot.probe_plan import PlannedProbe, probe_rule
from bot.scheduler import ProbeScheduler, phase
from probes.probe import KindSettings, Probe, ProbeContext
from probes.result import Observation, ProbeResult, Status


class ScriptedProbe(Probe):
    """A probe of our own making: sleeps, hangs or blocks the loop on demand."""

    kind = "tcp"
    settings_model = KindSettings
    running = 0
    peak = 0

    def __init__(self, probe_id: str, behaviour: str, host: str = "h1") -> None:
        super().__init__(probe_id, KindSettings(), ProbeContext())
        self.behaviour, self.host = behaviour, host

    def configure(self, settings: KindSettings) -> None:
        pass

    @property
    def target_host(self) -> str:
        return self.host

    async def observe(self, budget: float) -> Observation:
        ScriptedProbe.running += 1
        ScriptedProbe.peak = max(ScriptedProbe.peak, ScriptedProbe.running)
        try:
            if self.behaviour == "hang":
                await asyncio.Event().wait()
            elif self.behaviour == "block":
                time.sleep(1.6)  # noqa: ASYNC251 - blocks the loop, as a CPU-bound bug would
            elif self.behaviour == "slow":
                await asyncio.sleep(0.3)
            return Observation(Status.OK, "fine")
        finally:
            ScriptedProbe.running -= 1


def planned(probe: ScriptedProbe, kind: str = "tcp", interval: str = "1s") -> PlannedProbe:
    settings = ProbeSettings.model_validate(
        {"id": probe.probe_id, "kind": kind, "interval": interval, "timeout": "500ms"}
    )
    return PlannedProbe(settings, probe, probe_rule(settings, "service"))


class Recorder:
    def __init__(self) -> None:
        self.results: list[ProbeResult] = []
        self.stale: list[tuple[str, str]] = []

    async def result(self, result: ProbeResult) -> None:
        self.results.append(result)

    def mark_stale(self, probe_id: str, why: str) -> None:
        self.stale.append((probe_id, why))


async def run_for(seconds: float, items: list[PlannedProbe], limits: SchedulerConfig) -> Recorder:
    recorder = Recorder()
    scheduler = ProbeScheduler(items, limits, recorder.result, recorder.mark_stale)
    scheduler.start()
    await asyncio.sleep(seconds)
    await scheduler.stop()
    return recorder


async def test_a_hung_probe_times_out_and_the_others_keep_their_schedule() -> None:
    items = [planned(ScriptedProbe("hung", "hang"))] + [
        planned(ScriptedProbe(f"p{n}", "ok")) for n in range(5)
    ]
    recorder = await run_for(4.2, items, SchedulerConfig())
    runs = Counter(r.probe_id for r in recorder.results)
    assert all(runs[f"p{n}"] >= 3 for n in range(5)), runs
    hung = [r for r in recorder.results if r.probe_id == "hung"]
    assert len(hung) >= 3
    assert {r.status for r in hung} == {Status.FAIL}
    assert hung[0].reason == "no answer within 0.5s"
    assert all(0.45 < r.duration < 0.9 for r in hung)
    assert recorder.stale == []


async def test_a_blocked_loop_marks_late_runs_stale() -> None:
    items = [planned(ScriptedProbe("blocker", "block", host="h0"), interval="3s")] + [
        planned(ScriptedProbe(f"p{n}", "ok")) for n in range(3)
    ]
    recorder = await run_for(4.5, items, SchedulerConfig())
    stale_probes = {probe_id for probe_id, _ in recorder.stale}
    assert stale_probes & {"p0", "p1", "p2"}, recorder.stale
    assert any("skipped" in why or "late" in why for _, why in recorder.stale), recorder.stale


async def test_per_host_cap_bounds_concurrent_sessions() -> None:
    ScriptedProbe.peak = 0
    items = [planned(ScriptedProbe(f"s{n}", "slow", host="web-1"), kind="ssh") for n in range(6)]
    limits = SchedulerConfig(max_per_host={"ssh": 2})
    recorder = await run_for(3.2, items, limits)
    assert ScriptedProbe.peak <= 2
    assert len(recorder.results) >= 6


def test_first_runs_are_spread_over_the_interval_and_stable() -> None:
    phases = [phase(f"shop-{n}", 60) for n in range(1000)]
    assert all(0 <= p < 60 for p in phases)
    per_second = Counter(int(p) for p in phases)
    assert max(per_second.values()) < 40  # about 17 per second, never a herd
    assert phase("shop-1", 60) == phase("shop-1", 60)
    assert timedelta(seconds=phase("a", 30)) < timedelta(seconds=30)


def test_the_apscheduler_internals_the_loop_scheduler_replaces_still_exist() -> None:
    """LoopScheduler overrides private AsyncIOScheduler code; an upgrade must not drift."""
    source = inspect.getsource(AsyncIOScheduler._start_timer)
    assert "self._timeout = self._eventloop.call_later(wait_seconds, self.wakeup)" in source
    assert "del self._timeout" in inspect.getsource(AsyncIOScheduler._stop_timer)
    assert callable(AsyncIOScheduler._process_jobs)
