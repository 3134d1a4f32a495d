"""The heartbeat ledger: when each job last pinged, kept in SQLite across restarts.

Reads come from memory (the heartbeat probe asks every interval); each ping is
written at once, because pings are rare and a lost ping would page wrongly.
When tocsin first watched a job is stored too, so a restart does not reset the
clock of a job that never pinged.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlite_utils

from incidents.clock import Clock
from incidents.database import Database, decode_time, encode_time, write_transaction


class HeartbeatBook:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock
        self._since: dict[str, datetime] = {}
        self._pings: dict[str, datetime | None] = {}
        self._failures: dict[str, datetime | None] = {}
        self._started = clock.now()

    async def load(self, probe_ids: Iterable[str] = ()) -> None:
        """Read the ledger; start watching `probe_ids` that were never watched before."""
        now = encode_time(self._clock.now())
        wanted = [(probe_id, now) for probe_id in probe_ids]

        def work(db: sqlite_utils.Database) -> list[tuple[str, str, str | None, str | None]]:
            if wanted:
                with write_transaction(db):
                    db.conn.executemany(
                        "INSERT INTO heartbeats (probe_id, watching_since) VALUES (?, ?)"
                        " ON CONFLICT (probe_id) DO NOTHING",
                        wanted,
                    )
            return db.execute(
                "SELECT probe_id, watching_since, last_ping, failed_at FROM heartbeats"
            ).fetchall()

        for probe_id, since, last_ping, failed_at in await self._database.run(work):
            self._since[probe_id] = decode_time(since) or self._started
            self._pings[probe_id] = decode_time(last_ping)
            self._failures[probe_id] = decode_time(failed_at)

    async def ping(self, probe_id: str) -> datetime:
        """A good run: the job is alive, and any failure it reported is over."""
        now = self._clock.now()
        await self._save(probe_id, now, None)
        self._pings[probe_id], self._failures[probe_id] = now, None
        return now

    async def fail(self, probe_id: str) -> datetime:
        """The job says it failed: the probe fails at its next run, without waiting."""
        now = self._clock.now()
        await self._save(probe_id, self._pings.get(probe_id), now)
        self._failures[probe_id] = now
        return now

    def last_ping(self, probe_id: str) -> datetime | None:
        return self._pings.get(probe_id)

    def failed_at(self, probe_id: str) -> datetime | None:
        return self._failures.get(probe_id)

    def watching_since(self, probe_id: str) -> datetime:
        return self._since.get(probe_id, self._started)

    async def _save(self, probe_id: str, ping: datetime | None, failed: datetime | None) -> None:
        since = encode_time(self._since.setdefault(probe_id, self._clock.now()))

        def work(db: sqlite_utils.Database) -> None:
            with write_transaction(db):
                db.execute(
                    "INSERT INTO heartbeats (probe_id, watching_since, last_ping, failed_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (probe_id) DO UPDATE SET"
                    " last_ping = excluded.last_ping, failed_at = excluded.failed_at",
                    (probe_id, since, encode_time(ping), encode_time(failed)),
                )

        await self._database.run(work)
