"""The outbox sender: delivers queued Slack writes in order, paced, exactly once.

Order: within an incident strictly by queue order, so the card is posted
before its replies. Pace: at most one post and one edit per second per
channel, a channel being known by its id however it was configured; channels
do not wait for each other. Exactly once: before a post the
rows are marked `sending`; the returned `ts` is stored with `sent` in one
transaction. A post whose outcome is unknown (timeout, dropped connection,
5xx, crash) is looked for in the channel by its metadata before it is sent
again. Consecutive replies of one thread share a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from bot.card_source import CardSource
from bot.earlier_attempts import EarlierAttempts
from bot.outbox_message import Message, SenderStats
from bot.slack_channels import SlackChannels
from bot.slack_delivery_errors import classify
from bot.slack_ids import OUTBOX_EVENT_TYPE
from incidents.clock import Clock
from incidents.model import format_incident_id
from incidents.outbox import Delivery, DeliveryKind, DeliveryState, Outbox, OutboxRecords

log = logging.getLogger(__name__)

POST_INTERVAL = 1.0  # seconds between posts to one channel (Slack's own pace)
POLL_SECONDS = 0.2
MAX_MERGED = 20
MERGED_LIMIT = 3000
PAUSE_ON_AUTH = timedelta(seconds=60)
DM_ATTEMPTS = 5  # tries to open a DM before that page is given up (the thread has it too)


class SlackSender:
    def __init__(
        self, outbox: Outbox, client: AsyncWebClient, cards: CardSource, clock: Clock
    ) -> None:
        self._outbox = outbox
        self._client = client
        self._cards = cards
        self._clock = clock
        self._busy: set[str] = set()
        self._sending: set[int] = set()  # head ids with a send in flight
        self._next_at: dict[tuple[str, bool], float] = {}
        self._channels = SlackChannels(client)
        self._attempts = EarlierAttempts(client, self._channels)
        self._tasks: set[asyncio.Task[None]] = set()
        self._paused_until = 0.0
        self.stats = SenderStats()

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
        """Start sending every head whose channel is free; returns how many were started."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._paused_until:
            return 0
        now = self._clock.now()
        heads = await self._outbox.read(lambda r: r.heads(now, 500))
        started = 0
        for head in heads:
            if head.id in self._sending:
                continue
            message = await self._message(head)
            if message is None:
                continue
            channel = self._channels.known(message.channel)
            lane = (channel, message.edit)
            if channel in self._busy or self._next_at.get(lane, 0.0) > loop.time():
                continue
            self._busy.add(channel)
            self._sending.add(head.id)
            self._next_at[lane] = loop.time() + POST_INTERVAL
            task = asyncio.create_task(self._send(message, channel))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _message(self, head: Delivery) -> Message | None:
        """What `head` needs: its channel and thread, and the replies that may share it."""
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
            self._busy.discard(lane)
            self._sending.discard(message.head.id)

    async def _deliver(self, message: Message) -> None:
        head = message.head
        if head.unconfirmed and not message.edit:
            found = await self._find_posted(message)
            if found is not None:
                self.stats.confirmed_after_crash += 1
                log.warning(
                    "%s reached Slack before tocsin stopped; recorded, not re-posted",
                    message.head.key,
                )
                channel, ts = found
                await self._record_sent(
                    Message(message.rows, channel, message.thread_ts, False), ts
                )
                return
        text, blocks, rows, skipped = await self._render(message)
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
                    metadata={
                        "event_type": OUTBOX_EVENT_TYPE,
                        "event_payload": {
                            "incident": format_incident_id(head.incident_number),
                            "keys": message.keys,
                        },
                    },
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

    async def _render(
        self, message: Message
    ) -> tuple[str, list[Block] | None, list[Delivery], list[Delivery]]:
        """Text and blocks, the rows this message carries, and rows that need no message."""
        head = message.head
        if head.kind is DeliveryKind.CARD:
            card = await self._cards.card(head.incident_number)
            return card.text, card.blocks, [head], []
        if head.kind is DeliveryKind.DM:
            permalink = await self._permalink(head.incident_number)
            dm = await self._cards.dm(head.incident_number, head.text, permalink)
            return dm, None, [head], []
        parts: list[str] = []
        carried: list[Delivery] = []
        skipped: list[Delivery] = []
        for row in message.rows:
            assert row.timeline_id is not None
            reply = self._cards.reply(await self._cards.event(row.timeline_id))
            if reply is None:
                skipped.append(row)
                continue
            if parts and sum(len(p) + 1 for p in parts) + len(reply) > MERGED_LIMIT:
                break
            parts.append(reply)
            carried.append(row)
        return "\n".join(parts), None, carried, skipped

    async def _record_sent(self, message: Message, ts: str) -> None:
        now = self._clock.now()
        head = message.head
        card_post = head.kind is DeliveryKind.CARD and not message.edit

        def work(records: OutboxRecords) -> None:
            records.sent([row.id for row in message.rows], message.channel, ts, now)
            if card_post:
                records.attach_thread(head.incident_number, message.channel, ts)

        await self._outbox.write(work)
        self.stats.sent += len(message.rows)

    async def _record_problem(self, message: Message, error: Exception) -> None:
        outcome = classify(error)
        loop = asyncio.get_running_loop()
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
            self._paused_until = loop.time() + PAUSE_ON_AUTH.total_seconds()
        if outcome.rate_limited:
            self.stats.rate_limited += 1
        else:
            self.stats.retried += 1
        wait = outcome.retry_after or _backoff(message.head.attempts)
        self._next_at[(self._channels.known(message.channel), message.edit)] = loop.time() + wait
        maybe_posted = outcome.maybe_posted and not message.edit
        log.warning(
            "Slack write %s will be retried in %.0fs: %s", message.head.key, wait, outcome.reason
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
        until = self._clock.now() + timedelta(
            seconds=outcome.retry_after or _backoff(head.attempts)
        )
        await self._outbox.write(
            lambda r: r.postpone(
                [head.id], until, outcome.reason, maybe_posted=False, count_attempt=True
            )
        )

    async def _finish(self, rows: list[Delivery], state: DeliveryState, error: str = "") -> None:
        await self._outbox.write(lambda r: r.finish([row.id for row in rows], state, error))

    async def _find_posted(self, message: Message) -> tuple[str, str] | None:
        """The channel id and ts of an earlier attempt of this message, if it reached Slack."""
        head = message.head
        found = await self._attempts.find(
            message.channel, message.thread_ts, head.key, head.claimed_at
        )
        if found is None:
            await self._outbox.write(lambda r: r.release([row.id for row in message.rows]))
        return found

    async def _permalink(self, number: int) -> str | None:
        thread = await self._outbox.read(lambda r: r.thread_of(number))
        return None if thread is None else await self._channels.permalink(*thread)


def _backoff(attempts: int) -> float:
    return float(min(60, 2 ** max(0, attempts)))
