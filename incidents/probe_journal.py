"""All SQL about probes: recent results, state changes, detection state, membership.

Results arrive many times a second, so the journal buffers them in memory and
`flush()` writes everything pending in one transaction (the bot calls it about
once a second). A crash loses at most that second of samples; incidents
themselves are written at once by the incident service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from incidents.database import Database, decode_time, encode_time, write_transaction
from incidents.probe_state import ProbeState
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

    def sample(self, result: ProbeResult) -> None:
        self._samples.append(result)

    def state(self, state: ProbeState) -> None:
        self._states[state.probe_id] = state

    def change(self, change: StateChange) -> None:
        self._changes.append(change)

    @property
    def pending(self) -> int:
        return len(self._samples) + len(self._changes) + len(self._states)

    async def flush(self) -> None:
        """Write every buffered sample, state and change in one transaction."""
        if not self.pending:
            return
        samples, changes, states = self._samples, self._changes, self._states
        self._samples, self._changes, self._states = [], [], {}
        sample_rows = [_sample_row(result) for result in samples]
        change_rows = [(c.probe_id, encode_time(c.at), c.old, c.new, c.reason) for c in changes]
        state_rows = [
            (s.probe_id, s.to_json(), encode_time(s.last_at) or "") for s in states.values()
        ]

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
                connection.executemany(
                    "INSERT INTO probe_states (probe_id, state, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (probe_id) DO UPDATE SET state = excluded.state,"
                    " updated_at = excluded.updated_at",
                    state_rows,
                )

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

    async def join(self, number: int, probe_id: str, role: str, at: datetime, reason: str) -> None:
        """Record that `probe_id` belongs to incident `number` (as member or symptom)."""

        def work(db: sqlite_utils.Database) -> None:
            with write_transaction(db):
                db.execute(
                    "INSERT INTO incident_probes (incident_number, probe_id, role, joined_at,"
                    " reason) VALUES (?, ?, ?, ?, ?) ON CONFLICT (incident_number, probe_id)"
                    " DO UPDATE SET role = excluded.role, recovered_at = NULL",
                    (number, probe_id, role, encode_time(at), reason),
                )

        await self._database.run(work)

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
