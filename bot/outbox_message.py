"""What the outbox sender hands to Slack in one call, and what it counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from incidents.outbox import Delivery


@dataclass
class SenderStats:
    sent: int = 0
    failed: int = 0
    rate_limited: int = 0
    retried: int = 0
    confirmed_after_crash: int = 0
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
