"""Maintenance windows answered for detection (`MaintenanceCalendar`).

`ConfiguredCalendar` holds the windows of tocsin.yml; cron lines are read as
crontab reads them (see `bot/config/crontab.py`). `CombinedCalendar` adds the
ad-hoc windows people start with `/maint`, so both hold back incidents alike.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.config.crontab import cron_triggers
from bot.config.model import MaintenanceWindow
from incidents.maintenance import ActiveWindow
from incidents.maintenance_book import MaintenanceBook


@dataclass(frozen=True)
class Window:
    patterns: tuple[str, ...]
    reason: str
    triggers: tuple[CronTrigger, ...]
    duration: timedelta
    start: datetime | None
    end: datetime | None

    def covers(self, probe_id: str) -> bool:
        return any(fnmatch.fnmatchcase(probe_id, pattern) for pattern in self.patterns)

    def active_at(self, at: datetime) -> datetime | None:
        """When this window ends, if `at` is inside it."""
        if self.start is not None and self.end is not None:
            return self.end if self.start <= at < self.end else None
        ends = []
        for trigger in self.triggers:
            began = trigger.get_next_fire_time(None, at - self.duration)
            if began is not None and began <= at < began + self.duration:
                ends.append(began + self.duration)
        return max(ends, default=None)


class ConfiguredCalendar:
    def __init__(self, windows: list[MaintenanceWindow], zone: ZoneInfo) -> None:
        self._windows = [_window(window, zone) for window in windows]

    def window_for(self, probe_id: str, at: datetime) -> ActiveWindow | None:
        for window in self._windows:
            if window.covers(probe_id):
                ends = window.active_at(at)
                if ends is not None:
                    return ActiveWindow(window.reason, ends)
        return None

    def active_at(self, at: datetime) -> list[tuple[Window, datetime]]:
        """Every configured window running at `at`, with its end, for people to list."""
        running = []
        for window in self._windows:
            ends = window.active_at(at)
            if ends is not None:
                running.append((window, ends))
        return running


class CombinedCalendar:
    """The configured and the ad-hoc windows: a probe is held back if either covers it."""

    def __init__(self, configured: ConfiguredCalendar, book: MaintenanceBook) -> None:
        self._configured = configured
        self._book = book

    def window_for(self, probe_id: str, at: datetime) -> ActiveWindow | None:
        """The covering window that ends last, so the hold lasts as long as any window."""
        windows = [
            window
            for window in (
                self._configured.window_for(probe_id, at),
                self._book.window_for(probe_id, at),
            )
            if window is not None
        ]
        return max(windows, key=lambda window: window.ends_at, default=None)


def _window(window: MaintenanceWindow, zone: ZoneInfo) -> Window:
    def aware(moment: datetime | None) -> datetime | None:
        if moment is None:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=zone)

    return Window(
        patterns=tuple(window.probes),
        reason=window.reason,
        triggers=cron_triggers(window.cron, zone) if window.cron else (),
        duration=window.duration or timedelta(0),
        start=aware(window.start),
        end=aware(window.end),
    )


@dataclass(frozen=True)
class Maintenance:
    """Both sources of windows, for `/maint` to add to one and list both."""

    book: MaintenanceBook
    configured: ConfiguredCalendar
