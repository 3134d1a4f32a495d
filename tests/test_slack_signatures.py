"""HTTP mode's front door, /slack/events.

It refuses unsigned, stale and replayed requests before anything is processed;
answers clicks before their work runs; lets a modal submission wait for its
validation; and after SIGTERM's drain tells late requests to come back.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot import slack_ids
from bot.runtime import Engine
from incidents.model import Severity, Status
from tests.conftest import ALICE as ALICE_ACTOR
from tests.slack_engine import http_engine
from tests.slack_fake import INCIDENTS_CHANNEL, SlackFake
from tests.slack_requests import button_click, event_callback, signed_headers, view_submission


@pytest.fixture
async def engine(slack_fake: SlackFake, tmp_path: Path) -> AsyncIterator[Engine]:
    slack_fake.add_user("U0ALICE", "alice")
    async with http_engine(slack_fake, tmp_path) as running:
        assert running.slack is not None
        await running.slack.context.incidents.declare("checkout down", Severity.P1, ALICE_ACTOR)
        yield running


def ack_body(fake: SlackFake) -> str:
    return button_click(
        slack_ids.ACKNOWLEDGE,
        "INC-1",
        user="U0ALICE",
        channel=INCIDENTS_CHANNEL,
        message_ts="1.1",
        response_url=fake.response_url("ack"),
    )


async def post(engine: Engine, body: str, headers: dict[str, str]) -> int:
    return (await answer_to(engine, body, headers))[0]


async def answer_to(engine: Engine, body: str, headers: dict[str, str]) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{engine.listener_url}/slack/events", data=body, headers=headers) as answer,
    ):
        return answer.status, await answer.text()


async def status_of(engine: Engine) -> Status:
    assert engine.slack is not None
    return (await engine.slack.context.incidents.get("INC-1")).status


async def test_wrong_signature_is_refused(engine: Engine, slack_fake: SlackFake) -> None:
    body = ack_body(slack_fake)
    assert await post(engine, body, signed_headers(body, secret="not-the-secret")) == 401
    assert await post(engine, body, {**signed_headers(body), "X-Slack-Signature": ""}) == 401
    assert await status_of(engine) is Status.OPEN


async def test_stale_timestamp_is_refused(engine: Engine, slack_fake: SlackFake) -> None:
    body = ack_body(slack_fake)
    stale = signed_headers(body, timestamp=int(time.time()) - 6 * 60)
    assert await post(engine, body, stale) == 401
    assert await status_of(engine) is Status.OPEN


async def test_a_replay_is_refused_and_processed_once(
    engine: Engine, slack_fake: SlackFake
) -> None:
    body = button_click(
        slack_ids.ADD_NOTE,
        "INC-1",
        user="U0ALICE",
        channel=INCIDENTS_CHANNEL,
        message_ts="1.1",
        response_url=slack_fake.response_url("note"),
    )
    headers = signed_headers(body)
    assert await post(engine, body, headers) == 200
    assert await post(engine, body, headers) == 401
    await slack_fake.wait_for(lambda: slack_fake.calls_to("views.open"), timeout=5)
    assert len(slack_fake.calls_to("views.open")) == 1
    assert engine.slack is not None and engine.slack.events is not None
    assert engine.slack.events.guard.refused == 1


async def test_a_click_is_answered_before_its_work_runs(
    engine: Engine, slack_fake: SlackFake
) -> None:
    slack_fake.slow_next("users.info", 1.0)  # who clicked is known only a second later
    body = ack_body(slack_fake)
    assert await post(engine, body, signed_headers(body)) == 200
    assert await status_of(engine) is Status.OPEN  # answered, not yet done
    await slack_fake.wait_for(lambda: slack_fake.calls_to("chat.update"), timeout=10)
    assert await status_of(engine) is Status.ACKNOWLEDGED


async def test_a_modal_submission_waits_for_its_validation(
    engine: Engine, slack_fake: SlackFake
) -> None:
    empty = {
        slack_ids.NOTE_BLOCK: {slack_ids.NOTE_INPUT: {"type": "plain_text_input", "value": ""}}
    }
    body = view_submission(slack_ids.NOTE_MODAL, empty, user="U0ALICE", private_metadata="INC-1")
    status, text = await answer_to(engine, body, signed_headers(body))
    assert status == 200
    assert json.loads(text) == {
        "response_action": "errors",
        "errors": {slack_ids.NOTE_BLOCK: "Write a note."},
    }


async def test_after_the_drain_requests_are_told_to_come_back(
    engine: Engine, slack_fake: SlackFake
) -> None:
    assert engine.slack is not None and engine.slack.events is not None
    await engine.slack.events.drain()
    body = ack_body(slack_fake)
    assert await post(engine, body, signed_headers(body)) == 503
    assert await status_of(engine) is Status.OPEN


async def test_an_event_slack_sends_again_is_handled_once(
    engine: Engine, slack_fake: SlackFake
) -> None:
    """Slack re-sends an event (new signature, X-Slack-Retry-Num) when unsure it arrived."""
    mention = {"type": "app_mention", "user": "U0ALICE", "text": "<@U0TOCSIN> ack"}
    body = event_callback({**mention, "channel": INCIDENTS_CHANNEL, "ts": "1700000000.000100"})
    now = int(time.time())
    first = {**signed_headers(body, timestamp=now), "Content-Type": "application/json"}
    again = {
        **signed_headers(body, timestamp=now - 1),
        "Content-Type": "application/json",
        "X-Slack-Retry-Num": "1",
        "X-Slack-Retry-Reason": "http_timeout",
    }
    assert await post(engine, body, first) == 200
    assert await post(engine, body, again) == 200
    assert engine.slack is not None and engine.slack.events is not None
    await engine.slack.events.drain()
    assert await engine.slack.context.in_flight.settle(10)
    told = [e for e in slack_fake.ephemerals if e["user"] == "U0ALICE"]
    assert len(told) == 1, told  # "mention me inside an incident's thread", once
