"""Inside an incident thread, through the real Bolt app in HTTP mode with signed events.

`@tocsin ack|sev|note|resolve` in the card's thread change the incident as the slash
commands do, and the card and thread show it; a mention outside an incident thread, an
unknown word and a guest get an explanation and change nothing. The pin reaction adds a
thread message to the timeline with its own time and author, once however often it is added.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.runtime import Engine
from incidents.model import Actor, Incident, Severity, Source, Status, TimelineEvent
from tests.slack_engine import http_engine
from tests.slack_fake import BOT_USER_ID, INCIDENTS_CHANNEL, TEAM_ID, SlackFake
from tests.slack_requests import event_callback, signed_headers

ALICE = "U0ALICE"
BOB = "U0BOB"
GUEST = "U0GUEST"
CAROL = Actor(Source.CLI, "carol", "carol")
SERIAL = itertools.count(1)


@dataclass
class Room:
    """A running tocsin with INC-1 (P2, open) whose card is posted and its thread known."""

    engine: Engine
    fake: SlackFake
    card_ts: str

    async def incident(self) -> Incident:
        assert self.engine.slack is not None
        return await self.engine.slack.context.incidents.get("INC-1")

    async def timeline(self) -> list[TimelineEvent]:
        assert self.engine.slack is not None
        return await self.engine.slack.context.incidents.timeline("INC-1")

    async def send(self, event: dict[str, Any]) -> None:
        body = event_callback({**event, "event_ts": f"{int(time.time())}.{next(SERIAL):06d}"})
        url = f"{self.engine.listener_url}/slack/events"
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers=signed_headers(body)) as answer,
        ):
            assert answer.status == 200, await answer.text()

    async def mention(self, user: str, words: str, thread_ts: str | None) -> None:
        """`@tocsin <words>` as a message in the channel (or a thread) and its app_mention."""
        text = f"<@{BOT_USER_ID}> {words}"
        posted = self.fake.add_message(INCIDENTS_CHANNEL, text, user=user, thread_ts=thread_ts)
        event = {"type": "app_mention", "user": user, "text": text, "ts": posted["ts"]}
        event["channel"] = INCIDENTS_CHANNEL
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        await self.send(event)

    async def react(self, user: str, reaction: str, message: dict[str, Any]) -> None:
        item = {"type": "message", "channel": INCIDENTS_CHANNEL, "ts": message["ts"]}
        event = {"type": "reaction_added", "user": user, "reaction": reaction, "item": item}
        await self.send({**event, "item_user": message["user"]})

    async def processed(self) -> None:
        """Every event sent so far has been handled; later requests would be refused."""
        assert self.engine.slack is not None and self.engine.slack.events is not None
        await self.engine.slack.events.drain()
        assert await self.engine.slack.context.in_flight.settle(10)

    def replies(self) -> list[str]:
        """What tocsin replied in the card's thread."""
        thread = self.fake.thread(INCIDENTS_CHANNEL, self.card_ts)[1:]
        return [str(m["text"]) for m in thread if m["user"] == BOT_USER_ID]

    async def reply_containing(self, fragment: str) -> str:
        return await self.fake.wait_for(
            lambda: next((text for text in self.replies() if fragment in text), ""), timeout=10
        )

    def card_text(self) -> str:
        return str(self.fake.messages[(INCIDENTS_CHANNEL, self.card_ts)]["text"])

    def told(self, user: str) -> list[str]:
        return [str(e["text"]) for e in self.fake.ephemerals if e["user"] == user]


@pytest.fixture
async def room(slack_fake: SlackFake, tmp_path: Path) -> AsyncIterator[Room]:
    slack_fake.add_user(ALICE, "alice")
    slack_fake.add_user(BOB, "bob")
    slack_fake.add_user(GUEST, "guest", guest=True)
    async with http_engine(slack_fake, tmp_path) as running:
        assert running.slack is not None
        await running.slack.context.incidents.declare("checkout slow", Severity.P2, CAROL)
        card = await slack_fake.wait_for(
            lambda: next(iter(slack_fake.top_level(INCIDENTS_CHANNEL)), None), timeout=10
        )
        assert card is not None and "INC-1" in card["text"]
        room = Room(running, slack_fake, str(card["ts"]))
        deadline = time.monotonic() + 10
        while (await room.incident()).thread_ts != room.card_ts:  # stored once Slack answered
            assert time.monotonic() < deadline, "the card's thread was never stored"
            await asyncio.sleep(0.01)
        yield room


