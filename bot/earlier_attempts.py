"""Finding a post whose outcome tocsin never learnt (timeout, dropped answer, crash).

Every post carries its outbox keys in Slack message metadata. Before such a
post is sent again, the channel (or the thread) is searched for those keys in
the only window the earlier attempt can have landed in: from its claim to the
client's timeout after it. Found means recorded, not re-posted.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_channels import SlackChannels
from bot.slack_connection import WEB_TIMEOUT_SECONDS
from bot.slack_ids import OUTBOX_EVENT_TYPE

log = logging.getLogger(__name__)

HISTORY_PAGES = 5  # pages of 200 messages searched; the window keeps it to one in practice


class EarlierAttempts:
    def __init__(self, client: AsyncWebClient, channels: SlackChannels) -> None:
        self._client = client
        self._channels = channels

    async def find(
        self, channel: str, thread_ts: str | None, key: str, claimed_at: datetime | None
    ) -> tuple[str, str] | None:
        """The channel id and ts of the message carrying `key`, or None if none did."""
        channel_id = await self._channels.resolve(channel)
        if channel_id.startswith("#"):  # history takes ids only: post again, lose nothing
            log.warning("cannot look into %s for %s; posting it again", channel, key)
            return None
        for posted in await self._recent(channel_id, thread_ts, claimed_at):
            metadata = posted.get("metadata") or {}
            if metadata.get("event_type") != OUTBOX_EVENT_TYPE:
                continue
            if key in (metadata.get("event_payload") or {}).get("keys", []):
                return channel_id, str(posted["ts"])
        return None

    async def _recent(
        self, channel: str, thread_ts: str | None, claimed_at: datetime | None
    ) -> list[Any]:
        """Messages posted to `channel` (or the thread) around the claim, with metadata."""
        window: dict[str, str] = {}
        if claimed_at is not None:
            window["oldest"] = str(claimed_at.timestamp() - 5)
            window["latest"] = str(claimed_at.timestamp() + WEB_TIMEOUT_SECONDS + 60)
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
