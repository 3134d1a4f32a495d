"""Signed requests to /slack/events whose body is not what it claims.

Whoever holds the signing secret can send any bytes with a valid signature; tocsin
answers 400 and writes one log line for each, never a 500 or a traceback, and nothing
is acknowledged, changed or sent to Slack.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.parse
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
from tests.slack_requests import SIGNING_SECRET, button_click, view_submission

ANSWERS = {"chat.update", "chat.postEphemeral", "views.open", "views.update", "views.push"}
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def form(payload: str) -> bytes:
    return urllib.parse.urlencode({"payload": payload}).encode()


def click_payload() -> dict[str, object]:
    body = button_click(
        slack_ids.ACKNOWLEDGE,
        "INC-1",
        user="U0ALICE",
        channel=INCIDENTS_CHANNEL,
        message_ts="1.1",
        response_url="http://127.0.0.1:9/unused",
    )
    payload: dict[str, object] = json.loads(urllib.parse.parse_qs(body)["payload"][0])
    return payload


def submission_payload() -> dict[str, object]:
    body = view_submission(slack_ids.NOTE_MODAL, {}, user="U0ALICE", private_metadata="INC-1")
    payload: dict[str, object] = json.loads(urllib.parse.parse_qs(body)["payload"][0])
    return payload


def event(**changes: object) -> bytes:
    body = {
        "type": "event_callback",
        "team_id": "T0TEAM",
        "event_id": "Ev1",
        "event": {"type": "app_mention", "user": "U0ALICE", "text": "ack", "ts": "1.2"},
    }
    return json.dumps({**body, **changes}).encode()


CLICK = json.dumps(click_payload())
SHAPES: dict[str, tuple[bytes, str]] = {
    "form payload that is not JSON": (b"payload=%7Bnot+json", FORM),
    "form payload that is empty": (b"payload=", FORM),
    "form payload that is a JSON list": (form("[1,2,3]"), FORM),
    "form payload that is JSON null": (form("null"), FORM),
    "click cut short": (form(CLICK[: len(CLICK) // 2]), FORM),
    "click that is not UTF-8": (form(CLICK)[:-3] + b"\xff\xfe%7D", FORM),
    "event cut short": (event()[:60], JSON),
    "JSON list": (b"[1,2,3]", JSON),
    "JSON string": (b'"event_callback"', JSON),
    "JSON that is not UTF-8": (b'{"type": "event_callback", "x": "\xff\xfe"}', JSON),
    "event whose event is null": (event(event=None), JSON),
    "event whose event id is a list": (event(event_id=["Ev1"]), JSON),
    "view_submission with view null": (
        form(json.dumps({**submission_payload(), "view": None})),
        FORM,
    ),
    "view_submission with a list for user": (
        form(json.dumps({**submission_payload(), "user": ["U0ALICE"]})),
        FORM,
    ),
    "slash command without trigger_id": (
        urllib.parse.urlencode({"command": "/incident", "text": "list", "user_id": "U0A"}).encode(),
        FORM,
    ),
}


def signed(body: bytes, content_type: str) -> dict[str, str]:
    """Slack's signature over the exact bytes (the helper in slack_requests signs text)."""
    stamp = str(int(time.time()))
    digest = hmac.new(
        SIGNING_SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256
    ).hexdigest()
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": content_type,
    }


@pytest.fixture
async def engine(slack_fake: SlackFake, tmp_path: Path) -> AsyncIterator[Engine]:
    slack_fake.add_user("U0ALICE", "alice")
    async with http_engine(slack_fake, tmp_path) as running:
        assert running.slack is not None
        await running.slack.context.incidents.declare("checkout down", Severity.P1, ALICE_ACTOR)
        yield running


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_signed_body_that_is_not_what_it_claims_gets_400_and_one_line(
    engine: Engine, slack_fake: SlackFake, caplog: pytest.LogCaptureFixture, shape: str
) -> None:
    body, content_type = SHAPES[shape]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{engine.listener_url}/slack/events",
                data=body,
                headers=signed(body, content_type),
            ) as answer,
        ):
            status = answer.status
        assert engine.slack is not None and engine.slack.events is not None
        await engine.slack.events.drain()
    assert status == 400
    assert [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()] == []
    refusals = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(refusals) == 1, [r.getMessage() for r in refusals]
    assert "\n" not in refusals[0].getMessage()
    assert (await engine.slack.context.incidents.get("INC-1")).status is Status.OPEN
    assert [c.method for c in slack_fake.calls if c.method in ANSWERS] == []


async def post(engine: Engine, body: bytes, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{engine.listener_url}/slack/events", data=body, headers=headers) as answer,
    ):
        return answer.status


async def test_a_whole_click_of_the_wrong_shape_is_acknowledged_then_dropped_with_one_line(
    engine: Engine, slack_fake: SlackFake, caplog: pytest.LogCaptureFixture
) -> None:
    """Clicks are answered before they are parsed (see slack_events), so this one gets its 200."""
    body = form(json.dumps({k: v for k, v in click_payload().items() if k != "actions"}))
    with caplog.at_level(logging.INFO):
        assert await post(engine, body, signed(body, FORM)) == 200
        assert engine.slack is not None and engine.slack.events is not None
        await engine.slack.events.drain()
    assert [r for r in caplog.records if r.exc_info] == []
    dropped = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert dropped == [
        "dropped a signed Slack request after its ack: block_actions without actions.0.action_id"
    ]
    assert (await engine.slack.context.incidents.get("INC-1")).status is Status.OPEN
    assert [c.method for c in slack_fake.calls if c.method in ANSWERS] == []


async def test_an_unsigned_body_that_is_not_utf8_is_refused_as_unsigned(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    body = b"payload=\xff\xfe"
    headers = {**signed(b"payload=", FORM), "Content-Type": FORM}
    with caplog.at_level(logging.INFO):
        assert await post(engine, body, headers) == 401
    assert [r for r in caplog.records if r.exc_info] == []


async def test_a_flood_of_unsigned_requests_is_one_log_line(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    body = form(CLICK)
    headers = {**signed(body, FORM), "X-Slack-Signature": "v0=" + "0" * 64}
    with caplog.at_level(logging.INFO):
        statuses = {await post(engine, body, headers) for _ in range(30)}
    assert statuses == {401}
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
