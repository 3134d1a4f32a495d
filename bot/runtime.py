"""The running process: scheduler, detection, escalation, Slack and the HTTP listener.

`running_engine` starts them in dependency order inside the event loop and
stops them in reverse: Slack stops taking events, scheduling stops, in-flight
probes finish or time out, the journal is flushed, and the outbox sender lets
in-flight sends finish (the rest stays queued in SQLite), so a SIGTERM loses
no streak, no sample and no message.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.config import TocsinConfig
from bot.listener import listener_app
from bot.listener_server import ListenerLimits, ListenerServer
from bot.main import Tocsin
from bot.maintenance_calendar import CombinedCalendar, ConfiguredCalendar, Maintenance
from bot.open_files import connection_budget, raise_open_file_limit
from bot.probe_plan import PlannedProbe, detection_settings, plan_probes, probe_context
from bot.scheduler import ProbeScheduler
from bot.slack_app import SlackFace, build_slack
from bot.slack_connection import SlackCredentials
from bot.systemd_notify import SystemdNotifier
from bot.watchdog import LoopWatchdog
from incidents.blindness import Blindness, BlindnessSettings
from incidents.clock import Clock
from incidents.detection import Detection
from incidents.escalation import Escalation
from incidents.heartbeats import HeartbeatBook
from incidents.maintenance_book import MaintenanceBook
from incidents.outbox import Outbox
from incidents.probe_journal import ProbeJournal
from probes.heartbeat import HeartbeatSettings
from probes.probe import run_probe
from probes.result import ProbeResult

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
PRUNE_SECONDS = 60.0
GUARD_SAVE_SECONDS = 2.0
OUTBOX_KEEP = timedelta(days=7)


@dataclass
class Engine:
    planned: list[PlannedProbe]
    detection: Detection
    journal: ProbeJournal
    heartbeats: HeartbeatBook
    scheduler: ProbeScheduler
    escalation: Escalation
    outbox: Outbox
    maintenance: Maintenance
    clock: Clock
    slack: SlackFace | None = None
    listener_url: str = ""
    watchdog: LoopWatchdog | None = None
    blindness: Blindness | None = None

    def health(self) -> dict[str, Any]:
        states = self.detection.states.values()
        slack = {"slack": self.slack.health()} if self.slack is not None else {}
        loop = self.watchdog.health() if self.watchdog is not None else {"loop": "ok"}
        return {
            **slack,
            "status": "ok" if loop["loop"] == "ok" else "stalled",
            **loop,
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
        if self.blindness is not None:
            await self.blindness.tick()

    async def prune(self) -> None:
        await self.journal.prune()
        cutoff = self.clock.now() - OUTBOX_KEEP
        await self.outbox.write(lambda records: records.prune(cutoff))

    async def escalate(self) -> None:
        await self.escalation.deliver_due()

    async def run_probe(self, probe_id: str) -> ProbeResult:
        """Run one probe now, outside its schedule (`/probe`); its result is not recorded."""
        planned = next(p for p in self.planned if p.id == probe_id)
        return await run_probe(planned.probe, planned.timeout)


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


def listener_limits(config: TocsinConfig) -> ListenerLimits:
    """The listener's bounds; the open-file limit is raised first, as far as it goes."""
    listener = config.listener
    connections = connection_budget(
        listener.max_connections, raise_open_file_limit(), config.scheduler.max_concurrent
    )
    return ListenerLimits(
        connections, listener.header_timeout.total_seconds(), listener.body_timeout.total_seconds()
    )


async def build_engine(tocsin: Tocsin, clock: Clock, environ: Mapping[str, str]) -> Engine:
    config = tocsin.settings.config
    heartbeats = HeartbeatBook(tocsin.database, clock)
    await heartbeats.load(p.id for p in config.probes if p.kind == "heartbeat")
    planned = plan_probes(config, probe_context(config, heartbeats, environ, clock))
    configured = ConfiguredCalendar(config.maintenance, config.zone)
    book = MaintenanceBook(tocsin.database, clock)
    await book.load()
    journal = ProbeJournal(tocsin.database)
    detection = Detection(
        [p.rule for p in planned],
        tocsin.incidents,
        journal,
        clock,
        detection_settings(config),
        CombinedCalendar(configured, book),
    )
    await detection.restore()
    blind = config.detection.blindness
    blindness = Blindness(
        tocsin.database,
        BlindnessSettings(blind.after, blind.channel or config.slack.channel, tuple(blind.notify)),
        clock,
    )
    await blindness.load()

    async def observe(result: ProbeResult) -> None:
        """Every scheduled result: blindness counts errors, detection decides."""
        blindness.observe(result)
        await detection.observe(result)

    scheduler = ProbeScheduler(planned, config.scheduler, observe, detection.mark_stale)
    escalation = Escalation(tocsin.database, tocsin.planner, clock, config.zone)
    return Engine(
        planned,
        detection,
        journal,
        heartbeats,
        scheduler,
        escalation,
        Outbox(tocsin.database),
        Maintenance(book, configured),
        clock,
        blindness=blindness,
    )


@asynccontextmanager
async def running_engine(
    tocsin: Tocsin,
    clock: Clock,
    environ: Mapping[str, str],
    *,
    listen: bool = True,
    slack: SlackCredentials | None = None,
) -> AsyncIterator[Engine]:
    engine = await build_engine(tocsin, clock, environ)
    if slack is not None:
        engine.slack = build_slack(
            slack,
            tocsin.settings.config,
            tocsin.incidents,
            tocsin.store,
            engine.journal,
            engine.escalation,
            engine.outbox,
            clock,
            engine.run_probe,
            engine.maintenance,
        )
    server: ListenerServer | None = None
    tickers = [
        (engine.tick, TICK_SECONDS),
        (engine.escalate, TICK_SECONDS),
        (engine.prune, PRUNE_SECONDS),
    ]
    if listen:
        listener = tocsin.settings.config.listener
        app = listener_app(
            engine.heartbeats, heartbeat_tokens(engine.planned, environ), engine.health
        )
        if engine.slack is not None and engine.slack.events is not None:
            await engine.slack.events.guard.load()
            app.router.add_post("/slack/events", engine.slack.events.handler())
            tickers.append((engine.slack.events.guard.save, GUARD_SAVE_SECONDS))
        server = ListenerServer(app, listener_limits(tocsin.settings.config))
        engine.listener_url = await server.start(listener.host, listener.port)
        log.info(
            "listening on %s, at most %d connections at once",
            engine.listener_url,
            server.limits.max_connections,
        )
    if engine.slack is not None:
        await engine.slack.start()
    engine.scheduler.start(tickers)
    systemd = SystemdNotifier.from_environ(environ)
    stall_after = tocsin.settings.config.watchdog.stall_after.total_seconds()
    engine.watchdog = watchdog = LoopWatchdog(stall_after, systemd)
    watchdog.start()  # until the very end: a shutdown can get stuck too
    if systemd is not None:
        systemd.send("READY=1")
    try:
        yield engine
    finally:
        if systemd is not None:
            systemd.send("STOPPING=1")
        try:
            await engine.scheduler.stop()
            await engine.detection.tick()
            await engine.journal.flush()
            if engine.slack is not None:
                await engine.slack.stop()
            if server is not None:
                await server.stop()
        finally:
            watchdog.stop()
            if systemd is not None:
                systemd.close()
