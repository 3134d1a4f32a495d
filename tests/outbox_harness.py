"""An outbox sender wired to a SQLite file and a Slack API URL, for fault and crash tests.

Run as `python -m tests.outbox_harness DB API_URL` it delivers until killed,
so a test can SIGKILL it between a post and its record.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlite_utils
from slack_sdk.web.async_client import AsyncWebClient

from bot.card_source import CardSource
from bot.config.model import SlackSettings, TocsinConfig
from bot.slack_sender import SlackSender
from incidents.clock import Clock, SystemClock
from incidents.database import Database
from incidents.escalation import Escalation, EscalationPlanner
from incidents.outbox import Outbox
from incidents.probe_journal import ProbeJournal
from incidents.service import IncidentService
from incidents.store import IncidentStore
from tests.slack_fake import INCIDENTS_CHANNEL, SlackFake

CONFIG = TocsinConfig(slack=SlackSettings(channel="#ops-incidents"))


def build_sender(
    database: Database, api_url: str, clock: Clock, *, timeout: int = 2
) -> tuple[IncidentService, SlackSender]:
    planner = EscalationPlanner({})
    service = IncidentService(IncidentStore(database), clock, planner)
    escalation = Escalation(database, planner, clock, CONFIG.zone)
    cards = CardSource(
        CONFIG, service, ProbeJournal(database), escalation, clock, lambda target: target
    )
    client = AsyncWebClient(token="xoxb-test", base_url=api_url, timeout=timeout)
    client.retry_handlers = []
    # tocsin waits 30 s (3 client timeouts) before looking for an unconfirmed post
    settle = timedelta(seconds=3 * timeout)
    return service, SlackSender(Outbox(database), client, cards, clock, settle=settle)


async def drain(sender: SlackSender, database: Database, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await sender.deliver_once()
        await sender.settle()
        counts = await outbox_counts(database)
        if not counts.get("pending") and not counts.get("sending"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"outbox not drained: {counts}")


async def wait_drained(database: Database, seconds: float) -> None:
    """Until nothing is pending or sending, while a sender runs (see `delivering`)."""
    deadline = time.monotonic() + seconds
    while (counts := await outbox_counts(database)).get("pending") or counts.get("sending"):
        if time.monotonic() > deadline:
            raise AssertionError(f"outbox not drained within {seconds} s: {counts}")
        await asyncio.sleep(0.1)


async def outbox_counts(database: Database) -> dict[str, int]:
    return await database.run(
        lambda db: {
            r["state"]: r["n"]
            for r in db.query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
        }
    )


@contextlib.asynccontextmanager
async def delivering(sender: SlackSender) -> AsyncIterator[None]:
    """The sender's own loop (`run`), as tocsin runs it, for the length of the block."""
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


def posted_keys(fake: SlackFake) -> Counter[str]:
    """How often each outbox key appears in a message Slack holds."""
    keys: Counter[str] = Counter()
    for message in fake.messages.values():
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        keys.update(payload.get("keys", []))
    return keys


async def owed_keys(database: Database) -> set[str]:
    """Every key that must be in some message: replies and DMs with something to say, and
    each incident's first card (later card rows are edits of it)."""

    def work(db: sqlite_utils.Database) -> set[str]:
        rows = db.query(
            "SELECT key FROM outbox WHERE state != 'skipped' AND (kind != 'card' OR id IN "
            "(SELECT MIN(id) FROM outbox WHERE kind = 'card' GROUP BY incident_number))"
        )
        return {row["key"] for row in rows}

    return await database.run(work)


def cards_of(fake: SlackFake, incident_id: str) -> list[dict[str, Any]]:
    """The incident's cards in the channel (one, unless something went wrong)."""
    return [
        message
        for message in fake.top_level(INCIDENTS_CHANNEL)
        if f" {incident_id} " in message["text"]
    ]


async def assert_each_message_once(fake: SlackFake, database: Database, incidents: int) -> None:
    """Nothing queued or failed, every owed key in exactly one message, one card each."""
    counts = await outbox_counts(database)
    assert not counts.get("pending") and not counts.get("sending"), counts
    assert not counts.get("failed"), counts
    posted = posted_keys(fake)
    assert all(count == 1 for count in posted.values()), posted
    assert await owed_keys(database) == set(posted)
    assert len(fake.top_level(INCIDENTS_CHANNEL)) == incidents


async def deliver_forever(path: Path, api_url: str) -> None:
    database = await Database.open(path)
    _, sender = build_sender(database, api_url, SystemClock(), timeout=30)
    await sender.run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(deliver_forever(Path(sys.argv[1]), sys.argv[2]))
