"""All SQL about probes: recent results, state changes, detection state, membership.

Results arrive many times a second, so the journal buffers them in memory and
`flush()` writes everything pending in one transaction (the bot calls it about
once a second). A crash loses at most that second of samples and states. What
must never be lost is written at once: a probe's state when it joins an
incident goes with its membership row, and when detection opens an incident the
members and their states are written in the incident's own transaction
(`members_writer`), so no kill -9 leaves an open incident its probes forget.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime

import sqlite_utils

from incidents.database import Database, decode_time, encode_time, write_transaction
from incidents.model import format_incident_id
from incidents.probe_state import Health, ProbeState
from probes.result import Measurement, ProbeResult, Status

KEEP_SAMPLES = 50


@dataclass(frozen=True)
class StateChange:
    probe_id: str
    at: datetime
    old: str
    new: str
    reason: str = ""


@dataclass(frozen=True)
class ProbeHistory:
    samples: list[ProbeResult]
    changes: list[StateChange]


class ProbeJournal:
    def __init__(self, database: Database, keep: int = KEEP_SAMPLES) -> None:
        self._database = database
        self._keep = keep
        self._samples: list[ProbeResult] = []
        self._changes: list[StateChange] = []
        self._states: dict[str, ProbeState] = {}
        self._flushing = asyncio.Lock()

    def sample(self, result: ProbeResult) -> None:
        self._samples.append(result)

    def state(self, state: ProbeState) -> None:
        self._states[state.probe_id] = state

    def change(self, change: StateChange) -> None:
        self._changes.append(change)

    @property
    def pending(self) -> int:
        return len(self._samples) + len(self._changes) + len(self._states)

    @asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """No flush while detection writes an incident and the states pointing at it:
        a flush taken meanwhile would save a state from before the link after the link."""
        async with self._flushing:
            yield

    async def flush(self) -> None:
        """Write every buffered sample, state and change in one transaction."""
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
        if not self.pending:
            return
        samples, changes, states = self._samples, self._changes, self._states
        self._samples, self._changes, self._states = [], [], {}
        sample_rows = [_sample_row(result) for result in samples]
        change_rows = [(c.probe_id, encode_time(c.at), c.old, c.new, c.reason) for c in changes]
        state_rows = [_state_row(s) for s in states.values()]

        def write(db: sqlite_utils.Database) -> None:
            with write_transaction(db):
                connection = db.conn
                connection.executemany(
                    "INSERT INTO probe_samples (probe_id, started_at, status, duration_ms,"
                    " reason, measurements, evidence) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    sample_rows,
                )
                connection.executemany(
                    "INSERT INTO probe_changes (probe_id, at, old, new, reason)"
                    " VALUES (?, ?, ?, ?, ?)",
                    change_rows,
                )
                _save_states(db, state_rows)

        try:
            await self._database.run(write)
        except BaseException:
            # Keep what failed to write for the next flush, in order, newest state wins.
            self._samples[:0] = samples
            self._changes[:0] = changes
            self._states = {**states, **self._states}
            raise

    async def prune(self) -> int:
        """Keep the newest `keep` samples of each probe; state changes are kept."""
        keep = self._keep

        def work(db: sqlite_utils.Database) -> int:
            with write_transaction(db):
                cursor = db.conn.execute(
                    "DELETE FROM probe_samples WHERE id IN (SELECT id FROM (SELECT id,"
                    " ROW_NUMBER() OVER (PARTITION BY probe_id ORDER BY id DESC) AS age"
                    " FROM probe_samples) WHERE age > ?)",
                    (keep,),
                )
                return cursor.rowcount

        return await self._database.run(work)

    async def load_states(self) -> dict[str, ProbeState]:
        def work(db: sqlite_utils.Database) -> dict[str, ProbeState]:
            rows = db.execute("SELECT probe_id, state FROM probe_states").fetchall()
            return {probe_id: ProbeState.from_json(text) for probe_id, text in rows}

        return await self._database.run(work)

    async def history(self, probe_id: str, limit: int = 20) -> ProbeHistory:
        def work(db: sqlite_utils.Database) -> ProbeHistory:
            samples = db.execute(
                "SELECT probe_id, started_at, status, duration_ms, reason, measurements,"
                " evidence FROM probe_samples WHERE probe_id = ? ORDER BY id DESC LIMIT ?",
                (probe_id, limit),
            ).fetchall()
            changes = db.execute(
                "SELECT probe_id, at, old, new, reason FROM probe_changes WHERE probe_id = ?"
                " ORDER BY id DESC LIMIT ?",
                (probe_id, limit),
            ).fetchall()
            return ProbeHistory(
                [_sample(row) for row in reversed(samples)],
                [
                    StateChange(row[0], _time(row[1]), row[2], row[3], row[4])
                    for row in reversed(changes)
                ],
            )

        await self.flush()
        return await self._database.run(work)

    async def join(
        self,
        number: int,
        probe_id: str,
        role: str,
        at: datetime,
        reason: str,
        state: ProbeState | None = None,
    ) -> None:
        """Record that `probe_id` belongs to incident `number` (as member or symptom),
        with `state` (already pointing at it) saved in the same transaction."""
        saved = None if state is None else _state_row(state)

        def work(db: sqlite_utils.Database) -> None:
            with write_transaction(db):
                _join(db, number, probe_id, role, at, reason)
                if saved is not None:
                    _save_states(db, [saved])

        await self._database.run(work)

    def members_writer(
        self, members: Sequence[ProbeState], at: datetime
    ) -> Callable[[sqlite_utils.Database, int], None]:
        """The write that the transaction opening (or finding) an incident runs with its
        number: each member joins it, and its state is saved firing for it. The states are
        copied now, on the loop, so the database thread reads nothing detection changes."""
        copies = [
            replace(s, role="member", pushed=s.severity, health=Health.FIRING, extra=dict(s.extra))
            for s in members
        ]

        def write(db: sqlite_utils.Database, number: int) -> None:
            for state in copies:
                state.incident, state.note = number, format_incident_id(number)
                _join(db, number, state.probe_id, "member", at, state.fail_reason)
            _save_states(db, [_state_row(state) for state in copies])

        return write

    async def recovered(self, number: int, probe_id: str, at: datetime) -> None:
        def work(db: sqlite_utils.Database) -> None:
            with write_transaction(db):
                db.execute(
                    "UPDATE incident_probes SET recovered_at = ?"
                    " WHERE incident_number = ? AND probe_id = ?",
                    (encode_time(at), number, probe_id),
                )

        await self._database.run(work)

    async def incident_probes(self, number: int) -> list[tuple[str, str, bool]]:
        """(probe id, role, recovered) of each probe attached to incident `number`."""

        def work(db: sqlite_utils.Database) -> list[tuple[str, str, bool]]:
            rows = db.execute(
                "SELECT probe_id, role, recovered_at FROM incident_probes"
                " WHERE incident_number = ? ORDER BY joined_at, probe_id",
                (number,),
            ).fetchall()
            return [(row[0], row[1], row[2] is not None) for row in rows]

        return await self._database.run(work)


def _state_row(state: ProbeState) -> tuple[str, str, str]:
    return (state.probe_id, state.to_json(), encode_time(state.last_at) or "")


def _save_states(db: sqlite_utils.Database, rows: list[tuple[str, str, str]]) -> None:
    db.conn.executemany(
        "INSERT INTO probe_states (probe_id, state, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (probe_id) DO UPDATE SET state = excluded.state,"
        " updated_at = excluded.updated_at",
        rows,
    )


def _join(
    db: sqlite_utils.Database, number: int, probe_id: str, role: str, at: datetime, reason: str
) -> None:
    db.execute(
        "INSERT INTO incident_probes (incident_number, probe_id, role, joined_at,"
        " reason) VALUES (?, ?, ?, ?, ?) ON CONFLICT (incident_number, probe_id)"
        " DO UPDATE SET role = excluded.role, recovered_at = NULL",
        (number, probe_id, role, encode_time(at), reason),
    )


def _time(text: str) -> datetime:
    moment = decode_time(text)
    assert moment is not None
    return moment


def _sample_row(result: ProbeResult) -> tuple[object, ...]:
    measurements = [[m.name, m.value, m.unit, m.expected, m.met] for m in result.measurements]
    return (
        result.probe_id,
        encode_time(result.started_at),
        result.status.value,
        round(result.duration * 1000, 3),
        result.reason,
        json.dumps(measurements, separators=(",", ":")),
        json.dumps(result.evidence, separators=(",", ":")),
    )


def _sample(row: tuple[object, ...]) -> ProbeResult:
    measurements = json.loads(str(row[5]))
    evidence = json.loads(str(row[6]))
    return ProbeResult(
        probe_id=str(row[0]),
        status=Status(str(row[2])),
        reason=str(row[4]),
        started_at=_time(str(row[1])),
        duration=float(str(row[3])) / 1000,
        measurements=tuple(Measurement(*m) for m in measurements),
        evidence=tuple((str(a), str(b)) for a, b in evidence),
    )
