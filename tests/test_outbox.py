"""The outbox against the Slack fake: faults, pacing, order, and a crash between send and record.

Every test ends with the same check a user would make: each message is in
Slack exactly once, and nothing is left pending.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

import sqlite_utils

from incidents.clock import SystemClock
from incidents.database import Database
from incidents.model import Severity
from incidents.service import IncidentService
from tests.conftest import ALICE
from tests.outbox_harness import build_sender, drain, posted_keys
from tests.slack_fake import INCIDENTS_CHANNEL, SlackFake


async def sent_keys(database: Database) -> list[str]:
    def work(db: sqlite_utils.Database) -> list[str]:
        return [
            r["key"]
            for r in db.query("SELECT key FROM outbox WHERE state = 'sent' AND kind != 'card'")
        ]

    return await database.run(work)


async def story(service: IncidentService) -> str:
    incident = await service.declare("checkout down", Severity.P1, ALICE)
    await service.add_note(incident.id, ALICE, "looking at php-fpm")
    await service.acknowledge(incident.id, ALICE)
    await service.add_note(incident.id, ALICE, "restarted it")
    await service.resolve(incident.id, ALICE, "php-fpm restarted")
    return incident.id


async def test_card_first_then_replies_in_its_thread_once_each(
    slack_fake: SlackFake, database: Database
) -> None:
    service, sender = build_sender(database, slack_fake.api_url, SystemClock())
    await story(service)
    await drain(sender, database)
    [card] = slack_fake.top_level(INCIDENTS_CHANNEL)
    assert "resolved" in card["text"]
    thread = slack_fake.thread(INCIDENTS_CHANNEL, card["ts"])[1:]
    text = "\n".join(message["text"] for message in thread)
    assert (
        text.index("looking at php-fpm") < text.index("Acknowledged") < text.index("restarted it")
    )
    assert all(count == 1 for count in posted_keys(slack_fake).values())
    assert set(await sent_keys(database)) <= set(posted_keys(slack_fake))


async def test_429_500_slow_and_dropped_posts_are_each_delivered_once(
    slack_fake: SlackFake, database: Database
) -> None:
    service, sender = build_sender(database, slack_fake.api_url, SystemClock(), timeout=1)
    slack_fake.fail_next("chat.postMessage", status=429, retry_after=1)
    slack_fake.fail_next("chat.postMessage", status=500)
    slack_fake.slow_next("chat.postMessage", 2.5)  # posted, but the client gives up
    slack_fake.drop_next("chat.postMessage", after_action=True)  # posted, connection lost
    for _ in range(3):
        await story(service)
    await drain(sender, database, seconds=40)
    assert len(slack_fake.top_level(INCIDENTS_CHANNEL)) == 3
    counts = posted_keys(slack_fake)
    assert counts and all(count == 1 for count in counts.values()), counts
    assert sender.stats.rate_limited == 1
    assert sender.stats.confirmed_after_crash >= 1


async def test_permanent_error_fails_loudly_without_blocking_other_channels(
    slack_fake: SlackFake, database: Database
) -> None:
    service, sender = build_sender(database, slack_fake.api_url, SystemClock())
    slack_fake.not_in_channel.add(INCIDENTS_CHANNEL)
    await service.declare("search down", Severity.P2, ALICE)
    await drain(sender, database)
    assert sender.stats.failed >= 1
    assert "not_in_channel" in sender.stats.failures[0]


async def test_a_crash_between_post_and_record_never_posts_twice(
    slack_fake: SlackFake, db_path: Path, database: Database
) -> None:
    service, _ = build_sender(database, slack_fake.api_url, SystemClock())
    incident_id = await story(service)
    slack_fake.slow_next("chat.postMessage", 30)  # the card is posted; the answer never comes
    child = subprocess.Popen(  # noqa: ASYNC220 - killed below, never awaited
        [sys.executable, "-m", "tests.outbox_harness", str(db_path), slack_fake.api_url],
        cwd=Path(__file__).parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    try:
        await slack_fake.wait_for(lambda: slack_fake.top_level(INCIDENTS_CHANNEL), timeout=15)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    _, restarted = build_sender(database, slack_fake.api_url, SystemClock())
    await drain(restarted, database, seconds=30)
    assert len(slack_fake.top_level(INCIDENTS_CHANNEL)) == 1
    assert restarted.stats.confirmed_after_crash == 1
    counts = posted_keys(slack_fake)
    assert all(count == 1 for count in counts.values()), counts
    assert (
        len(slack_fake.thread(INCIDENTS_CHANNEL, slack_fake.top_level(INCIDENTS_CHANNEL)[0]["ts"]))
        > 1
    )
    # the thread found after the crash is stored by channel id (configured as #ops-incidents),
    # so later card edits reach Slack
    await service.reopen(incident_id, ALICE, "errors are back")
    await drain(restarted, database)
    assert await failed_rows(database) == []
    stored = await database.run(lambda db: next(db.query("SELECT channel FROM incidents")))
    assert stored["channel"] == INCIDENTS_CHANNEL
    assert slack_fake.calls_to("chat.update")


async def failed_rows(database: Database) -> list[str]:
    return await database.run(
        lambda db: [
            f"{r['key']}: {r['error']}"
            for r in db.query("SELECT key, error FROM outbox WHERE state = 'failed'")
        ]
    )


async def test_posts_to_one_channel_are_paced(slack_fake: SlackFake, database: Database) -> None:
    """Cards go to `#ops-incidents`, replies to the thread's channel id: one channel, one pace."""
    service, sender = build_sender(database, slack_fake.api_url, SystemClock())
    for number in range(4):
        incident = await service.declare(f"incident {number}", Severity.P3, ALICE)
        await service.add_note(incident.id, ALICE, f"note {number}")
    await drain(sender, database)
    posts = slack_fake.calls_to("chat.postMessage")
    assert sum(1 for c in posts if not c.args.get("thread_ts")) == 4
    assert sum(1 for c in posts if c.args.get("thread_ts")) >= 1
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(posts)]
    assert min(gaps) >= 0.9, [round(gap, 2) for gap in gaps]
