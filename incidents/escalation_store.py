"""All SQL about escalation: each incident's policy snapshot and its due steps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from incidents.database import decode_time, encode_time
from incidents.escalation_policy import PlannedStep, Policy
from incidents.model import Severity


@dataclass(frozen=True)
class Step:
    id: int
    incident_number: int
    kind: str  # "page" or "reminder"
    round: int
    level: int
    targets: tuple[str, ...]
    due_at: datetime
    state: str

    @property
    def is_reminder(self) -> bool:
        return self.kind == "reminder"


class EscalationRecords:
    """Escalation rows within the caller's transaction (on the database thread)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def snapshot(self, number: int, severity: Severity, policy: Policy, at: datetime) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO escalation_plans (incident_number, severity, policy, "
            "planned_at) VALUES (?, ?, ?, ?)",
            [number, severity.value, policy.to_json(), encode_time(at)],
        )

    def policy_of(self, number: int) -> Policy | None:
        rows = list(
            self._db.query(
                "SELECT policy FROM escalation_plans WHERE incident_number = ?", [number]
            )
        )
        return Policy.from_json(rows[0]["policy"]) if rows else None

    def add(self, number: int, kind: str, steps: list[PlannedStep]) -> None:
        for step in steps:
            self._db.execute(
                "INSERT INTO escalation_steps (incident_number, kind, round, level, targets, "
                "due_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    number,
                    kind,
                    step.round,
                    step.level,
                    json.dumps(list(step.targets)),
                    encode_time(step.due_at),
                ],
            )

    def cancel(
        self, number: int, at: datetime, kinds: tuple[str, ...] = ("page", "reminder")
    ) -> int:
        marks = ", ".join("?" * len(kinds))
        cursor = self._db.execute(
            "UPDATE escalation_steps SET state = 'cancelled', done_at = ? "
            f"WHERE incident_number = ? AND state = 'pending' AND kind IN ({marks})",
            [encode_time(at), number, *kinds],
        )
        return cursor.rowcount

    def due(self, now: datetime, limit: int = 200) -> list[Step]:
        rows = self._db.query(
            "SELECT * FROM escalation_steps WHERE state = 'pending' AND due_at <= ? "
            "ORDER BY due_at, id LIMIT ?",
            [encode_time(now), limit],
        )
        return [_step(row) for row in rows]

    def pending(self, number: int) -> list[Step]:
        rows = self._db.query(
            "SELECT * FROM escalation_steps WHERE incident_number = ? AND state = 'pending' "
            "ORDER BY due_at, id",
            [number],
        )
        return [_step(row) for row in rows]

    def delivered_targets(self, number: int) -> set[str]:
        rows = self._db.query(
            "SELECT targets FROM escalation_steps WHERE incident_number = ? "
            "AND state = 'delivered' AND kind = 'page'",
            [number],
        )
        return {target for row in rows for target in json.loads(row["targets"])}

    def finish(self, step_id: int, state: str, at: datetime, *, late: bool = False) -> bool:
        """Compare-and-set from pending: a step is delivered (or skipped) at most once."""
        cursor = self._db.execute(
            "UPDATE escalation_steps SET state = ?, done_at = ?, late = ? "
            "WHERE id = ? AND state = 'pending'",
            [state, encode_time(at), int(late), step_id],
        )
        return cursor.rowcount == 1

    def move(self, step_id: int, due_at: datetime) -> None:
        self._db.execute(
            "UPDATE escalation_steps SET due_at = ? WHERE id = ? AND state = 'pending'",
            [encode_time(due_at), step_id],
        )


def _step(row: dict[str, Any]) -> Step:
    due = decode_time(row["due_at"])
    assert due is not None
    return Step(
        id=row["id"],
        incident_number=row["incident_number"],
        kind=row["kind"],
        round=row["round"],
        level=row["level"],
        targets=tuple(json.loads(row["targets"])),
        due_at=due,
        state=row["state"],
    )
