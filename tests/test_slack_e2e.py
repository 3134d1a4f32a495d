"""End to end through the real Bolt app, in HTTP mode and in Socket Mode.

A probe fails against real nginx -> the card is posted -> escalation level 1
is delivered after its delay -> a signed Acknowledge click -> level 2 never
comes -> nginx is fixed -> the card shows the incident resolved. Everything is
read back from the Slack fake's call log, in order.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot import slack_ids
from bot.config.loader import load_config
from bot.main import open_tocsin
from bot.runtime import running_engine
from bot.slack_connection import slack_credentials
from incidents.clock import SystemClock
from tests.servers.nginx import NginxServer
from tests.slack_fake import APP_TOKEN, BOT_TOKEN, INCIDENTS_CHANNEL, SlackFake
from tests.slack_requests import SIGNING_SECRET, button_click, signed_headers

ALICE = "U0ALICE"
LEAD = "U0LEAD"
LEVEL_TWO_AFTER = 12  # seconds: room for level 1, the card's pace and the click under load


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "tocsin.yml"
    path.write_text(
        f"""
slack: {{channel: "#ops-incidents"}}
storage: {{path: {tmp_path / "tocsin.db"}}}
listener: {{port: 0}}
detection: {{group_wait: 0s}}
escalation:
  P1:
    levels:
      - {{notify: ["@oncall"], after: 2s}}
      - {{notify: [{LEAD}], after: {LEVEL_TWO_AFTER}s}}
probes:
  - id: shop-flag
    kind: http
    url: {url}
    interval: 1s
    timeout: 500ms
    fail_after: 2
    recover_after: 2
    severity: P1
    labels: {{service: shop}}
"""
    )
    return path


def replies(fake: SlackFake, ts: str) -> list[dict[str, Any]]:
    return fake.thread(INCIDENTS_CHANNEL, ts)[1:]


async def click(fake: SlackFake, listener_url: str, body: str, mode: str) -> float:
    """Deliver a button click the way Slack would in `mode`; returns seconds to the ack."""
    began = time.perf_counter()
    if mode == "socket":
        payload = json.loads(urllib.parse.parse_qs(body)["payload"][0])
        await fake.socket_send("interactive", payload)
        return time.perf_counter() - began
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{listener_url}/slack/events", data=body, headers=signed_headers(body)
        ) as answer,
    ):
        assert answer.status == 200, await answer.text()
    return time.perf_counter() - began


@pytest.mark.parametrize("mode", ["http", "socket"])
async def test_failure_card_escalation_ack_and_recovery(
    nginx_server: NginxServer, slack_fake: SlackFake, tmp_path: Path, mode: str
) -> None:
    slack_fake.add_user(ALICE, "alice")
    slack_fake.add_user(LEAD, "lead")
    slack_fake.add_usergroup("S0ONCALL", "oncall", [ALICE])
    flag = nginx_server.root / f"flag-{os.getpid()}-{mode}.txt"
    flag.unlink(missing_ok=True)
    environ = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": slack_fake.api_url}
    environ.update(
        {"SLACK_APP_TOKEN": APP_TOKEN}
        if mode == "socket"
        else {"SLACK_SIGNING_SECRET": SIGNING_SECRET}
    )
    credentials = slack_credentials(environ)
    assert credentials is not None and credentials.mode.value == mode
    loaded = load_config(write_config(tmp_path, nginx_server.url(flag.name)))
    async with (
        open_tocsin(loaded) as tocsin,
        running_engine(tocsin, SystemClock(), environ, slack=credentials) as engine,
    ):
        card = await slack_fake.wait_for(
            lambda: next(iter(slack_fake.top_level(INCIDENTS_CHANNEL)), None), timeout=10
        )
        posted_at = time.monotonic()
        assert card is not None
        assert "INC-1" in card["text"] and "P1" in card["text"]
        card_ts = card["ts"]

        def escalated() -> list[dict[str, Any]]:
            return [r for r in replies(slack_fake, card_ts) if "subteam^S0ONCALL" in r["text"]]

        await slack_fake.wait_for(escalated, timeout=8)
        assert time.monotonic() - posted_at > 0.5  # level 1 waited for its delay

        body = button_click(
            slack_ids.ACKNOWLEDGE,
            "INC-1",
            user=ALICE,
            channel=INCIDENTS_CHANNEL,
            message_ts=card_ts,
            response_url=slack_fake.response_url("ack"),
        )
        assert await click(slack_fake, engine.listener_url, body, mode) < 3
        await slack_fake.wait_for(
            lambda: "acknowledged" in slack_fake.messages[(INCIDENTS_CHANNEL, card_ts)]["text"],
            timeout=5,
        )
        # past the moment level 2 was due (it counts from the opening, before the card)
        await asyncio.sleep(max(0.0, posted_at + LEVEL_TWO_AFTER + 1 - time.monotonic()))
        assert not [r for r in replies(slack_fake, card_ts) if LEAD in r["text"]]
        assert not slack_fake.calls_to("conversations.open")

        flag.write_text("up\n")
        flag.chmod(0o644)
        await slack_fake.wait_for(
            lambda: "resolved" in slack_fake.messages[(INCIDENTS_CHANNEL, card_ts)]["text"],
            timeout=10,
        )
        await slack_fake.wait_for(
            lambda: [r for r in replies(slack_fake, card_ts) if "Resolved" in r["text"]],
            timeout=5,
        )

    posts = [c for c in slack_fake.calls_to("chat.postMessage")]
    assert posts[0].args.get("thread_ts") in (None, "")
    assert all(p.args.get("thread_ts") == card_ts for p in posts[1:])
    methods = [c.method for c in slack_fake.calls if c.method.startswith("chat.")]
    assert methods[0] == "chat.postMessage"
    assert len(slack_fake.top_level(INCIDENTS_CHANNEL)) == 1  # one card, edited in place
    texts = [r["text"] for r in replies(slack_fake, card_ts)]
    assert any("Acknowledged" in t and ALICE in t for t in texts), texts
    assert any("Resolved" in t for t in texts)
