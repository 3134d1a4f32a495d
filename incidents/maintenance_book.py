"""Ad-hoc maintenance windows that people start and end at runtime, kept in SQLite.

Detection asks the calendar on every result, synchronously, so `window_for`
answers from memory; every change is written first and mirrored in memory
after, and `load()` (at start-up, or to pick up another process's changes)
reads the active windows back. A window never resolves anything: like the
configured windows it only holds back the opening of incidents.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from incidents.clock import Clock
from incidents.database import Database, decode_time, encode_time, write_transaction
from incidents.errors import IncidentError
from incidents.maintenance import ActiveWindow, covered_stretch
from incidents.model import Actor
from probes.durations import format_duration

GLOB = re.compile(r"^[a-z0-9*?\[\]_.-]{1,64}$")
MAX_GLOBS = 20
MIN_DURATION = timedelta(minutes=1)
MAX_DURATION = timedelta(days=7)
MAX_REASON = 300

_COLUMNS = "id, probes, starts_at, ends_at, reason, created_by, ended_at"


class MaintenanceError(IncidentError):
    """A maintenance window cannot be started or ended as asked."""


class InvalidWindowError(MaintenanceError):
    """The probes, duration or reason of a new window are not acceptable."""


class WindowNotFoundError(MaintenanceError):
    """No maintenance window has the requested id."""


class WindowOverError(MaintenanceError):
    """The window was already ended by someone, or ran out by itself."""


@dataclass(frozen=True)
class StoredWindow:
    id: int
    globs: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    ended_at: datetime | None = None

    def covers(self, probe_id: str) -> bool:
        return any(fnmatch.fnmatchcase(probe_id, glob) for glob in self.globs)

    def is_active(self, now: datetime) -> bool:
        return self.ended_at is None and self.starts_at <= now < self.ends_at


class MaintenanceBook:
    """Start, end and list ad-hoc windows; answer detection from an in-memory copy."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock
        self._active: dict[int, StoredWindow] = {}

    async def load(self) -> None:
        """Read the active windows into memory (they survive restarts)."""
        await self.active()

    async def add(
        self, globs: list[str], duration: timedelta, reason: str, actor: Actor
    ) -> StoredWindow:
        """Start a window now for `duration`; refuse with a message saying what to change."""
        globs = check_globs(globs)
        check_duration(duration)
        reason = check_reason(reason)
        now = self._clock.now()
        ends = now + duration
        row = (json.dumps(globs), encode_time(now), encode_time(ends), reason, actor.id)

        def work(db: sqlite_utils.Database) -> int:
            with write_transaction(db):
                cursor = db.execute(
                    "INSERT INTO maintenance_windows"
                    " (probes, starts_at, ends_at, reason, created_by) VALUES (?, ?, ?, ?, ?)",
                    row,
                )
                return int(cursor.lastrowid or 0)

        window_id = await self._database.run(work)
        window = StoredWindow(window_id, tuple(globs), now, ends, reason, actor.id)
        self._active[window.id] = window
        return window

    async def end(self, window_id: int, actor: Actor) -> StoredWindow:
        """End a running window early; ending one twice, or an expired one, is refused."""
        now = self._clock.now()

        def work(db: sqlite_utils.Database) -> StoredWindow:
            with write_transaction(db):
                found = db.execute(
                    f"SELECT {_COLUMNS} FROM maintenance_windows WHERE id = ?", [window_id]
                ).fetchone()
                if found is None:
                    raise WindowNotFoundError(
                        f"there is no maintenance window #{window_id}; "
                        "list the active windows to find its number"
                    )
                window = _window(found)
                _check_running(window, now)
                db.execute(
                    "UPDATE maintenance_windows SET ended_at = ?, ended_by = ? WHERE id = ?",
                    [encode_time(now), actor.id, window_id],
                )
                return replace(window, ended_at=now)

        try:
            ended = await self._database.run(work)
        except WindowOverError:
            self._active.pop(window_id, None)  # another process ended it, or it ran out
            raise
        self._active.pop(window_id, None)
        return ended

    async def active(self) -> list[StoredWindow]:
        """Windows not ended and not yet over, soonest end first; refreshes the memory copy."""
        now = self._clock.now()

        def work(db: sqlite_utils.Database) -> list[Any]:
            return db.execute(
                f"SELECT {_COLUMNS} FROM maintenance_windows"
                " WHERE ended_at IS NULL AND ends_at > ? ORDER BY ends_at, id",
                [encode_time(now)],
            ).fetchall()

        windows = [_window(row) for row in await self._database.run(work)]
        self._active = {window.id: window for window in windows}
        return windows

    def window_for(self, probe_id: str, at: datetime) -> ActiveWindow | None:
        """From memory (detection asks on every decision), to the end of overlapping windows."""
        return covered_stretch(lambda moment: self.running_at(probe_id, moment), at)

    def running_at(self, probe_id: str, at: datetime) -> ActiveWindow | None:
        """The window covering `probe_id` at `at` that ends last, not followed any further."""
        covering = [w for w in self._active.values() if w.is_active(at) and w.covers(probe_id)]
        if not covering:
            return None
        window = max(covering, key=lambda w: (w.ends_at, w.id))
        return ActiveWindow(f"{window.reason} (window #{window.id})", window.ends_at)


