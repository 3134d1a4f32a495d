"""What a failed Slack write means for the outbox: retry, wait, pause, or give up.

The one question that matters for exactly-once delivery is whether Slack may
have posted the message anyway: a 429 or an `ok: false` answer means it did
not; a timeout, a dropped connection or a 5xx means it may have.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError

# The channel or the message is wrong: retrying cannot help; other channels go on.
PERMANENT = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "msg_too_long",
        "no_text",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_thread_ts",
        "thread_not_found",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "restricted_action",
        "user_not_found",
        "cannot_dm_bot",
        "user_disabled",
    }
)
# The token itself is refused: every write would fail, so the whole outbox waits.
AUTH = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "no_permission",
        "ekm_access_denied",
    }
)
# Slack's own trouble, answered with ok: false.
TRANSIENT = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)


@dataclass(frozen=True)
class Outcome:
    reason: str
    permanent: bool = False
    pause: bool = False
    rate_limited: bool = False
    retry_after: float | None = None
    maybe_posted: bool = False


def classify(error: BaseException) -> Outcome:
    if isinstance(error, SlackApiError):
        response = error.response
        status = response.status_code
        data = response.data if isinstance(response.data, dict) else {}
        code = str(data.get("error") or f"HTTP {status}")
        if status == 429 or code == "ratelimited":
            retry_after = _retry_after(response.headers)
            return Outcome(
                f"rate limited (Retry-After {retry_after:g}s)",
                rate_limited=True,
                retry_after=retry_after,
            )
        if status >= 500:
            return Outcome(f"Slack answered HTTP {status}", maybe_posted=True)
        if code in AUTH:
            return Outcome(code, pause=True)
        if code in TRANSIENT:
            return Outcome(code, maybe_posted=True)
        return Outcome(code, permanent=True)
    if isinstance(error, (TimeoutError, asyncio.TimeoutError)):
        return Outcome("no answer from Slack in time", maybe_posted=True)
    if isinstance(error, (aiohttp.ClientError, ConnectionError)):
        return Outcome(f"connection to Slack lost: {type(error).__name__}", maybe_posted=True)
    return Outcome(f"{type(error).__name__}: {error}", maybe_posted=True)


def backoff(attempts: int) -> float:
    """Seconds before the next try of a write tried `attempts` times: 1, 2, 4 ... 60."""
    return float(min(60, 2 ** max(0, attempts)))


def _retry_after(headers: object) -> float:
    value = None
    if isinstance(headers, dict):
        for name, given in headers.items():
            if str(name).lower() == "retry-after":
                value = given[0] if isinstance(given, list) else given
    try:
        return max(1.0, float(str(value)))
    except (TypeError, ValueError):
        return 1.0
