"""The running probe engine: scheduler, detection, result journal and HTTP listener.

`running_engine` starts them in dependency order inside the event loop and
stops them in reverse: scheduling stops first, in-flight probes finish or time
out, then the journal is flushed, so a SIGTERM loses no streak and no sample.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.listener import listener_app
from bot.main import Tocsin
from bot.maintenance_calendar import ConfiguredCalendar
from bot.probe_plan import PlannedProbe, detection_settings, plan_probes, probe_context
from bot.scheduler import ProbeScheduler
from incidents.clock import Clock
from incidents.detection import Detection
from incidents.heartbeats import HeartbeatBook
from incidents.probe_journal import ProbeJournal
from probes.heartbeat import HeartbeatSettings

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
PRUNE_SECONDS = 60.0


@dataclass
class Engine:
    planned: list[PlannedProbe]
    detection: Detection
    journal: ProbeJournal
    heartbeats: HeartbeatBook
    scheduler: ProbeScheduler
    listener_url: str = ""

    def health(self) -> dict[str, Any]:
        states = self.detection.states.values()
        return {
            "status": "ok",
            "probes": len(self.planned),
            "runs": self.scheduler.runs,
            "stale_runs": self.scheduler.stale_runs,
            "firing": sorted(s.probe_id for s in states if s.firing),
            "stale": sorted(s.probe_id for s in states if s.stale),
            "error": sorted(s.probe_id for s in states if s.health == "error"),
        }

    async def tick(self) -> None:
        try:
            await self.detection.tick()
        finally:
            await self.journal.flush()

    async def prune(self) -> None:
        await self.journal.prune()


def heartbeat_tokens(
    planned: list[PlannedProbe], environ: Mapping[str, str]
) -> dict[str, str | None]:
    """Each heartbeat probe's token, read from its `token_env` (None when unset)."""
    tokens: dict[str, str | None] = {}
    for item in planned:
        settings = item.settings.kind_settings()
        if isinstance(settings, HeartbeatSettings):
            tokens[item.id] = environ.get(settings.token_env) or None
    return tokens


async def build_engine(tocsin: Tocsin, clock: Clock, environ: Mapping[str, str]) -> Engine:
    config = tocsin.settings.config
    heartbeats = HeartbeatBook(tocsin.database, clock)
    await heartbeats.load(p.id for p in config.probes if p.kind == "heartbeat")
    planned = plan_probes(config, probe_context(config, heartbeats, environ, clock))
    journal = ProbeJournal(tocsin.database)
    detection = Detection(
        [p.rule for p in planned],
        tocsin.incidents,
        journal,
        clock,
        detection_settings(config),
        ConfiguredCalendar(config.maintenance, config.zone),
    )
    await detection.restore()
    scheduler = ProbeScheduler(planned, config.scheduler, detection.observe, detection.mark_stale)
    return Engine(planned, detection, journal, heartbeats, scheduler)


@asynccontextmanager
async def running_engine(
    tocsin: Tocsin, clock: Clock, environ: Mapping[str, str], *, listen: bool = True
) -> AsyncIterator[Engine]:
    engine = await build_engine(tocsin, clock, environ)
    runner: web.AppRunner | None = None
    if listen:
        listener = tocsin.settings.config.listener
        app = listener_app(
            engine.heartbeats, heartbeat_tokens(engine.planned, environ), engine.health
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, listener.host, listener.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        engine.listener_url = f"http://{host}:{port}"
        log.info("listening on %s", engine.listener_url)
    engine.scheduler.start([(engine.tick, TICK_SECONDS), (engine.prune, PRUNE_SECONDS)])
    try:
        yield engine
    finally:
        await engine.scheduler.stop()
        await engine.detection.tick()
        await engine.journal.flush()
        if runner is not None:
            await runner.cleanup()
