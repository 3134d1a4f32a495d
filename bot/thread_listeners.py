"""Inside an incident thread: `@tocsin ack|sev|note|resolve`, and the pin reaction.

Slack does not run slash commands in threads, so the thread has its own short
commands: after the leading mention, only the verb (and a severity) are parsed,
and a note or reason is kept as typed, mentions in it included. Reacting with
the pin emoji (default :pushpin:) to a thread message adds it to the timeline
with its own time and author, once.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.command_text import leading_words
from bot.slack_context import SlackContext, ephemeral_reply
from incidents.errors import IncidentError
from incidents.model import Actor, Incident, Severity, Source
from incidents.pins import PinBoard

LEADING_MENTIONS = re.compile(r"\A(?:\s*<@[UW][A-Z0-9]+(?:\|[^>]*)?>)+")
THREAD_HELP = (
    "In an incident thread: `@tocsin ack`, `@tocsin sev P1 [reason]`, "
    "`@tocsin note <text>`, `@tocsin resolve <reason>`."
)


def register_thread_listeners(app: AsyncApp, context: SlackContext, pins: PinBoard) -> None:
    @app.event("app_mention")
    async def mentioned(
        event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        channel = str(event.get("channel") or "")
        thread_ts = event.get("thread_ts")
        reply = ephemeral_reply(client, channel, str(event.get("user") or ""), thread_ts)

        async def work() -> None:
            if not thread_ts:
                raise IncidentError(f"mention me inside an incident's thread. {THREAD_HELP}")
            incident = await context.incidents.find_by_thread(channel, str(thread_ts))
            if incident is None:
                raise IncidentError(f"this thread is not an incident's. {THREAD_HELP}")
            text = LEADING_MENTIONS.sub("", str(event.get("text") or ""), count=1)
            await _thread_command(context, incident, text, {**body, "user_id": event.get("user")})

        await context.guarded(work, reply)

    @app.event("reaction_added")
    async def reacted(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("reaction") != context.config.slack.pin_reaction:
            return
        item = event.get("item") or {}
        channel = str(item.get("channel") or "")
        message_ts = str(item.get("ts") or "")
        reply = ephemeral_reply(client, channel, str(event.get("user") or ""), None)

        async def work() -> None:
            answer = await client.conversations_replies(  # the parent comes first, then it
                channel=channel,
                ts=message_ts,
                oldest=message_ts,
                latest=message_ts,
                inclusive=True,
                limit=2,
            )
            message = next(
                (m for m in answer.get("messages") or [] if m.get("ts") == message_ts), None
            )
            thread_ts = (message or {}).get("thread_ts")
            if message is None or not thread_ts:
                return
            incident = await context.incidents.find_by_thread(channel, str(thread_ts))
            if incident is None:
                return
            pinner = await context.actor({**body, "user_id": event.get("user")})
            team = str(body.get("team_id") or context.directory.team_id)
            author = str(message.get("user") or message.get("bot_id") or "unknown")
            await pins.pin(
                incident.number,
                channel,
                message_ts,
                Actor(Source.SLACK, f"{team}:{author}"),
                datetime.fromtimestamp(float(message_ts), UTC),
                str(message.get("text") or ""),
                pinner,
            )

        await context.guarded(work, reply)


async def _thread_command(
    context: SlackContext, incident: Incident, text: str, body: dict[str, Any]
) -> None:
    words, rest = leading_words(text, 1)
    if not words:
        raise IncidentError(THREAD_HELP)
    verb = words[0].lower()
    if verb in ("ack", "acknowledge"):
        await context.incidents.acknowledge(incident.id, await context.actor(body))
    elif verb == "sev":
        given, reason = leading_words(rest, 1)
        if not given or given[0].upper() not in Severity.__members__:
            raise IncidentError("write `@tocsin sev P1 [reason]`")
        await context.incidents.change_severity(
            incident.id, Severity(given[0].upper()), await context.actor(body), reason
        )
    elif verb == "note":
        await context.incidents.add_note(incident.id, await context.actor(body), rest)
    elif verb == "resolve":
        reason = rest or "resolved from the thread"
        await context.incidents.resolve(incident.id, await context.actor(body), reason)
    else:
        raise IncidentError(f"I don't know '{verb}'. {THREAD_HELP}")
