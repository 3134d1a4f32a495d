"""`/incident ...`: declare, list, show and drive incidents from any channel.

Each subcommand is a function whose docstring is its help: the first line is
the usage, the second what it does; `/incident help` is built from them.
Answers are ephemeral: the incident's own thread is where the team sees changes.
Only the leading words (sub-command, id, severity) are parsed; a title, note or
reason is kept as typed.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from bot.card_listeners import open_declare_modal
from bot.command_text import leading_words, trailing_word
from bot.slack_context import SlackContext, respond_reply
from bot.slack_views import (
    PreviewStep,
    escalation_preview_blocks,
    help_blocks,
    incident_detail_blocks,
    incident_list_blocks,
)
from incidents.errors import IncidentError
from incidents.model import ACTIVE_STATUSES, Severity

SEVERITY = re.compile(r"^P[0-3]$", re.IGNORECASE)


@dataclass
class Invocation:
    text: str  # what followed the sub-command, as typed
    body: dict[str, Any]
    context: SlackContext
    client: AsyncWebClient
    answer: Callable[[str | None, list[Block] | None], Awaitable[None]]

    def words(self, count: int) -> tuple[list[str], str]:
        """The first `count` words and the free text after them."""
        return leading_words(self.text, count)

    def incident_id(self) -> str:
        words, _ = self.words(1)
        if not words:
            raise IncidentError("name the incident, e.g. INC-7")
        return words[0]


Subcommand = Callable[[Invocation], Awaitable[None]]


async def declare(call: Invocation) -> None:
    """declare [title] [P0-P3]
    Declare an incident (opens a form when no title is given)."""
    title, given = trailing_word(call.text, SEVERITY)
    severity = Severity(given.upper()) if given else Severity.P2
    if not title.strip():
        await call.context.actor(call.body)
        await open_declare_modal(call.client, call.body["trigger_id"], call.context)
        return
    actor = await call.context.actor(call.body)
    incident = await call.context.incidents.declare(title, severity, actor)
    await call.answer(f"Declared {incident.id} ({severity.value}); its card is on its way.", None)


async def list_active(call: Invocation) -> None:
    """list
    Active incidents, most severe first."""
    incidents = await call.context.incidents.list_incidents(ACTIVE_STATUSES, limit=200)
    now = call.context.clock.now()
    await call.answer(None, incident_list_blocks(incidents, call.context.config.zone, now))


async def show(call: Invocation) -> None:
    """show INC-n
    One incident with its latest timeline."""
    incident = await call.context.incidents.get(call.incident_id())
    timeline = await call.context.incidents.timeline(incident.id)
    now = call.context.clock.now()
    blocks = incident_detail_blocks(incident, timeline, call.context.config.zone, now)
    await call.answer(None, blocks)


async def acknowledge(call: Invocation) -> None:
    """ack INC-n
    Acknowledge: you are on it, escalation stops."""
    actor = await call.context.actor(call.body)
    incident = await call.context.incidents.acknowledge(call.incident_id(), actor)
    await call.answer(f"{incident.id} acknowledged.", None)


async def resolve(call: Invocation) -> None:
    """resolve INC-n [reason]
    Resolve the incident."""
    actor = await call.context.actor(call.body)
    _, reason = call.words(1)
    incident = await call.context.incidents.resolve(
        call.incident_id(), actor, reason or "resolved from Slack"
    )
    await call.answer(f"{incident.id} resolved.", None)


async def change_severity(call: Invocation) -> None:
    """sev INC-n P0-P3 [reason]
    Change the severity; escalation re-plans from the new policy."""
    words, reason = call.words(2)
    if len(words) < 2 or not SEVERITY.match(words[1]):
        raise IncidentError("write `/incident sev INC-7 P1 [reason]`")
    actor = await call.context.actor(call.body)
    severity = Severity(words[1].upper())
    incident = await call.context.incidents.change_severity(words[0], severity, actor, reason)
    await call.answer(f"{incident.id} is now {severity.value}.", None)


async def note(call: Invocation) -> None:
    """note INC-n text
    Add a note to the timeline."""
    actor = await call.context.actor(call.body)
    _, text = call.words(1)
    incident = await call.context.incidents.add_note(call.incident_id(), actor, text)
    await call.answer(f"Note added to {incident.id}.", None)


async def escalation_preview(call: Invocation) -> None:
    """escalation preview P0-P3
    Who would be notified, and when, for an incident of that severity."""
    words, _ = call.words(2)
    if len(words) < 2 or words[0] != "preview" or not SEVERITY.match(words[1]):
        raise IncidentError("write `/incident escalation preview P1`")
    severity = Severity(words[1].upper())
    start = call.context.clock.now()
    policy, steps = call.context.escalation.preview(severity, start)
    preview = []
    for step in steps:
        quiet = policy.levels[step.level - 1].quiet if policy else None
        members = [call.context.directory.mention(t) for t in step.targets]
        preview.append(
            PreviewStep(
                step.due_at - start,
                step.level,
                step.round,
                tuple(members),
                quiet.shown() if quiet else "",
            )
        )
    name = call.context.cards.severity_names[severity]
    await call.answer(None, escalation_preview_blocks(severity, name, preview))


async def show_help(call: Invocation) -> None:
    """help
    This list."""
    entries = []
    for handler in SUBCOMMANDS.values():
        usage, _, text = (handler.__doc__ or "").partition("\n")
        entries.append((f"/incident {usage.strip()}", text.strip()))
    await call.answer(None, help_blocks(entries))


SUBCOMMANDS: dict[str, Subcommand] = {
    "declare": declare,
    "list": list_active,
    "show": show,
    "ack": acknowledge,
    "resolve": resolve,
    "sev": change_severity,
    "note": note,
    "escalation": escalation_preview,
    "help": show_help,
}


def register_incident_command(app: AsyncApp, context: SlackContext) -> None:
    @app.command("/incident")
    async def incident_command(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()

        async def answer(text: str | None, blocks: list[Block] | None) -> None:
            await respond(text=text or "", blocks=blocks, response_type="ephemeral")

        async def work() -> None:
            words, rest = leading_words(str(body.get("text") or ""), 1)
            name = words[0].lower() if words else "help"
            handler = SUBCOMMANDS.get(name)
            if handler is None:
                raise IncidentError(f"unknown subcommand '{name}'; `/incident help` lists them")
            await handler(Invocation(rest, body, context, client, answer))

        await context.guarded(work, respond_reply(respond))
