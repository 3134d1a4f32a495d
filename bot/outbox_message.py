"""What the outbox sender hands to Slack in one call, rendered at sending time, and what it
counts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import Block

from bot.card_source import CardSource
from bot.slack_ids import OUTBOX_EVENT_TYPE
from incidents.model import format_incident_id
from incidents.outbox import Delivery, DeliveryKind

MERGED_LIMIT = 3000  # characters of replies merged into one message


@dataclass
class SenderStats:
    sent: int = 0
    failed: int = 0
    rate_limited: int = 0
    retried: int = 0
    confirmed_after_crash: int = 0
    late_copies_removed: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Message:
    """One Slack call's worth of deliveries: a head, and the replies merged into it."""

    rows: tuple[Delivery, ...]
    channel: str
    thread_ts: str | None  # the card's ts for replies; the card itself for an edit
    edit: bool

    @property
    def head(self) -> Delivery:
        return self.rows[0]

    @property
    def keys(self) -> list[str]:
        return [row.key for row in self.rows]

    @property
    def metadata(self) -> dict[str, Any]:
        """What a post carries so that it can be found again: its incident and outbox keys."""
        incident = format_incident_id(self.head.incident_number)
        return {
            "event_type": OUTBOX_EVENT_TYPE,
            "event_payload": {"incident": incident, "keys": self.keys},
        }


async def render(
    message: Message, cards: CardSource, permalink: Callable[[int], Awaitable[str | None]]
) -> tuple[str, list[Block] | None, list[Delivery], list[Delivery]]:
    """Text and blocks, the rows this message carries, and rows that need no message."""
    head = message.head
    if head.kind is DeliveryKind.CARD:
        card = await cards.card(head.incident_number)
        return card.text, card.blocks, [head], []
    if head.kind is DeliveryKind.NOTICE:
        return cards.notice(head.text, head.recipient or ""), None, [head], []
    if head.kind is DeliveryKind.DM:
        link = await permalink(head.incident_number)
        dm = await cards.dm(head.incident_number, head.text, link)
        return dm, None, [head], []
    parts: list[str] = []
    carried: list[Delivery] = []
    skipped: list[Delivery] = []
    for row in message.rows:
        assert row.timeline_id is not None
        reply = cards.reply(await cards.event(row.timeline_id))
        if reply is None:
            skipped.append(row)
            continue
        if parts and sum(len(p) + 1 for p in parts) + len(reply) > MERGED_LIMIT:
            break
        parts.append(reply)
        carried.append(row)
    return "\n".join(parts), None, carried, skipped
