"""Finding posts whose outcome tocsin never learnt (timeout, dropped answer, crash).

Every post carries its outbox keys in Slack message metadata. Before such a
post is sent again, the channel (or the thread) is searched for those keys
from the earliest attempt's claim on: found means recorded, not re-posted. The
same search later finds a late copy: an attempt Slack finished after tocsin
had looked for it and posted again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_channels import SlackChannels
from bot.slack_ids import OUTBOX_EVENT_TYPE

log = logging.getLogger(__name__)

HISTORY_PAGES = 5  # pages of 200 messages searched; the window keeps it to one in practice
CLOCK_SLACK = 5.0  # seconds: Slack's ts may be a little earlier than our claim


@dataclass(frozen=True)
class Copy:
    """A message in Slack that carries outbox keys."""

    channel: str  # the channel id
    ts: str
    keys: tuple[str, ...]


class EarlierAttempts:
    def __init__(self, client: AsyncWebClient, channels: SlackChannels) -> None:
        self._client = client
        self._channels = channels

    async def find(
        self, channel: str, thread_ts: str | None, key: str, since: datetime | None
    ) -> Copy | None:
        """The first message carrying `key` posted since `since`, or None if none did."""
        found = await self.copies(channel, thread_ts, key, since)
        return found[0] if found else None

    async def copies(
        self, channel: str, thread_ts: str | None, key: str, since: datetime | None
    ) -> list[Copy]:
        """Every message carrying `key` posted since `since`, oldest first."""
        channel_id = await self._channels.resolve(channel)
        if channel_id.startswith("#"):  # history takes ids only: post again, lose nothing
            log.warning("cannot search %s for %s: Slack's id for it is unknown", channel, key)
            return []
        found: list[Copy] = []
        for posted in await self._recent(channel_id, thread_ts, since):
            metadata = posted.get("metadata") or {}
            if metadata.get("event_type") != OUTBOX_EVENT_TYPE:
                continue
            keys = (metadata.get("event_payload") or {}).get("keys") or []
            if key in keys:
                found.append(Copy(channel_id, str(posted["ts"]), tuple(map(str, keys))))
        return sorted(found, key=lambda copy: Decimal(copy.ts))

    async def _recent(
        self, channel: str, thread_ts: str | None, since: datetime | None
    ) -> list[Any]:
        """Messages posted to `channel` (or the thread) since `since`, with metadata."""
        window: dict[str, str] = {}
        if since is not None:
            window["oldest"] = str(since.timestamp() - CLOCK_SLACK)
        found: list[Any] = []
        cursor = ""
        for _ in range(HISTORY_PAGES):
            args: dict[str, Any] = {**window, "include_all_metadata": True, "limit": 200}
            if cursor:
                args["cursor"] = cursor
            if thread_ts is not None:
                answer = await self._client.conversations_replies(
                    channel=channel, ts=thread_ts, **args
                )
            else:
                answer = await self._client.conversations_history(channel=channel, **args)
            found += answer.get("messages") or []
            cursor = ((answer.get("response_metadata") or {}).get("next_cursor")) or ""
            if not cursor:
                break
        return found
