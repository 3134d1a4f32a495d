"""The outbox sender: delivers queued Slack writes in order, paced, exactly once.

Order: within an incident strictly by queue order, so the card is posted
before its replies. Pace: per channel, known by its id however it was
configured (`ChannelTurns`); a row waiting for a retry or a confirmation holds
back its own incident only. Exactly once: before a post the rows are marked
`sending`; the returned `ts` is stored with `sent` in one transaction. A post
whose outcome is unknown (timeout, dropped connection, 5xx, crash) is looked
for in the channel by its metadata before it is sent again, in a search that
takes no posting turn (`PostConfirmation`: when, and late copies). Consecutive
replies of one thread share a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.card_source import CardSource
from bot.channel_turns import ChannelTurns
from bot.outbox_message import Message, SenderStats, render
from bot.post_confirmation import SETTLE, PostConfirmation
from bot.slack_channels import SlackChannels
from bot.slack_delivery_errors import backoff, classify
from incidents.clock import Clock
from incidents.outbox import Delivery, DeliveryKind, DeliveryState, Outbox, OutboxRecords

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
MAX_MERGED = 20
PAUSE_ON_AUTH = timedelta(seconds=60)
BROKEN_ROW_WAIT = timedelta(seconds=60)  # a row whose message cannot even be built
DM_ATTEMPTS = 60  # tries (back-off up to 60 s: about an hour of outage) before a DM page is
# given up; a refusal gives up at once (the thread has the mention too)


class SlackSender:
    def __init__(
        self,
        outbox: Outbox,
        client: AsyncWebClient,
        cards: CardSource,
        clock: Clock,
        *,
        settle: timedelta = SETTLE,
    ) -> None:
        self._outbox = outbox
        self._client = client
        self._cards = cards
        self._clock = clock
        self._turns = ChannelTurns()
        self._sending: set[int] = set()  # head ids with a send or a search in flight
        self._channels = SlackChannels(client)
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = SenderStats()
        self._confirmation = PostConfirmation(
            outbox, client, self._channels, clock, self.stats, settle
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; then let in-flight sends finish."""
        while not stop.is_set():
            try:
                await self.deliver_once()
            except Exception:
                log.exception("outbox pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_SECONDS)
        await self.settle()

    async def settle(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def deliver_once(self) -> int:
        """Start sending every head whose channel is free, and every due search for a post;
        returns how many were started."""
        if self._turns.paused:
            return 0
        now = self._clock.now()
        heads = await self._outbox.read(lambda r: r.heads(now, 500))
        started = 0
        for head in heads:
            if head.id in self._sending:
                continue
            try:
                started += await self._start_head(head, now)
            except Exception as error:  # one row's trouble must not stop the others
                log.exception("cannot start sending %s; trying again in a minute", head.key)
                await self._set_aside(head, error, now + BROKEN_ROW_WAIT)
        for row in await self._confirmation.due(now):
            if row.channel is not None and self._turns.take_search(row.channel):
                self._start(self._recheck(row, row.channel))
                started += 1
        return started

    async def _start_head(self, head: Delivery, now: datetime) -> bool:
        """Start `head` if its channel's turn has come, or its search if it is due."""
        message = await self._message(head)
        if message is None:
            return False
        channel = self._channels.known(message.channel)
        if head.unconfirmed and not message.edit:
            if not self._confirmation.settled(head, now) or not self._turns.take_search(channel):
                return False
            self._sending.add(head.id)
            self._start(self._confirm(message, channel))
            return True
        if not self._turns.take_write(channel, message.edit):
            return False
        self._sending.add(head.id)
        self._start(self._send(message, channel))
        return True

    async def _set_aside(self, head: Delivery, error: Exception, until: datetime) -> None:
        reason = f"{type(error).__name__}: {error}"
        await self._outbox.write(
            lambda r: r.postpone([head.id], until, reason, maybe_posted=head.unconfirmed)
        )

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _message(self, head: Delivery) -> Message | None:
        """What `head` needs: its channel and thread, and the replies that may share it."""
        if head.kind is DeliveryKind.NOTICE:  # tocsin's own word: no incident, no thread
            assert head.channel is not None
            return Message((head,), await self._channels.resolve(head.channel), None, False)
        thread = await self._outbox.read(lambda r: r.thread_of(head.incident_number))
        if head.kind is DeliveryKind.DM:
            assert head.recipient is not None
            try:
                channel = await self._channels.dm(head.recipient)
            except Exception as error:
                await self._dm_unavailable(head, error)
                return None
            return Message((head,), channel, None, False)
        if head.kind is DeliveryKind.CARD:
            if thread is not None:
                return Message((head,), thread[0], thread[1], True)
            channel = head.channel or await self._cards.channel_for(head.incident_number)
            return Message((head,), await self._channels.resolve(channel), None, False)
        if thread is None:
            await self._finish([head], DeliveryState.FAILED, "the incident card was never posted")
            return None
        rows = [head]
        if head.state is DeliveryState.PENDING:
            rows += await self._outbox.read(lambda r: r.following_replies(head, MAX_MERGED))
        return Message(tuple(rows), thread[0], thread[1], False)

    async def _send(self, message: Message, lane: str) -> None:
        """Deliver `message`; `lane` is the channel key it was started under."""
        try:
            await self._deliver(message)
        except Exception as error:  # a bug must not stop other channels
            log.exception("sending %s failed", message.head.key)
            await self._record_problem(message, error)
        finally:
            self._turns.end_write(lane)
            self._sending.discard(message.head.id)

    async def _confirm(self, message: Message, lane: str) -> None:
        """Record a post whose answer never came if it is in Slack; else it is posted again."""
        try:
            found = await self._confirmation.confirm(message)
            if found is not None:
                self.stats.confirmed_after_crash += 1
                await self._record_sent(
                    Message(message.rows, found.channel, message.thread_ts, False), found.ts
                )
        except Exception:
            log.exception("looking for %s failed", message.head.key)
        finally:
            self._turns.end_search(lane)
            self._sending.discard(message.head.id)

    async def _recheck(self, row: Delivery, lane: str) -> None:
        try:
            await self._confirmation.recheck(row)
        except Exception:
            log.exception("looking for a late copy of %s failed", row.key)
        finally:
            self._turns.end_search(lane)

    async def _deliver(self, message: Message) -> None:
        head = message.head
        if message.edit:
            await self._confirmation.before_edit(head.incident_number)
        text, blocks, rows, skipped = await render(message, self._cards, self._permalink)
        if skipped:
            await self._finish(skipped, DeliveryState.SKIPPED)
        if not rows:
            return
        message = Message(tuple(rows), message.channel, message.thread_ts, message.edit)
        now = self._clock.now()
        await self._outbox.write(lambda r: r.claim([row.id for row in rows], message.channel, now))
        try:
            if message.edit:
                assert message.thread_ts is not None
                await self._client.chat_update(
                    channel=message.channel, ts=message.thread_ts, text=text, blocks=blocks
                )
                ts = message.thread_ts
            else:
                response = await self._client.chat_postMessage(
                    channel=message.channel,
                    text=text,
                    blocks=blocks,
                    thread_ts=message.thread_ts,
                    metadata=message.metadata,
                    unfurl_links=False,
                    unfurl_media=False,
                )
                ts = str(response["ts"])
                self._channels.learn(message.channel, str(response["channel"]))
                message = Message(
                    message.rows, str(response["channel"]), message.thread_ts, message.edit
                )
        except Exception as error:
            await self._record_problem(message, error)
            return
        await self._record_sent(message, ts)

    async def _record_sent(self, message: Message, ts: str) -> None:
        now = self._clock.now()
        head = message.head
        card_post = head.kind is DeliveryKind.CARD and not message.edit
        recheck_at = self._confirmation.first_recheck(now)

        def work(records: OutboxRecords) -> None:
            records.sent([row.id for row in message.rows], message.channel, ts, now, recheck_at)
            if card_post:
                records.attach_thread(head.incident_number, message.channel, ts)

        await self._outbox.write(work)
        self.stats.sent += len(message.rows)

    async def _record_problem(self, message: Message, error: Exception) -> None:
        outcome = classify(error)
        ids = [row.id for row in message.rows]
        now = self._clock.now()
        if outcome.permanent:
            text = f"{outcome.reason} (channel {message.channel})"
            log.error("Slack refused %s for %s: %s", message.head.key, message.channel, text)
            self.stats.failed += len(ids)
            self.stats.failures.append(text)
            await self._finish(list(message.rows), DeliveryState.FAILED, text)
            return
        if outcome.pause:
            log.error("Slack refused tocsin's token (%s); pausing the outbox", outcome.reason)
            self._turns.pause(PAUSE_ON_AUTH.total_seconds())
        wait = outcome.retry_after or backoff(message.head.attempts)
        if outcome.rate_limited:  # Slack's pace for the channel: every incident in it waits
            self.stats.rate_limited += 1
            self._turns.hold(self._channels.known(message.channel), message.edit, wait)
        else:  # this row's trouble: it waits, its incident with it, the channel goes on
            self.stats.retried += 1
        maybe_posted = outcome.maybe_posted and not message.edit
        log.warning(
            "Slack write %s will be %s: %s",
            message.head.key,
            "looked for in the channel before it is sent again"
            if maybe_posted
            else f"retried in {wait:.0f}s",
            outcome.reason,
        )
        await self._outbox.write(
            lambda r: r.postpone(
                ids, now + timedelta(seconds=wait), outcome.reason, maybe_posted=maybe_posted
            )
        )

    async def _dm_unavailable(self, head: Delivery, error: Exception) -> None:
        """`conversations.open` failed, so nothing was posted. A refusal (or too many tries)
        fails this page only; anything else is tried again later."""
        outcome = classify(error)
        if outcome.permanent or outcome.pause or head.attempts + 1 >= DM_ATTEMPTS:
            text = f"cannot send a DM to {head.recipient}: {outcome.reason}"
            log.error("%s (%s)", text, head.key)
            self.stats.failed += 1
            self.stats.failures.append(text)
            await self._finish([head], DeliveryState.FAILED, text)
            return
        until = self._clock.now() + timedelta(seconds=outcome.retry_after or backoff(head.attempts))
        await self._outbox.write(
            lambda r: r.postpone(
                [head.id], until, outcome.reason, maybe_posted=False, count_attempt=True
            )
        )

    async def _finish(self, rows: list[Delivery], state: DeliveryState, error: str = "") -> None:
        await self._outbox.write(lambda r: r.finish([row.id for row in rows], state, error))

    async def _permalink(self, number: int) -> str | None:
        thread = await self._outbox.read(lambda r: r.thread_of(number))
        return None if thread is None else await self._channels.permalink(*thread)
