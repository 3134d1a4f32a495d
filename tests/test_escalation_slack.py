"""Escalation from tocsin.yml to Slack: thread mentions, DMs, reminders, quiet hours, restarts.

The real runtime runs in HTTP mode against the Slack fake with a fake clock: the test
moves the clock, runs the escalation tick itself and reads what reached the fake.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from bot import slack_ids
from bot.config.loader import load_config
from bot.main import open_tocsin
from bot.runtime import Engine, running_engine
from bot.slack_connection import slack_credentials
from incidents.model import Actor, Severity, Source, Status
from tests.fakes import FakeClock
from tests.slack_fake import BOT_TOKEN, INCIDENTS_CHANNEL, WORKSPACE_URL, SlackFake
from tests.slack_requests import SIGNING_SECRET, button_click, signed_headers

WAIT = 30.0  # a guard against hangs only; the outbox paces channel posts at one a second
DECLARER = Actor(Source.CLI, "carol", "carol")
ONCALL = "<!subteam^S0ONCALL|@oncall>"
LADDER = """
    levels:
      - {notify: [U0ALICE, "@oncall"], after: 0m}
      - {notify: [U0BOB], after: 15m}
"""


def write_config(tmp_path: Path, policy: str, timezone: str = "UTC") -> Path:
    path = tmp_path / "tocsin.yml"
    path.write_text(
        f"timezone: {timezone}\n"
        'slack: {channel: "#ops-incidents"}\n'
        f"storage: {{path: {tmp_path / 'tocsin.db'}}}\n"
        "listener: {port: 0}\n"
        f"escalation:\n  P1:{policy}"
    )
    return path


@pytest.fixture
def workspace(slack_fake: SlackFake) -> SlackFake:
    slack_fake.add_user("U0ALICE", "alice")
    slack_fake.add_user("U0BOB", "bob")
    slack_fake.add_usergroup("S0ONCALL", "oncall", ["U0ALICE", "U0BOB"])
    return slack_fake


@asynccontextmanager
async def running(path: Path, clock: FakeClock, fake: SlackFake) -> AsyncIterator[Engine]:
    environ = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": fake.api_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    }
    async with (
        open_tocsin(load_config(path), clock) as tocsin,
        running_engine(tocsin, clock, environ, slack=slack_credentials(environ)) as engine,
    ):
        yield engine


async def status(engine: Engine) -> Status:
    assert engine.slack is not None
    return (await engine.slack.context.incidents.get("INC-1")).status


async def tick(engine: Engine) -> None:
    """One escalation tick, then wait until the outbox has sent everything it holds."""
    await engine.escalate()
    async with asyncio.timeout(WAIT):
        while True:
            counts = await engine.outbox.read(lambda records: records.counts())
            if not counts.get("pending") and not counts.get("sending"):
                return
            await asyncio.sleep(0.05)


def card_ts(fake: SlackFake) -> str:
    cards = fake.top_level(INCIDENTS_CHANNEL)
    assert len(cards) == 1
    return str(cards[0]["ts"])


def thread_lines(fake: SlackFake) -> list[str]:
    """Every line of every reply under the card (consecutive replies share a message)."""
    if not fake.top_level(INCIDENTS_CHANNEL):
        return []
    replies = fake.thread(INCIDENTS_CHANNEL, card_ts(fake))[1:]
    return [line for reply in replies for line in str(reply["text"]).splitlines()]


def paging(fake: SlackFake, target: str) -> list[str]:
    return [line for line in thread_lines(fake) if "Paging" in line and target in line]


def dms_to(fake: SlackFake, user: str) -> list[str]:
    return [
        str(message["text"])
        for (channel, _), message in fake.messages.items()
        if fake.dms.get(channel) == (user,)
    ]


async def click_acknowledge(engine: Engine, fake: SlackFake, user: str) -> None:
    body = button_click(
        slack_ids.ACKNOWLEDGE,
        "INC-1",
        user=user,
        channel=INCIDENTS_CHANNEL,
        message_ts=card_ts(fake),
        response_url=fake.response_url("ack"),
    )
    url = f"{engine.listener_url}/slack/events"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=signed_headers(body)) as answer,
    ):
        assert answer.status == 200
    await fake.wait_for(
        lambda: any("Acknowledged by" in line for line in thread_lines(fake)), timeout=WAIT
    )
    await tick(engine)


async def declare(engine: Engine) -> None:
    assert engine.slack is not None
    await engine.slack.context.incidents.declare("checkout down", Severity.P1, DECLARER)
    await tick(engine)


async def test_a_p1_pages_in_the_thread_and_by_dm_and_an_ack_stops_level_two(
    tmp_path: Path, workspace: SlackFake, clock: FakeClock
) -> None:
    path = write_config(tmp_path, LADDER)
    async with running(path, clock, workspace) as engine:
        await declare(engine)
        assert paging(workspace, f"<@U0ALICE> {ONCALL} (level 1 of 2)")
        opened = [c.args.get("users") for c in workspace.calls_to("conversations.open")]
        assert opened == ["U0ALICE"]
        link = f"{WORKSPACE_URL}archives/{INCIDENTS_CHANNEL}/p{card_ts(workspace).replace('.', '')}"
        [dm] = dms_to(workspace, "U0ALICE")
        assert "INC-1" in dm and "You are paged (level 1 of 2)" in dm
        assert f"<{link}|Open the incident thread>" in dm
        assert dms_to(workspace, "U0BOB") == []

        await click_acknowledge(engine, workspace, "U0ALICE")
        assert await status(engine) is Status.ACKNOWLEDGED
        clock.advance(minutes=20)
        await tick(engine)
        clock.advance(hours=3)
        await tick(engine)
        assert paging(workspace, "U0BOB") == []
        assert dms_to(workspace, "U0BOB") == []
        assert len(dms_to(workspace, "U0ALICE")) == 1


async def test_unanswered_reminders_reopen_the_incident_and_escalation_resumes(
    tmp_path: Path, workspace: SlackFake, clock: FakeClock
) -> None:
    path = write_config(tmp_path, LADDER + "    remind_every: 30m\n    unacknowledge_after: 1\n")
    async with running(path, clock, workspace) as engine:
        await declare(engine)
        await click_acknowledge(engine, workspace, "U0ALICE")

        clock.advance(minutes=29)
        await tick(engine)
        assert not any("still not resolved" in line for line in thread_lines(workspace))
        clock.advance(minutes=1)
        await tick(engine)
        reminders = [line for line in thread_lines(workspace) if "still not resolved" in line]
        assert reminders == [
            ":alarm_clock: <@U0ALICE>: INC-1 is still not resolved (reminder while acknowledged)"
        ]
        assert "reminder while acknowledged" in dms_to(workspace, "U0ALICE")[-1]
        assert await status(engine) is Status.ACKNOWLEDGED

        clock.advance(minutes=30)  # the reminder went unanswered
        await tick(engine)
        assert await status(engine) is Status.OPEN
        assert any("Unacknowledged" in line for line in thread_lines(workspace))
        await tick(engine)
        assert len(paging(workspace, "(level 1 of 2)")) == 2
        clock.advance(minutes=15)
        await tick(engine)
        assert paging(workspace, "<@U0BOB> (level 2 of 2)")
        assert len(dms_to(workspace, "U0BOB")) == 1


@pytest.mark.parametrize("then", ["skip", "delay"])
async def test_a_level_in_quiet_hours_is_skipped_or_delayed(
    tmp_path: Path, workspace: SlackFake, clock: FakeClock, then: str
) -> None:
    # The clock starts at 09:00 UTC, 10:00 in Berlin: level 2 falls due at 10:15 Berlin time.
    quiet = f'{{from: "10:00", to: "12:00", then: {then}}}'
    policy = f"""
    levels:
      - {{notify: [U0ALICE], after: 0m}}
      - {{notify: [U0BOB], after: 15m, quiet_hours: {quiet}}}
