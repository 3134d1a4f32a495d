"""kill -9 at random moments around incident openings and Slack sends, then a restart.

tocsin runs as a child process probing real nginx and talking to the Slack fake. Each
outage (the probed file removed) is met by one SIGKILL, at a seeded random moment: while
the failures are being counted (tocsin restarts into the same outage), within a second
after its incident row is written (before the journal's next flush, mostly), around its
card being posted (half of the time while Slack's answer is still on its way), or around
the messages that tell the recovery. The target is healed and tocsin restarted. Then a
user reading Slack and the store finds every outage as its own incident with exactly one
card, every queued message delivered exactly once, no incident open for a healthy target,
and nobody paged for an incident that had recovered.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.servers.nginx import NginxServer
from tests.slack_fake import BOT_TOKEN, INCIDENTS_CHANNEL, SlackFake
from tests.slack_requests import SIGNING_SECRET
from tests.tocsin_child import TocsinChild, until

SEED = 1105
MOMENTS = ("counting", "opening", "card", "recovery") * 2  # one kill per outage, shuffled
OUTAGES = len(MOMENTS)
ALICE = "U0ALICE"  # level 1, a second after opening
LEAD = "U0LEAD"  # level 2, 20 s after opening: never for an incident that recovered


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "tocsin.yml"
    path.write_text(
        f"""
slack: {{channel: "#ops-incidents", confirm_after: 3s}}
storage: {{path: {tmp_path / "tocsin.db"}}}
listener: {{port: 0}}
detection: {{group_wait: 0s}}
escalation:
  P1:
    levels:
      - {{notify: [{ALICE}], after: 1s}}
      - {{notify: [{LEAD}], after: 20s}}
probes:
  - id: shop-flag
    kind: http
    url: {url}
    interval: 400ms
    timeout: 300ms
    fail_after: 2
    recover_after: 2
    severity: P1
"""
    )
    return path


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db, timeout=5) as connection:
        return connection.execute(sql).fetchall()


def statuses(db: Path) -> list[str]:
    return [str(row[0]) for row in query(db, "SELECT status FROM incidents ORDER BY number")]


def payloads(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [(m.get("metadata") or {}).get("event_payload") or {} for m in messages]


def cards(fake: SlackFake) -> Counter[str]:
    """How many top-level messages each incident has in the channel."""
    return Counter(str(p.get("incident")) for p in payloads(fake.top_level(INCIDENTS_CHANNEL)))


def posted_keys(fake: SlackFake) -> Counter[str]:
    """How often each outbox key is in a message Slack holds."""
    keys: Counter[str] = Counter()
    for payload in payloads(list(fake.messages.values())):
        keys.update(payload.get("keys", []))
    return keys


def slack_writes(fake: SlackFake) -> int:
    return sum(1 for call in fake.calls if call.method in ("chat.postMessage", "chat.update"))


class KillRun:
    """One outage after another against a running tocsin, each met by one kill -9."""

    def __init__(self, tmp_path: Path, nginx: NginxServer, fake: SlackFake) -> None:
        self.rng = random.Random(SEED)
        self.plan = self.rng.sample(MOMENTS, len(MOMENTS))
        self.story = f"seed {SEED}, kills {self.plan}"
        self.fake, self.db = fake, tmp_path / "tocsin.db"
        self.flag = nginx.root / f"kill-{os.getpid()}.txt"
        environ = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": fake.api_url,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        }
        config = write_config(tmp_path, nginx.url(self.flag.name))
        self.child = TocsinChild(config, environ, tmp_path / "tocsin.log")

    def heal(self) -> None:
        self.flag.write_text("up\n")
        self.flag.chmod(0o644)

    def opened(self, number: int) -> bool:
        return len(statuses(self.db)) >= number

    def resolved(self, number: int) -> bool:
        now = statuses(self.db)
        return len(now) >= number and now[number - 1] == "resolved"

    async def wait_opened(self, number: int) -> None:
        await until(f"INC-{number} opens; {self.story}", lambda: self.opened(number), 15)

    async def kill_heal_restart(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.child.kill()
        self.heal()
        await self.child.start()

    async def outage(self, number: int, moment: str) -> None:
        self.flag.unlink()
        if moment == "counting":  # before, or just as, the second failure opens it
            await asyncio.sleep(self.rng.uniform(0.1, 0.9))
            self.child.kill()
            await self.child.start()  # into the same outage: its incident must still open
            await self.wait_opened(number)
            self.heal()
        elif moment == "opening":
            await self.wait_opened(number)
            await self.kill_heal_restart(self.rng.uniform(0.0, 0.5))  # mostly before a flush
        elif moment == "card":
            if self.rng.random() < 0.5:  # Slack posts the card; its answer comes after the kill
                self.fake.slow_next("chat.postMessage", 3, channel=INCIDENTS_CHANNEL)
            await until(
                f"card of INC-{number}; {self.story}",
                lambda: cards(self.fake)[f"INC-{number}"] > 0,
                20,
            )
            await self.kill_heal_restart(self.rng.uniform(0.0, 0.3))
        else:  # around the messages that tell the recovery
            await self.wait_opened(number)
            self.heal()
            writes = slack_writes(self.fake)
            await until(
                f"Slack told of INC-{number}; {self.story}",
                lambda: slack_writes(self.fake) > writes,
                20,
            )
            await self.kill_heal_restart(self.rng.uniform(0.0, 0.3))
        await until(
            f"INC-{number} resolved once its target is healthy; {self.story}",
            lambda: self.resolved(number),
            20,
        )


@pytest.mark.timeout(100)
async def test_kill_9_around_openings_and_sends_loses_and_repeats_nothing(
    nginx_server: NginxServer, slack_fake: SlackFake, tmp_path: Path
) -> None:
    slack_fake.add_user(ALICE, "alice")
    slack_fake.add_user(LEAD, "lead")
    run = KillRun(tmp_path, nginx_server, slack_fake)
    run.heal()
    try:
        await run.child.start()
        for number, moment in enumerate(run.plan, start=1):
            await run.outage(number, moment)
        await until(
            f"every queued Slack message delivered; {run.story}",
            lambda: not query(run.db, "SELECT 1 FROM outbox WHERE state IN ('pending', 'sending')"),
            30,
        )
        assert await run.child.stop() == 0, run.child.output()[-3000:]
    finally:
        run.child.close()
        run.flag.unlink(missing_ok=True)

    story = run.story
    assert statuses(run.db) == ["resolved"] * OUTAGES, story  # each outage its own incident
    assert cards(slack_fake) == Counter({f"INC-{n}": 1 for n in range(1, OUTAGES + 1)}), story
    posted = posted_keys(slack_fake)
    assert all(count == 1 for count in posted.values()), (story, posted)
    outbox = query(run.db, "SELECT key, kind, state FROM outbox")
    # `skipped`: a timeline event that tells nobody anything (no reply is due for it)
    assert {state for _, _, state in outbox} <= {"sent", "skipped"}, (story, outbox)
    sent = {key for key, kind, state in outbox if kind != "card" and state == "sent"}
    assert sent <= set(posted), (story, sent - set(posted))
    assert not [m for m in slack_fake.messages.values() if LEAD in m.get("text", "")], story
    assert not [c for c in slack_fake.calls_to("conversations.open") if LEAD in str(c.args)]