def check_globs(globs: list[str]) -> list[str]:
    """Probe ids are lowercase slugs, so a glob is too, plus `* ? [ ]`."""
    cleaned = [glob.strip() for glob in globs if glob.strip()]
    if not cleaned:
        raise InvalidWindowError("name the probes to hold back, e.g. shop-* or shop-db")
    if len(cleaned) > MAX_GLOBS:
        raise InvalidWindowError(
            f"{len(cleaned)} probe patterns are too many; at most {MAX_GLOBS} (use a glob)"
        )
    for glob in cleaned:
        if not GLOB.match(glob):
            shown = glob if len(glob) <= 64 else glob[:63] + "…"
            raise InvalidWindowError(
                f"'{shown}' is not a probe id or glob; use lowercase letters, digits, "
                "`_ . -` and the wildcards `* ? [ ]`, at most 64 characters"
            )
    return list(dict.fromkeys(cleaned))


def check_duration(duration: timedelta) -> None:
    if duration < MIN_DURATION:
        raise InvalidWindowError(
            f"the duration {show_span(duration)} is too short; at least {show_span(MIN_DURATION)}"
        )
    if duration > MAX_DURATION:
        raise InvalidWindowError(
            f"the duration {show_span(duration)} is too long; at most {show_span(MAX_DURATION)}"
        )


def show_span(duration: timedelta) -> str:
    """`9d`, `7d`, `1d2h`: days rather than weeks, as people write a window's length."""
    if duration < timedelta(0):
        return "-" + show_span(-duration)
    rest = duration - timedelta(days=duration.days)
    if not duration.days:
        return format_duration(duration)
    return f"{duration.days}d" + (format_duration(rest) if rest else "")


def check_reason(reason: str) -> str:
    """People read the reason in the channel and in the probe's state: it must say something.
    It is kept as written (less surrounding whitespace); what shows it on one line flattens it."""
    cleaned = reason.strip()
    if not cleaned:
        raise InvalidWindowError("give a reason, e.g. deploying the new checkout")
    if len(cleaned) > MAX_REASON:
        raise InvalidWindowError(
            f"the reason is {len(cleaned)} characters long; at most {MAX_REASON}"
        )
    return cleaned


def _check_running(window: StoredWindow, now: datetime) -> None:
    if window.ended_at is not None:
        raise WindowOverError(
            f"maintenance window #{window.id} was already ended at {_utc(window.ended_at)}"
        )
    if window.ends_at <= now:
        raise WindowOverError(
            f"maintenance window #{window.id} already ran out at {_utc(window.ends_at)}"
        )


def _utc(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _window(row: Any) -> StoredWindow:
    window_id, probes, starts_at, ends_at, reason, created_by, ended_at = row
    starts, ends = decode_time(starts_at), decode_time(ends_at)
    assert starts is not None and ends is not None  # NOT NULL columns
    return StoredWindow(
        id=int(window_id),
        globs=tuple(str(glob) for glob in json.loads(probes)),
        starts_at=starts,
        ends_at=ends,
        reason=str(reason),
        created_by=str(created_by),
        ended_at=decode_time(ended_at),
    )
