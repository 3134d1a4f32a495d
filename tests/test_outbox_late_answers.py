"""Slack answering a post after the client gave up: the post lands late, and only once stays.

The client here gives up after 1 s and Slack answers 1.2, 2 and 6 client timeouts
later, posting only then: against tocsin's real 10 s timeout, answers after 12 s,
20 s and 60 s. The sender's waits are in the same proportion (see `build_sender`),
so the real code path runs in seconds.
"""

from __future__ import annotations

from typing import Any

from incidents.clock import SystemClock
from incidents.database import Database
from incidents.model import Severity
from tests.conftest import ALICE
from tests.outbox_harness import (
    build_sender,
    delivering,
    outbox_counts,
    posted_keys,
    wait_drained,
)
from tests.slack_fake import INCIDENTS_CHANNEL, SlackFake

DELAYS = (1.2, 2.0, 6.0, 6.0)  # seconds after the post; the client gives up after 1 s


def cards_of(fake: SlackFake, incident_id: str) -> list[dict[str, Any]]:
    return [
        message
        for message in fake.top_level(INCIDENTS_CHANNEL)
        if f" {incident_id} " in message["text"]
    ]


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
