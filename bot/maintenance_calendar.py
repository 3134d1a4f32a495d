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
from incidents.maintenance import ActiveWindow, covered_stretch, ending_last
from incidents.maintenance_book import MaintenanceBook

AFTER = timedelta(microseconds=1)  # cron fires on whole seconds: this makes "at or after" "after"


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
        """When this window ends, if `at` is inside it; a cron run starting before the
        previous one is over makes one stretch with it."""
        found = covered_stretch(self.running_at, at)
        return None if found is None else found.ends_at

    def running_at(self, at: datetime) -> ActiveWindow | None:
        """A run covering `at`, not followed further: per cron line the first to start
        strictly after `at - duration`, so the instant one run ends goes to a later run."""
        if self.start is not None and self.end is not None:
            return ActiveWindow(self.reason, self.end) if self.start <= at < self.end else None
        ends = []
        for trigger in self.triggers:
            began = trigger.get_next_fire_time(None, at - self.duration + AFTER)
            if began is not None and began <= at:
                ends.append(began + self.duration)
        return ActiveWindow(self.reason, max(ends)) if ends else None


class ConfiguredCalendar:
    def __init__(self, windows: list[MaintenanceWindow], zone: ZoneInfo) -> None:
        self._windows = [_window(window, zone) for window in windows]

    def window_for(self, probe_id: str, at: datetime) -> ActiveWindow | None:
        """To the end of the stretch that windows overlapping or touching this one cover."""
        return covered_stretch(lambda moment: self.running_at(probe_id, moment), at)

    def running_at(self, probe_id: str, at: datetime) -> ActiveWindow | None:
        """The window covering `probe_id` at `at` that ends last, not followed further."""
        return ending_last(
            *(window.running_at(at) for window in self._windows if window.covers(probe_id))
        )

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
        """Followed across both sources, so an ad-hoc window that a configured one takes
        over (or the other way round) is reported until the hold really ends."""

        def running_at(moment: datetime) -> ActiveWindow | None:
            return ending_last(
                self._configured.running_at(probe_id, moment),
                self._book.running_at(probe_id, moment),
            )

        return covered_stretch(running_at, at)


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
