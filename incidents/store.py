"""All SQL about incidents, their timeline and participants.

`IncidentRecords` is the synchronous view of one open transaction; it only
ever runs on the database's owning thread. `IncidentStore` hands the service
such a view inside a write transaction, so one domain operation (check status,
change it, append its timeline events) commits or fails as a whole.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlite_utils

from incidents.database import Database, decode_time, encode_time, write_transaction
from incidents.errors import IncidentError, IncidentNotFoundError
from incidents.model import (
    ACTIVE_STATUSES,
    Actor,
    ClosureReason,
    Incident,
    Milestone,
    Severity,
    Source,
    Status,
    TimelineEvent,
    format_incident_id,
)
from incidents.outbox import OutboxRecords

T = TypeVar("T")

MILESTONE_COLUMNS = {milestone: f"{milestone.value}_at" for milestone in Milestone}


@dataclass(frozen=True)
class NewIncident:
    title: str
    severity: Severity
    service: str
    dedup_key: str | None
    milestones: dict[Milestone, datetime]


class DuplicateActiveIncident(IncidentError):
    """The partial unique index refused a second active incident for one dedup key."""


class IncidentRecords:
    """Incident rows as domain objects, within the caller's transaction."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    @property
    def db(self) -> sqlite_utils.Database:
        """For other record views that must join this transaction (escalation)."""
        return self._db

    def get(self, number: int) -> Incident:
        rows = list(self._db.query("SELECT * FROM incidents WHERE number = ?", [number]))
        if not rows:
            raise IncidentNotFoundError(
                f"no incident {format_incident_id(number)}; "
                "`/incident list` or `tocsin incidents list` shows them"
            )
        return self._incident(rows[0])

    def active_by_key(self, dedup_key: str) -> Incident | None:
        active = sorted(status.value for status in ACTIVE_STATUSES)
        rows = self._db.query(
            "SELECT * FROM incidents WHERE dedup_key = ? "
            f"AND status IN ({', '.join('?' * len(active))})",
            [dedup_key, *active],
        )
        return next((self._incident(row) for row in rows), None)

    def by_thread(self, channel: str, thread_ts: str) -> Incident | None:
        rows = self._db.query(
            "SELECT * FROM incidents WHERE channel = ? AND thread_ts = ?", [channel, thread_ts]
        )
        return next((self._incident(row) for row in rows), None)

    def select(self, statuses: Iterable[Status] | None = None, limit: int = 50) -> list[Incident]:
        wanted = [status.value for status in statuses] if statuses is not None else []
        where = f"WHERE status IN ({', '.join('?' * len(wanted))})" if wanted else ""
        rows = self._db.query(
            f"SELECT * FROM incidents {where} ORDER BY number DESC LIMIT ?", [*wanted, limit]
        )
        return [self._incident(row) for row in rows]

    def insert(self, draft: NewIncident, status: Status, at: datetime) -> int:
        columns: dict[str, Any] = {
            "title": draft.title,
            "severity": draft.severity.value,
            "status": status.value,
            "service": draft.service,
            "dedup_key": draft.dedup_key,
            "updated_at": encode_time(at),
        }
        for milestone, moment in draft.milestones.items():
            columns[MILESTONE_COLUMNS[milestone]] = encode_time(moment)
        names = ", ".join(columns)
        marks = ", ".join("?" * len(columns))
        try:
            cursor = self._db.execute(
                f"INSERT INTO incidents ({names}) VALUES ({marks})", list(columns.values())
            )
        except sqlite3.IntegrityError as error:
            raise DuplicateActiveIncident(
                f"an active incident already exists for dedup key '{draft.dedup_key}'"
            ) from error
        number = cursor.lastrowid
        assert number is not None
        OutboxRecords(self._db).card(number, at)
        return number

    def update(self, number: int, expected: Status, at: datetime, changes: dict[str, Any]) -> None:
        """Compare-and-set on status: a concurrent change makes this fail, never overwrite."""
        assignments = ", ".join(f"{column} = ?" for column in changes)
        values = [_encode_value(value) for value in changes.values()]
        cursor = self._db.execute(
            f"UPDATE incidents SET {assignments}, updated_at = ? WHERE number = ? AND status = ?",
            [*values, encode_time(at), number, expected.value],
        )
        if cursor.rowcount != 1:
            current = self.get(number)
            raise IncidentError(
                f"{current.id} changed meanwhile (now {current.status.value}); look again"
            )
        OutboxRecords(self._db).card(number, at)

    def change_severity(
        self, incident: Incident, severity: Severity, actor: Actor, at: datetime, reason: str
    ) -> None:
        """The new severity and its timeline event (old -> new, and why)."""
        self.update(incident.number, incident.status, at, {"severity": severity})
        self.append(
            TimelineEvent(
                incident.number,
                at,
                actor,
                "severity_changed",
                text=reason,
                field="severity",
                old=incident.severity.value,
                new=severity.value,
            )
        )

    def append(self, event: TimelineEvent) -> int:
        """Append one event; the chat is told in the same transaction (card and thread)."""
        cursor = self._db.execute(
            "INSERT INTO timeline (incident_number, at, actor_source, actor_id, actor_name, "
            "kind, field, old, new, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                event.incident_number,
                encode_time(event.at),
                event.actor.source.value,
                event.actor.id,
                event.actor.name,
                event.kind,
                event.field,
                event.old,
                event.new,
                event.text,
            ],
        )
        event_id = cursor.lastrowid
        assert event_id is not None
        outbox = OutboxRecords(self._db)
        outbox.reply(event.incident_number, event_id, event.at)
        outbox.card(event.incident_number, event.at)
        if event.actor.is_person:
            self._db.execute(
                "INSERT OR IGNORE INTO participants (incident_number, actor_source, actor_id, "
                "actor_name, first_at) VALUES (?, ?, ?, ?, ?)",
                [
                    event.incident_number,
                    event.actor.source.value,
                    event.actor.id,
                    event.actor.name,
                    encode_time(event.at),
                ],
            )
        return event_id

    def timeline(self, number: int) -> list[TimelineEvent]:
        rows = self._db.query(
            "SELECT * FROM timeline WHERE incident_number = ? ORDER BY id", [number]
        )
        return [_event(row) for row in rows]

    def person_activity_since(self, number: int, since: datetime) -> bool:
        """Did a person do anything on the incident since `since`? (answers a reminder)"""
        rows = self._db.query(
            "SELECT 1 FROM timeline WHERE incident_number = ? AND at >= ? "
            "AND actor_source IN ('slack', 'cli') LIMIT 1",
            [number, encode_time(since)],
        )
        return any(True for _ in rows)

    def event(self, event_id: int) -> TimelineEvent:
        rows = list(self._db.query("SELECT * FROM timeline WHERE id = ?", [event_id]))
        if not rows:
            raise IncidentNotFoundError(f"no timeline event {event_id}")
        return _event(rows[0])

    def _participants(self, number: int) -> tuple[Actor, ...]:
        rows = self._db.query(
            "SELECT * FROM participants WHERE incident_number = ? ORDER BY first_at", [number]
        )
        return tuple(
            Actor(Source(row["actor_source"]), row["actor_id"], row["actor_name"]) for row in rows
        )

    def _incident(self, row: dict[str, Any]) -> Incident:
        milestones = {
            milestone: moment
            for milestone, column in MILESTONE_COLUMNS.items()
            if (moment := decode_time(row[column])) is not None
        }
        reason = row["closure_reason"]
        return Incident(
            number=row["number"],
            title=row["title"],
            severity=Severity(row["severity"]),
            status=Status(row["status"]),
            service=row["service"],
            dedup_key=row["dedup_key"],
            channel=row["channel"],
            thread_ts=row["thread_ts"],
            milestones=milestones,
            closure_reason=ClosureReason(reason) if reason else None,
            participants=self._participants(row["number"]),
        )


def _event(row: dict[str, Any]) -> TimelineEvent:
    return TimelineEvent(
        incident_number=row["incident_number"],
        at=datetime.fromisoformat(row["at"]),
        actor=Actor(Source(row["actor_source"]), row["actor_id"], row["actor_name"]),
        kind=row["kind"],
        text=row["text"],
        field=row["field"],
        old=row["old"],
        new=row["new"],
        id=row["id"],
    )


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return encode_time(value)
    if isinstance(value, (Severity, Status, ClosureReason)):
        return value.value
    return value


class IncidentStore:
    """Async entry point: runs record work on the database's owning thread."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def read(self, work: Callable[[IncidentRecords], T]) -> T:
        return await self.database.run(lambda db: work(IncidentRecords(db)))

    async def write(self, work: Callable[[IncidentRecords], T]) -> T:
        """Run `work` in one BEGIN IMMEDIATE transaction: all of it commits, or none."""

        def transaction(db: sqlite_utils.Database) -> T:
            with write_transaction(db):
                return work(IncidentRecords(db))

        return await self.database.run(transaction)
