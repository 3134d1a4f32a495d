"""What every Slack listener needs, and the one way listeners answer errors.

Listeners acknowledge first (Slack gives three seconds), then work. Errors a
user can fix (ours: IncidentError, CommandError, ProbeConfigError, refusals)
become an ephemeral explanation; anything else is logged with a reference id
that the user sees, so they can quote it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.card_source import CardSource
from bot.config.model import TocsinConfig
from bot.slack_people import Person, SlackDirectory
from bot.slack_views import error_text
from commands.errors import CommandError
from incidents.clock import Clock
from incidents.errors import IncidentError
from incidents.escalation import Escalation
from incidents.model import Actor, Source
from incidents.service import IncidentService
from probes.errors import ProbeConfigError
from probes.result import ProbeResult

log = logging.getLogger(__name__)

USER_ERRORS = (IncidentError, CommandError, ProbeConfigError)


class NotAllowed(IncidentError):
    """The person may read but not act (guest, external, deactivated, bot)."""


class InFlight:
    """Listener work still running after its ack, so that a shutdown can wait for it."""

    def __init__(self) -> None:
        self.running = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def started(self) -> None:
        self.running += 1
        self._idle.clear()

    def finished(self) -> None:
        self.running -= 1
        if self.running == 0:
            self._idle.set()

    async def settle(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bounded wait, said so
        """Wait until no work runs; False if some still ran after `timeout` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


@dataclass
class SlackContext:
    config: TocsinConfig
    incidents: IncidentService
    escalation: Escalation
    directory: SlackDirectory
    cards: CardSource
    clock: Clock
    run_probe: Callable[[str], Awaitable[ProbeResult]] | None = None
    extras: dict[str, Any] | None = None
    in_flight: InFlight = field(default_factory=InFlight)

    async def guarded(self, work: Callable[[], Awaitable[None]], reply: Reply) -> None:
        """`guarded`, counted in `in_flight` while it runs."""
        self.in_flight.started()
        try:
            await guarded(work, reply)
        finally:
            self.in_flight.finished()

    async def actor(self, body: dict[str, Any]) -> Actor:
        """The acting person as an Actor, refused (NotAllowed) if they may not act."""
        person = await self.person(body)
        if person.refusal:
            raise NotAllowed(f"You can read this incident but not act on it: {person.refusal}.")
        return Actor(Source.SLACK, person.actor_id, person.name)

    async def person(self, body: dict[str, Any]) -> Person:
        user = body.get("user") or {}
        user_id = str(user.get("id") or body.get("user_id") or body.get("event", {}).get("user"))
        team = (
            user.get("team_id")
            or (body.get("team") or {}).get("id")
            or body.get("team_id")
            or self.directory.team_id
        )
        return await self.directory.person(str(team), user_id)


Reply = Callable[[str], Awaitable[None]]


async def guarded(work: Callable[[], Awaitable[None]], reply: Reply) -> None:
    """Run a listener's work; turn errors into an ephemeral reply the user can act on."""
    try:
        await work()
    except USER_ERRORS as error:
        await _quietly(reply, error_text(str(error)))
    except Exception:
        reference = f"ref-{secrets.token_hex(3)}"
        log.exception("Slack listener failed (%s)", reference)
        await _quietly(reply, error_text("", reference))


def ephemeral_reply(
    client: AsyncWebClient, channel: str, user: str, thread_ts: str | None
) -> Reply:
    """An ephemeral answer in a channel or thread, for events that have no response_url."""

    async def reply(text: str) -> None:
        await client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)

    return reply


def respond_reply(respond: Callable[..., Awaitable[Any]]) -> Reply:
    async def reply(text: str) -> None:
        await respond(text=text, response_type="ephemeral", replace_original=False)

    return reply


async def _quietly(reply: Reply, text: str) -> None:
    try:
        await reply(text)
    except Exception:
        log.exception("could not tell the user about an error")
