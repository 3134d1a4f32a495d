"""tocsin's Slack face: the Bolt app, its listeners, the outbox sender, and the connection.

Socket Mode when `SLACK_APP_TOKEN` is set; HTTP mode otherwise, where the
process's one HTTP listener serves `/slack/events` behind the replay guard.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.authorization import AuthorizeResult

from bot.card_listeners import register_card_listeners
from bot.card_source import CardSource
from bot.config.model import TocsinConfig
from bot.maintenance_calendar import Maintenance
from bot.replay_guard import ReplayGuard
from bot.slack_connection import SlackCredentials, SlackMode, web_client
from bot.slack_context import SlackContext, respond_reply
from bot.slack_events import SlackEvents
from bot.slack_people import SlackDirectory
from bot.slack_sender import SlackSender
from bot.slack_views import probe_result_blocks
from bot.slash_incident import register_incident_command
from bot.slash_maint import run_maint
from bot.thread_listeners import register_thread_listeners
from incidents.clock import Clock
from incidents.errors import IncidentError
from incidents.escalation import Escalation
from incidents.outbox import Outbox
from incidents.pins import PinBoard
from incidents.probe_journal import ProbeJournal
from incidents.service import IncidentService
from incidents.store import IncidentStore

log = logging.getLogger(__name__)

LISTENER_GRACE_SECONDS = 10.0  # work acknowledged before SIGTERM may finish (and be sent)


@dataclass
class SlackFace:
    credentials: SlackCredentials
    app: AsyncApp
    context: SlackContext
    sender: SlackSender
    events: SlackEvents | None  # HTTP mode's /slack/events; None in Socket Mode
    socket: AsyncSocketModeHandler | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _sender_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._connect_directory()
        self._sender_task = asyncio.create_task(self.sender.run(self._stop))
        if self.credentials.mode is SlackMode.SOCKET:
            self.socket = AsyncSocketModeHandler(self.app, self.credentials.app_token)
            await self.socket.connect_async()  # type: ignore[no-untyped-call]
            log.info("connected to Slack in Socket Mode")
        else:
            log.info("Slack HTTP mode: events arrive at /slack/events")

    async def stop(self) -> None:
        """Stop taking events, let in-flight sends finish; the rest stays in the outbox."""
        if self.socket is not None:
            await self.socket.close_async()  # type: ignore[no-untyped-call]
        if self.events is not None:
            await self.events.drain()
        if not await self.context.in_flight.settle(LISTENER_GRACE_SECONDS):
            log.warning(
                "%d Slack listeners still running at shutdown", self.context.in_flight.running
            )
        self._stop.set()
        if self._sender_task is not None:
            await self._sender_task
        if self.events is not None:
            await self.events.guard.save()

    def health(self) -> dict[str, Any]:
        stats = self.sender.stats
        return {
            "mode": self.credentials.mode.value,
            "sent": stats.sent,
            "failed": stats.failed,
            "rate_limited": stats.rate_limited,
            "retried": stats.retried,
            "confirmed_after_crash": stats.confirmed_after_crash,
            "late_copies_removed": stats.late_copies_removed,
        }

    async def _connect_directory(self) -> None:
        try:
            await self.context.directory.connect()
        except Exception as error:
            log.error("Slack did not answer auth.test (%s); the outbox keeps messages", error)


def build_slack(
    credentials: SlackCredentials,
    config: TocsinConfig,
    incidents: IncidentService,
    store: IncidentStore,
    journal: ProbeJournal,
    escalation: Escalation,
    outbox: Outbox,
    clock: Clock,
    run_probe: Any = None,
    maintenance: Maintenance | None = None,
) -> SlackFace:
    """Everything Slack-facing, wired but not yet connected."""
    client = web_client(credentials)
    directory = SlackDirectory(client)
    cards = CardSource(config, incidents, journal, escalation, clock, directory.mention)
    context = SlackContext(config, incidents, escalation, directory, cards, clock, run_probe)
    socket_mode = credentials.mode is SlackMode.SOCKET

    async def authorize() -> AuthorizeResult:
        """One `auth.test` for the process, not one per request while Bolt's cache is cold."""
        identity = await directory.identity()
        return AuthorizeResult.from_auth_test_response(
            auth_test_response=identity, bot_token=credentials.bot_token
        )

    app = AsyncApp(
        client=client,
        authorize=authorize,
        # HTTP mode: ReplayGuard checks the signature and its window on the same bytes
        # before anything reaches Bolt (and refuses replays); checked again after a
        # deferred dispatch, a request accepted at 299 s would be dropped at 300 s.
        request_verification_enabled=False,
        process_before_response=False,
    )
    register_card_listeners(app, context)
    register_incident_command(app, context)
    register_thread_listeners(app, context, PinBoard(store, clock))
    register_probe_command(app, context)
    if maintenance is not None:
        register_maint_command(app, context, maintenance)
    sender = SlackSender(
        outbox,
        web_client(credentials, retries=False),
        cards,
        clock,
        settle=config.slack.confirm_after,
    )
    events = None
    if not socket_mode:
        guard = ReplayGuard(credentials.signing_secret or "", store.database)
        events = SlackEvents(app, guard)
    return SlackFace(credentials, app, context, sender, events)


def register_probe_command(app: AsyncApp, context: SlackContext) -> None:
    @app.command("/probe")
    async def probe_command(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            probe_id = str(body.get("text") or "").strip()
            known = [probe.id for probe in context.config.probes]
            if not probe_id:
                raise IncidentError("name a probe: " + ", ".join(known[:30]))
            if probe_id not in known or context.run_probe is None:
                raise IncidentError(f"no probe '{probe_id}'; known: {', '.join(known[:30])}")
            await context.actor(body)
            result = await context.run_probe(probe_id)
            await respond(
                text=f"{probe_id}: {result.status.value}",
                blocks=probe_result_blocks(result, context.config.zone),
                response_type="ephemeral",
            )

        await context.guarded(work, respond_reply(respond))


def register_maint_command(app: AsyncApp, context: SlackContext, maintenance: Maintenance) -> None:
    @app.command("/maint")
    async def maint_command(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            actor = await context.actor(body)
            reply = await run_maint(
                str(body.get("text") or ""),
                actor,
                maintenance.book,
                maintenance.configured,
                [probe.id for probe in context.config.probes],
                context.config.zone,
                context.clock.now(),
            )
            await respond(
                text=reply.text,
                blocks=reply.blocks,
                response_type="in_channel" if reply.public else "ephemeral",
            )

        await context.guarded(work, respond_reply(respond))
