"""Maintenance windows from tocsin.yml, answered for detection (`MaintenanceCalendar`).

Cron lines are read as crontab reads them. APScheduler's `from_crontab` takes
day-of-week 0 as Monday, so numeric days are translated to names first
(0 and 7 are Sunday, as in crontab).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.config.model import MaintenanceWindow
from incidents.maintenance import ActiveWindow

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_ITEM = re.compile(r"^(\*|\d)(?:-(\d))?(?:/(\d+))?$")


def crontab_days(field: str) -> str:
    """`1-5` -> `mon,tue,wed,thu,fri`; names and `*` pass through unchanged."""
    if not any(ch.isdigit() for ch in field):
        return field
    days: list[str] = []
    for item in field.split(","):
        match = DAY_ITEM.match(item)
        if match is None:
            return field  # names mixed with numbers: leave it for APScheduler to judge
        start_text, end_text, step_text = match.groups()
        start = 0 if start_text == "*" else int(start_text)
        end = 6 if start_text == "*" else int(end_text or start_text)
        step = int(step_text or 1)
        for day in range(start, end + 1, step):
            name = DAY_NAMES[day]
            if name not in days:
                days.append(name)
    return ",".join(days)


def cron_triggers(line: str, zone: ZoneInfo) -> tuple[CronTrigger, ...]:
    """Triggers firing when crontab would run `line`.

    crontab fires when the day of month OR the day of week matches if both are
    restricted; APScheduler requires both, so such a line becomes two triggers.
    """
    fields = line.split()
    if len(fields) != 5:
        return (CronTrigger.from_crontab(line, timezone=zone),)
    fields[4] = crontab_days(fields[4])
    minute, hour, day, month, weekday = fields
    if day != "*" and weekday != "*":
        lines = [f"{minute} {hour} {day} {month} *", f"{minute} {hour} * {month} {weekday}"]
    else:
        lines = [" ".join(fields)]
    return tuple(CronTrigger.from_crontab(text, timezone=zone) for text in lines)


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