"""
    path = write_config(tmp_path, policy, timezone="Europe/Berlin")
    async with running(path, clock, workspace) as engine:
        await declare(engine)
        clock.advance(minutes=15)
        await tick(engine)
        skipped = [line for line in thread_lines(workspace) if "Escalation skipped" in line]
        if then == "skip":
            assert skipped == [
                ":zzz: *Escalation skipped*: level 2 skipped: quiet hours 10:00-12:00 skip"
            ]
        else:
            assert skipped == []
        assert paging(workspace, "U0BOB") == []

        clock.advance(hours=1, minutes=44)  # 11:59 in Berlin: still quiet
        await tick(engine)
        assert paging(workspace, "U0BOB") == []
        clock.advance(minutes=1)  # noon in Berlin: the quiet hours are over
        await tick(engine)
        delivered = paging(workspace, "<@U0BOB>")
        assert delivered == (
            [] if then == "skip" else [":rotating_light: Paging <@U0BOB> (level 2 of 2)"]
        )
        clock.advance(hours=2)
        await tick(engine)
        assert paging(workspace, "<@U0BOB>") == delivered
        assert len(dms_to(workspace, "U0BOB")) == len(delivered)
        assert await status(engine) is Status.OPEN


async def test_a_step_due_while_stopped_is_delivered_once_after_restart_marked_late(
    tmp_path: Path, workspace: SlackFake, clock: FakeClock
) -> None:
    path = write_config(tmp_path, LADDER)
    async with running(path, clock, workspace) as engine:
        await declare(engine)
        assert len(paging(workspace, "(level 1 of 2)")) == 1

    clock.advance(minutes=40)  # level 2 fell due at 09:15 while tocsin was stopped
    async with running(path, clock, workspace) as engine:
        await tick(engine)
        await tick(engine)
    async with running(path, clock, workspace) as engine:
        clock.advance(minutes=1)
        await tick(engine)
        assert await status(engine) is Status.OPEN

    [late] = paging(workspace, "<@U0BOB>")
    assert "level 2 of 2" in late and "late: was due 09:15 UTC" in late
    [dm] = dms_to(workspace, "U0BOB")
    assert "late: was due 09:15 UTC" in dm
    assert len(paging(workspace, "(level 1 of 2)")) == 1
    assert len(dms_to(workspace, "U0ALICE")) == 1


async def test_a_person_slack_cannot_dm_does_not_hold_up_the_thread(
    tmp_path: Path, workspace: SlackFake, clock: FakeClock
) -> None:
    policy = '\n    levels:\n      - {notify: [U0GONE, "@oncall"], after: 0m}\n'
    async with running(write_config(tmp_path, policy), clock, workspace) as engine:
        assert engine.slack is not None
        await engine.slack.context.incidents.declare("checkout down", Severity.P1, DECLARER)
        await engine.escalate()  # U0GONE is no user of the workspace: no DM can be opened
        await workspace.wait_for(lambda: paging(workspace, "<@U0GONE>"), timeout=WAIT)
        await click_acknowledge(engine, workspace, "U0ALICE")
        assert await status(engine) is Status.ACKNOWLEDGED


@pytest.mark.parametrize(
    ("failures", "status", "step"),
    [
        (1, 500, 5),  # once: sent on a later try
        (12, 503, 15),  # ten minutes of back-off, a Slack outage: the page still arrives
    ],
)
async def test_a_dm_slack_fails_to_open_is_sent_on_a_later_try(
    tmp_path: Path, workspace: SlackFake, clock: FakeClock, failures: int, status: int, step: int
) -> None:
    policy = "\n    levels:\n      - {notify: [U0ALICE], after: 0m}\n"
    workspace.fail_next("conversations.open", times=failures, status=status)  # nothing posted
    async with running(write_config(tmp_path, policy), clock, workspace) as engine:
        assert engine.slack is not None
        await engine.slack.context.incidents.declare("checkout down", Severity.P1, DECLARER)
        await engine.escalate()
        await workspace.wait_for(lambda: paging(workspace, "<@U0ALICE>"), timeout=WAIT)
        deadline = time.monotonic() + WAIT
        while not dms_to(workspace, "U0ALICE"):  # the back-off runs on the fake clock
            assert time.monotonic() < deadline, "the DM page was given up"
            clock.advance(seconds=step)
            await asyncio.sleep(0.1)
        assert len(workspace.calls_to("conversations.open")) == failures + 1
        assert len(dms_to(workspace, "U0ALICE")) == 1
