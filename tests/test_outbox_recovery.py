"""The outbox after Slack trouble: an unconfirmed card, a row that cannot be confirmed, an outage.

A user checks that every message reaches the channel exactly once, that
nothing stays queued, and that one incident's trouble never holds up the
other incidents of its channel.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import sqlite_utils

from incidents.clock import SystemClock
from incidents.database import Database, encode_time, write_transaction
from incidents.model import Severity
from tests.conftest import ALICE
from tests.outbox_harness import (
    assert_each_message_once,
    build_sender,
    cards_of,
    delivering,
    drain,
    outbox_counts,
    wait_drained,
)
from tests.slack_fake import INCIDENTS_CHANNEL, SlackFake


async def test_an_unconfirmed_card_with_an_update_queued_is_posted_once_after_a_restart(
    slack_fake: SlackFake, database: Database
) -> None:
    """Slack answers INC-1's card with 500 (it may have posted it); a note queues a card update;
    Slack recovers. INC-1's card, its note and INC-2's card all arrive, each once."""
    service, sender = build_sender(database, slack_fake.api_url, SystemClock(), timeout=1)
    slack_fake.fail_next("chat.postMessage", status=500)
    first = await service.declare("checkout down", Severity.P1, ALICE)
    await sender.deliver_once()
    await sender.settle()
    assert slack_fake.calls_to("chat.postMessage")
    await service.add_note(first.id, ALICE, "looking at php-fpm")
    second = await service.declare("search slow", Severity.P2, ALICE)

    _, restarted = build_sender(database, slack_fake.api_url, SystemClock(), timeout=1)
    await drain(restarted, database, seconds=15)

    await assert_each_message_once(slack_fake, database, incidents=2)
    assert len(cards_of(slack_fake, first.id)) == len(cards_of(slack_fake, second.id)) == 1
    [card] = cards_of(slack_fake, first.id)
    replies = [m["text"] for m in slack_fake.thread(INCIDENTS_CHANNEL, card["ts"])[1:]]
    assert any("looking at php-fpm" in text for text in replies), replies


async def test_an_incident_whose_post_cannot_be_confirmed_does_not_hold_up_its_channel(
    slack_fake: SlackFake, database: Database
) -> None:
    """INC-1's card may have been posted (500) and the channel cannot be searched for it
    (history answers 500 every time): INC-1 waits, INC-2..4 in the same channel do not."""
    service, sender = build_sender(database, slack_fake.api_url, SystemClock(), timeout=1)
    slack_fake.fail_next("chat.postMessage", status=500)
    slack_fake.fail_next("conversations.history", status=500, times=10_000)
    await service.declare("checkout down", Severity.P1, ALICE)
    async with delivering(sender):
        await slack_fake.wait_for(lambda: slack_fake.calls_to("conversations.history"), 10)
        others = [await service.declare(f"other {n}", Severity.P3, ALICE) for n in range(3)]
        await slack_fake.wait_for(
            lambda: len(slack_fake.top_level(INCIDENTS_CHANNEL)) == 3, timeout=6
        )
    assert all(len(cards_of(slack_fake, other.id)) == 1 for other in others)
    counts = await outbox_counts(database)
    assert counts.get("sending") == 1, "INC-1 is still waiting to be confirmed"


async def test_a_storm_queued_during_an_outage_is_delivered_once_after_it(
    slack_fake: SlackFake, database: Database
) -> None:
    """Slack is down (503 to everything) while five incidents open, have their cards tried,
    then take notes and are acknowledged; when Slack is back, the outbox drains in bounded
    time and each message is in the channel once."""
    service, sender = build_sender(database, slack_fake.api_url, SystemClock(), timeout=1)
    slack_fake.unavailable = True
    async with delivering(sender):
        incidents = []
        for number in range(5):
            incidents.append(await service.declare(f"service {number} down", Severity.P2, ALICE))
            await asyncio.sleep(0.3)
        await slack_fake.wait_for(
            lambda: len(slack_fake.calls_to("chat.postMessage")) >= len(incidents), timeout=15
        )
        for incident in incidents:
            await service.add_note(incident.id, ALICE, f"note on {incident.id}")
            await service.acknowledge(incident.id, ALICE)
        await asyncio.sleep(2)
        slack_fake.unavailable = False
        await wait_drained(database, 25)
    await assert_each_message_once(slack_fake, database, incidents=5)
    for message in slack_fake.top_level(INCIDENTS_CHANNEL):
        assert " acknowledged: " in message["text"], message["text"]


async def test_a_row_that_cannot_be_sent_at_all_is_set_aside_and_the_others_go_on(
    slack_fake: SlackFake, database: Database
) -> None:
    """A damaged row (a DM page that lost its recipient) heads INC-1's queue: it waits with
    its error, and INC-2's card in the same channel goes out all the same."""
    service, sender = build_sender(database, slack_fake.api_url, SystemClock(), timeout=1)
    await service.declare("checkout down", Severity.P1, ALICE)
    await drain(sender, database)

    def damage(db: sqlite_utils.Database) -> None:
        with write_transaction(db):
            db.execute(
                "INSERT INTO outbox (incident_number, kind, key, created_at) "
                "VALUES (1, 'dm', '1:dm:damaged', ?)",
                [encode_time(datetime.now(UTC))],
            )

    await database.run(damage)
    second = await service.declare("search slow", Severity.P2, ALICE)
    async with delivering(sender):
        await slack_fake.wait_for(lambda: cards_of(slack_fake, second.id), timeout=5)
    [damaged] = await database.run(
        lambda db: list(db.query("SELECT state, error FROM outbox WHERE key = '1:dm:damaged'"))
    )
    assert damaged["state"] == "pending" and damaged["error"], damaged
