"""Blind spots: probes that tocsin has been unable to see for a while, told once an episode.

A probe whose results are `error` (our resolver, credentials, proxy, a changed host key)
says nothing about its target and never opens an incident by itself, so without a word a
monitoring outage looks like health. Once a probe has given only errors for `after`, one
notice names it and why; when it gives a real result again, one more notice says so.
Probes that turn blind (or see again) in the same tick share one notice. The episodes live
in SQLite, written with their notices in one transaction, so a restart neither forgets an
episode nor tells it twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlite_utils

from incidents.clock import Clock
from incidents.database import Database, decode_time, encode_time, write_transaction
from incidents.outbox import OutboxRecords
from probes.result import ProbeResult, Status

MAX_LISTED = 20  # probes named in one notice; the rest are counted


@dataclass
class BlindSpot:
    probe_id: str
    since: datetime  # the first error of the episode
    reason: str  # the latest error's
    told_at: datetime | None = None


@dataclass(frozen=True)
class BlindnessSettings:
    after: timedelta = timedelta(minutes=10)
    channel: str = ""  # where notices go
    mention: tuple[str, ...] = ()  # Slack mentions that page with the notice (none: no page)


class Blindness:
    def __init__(self, database: Database, settings: BlindnessSettings, clock: Clock) -> None:
        self._database = database
        self.settings = settings
        self._clock = clock
        self.spots: dict[str, BlindSpot] = {}
        self._started: list[BlindSpot] = []  # episodes to write
        self._ended: list[BlindSpot] = []  # episodes over, to delete (and tell, if told)

    async def load(self) -> None:
        def read(db: sqlite_utils.Database) -> list[tuple[str, str, str, str | None]]:
            return db.execute("SELECT probe_id, since, reason, told_at FROM blind_spots").fetchall()

        for probe_id, since, reason, told_at in await self._database.run(read):
            moment = decode_time(since)
            if moment is not None:
                self.spots[probe_id] = BlindSpot(probe_id, moment, reason, decode_time(told_at))

    def observe(self, result: ProbeResult) -> None:
        """Count one result; cheap, in memory (the tick writes)."""
        spot = self.spots.get(result.probe_id)
        if result.status is Status.ERROR:
            if spot is None:
                spot = BlindSpot(result.probe_id, result.started_at, result.reason)
                self.spots[result.probe_id] = spot
                self._started.append(spot)
            else:
                spot.reason = result.reason
        elif spot is not None:
            del self.spots[result.probe_id]
            self._ended.append(spot)

    async def tick(self) -> None:
        """Tell who turned blind and who sees again; save the episodes that changed."""
        now = self._clock.now()
        blind = [
            spot
            for spot in self.spots.values()
            if spot.told_at is None and now - spot.since >= self.settings.after
        ]
        seeing = [spot for spot in self._ended if spot.told_at is not None]
        started = [spot for spot in self._started if spot.probe_id in self.spots]
        ended = [spot.probe_id for spot in self._ended if spot.probe_id not in self.spots]
        if not (blind or seeing or started or ended):
            return
        for spot in blind:
            spot.told_at = now
        texts: list[tuple[str, tuple[str, ...]]] = []
        if blind:  # only this one pages the people configured
            texts.append((_blind_text(blind, now), self.settings.mention))
        if seeing:
            texts.append((_seeing_text(seeing, now), ()))
        rows = [(s.probe_id, encode_time(s.since), s.reason, encode_time(s.told_at))
                for s in {id(s): s for s in [*started, *blind]}.values()]  # fmt: skip
        channel = self.settings.channel
        self._started, self._ended = [], []

        def write(db: sqlite_utils.Database) -> None:
            with write_transaction(db):
                db.conn.executemany(
                    "DELETE FROM blind_spots WHERE probe_id = ?", [(p,) for p in ended]
                )
                db.conn.executemany(
                    "INSERT INTO blind_spots (probe_id, since, reason, told_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (probe_id) DO UPDATE SET"
                    " since = excluded.since, reason = excluded.reason,"
                    " told_at = excluded.told_at",
                    rows,
                )
                notices = OutboxRecords(db)
                for text, mention in texts:
                    notices.notice(channel, text, mention, now)

        await self._database.run(write)


def _blind_text(spots: list[BlindSpot], now: datetime) -> str:
    count = len(spots)
    head = f"tocsin cannot see {count} probe{'s' if count > 1 else ''}:"
    lines = [
        f"• {s.probe_id}: {s.reason} (since {_ago(s.since, now)})"
        for s in sorted(spots, key=lambda s: s.probe_id)[:MAX_LISTED]
    ]
    if count > MAX_LISTED:
        lines.append(f"• and {count - MAX_LISTED} more")
    tail = "Their targets may be failing unseen. This is tocsin's own problem, not an incident."
    return "\n".join([head, *lines, tail])


def _seeing_text(spots: list[BlindSpot], now: datetime) -> str:
    names = ", ".join(sorted(s.probe_id for s in spots)[:MAX_LISTED])
    more = f" and {len(spots) - MAX_LISTED} more" if len(spots) > MAX_LISTED else ""
    longest = max(now - s.since for s in spots)
    return f"tocsin sees again: {names}{more} (blind for up to {_span(longest)})"


def _ago(since: datetime, now: datetime) -> str:
    return f"{_span(now - since)} ago"


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
