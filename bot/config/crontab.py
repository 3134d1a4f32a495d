"""Crontab lines as crontab reads them, turned into APScheduler triggers.

APScheduler's `from_crontab` takes day-of-week 0 as Monday and requires both day
fields to match; crontab takes 0 (and 7) as Sunday and fires when either
restricted day field matches. The config check and the maintenance calendar
both go through here, so a line is accepted exactly when it can run.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

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
