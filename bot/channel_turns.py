"""Whose turn it is to write to a Slack channel, and to search it.

Per channel: one write in flight, at most one post and one edit a second
(Slack's own pace), longer when Slack answered 429, which is about the channel
and so holds back every incident in it; other failures are the row's own and
hold back only its incident (see `SlackSender`). A search for an unconfirmed
post or a late copy takes a turn of its own, so that it never holds up posts.
A refused token pauses every channel.
"""

from __future__ import annotations

import time

POST_INTERVAL = 1.0  # seconds between posts (and between edits) in one channel


class ChannelTurns:
    def __init__(self) -> None:
        self._writing: set[str] = set()
        self._searching: set[str] = set()
        self._next_at: dict[tuple[str, bool], float] = {}
        self._paused_until = 0.0

    @property
    def paused(self) -> bool:
        return time.monotonic() < self._paused_until

    def pause(self, seconds: float) -> None:
        self._paused_until = time.monotonic() + seconds

    def take_write(self, channel: str, edit: bool) -> bool:
        """Whether a post (or an edit) to `channel` may start now; if so it is under way."""
        now = time.monotonic()
        if channel in self._writing or self._next_at.get((channel, edit), 0.0) > now:
            return False
        self._writing.add(channel)
        self._next_at[(channel, edit)] = now + POST_INTERVAL
        return True

    def end_write(self, channel: str) -> None:
        self._writing.discard(channel)

    def hold(self, channel: str, edit: bool, seconds: float) -> None:
        """Slack asked for a pause in this channel's posts (or edits)."""
        self._next_at[(channel, edit)] = time.monotonic() + seconds

    def take_search(self, channel: str) -> bool:
        if channel in self._searching:
            return False
        self._searching.add(channel)
        return True

    def end_search(self, channel: str) -> None:
        self._searching.discard(channel)
