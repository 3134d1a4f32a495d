"""Slack answering a post after the client gave up: the post lands late, and only once stays.

The client here gives up after 1 s and Slack answers 1.2, 2 and 6 client timeouts
later, posting only then: against tocsin's real 10 s timeout, answers after 12 s,
20 s and 60 s. The sender's waits are in the same proportion (see `build_sender`),
so the real code path runs in seconds.
"""

from __future__ import annotations

import asyncio

from incidents.clock import SystemClock
from incidents.database import Database
from incidents.model import Severity
from tests.conftest import ALICE
from tests.outbox_harness import (
    assert_each_message_once,
    build_sender,
    cards_of,
    delivering,
    outbox_counts,
    posted_keys,
    wait_drained,
)
from tests.slack_fake import SlackFake

DELAYS = (1.2, 2.0, 6.0, 6.0)  # seconds after the post; the client gives up after 1 s
MIXED = ("chat.postMessage", "chat.update", "conversations.history", "conversations.replies")
SEED = 3


async def test_cards_slack_answers_late_are_in_the_channel_once(
    slack_fake: SlackFake, database: Database
) -> None:
    """Four cards answered late; the first three incidents are then acknowledged (their cards
    are edited), the fourth is left alone. Each incident ends with one card, the one tocsin
    edits; answers within Slack's processing time are never posted twice."""
    service, sender = build_sender(database, slack_fake.api_url, SystemClock(), timeout=1)
    for delay in DELAYS:
        slack_fake.late_next("chat.postMessage", delay)
    incidents = [
        await service.declare(f"service {n} down", Severity.P2, ALICE) for n in range(len(DELAYS))
    ]
    async with delivering(sender):
        await slack_fake.wait_for(
            lambda: (
                len(slack_fake.calls_to("chat.postMessage")) >= len(DELAYS)
                and not slack_fake.late_pending
            ),
            timeout=20,
        )
        for incident in incidents[:3]:
            await service.acknowledge(incident.id, ALICE)

        def one_card_each() -> bool:
            return all(len(cards_of(slack_fake, i.id)) == 1 for i in incidents) and all(
                " acknowledged: " in cards_of(slack_fake, i.id)[0]["text"] for i in incidents[:3]
            )

        await slack_fake.wait_for(one_card_each, timeout=25)
        await wait_drained(database, 10)

    counts = await outbox_counts(database)
    assert not counts.get("pending") and not counts.get("sending"), counts
    assert all(count == 1 for count in posted_keys(slack_fake).values())
    threads = await database.run(
        lambda db: {r["number"]: r["thread_ts"] for r in db.query("SELECT * FROM incidents")}
    )
    for incident in incidents:
        [card] = cards_of(slack_fake, incident.id)
        assert threads[int(incident.id.removeprefix("INC-"))] == card["ts"]
    # Answered within Slack's processing time (12 s and 20 s): found, never posted again.
    posts = [call.args["text"] for call in slack_fake.calls_to("chat.postMessage")]
    for incident in incidents[:2]:
        assert sum(f" {incident.id} " in text for text in posts) == 1, posts


async def test_one_call_in_five_failing_every_way_leaves_each_message_once(
    slack_fake: SlackFake, database: Database
) -> None:
    """A fifth of posts, edits and searches meet a 429, a 500, a slow or a late answer (up to
    6 client timeouts) or a dropped connection, while three incidents run their course."""
    service, sender = build_sender(database, slack_fake.api_url, SystemClock(), timeout=1)
    slack_fake.mixed_faults(0.2, MIXED, seed=SEED, longest=6.0)
    async with delivering(sender):
        incidents = [
            await service.declare(f"service {n} down", Severity.P2, ALICE) for n in range(3)
        ]
        for step in range(2):  # the stories go on while earlier messages are on their way
            await asyncio.sleep(1.5)
            for incident in incidents:
                await service.add_note(incident.id, ALICE, f"note {step} on {incident.id}")
        for incident in incidents:
            await service.acknowledge(incident.id, ALICE)
        await asyncio.sleep(1.5)
        for incident in incidents:
            await service.resolve(incident.id, ALICE, "fixed")
        await wait_drained(database, 40)
        slack_fake.mixed_faults(0, MIXED, seed=SEED)  # calm again: late copies can be found
        await slack_fake.wait_for(
            lambda: (
                not slack_fake.late_pending
                and all(count == 1 for count in posted_keys(slack_fake).values())
            ),
            timeout=30,
        )
    await assert_each_message_once(slack_fake, database, incidents=3)
    for incident in incidents:
        [card] = cards_of(slack_fake, incident.id)
        assert " resolved: " in card["text"], card["text"]