@pytest.mark.parametrize(
    ("words", "status", "severity", "kind", "text", "reply", "card"),
    [
        (
            "ack",
            Status.ACKNOWLEDGED,
            Severity.P2,
            "acknowledged",
            "",
            "Acknowledged by",
            "P2 INC-1 acknowledged",
        ),
        (
            "sev P1 all carts fail",
            Status.OPEN,
            Severity.P1,
            "severity_changed",
            "all carts fail",
            "Severity P2 → P1 by",
            "P1 INC-1 open",
        ),
        (
            "note rolled back the 14:02 deploy",
            Status.OPEN,
            Severity.P2,
            "note",
            "rolled back the 14:02 deploy",
            "Note from",
            None,
        ),
        (
            "resolve bad config reverted",
            Status.RESOLVED,
            Severity.P2,
            "resolved",
            "bad config reverted",
            "Resolved by",
            "P2 INC-1 resolved",
        ),
    ],
    ids=["ack", "sev", "note", "resolve"],
)
async def test_a_thread_command_acts_like_the_slash_command(
    room: Room,
    words: str,
    status: Status,
    severity: Severity,
    kind: str,
    text: str,
    reply: str,
    card: str | None,
) -> None:
    await room.mention(ALICE, words, room.card_ts)
    shown = await room.reply_containing(reply)
    assert f"<@{ALICE}>" in shown and text in shown
    incident = await room.incident()
    assert (incident.status, incident.severity) == (status, severity)
    events = [event for event in await room.timeline() if event.kind == kind]
    assert len(events) == 1
    assert events[0].actor.id == f"{TEAM_ID}:{ALICE}" and events[0].text == text
    if card is not None:
        await room.fake.wait_for(lambda: card in room.card_text(), timeout=10)
        assert room.fake.edits[(INCIDENTS_CHANNEL, room.card_ts)] >= 1
    assert not room.told(ALICE)


async def test_a_thread_note_is_kept_as_typed(room: Room) -> None:
    """Only the mention and the verb are parsed; a mention inside the note stays."""
    typed = f'paged <@{BOB}> about C:\\tmp\\new and the "checkout" page  isn\'t loading'
    await room.mention(ALICE, f"note {typed}", room.card_ts)
    await room.reply_containing("Note from")
    notes = [event.text for event in await room.timeline() if event.kind == "note"]
    assert notes == [typed]


@pytest.mark.parametrize(
    ("where", "words", "explanation"),
    [
        ("channel", "ack", "mention me inside an incident's thread"),
        ("other thread", "ack", "this thread is not an incident's"),
        ("incident thread", "dance", "I don't know 'dance'"),
        ("incident thread", "sev P9", "write `@tocsin sev P1 [reason]`"),
    ],
)
async def test_a_mention_that_cannot_act_is_explained(
    room: Room, where: str, words: str, explanation: str
) -> None:
    before = await room.timeline()
    thread_ts: str | None = None
    if where == "other thread":
        thread_ts = room.fake.add_message(INCIDENTS_CHANNEL, "lunch?", user=BOB)["ts"]
    elif where == "incident thread":
        thread_ts = room.card_ts
    await room.mention(ALICE, words, thread_ts)
    await room.processed()
    told = room.fake.ephemerals
    assert [(e["user"], e["thread_ts"]) for e in told] == [(ALICE, thread_ts)]
    assert explanation in told[0]["text"]
    assert "`@tocsin ack`" in told[0]["text"] or "sev P1" in told[0]["text"]
    assert await room.timeline() == before
    assert (await room.incident()).status is Status.OPEN


@pytest.mark.parametrize("words", ["ack", "sev P1", "note I can help", "resolve fixed"])
async def test_a_guest_may_read_but_not_act(room: Room, words: str) -> None:
    before = await room.timeline()
    await room.mention(GUEST, words, room.card_ts)
    await room.processed()
    (told,) = room.told(GUEST)
    assert "can read" in told and "not act" in told
    assert await room.timeline() == before
    incident = await room.incident()
    assert (incident.status, incident.severity) == (Status.OPEN, Severity.P2)


def pinned(events: list[TimelineEvent]) -> list[TimelineEvent]:
    return [event for event in events if event.kind == "pinned"]


def time_of(ts: str) -> datetime:
    seconds, _, micros = ts.partition(".")
    return datetime.fromtimestamp(int(seconds), UTC).replace(microsecond=int(micros))


async def test_the_pin_reaction_adds_a_thread_message_once_with_its_own_time_and_author(
    room: Room,
) -> None:
    words = "db primary failed over at 14:03"
    message = room.fake.add_message(INCIDENTS_CHANNEL, words, user=BOB, thread_ts=room.card_ts)
    await room.react(ALICE, "pushpin", message)
    shown = await room.reply_containing(words)
    assert f"<@{ALICE}> pinned a message from <@{BOB}>" in shown
    await room.react(ALICE, "pushpin", message)  # removed and added again
    await room.react(BOB, "pushpin", message)  # and by somebody else
    await room.processed()
    (event,) = pinned(await room.timeline())
    assert event.at == time_of(message["ts"])
    assert event.actor.id == f"{TEAM_ID}:{BOB}"
    assert event.text == words
    assert event.new == f"{TEAM_ID}:{ALICE}"  # who pinned it
    assert len([text for text in room.replies() if words in text]) == 1
    assert not room.fake.ephemerals


async def test_another_reaction_pins_nothing(room: Room) -> None:
    message = room.fake.add_message(
        INCIDENTS_CHANNEL, "cause found", user=BOB, thread_ts=room.card_ts
    )
    before = await room.timeline()
    await room.react(ALICE, "eyes", message)
    await room.processed()
    assert await room.timeline() == before
    assert not room.fake.ephemerals


async def test_a_guest_may_not_pin(room: Room) -> None:
    message = room.fake.add_message(
        INCIDENTS_CHANNEL, "cause found", user=BOB, thread_ts=room.card_ts
    )
    before = await room.timeline()
    await room.react(GUEST, "pushpin", message)
    await room.processed()
    assert await room.timeline() == before
    (told,) = room.told(GUEST)
    assert "can read" in told and "not act" in told
