"""Posts whose answer never came: when to look for them, and removing a copy that came late.

Slack may finish a post after the client gave up on it (timeout, dropped
answer, crash); the post then lands when Slack answers. Looking too early finds
nothing, and posting again makes two. So an unconfirmed post is looked for only
`settle` after its claim: Slack's own processing, well past the client's
timeout. Found means recorded, not posted again.

Slack can be slower still, and no wait is long enough for every case. A row
posted again after such a look therefore keeps watching: its channel (or
thread) is searched again at doubling intervals, and before every edit of a
card, until `settle * WATCH_SETTLES` after the lost attempt; a late copy found
there is deleted with `chat.delete`. A copy stays when it is what some row
recorded, or carries a key still waiting to be confirmed (that row may adopt it).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.earlier_attempts import Copy, EarlierAttempts
from bot.outbox_message import Message, SenderStats
from bot.slack_channels import SlackChannels
from bot.slack_delivery_errors import backoff, classify
from incidents.clock import Clock
from incidents.outbox import Delivery, DeliveryKind, DeliveryState, Outbox

log = logging.getLogger(__name__)

SETTLE = timedelta(seconds=30)  # tocsin's client gives up after 10 s; Slack may take longer
WATCH_SETTLES = 20  # late copies are looked for until 10 minutes after the lost attempt
RECHECKS_PER_PASS = 50


class PostConfirmation:
    def __init__(
        self,
        outbox: Outbox,
        client: AsyncWebClient,
        channels: SlackChannels,
        clock: Clock,
        stats: SenderStats,
        settle: timedelta = SETTLE,
    ) -> None:
        self._outbox = outbox
        self._client = client
        self._clock = clock
        self._stats = stats
        self._settle = settle
        self._watch = settle * WATCH_SETTLES
        self._attempts = EarlierAttempts(client, channels)
        self._checking: set[int] = set()  # rows whose late copies are being looked for

    def settled(self, row: Delivery, now: datetime) -> bool:
        """Whether Slack is done with the row's last attempt, as far as it ever says."""
        return row.claimed_at is None or now >= row.claimed_at + self._settle

    def first_recheck(self, now: datetime) -> datetime:
        return now + self._settle

    async def confirm(self, message: Message) -> Copy | None:
        """An earlier attempt of `message` that reached Slack, for the caller to record.

        Not found: its rows may be posted again. Slack cannot be searched: they
        stay unconfirmed (and their incident waits) until it can.
        """
        head = message.head
        ids = [row.id for row in message.rows]
        since = head.uncertain_since or head.claimed_at
        try:
            found = await self._attempts.find(message.channel, message.thread_ts, head.key, since)
        except Exception as error:
            outcome = classify(error)
            wait = outcome.retry_after or backoff(head.attempts)
            log.warning(
                "cannot look for %s in Slack (%s); trying again in %.0fs",
                head.key,
                outcome.reason,
                wait,
            )
            until = self._clock.now() + timedelta(seconds=wait)
            await self._outbox.write(
                lambda r: r.postpone(ids, until, outcome.reason, maybe_posted=True)
            )
            return None
        if found is None:
            await self._outbox.write(lambda r: r.release(ids))
        else:
            log.warning("%s reached Slack unconfirmed; recorded, not posted again", head.key)
        return found

    async def due(self, now: datetime) -> list[Delivery]:
        """Sent rows to look at again for a late copy, none already being looked at."""
        rows = await self._outbox.read(lambda r: r.rechecks_due(now, RECHECKS_PER_PASS))
        return [row for row in rows if row.id not in self._checking]

    async def before_edit(self, number: int) -> None:
        """A card about to change is first made the only one, if a late copy has landed."""
        try:
            rows = await self._outbox.read(lambda r: r.card_rechecks(number))
            for row in rows:
                await self.recheck(row)
        except Exception:  # the edit goes on; the periodic look will come
            log.exception("looking for a late copy of INC-%s's card failed", number)

    async def recheck(self, row: Delivery) -> None:
        """Delete late copies of `row` found now, and say when to look again."""
        if row.id in self._checking:
            return
        self._checking.add(row.id)
        try:
            await self._recheck(row)
        finally:
            self._checking.discard(row.id)

    async def _recheck(self, row: Delivery) -> None:
        since = row.uncertain_since or row.claimed_at or self._clock.now()
        try:
            await self._remove_late_copies(row, since)
        except Exception as error:
            log.warning("cannot look for a late copy of %s: %s", row.key, classify(error).reason)
            now = self._clock.now()
            later: datetime | None = now + self._settle
        else:
            now = self._clock.now()
            later = max(since + 2 * (now - since), now + self._settle)
        if now - since >= self._watch:
            later = None
        elif later is not None:
            later = min(later, since + self._watch)
        await self._outbox.write(lambda r: r.recheck(row.id, later))

    async def _remove_late_copies(self, row: Delivery, since: datetime) -> None:
        assert row.channel is not None and row.ts is not None
        thread_ts = None
        if row.kind is DeliveryKind.REPLY:
            thread = await self._outbox.read(lambda r: r.thread_of(row.incident_number))
            thread_ts = thread[1] if thread else None
        copies = await self._attempts.copies(row.channel, thread_ts, row.key, since)
        extras = [copy for copy in copies if copy.ts != row.ts]
        if not extras:
            return
        keys = sorted({key for copy in extras for key in copy.keys})
        recorded = await self._outbox.read(lambda r: r.recorded(keys))
        for copy in extras:
            if not _owned(copy, recorded):
                await self._delete(copy, row)

    async def _delete(self, copy: Copy, row: Delivery) -> None:
        try:
            await self._client.chat_delete(channel=copy.channel, ts=copy.ts)
        except SlackApiError as error:
            if classify(error).reason != "message_not_found":
                raise
        self._stats.late_copies_removed += 1
        log.warning(
            "Slack posted an earlier attempt of %s late, after it was posted again; "
            "deleted that copy (%s %s)",
            row.key,
            copy.channel,
            copy.ts,
        )


def _owned(copy: Copy, recorded: dict[str, Delivery]) -> bool:
    """Whether some row stands on `copy`: it recorded it, or may still adopt it."""
    for key in copy.keys:
        row = recorded.get(key)
        if row is None:
            continue
        if row.state in (DeliveryState.PENDING, DeliveryState.SENDING) or row.ts == copy.ts:
            return True
    return False
