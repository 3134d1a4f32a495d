"""Signed Slack requests shaped like the ones Slack sends, for HTTP-mode tests.

Payload shapes follow Slack's documented block_actions, view_submission,
slash command and Events API bodies, trimmed to the fields Bolt and tocsin read.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

from slack_sdk.signature import SignatureVerifier

from tests.slack_fake import TEAM_ID

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def signed_headers(
    body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def button_click(
    action_id: str,
    value: str,
    *,
    user: str,
    channel: str,
    message_ts: str,
    response_url: str,
    selected: str | None = None,
    team: str = TEAM_ID,
) -> str:
    """A block_actions payload, form-encoded as Slack posts it."""
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": "card_actions",
        "type": "button",
        "action_ts": f"{time.time():.6f}",
    }
    if selected is None:
        action["value"] = value
    else:
        action["type"] = "static_select"
        action["selected_option"] = {
            "text": {"type": "plain_text", "text": selected},
            "value": selected,
        }
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team},
        "api_app_id": "A0APP",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "trigger_id": f"{int(time.time())}.1.trigger",
        "team": {"id": team, "domain": "example"},
        "channel": {"id": channel, "name": "ops-incidents"},
        "message": {"type": "message", "ts": message_ts, "text": "card"},
        "response_url": response_url,
        "actions": [action],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def view_submission(
    callback_id: str,
    values: dict[str, dict[str, dict[str, Any]]],
    *,
    user: str,
    private_metadata: str = "",
    team: str = TEAM_ID,
) -> str:
    """A view_submission payload: `values` is block_id -> action_id -> element state."""
    payload = {
        "type": "view_submission",
        "team": {"id": team, "domain": "example"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team},
        "api_app_id": "A0APP",
        "token": "legacy-verification-token",
        "trigger_id": f"{int(time.time())}.3.trigger",
        "view": {
            "id": "V0MODAL",
            "team_id": team,
            "type": "modal",
            "blocks": [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": values},
            "hash": "1700000000.abcdef",
            "app_id": "A0APP",
            "bot_id": "B0TOCSIN",
        },
        "response_urls": [],
        "is_enterprise_install": False,
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def slash_command(
    command: str, text: str, *, user: str, channel: str, response_url: str, team: str = TEAM_ID
) -> str:
    return urllib.parse.urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": team,
            "team_domain": "example",
            "channel_id": channel,
            "channel_name": "ops-incidents",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0APP",
            "response_url": response_url,
            "trigger_id": f"{int(time.time())}.2.trigger",
        }
    )


def event_callback(event: dict[str, Any], *, team: str = TEAM_ID) -> str:
    """An Events API body (JSON)."""
    return json.dumps(
        {
            "token": "legacy-verification-token",
            "team_id": team,
            "api_app_id": "A0APP",
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{int(time.time() * 1000)}",
            "event_time": int(time.time()),
        }
    )
