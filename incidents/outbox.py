"""The outbox: every message tocsin owes the chat, durable in SQLite.

Incident changes enqueue here inside the transaction that makes them
(`IncidentRecords` calls `OutboxRecords`), so a crash can neither lose a
message nor leave one behind for a change that was rolled back. The sender in
`bot/` renders each delivery from the incident's state at sending time, so the
outbox holds references (incident, timeline event), not rendered text.

A delivery moves pending -> sending -> sent. `sending` with a `claimed_at`
means "we may have posted it": after a timeout or a crash the sender must look
for it in the channel before posting it again. An attempt looked for and not
found may still land later (Slack finishing a slow request); `uncertain_since`
keeps its claim and `recheck_at` when the sender next looks for such a late
copy, until it no longer expects one.

At most one card row per incident is pending (an index): whenever a card row
goes back to pending, a newer pending one of its incident is folded into it.
The card is rendered when it is sent, so it shows what both asked for.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

import sqlite_utils

from incidents.database import Database, decode_time, encode_time, write_transaction

T = TypeVar("T")


class DeliveryKind(StrEnum):
    CARD = "card"  # post the incident card, or update it once posted
    REPLY = "reply"  # a thread reply telling one timeline event
    DM = "dm"  # a direct message to one person paged by escalation
    NOTICE = "notice"  # a channel message about tocsin itself (no incident)


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Delivery:
    id: int
    incident_number: int
    kind: DeliveryKind
    key: str
    state: DeliveryState
    attempts: int
    timeline_id: int | None
    recipient: str | None
    text: str
    channel: str | None
    claimed_at: datetime | None
    ts: str | None = None
    uncertain_since: datetime | None = None
    recheck_at: datetime | None = None

    @property
    def unconfirmed(self) -> bool:
        """A send was attempted and its outcome is unknown: a post must be looked for first."""
        return self.state is DeliveryState.SENDING


class OutboxRecords:
    """Outbox rows within the caller's transaction (on the database thread)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def card(self, number: int, at: datetime) -> None:
        """Ask for the card to show the incident's latest state; coalesces with a pending ask."""
        self._db.execute(
            "INSERT OR IGNORE INTO outbox (incident_number, kind, key, created_at) "
            "VALUES (?, 'card', ?, ?)",
            [number, f"{number}:card:{uuid.uuid4().hex}", encode_time(at)],
        )

    def reply(self, number: int, timeline_id: int, at: datetime) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO outbox (incident_number, kind, timeline_id, key, created_at) "
            "VALUES (?, 'reply', ?, ?, ?)",
            [number, timeline_id, f"{number}:reply:{timeline_id}", encode_time(at)],
        )

    def dm(self, number: int, recipient: str, text: str, key: str, at: datetime) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO outbox (incident_number, kind, recipient, text, key, "
            "created_at) VALUES (?, 'dm', ?, ?, ?, ?)",
            [number, recipient, text, f"{number}:dm:{key}", encode_time(at)],
        )

    def notice(self, channel: str, text: str, mention: Sequence[str], at: datetime) -> None:
        """A message to a channel about tocsin itself, in no incident's thread; `mention`
        holds the Slack targets the sender turns into mentions."""
        self._db.execute(
            "INSERT INTO outbox (incident_number, kind, channel, recipient, text, key, "
            "created_at) VALUES (NULL, 'notice', ?, ?, ?, ?, ?)",
            [channel, " ".join(mention), text, f"notice:{uuid.uuid4().hex}", encode_time(at)],
        )

    def heads(self, now: datetime, limit: int) -> list[Delivery]:
        """The oldest undelivered row of each incident that is due: order within an incident."""
        rows = self._db.query(
            "SELECT o.* FROM outbox o JOIN (SELECT MIN(id) AS id FROM outbox "
            "WHERE state IN ('pending', 'sending') GROUP BY incident_number) h ON o.id = h.id "
            "WHERE o.not_before IS NULL OR o.not_before <= ? ORDER BY o.id LIMIT ?",
            [encode_time(now), limit],
        )
        return [_delivery(row) for row in rows]

    def following_replies(self, head: Delivery, limit: int) -> list[Delivery]:
        """Pending replies right after `head` in its incident, which may share its message."""
        rows = self._db.query(
            "SELECT * FROM outbox WHERE incident_number = ? AND id > ? "
            "AND state IN ('pending', 'sending') ORDER BY id LIMIT ?",
            [head.incident_number, head.id, limit],
        )
        found: list[Delivery] = []
        for row in rows:
            delivery = _delivery(row)
            if delivery.kind is not DeliveryKind.REPLY or delivery.state is not (
                DeliveryState.PENDING
            ):
                break
            found.append(delivery)
        return found

    def claim(self, ids: Sequence[int], channel: str, at: datetime) -> None:
        self._set(
            ids,
            "state = 'sending', attempts = attempts + 1, claimed_at = ?, channel = ?",
            [encode_time(at), channel],
        )

    def sent(
        self, ids: Sequence[int], channel: str, ts: str, at: datetime, recheck_at: datetime
    ) -> None:
        """Delivered as `ts`; rows with an attempt that may still land are looked at again."""
        self._set(
            ids,
            "state = 'sent', channel = ?, ts = ?, sent_at = ?, error = NULL, not_before = NULL, "
            "recheck_at = CASE WHEN uncertain_since IS NULL THEN NULL ELSE ? END",
            [channel, ts, encode_time(at), encode_time(recheck_at)],
        )

    def postpone(
        self,
        ids: Sequence[int],
        until: datetime,
        error: str,
        *,
        maybe_posted: bool,
        count_attempt: bool = False,
    ) -> None:
        """Try again later. `maybe_posted` keeps the rows `sending`: look before reposting.

        `count_attempt` counts a try that failed before its rows were claimed.
        """
        state = "sending" if maybe_posted else "pending"
        if not maybe_posted:
            self._fold_pending_cards(ids)
        self._set(
            ids,
            "state = ?, not_before = ?, error = ?, attempts = attempts + ?",
            [state, encode_time(until), error[:500], int(count_attempt)],
        )

    def release(self, ids: Sequence[int]) -> None:
        """A check found no trace of the post: it may be posted again.

        The first such attempt's claim is kept: a late copy of it is looked for later.
        """
        self._fold_pending_cards(ids)
        self._set(
            ids,
            "state = 'pending', claimed_at = NULL, "
            "uncertain_since = COALESCE(uncertain_since, claimed_at)",
            [],
        )

    def rechecks_due(self, now: datetime, limit: int) -> list[Delivery]:
        """Sent rows whose channel is due to be searched for a late copy of an earlier try."""
        rows = self._db.query(
            "SELECT * FROM outbox WHERE recheck_at IS NOT NULL AND recheck_at <= ? "
            "AND state = 'sent' ORDER BY recheck_at LIMIT ?",
            [encode_time(now), limit],
        )
        return [_delivery(row) for row in rows]

    def card_rechecks(self, number: int) -> list[Delivery]:
        """The incident's posted card, if a late copy of it may still land."""
        rows = self._db.query(
            "SELECT * FROM outbox WHERE incident_number = ? AND kind = 'card' "
            "AND state = 'sent' AND recheck_at IS NOT NULL",
            [number],
        )
        return [_delivery(row) for row in rows]

    def recheck(self, row_id: int, at: datetime | None) -> None:
        """When to look for a late copy of row `row_id` again; None: no longer."""
        self._set([row_id], "recheck_at = ?", [encode_time(at)])

    def recorded(self, keys: Sequence[str]) -> dict[str, Delivery]:
        """The rows with these keys, by key (keys of pruned rows are absent)."""
        if not keys:
            return {}
        marks = ", ".join("?" * len(keys))
        rows = self._db.query(f"SELECT * FROM outbox WHERE key IN ({marks})", list(keys))
        return {row["key"]: _delivery(row) for row in rows}

    def finish(self, ids: Sequence[int], state: DeliveryState, error: str = "") -> None:
        self._set(ids, "state = ?, error = ?", [state.value, error[:500] or None])

    def thread_of(self, number: int) -> tuple[str, str] | None:
        rows = list(
            self._db.query(
                "SELECT channel, thread_ts FROM incidents WHERE number = ? "
                "AND thread_ts IS NOT NULL",
                [number],
            )
        )
        return (rows[0]["channel"], rows[0]["thread_ts"]) if rows else None

    def attach_thread(self, number: int, channel: str, ts: str) -> None:
        """Where the card lives; recorded with the post's `sent` so a crash cannot split them."""
        self._db.execute(
            "UPDATE incidents SET channel = ?, thread_ts = ? WHERE number = ?",
            [channel, ts, number],
        )

    def counts(self) -> dict[str, int]:
        rows = self._db.query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
        return {row["state"]: row["n"] for row in rows}

    def prune(self, before: datetime) -> int:
        cursor = self._db.execute(
            "DELETE FROM outbox WHERE state IN ('sent', 'skipped') AND created_at < ? "
            "AND recheck_at IS NULL",
            [encode_time(before)],
        )
        return cursor.rowcount

    def _fold_pending_cards(self, ids: Sequence[int]) -> None:
        """Card rows among `ids` go back to pending: a newer pending card row of the same
        incident is skipped first, as the index allows one and the older must go first."""
        if not ids:
            return
        marks = ", ".join("?" * len(ids))
        self._db.execute(
            f"UPDATE outbox SET state = 'skipped' WHERE kind = 'card' AND state = 'pending' "
            f"AND id NOT IN ({marks}) AND incident_number IN (SELECT incident_number FROM "
            f"outbox WHERE kind = 'card' AND id IN ({marks}))",
            [*ids, *ids],
        )

    def _set(self, ids: Sequence[int], assignments: str, values: list[Any]) -> None:
        if not ids:
            return
        marks = ", ".join("?" * len(ids))
        self._db.execute(f"UPDATE outbox SET {assignments} WHERE id IN ({marks})", [*values, *ids])


class Outbox:
    """Async access for the sender: each call is one transaction on the database thread."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def read(self, work: Callable[[OutboxRecords], T]) -> T:
        return await self._database.run(lambda db: work(OutboxRecords(db)))

    async def write(self, work: Callable[[OutboxRecords], T]) -> T:
        def transaction(db: sqlite_utils.Database) -> T:
            with write_transaction(db):
                return work(OutboxRecords(db))

        return await self._database.run(transaction)


def _delivery(row: dict[str, Any]) -> Delivery:
    return Delivery(
        id=row["id"],
        incident_number=row["incident_number"] or 0,  # 0: a notice, of no incident
        kind=DeliveryKind(row["kind"]),
        key=row["key"],
        state=DeliveryState(row["state"]),
        attempts=row["attempts"],
        timeline_id=row["timeline_id"],
        recipient=row["recipient"],
        text=row["text"],
        channel=row["channel"],
        claimed_at=decode_time(row["claimed_at"]),
        ts=row["ts"],
        uncertain_since=decode_time(row["uncertain_since"]),
        recheck_at=decode_time(row["recheck_at"]),
    )
