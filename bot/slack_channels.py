"""Where the outbox's messages go: channel ids for `#names`, DM channels, permalinks.

Slack accepts `#name` when posting but answers with the id, and history,
replies and updates take ids only. The sender therefore resolves names before
it routes anything, so that pacing, the stored thread and later edits all
speak of one channel by one id.
"""

from __future__ import annotations

import logging
import time

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_delivery_errors import classify

log = logging.getLogger(__name__)

RELIST_SECONDS = 300.0  # a channel created later is found on the next sweep


class SlackChannels:
    """Caches what Slack told us about channels; every lookup is tolerant of failure."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._ids: dict[str, str] = {}  # "#name" -> id
        self._dms: dict[str, str] = {}  # user id -> DM channel id
        self._listed_at: float | None = None

    def known(self, channel: str) -> str:
        """The id of `channel` if already known, else `channel` itself (no Slack call)."""
        return self._ids.get(channel, channel)

    def learn(self, channel: str, channel_id: str) -> None:
        """Remember the id Slack returned when we posted to `channel`."""
        if channel.startswith("#"):
            self._ids[channel] = channel_id

    async def resolve(self, channel: str) -> str:
        """The id of `channel`; a `#name` is looked up with one `conversations.list` sweep.

        When the lookup fails (missing scope, Slack down), the name is returned:
        posting by name still works, and the id is learnt from the answer.
        """
        if not channel.startswith("#") or channel in self._ids:
            return self.known(channel)
        now = time.monotonic()
        if self._listed_at is not None and now - self._listed_at < RELIST_SECONDS:
            return channel
        self._listed_at = now
        try:
            await self._list_channels()
        except Exception as error:
            log.warning("cannot look up channel %s: %s", channel, classify(error).reason)
            return channel
        return self.known(channel)

    async def _list_channels(self) -> None:
        cursor = ""
        while True:
            answer = await self._client.conversations_list(
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=1000,
                cursor=cursor or None,
            )
            for found in answer.get("channels") or []:
                self._ids[f"#{found['name']}"] = str(found["id"])
            cursor = ((answer.get("response_metadata") or {}).get("next_cursor")) or ""
            if not cursor:
                return

    async def dm(self, user: str) -> str:
        """The DM channel with `user`; Slack's refusal (e.g. `user_not_found`) is raised."""
        if user not in self._dms:
            response = await self._client.conversations_open(users=user)
            self._dms[user] = str(response["channel"]["id"])
        return self._dms[user]

    async def permalink(self, channel: str, ts: str) -> str | None:
        try:
            response = await self._client.chat_getPermalink(channel=channel, message_ts=ts)
        except Exception:
            return None
        return str(response.get("permalink") or "") or None
