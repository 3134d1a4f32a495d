"""Maintenance windows from the configuration: crontab days, durations, one-offs, globs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config.crontab import crontab_days
from bot.config.model import MaintenanceWindow
from bot.maintenance_calendar import ConfiguredCalendar

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0,6", "sun,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("*", "*"),
        ("SUN", "SUN"),
        ("mon-fri", "mon-fri"),
    ],
)
def test_crontab_days_read_as_crontab_does(field: str, expected: str) -> None:
    assert crontab_days(field) == expected


def calendar(**window: object) -> ConfiguredCalendar:
    return ConfiguredCalendar([MaintenanceWindow.model_validate(window)], BERLIN)


def test_weekly_window_on_sunday_zero_in_the_team_time_zone() -> None:
    weekly = calendar(probes=["shop-*"], cron="0 2 * * 0", duration="1h", reason="backup")
    sunday_0230 = datetime(2026, 11, 29, 2, 30, tzinfo=BERLIN)
    window = weekly.window_for("shop-home", sunday_0230)
    assert window is not None
    assert window.reason == "backup"
    assert window.ends_at == datetime(2026, 11, 29, 3, 0, tzinfo=BERLIN)
    assert weekly.window_for("blog-home", sunday_0230) is None
    assert weekly.window_for("shop-home", datetime(2026, 11, 29, 3, 0, tzinfo=BERLIN)) is None
    assert weekly.window_for("shop-home", datetime(2026, 11, 30, 2, 30, tzinfo=BERLIN)) is None
    # 01:30 UTC is 02:30 in Berlin in November.
    assert weekly.window_for("shop-db", datetime(2026, 11, 29, 1, 30, tzinfo=UTC)) is not None


def test_window_spanning_midnight() -> None:
    nightly = calendar(probes=["*"], cron="30 23 * * *", duration="2h", reason="reindex")
    assert nightly.window_for("x", datetime(2026, 11, 24, 0, 45, tzinfo=BERLIN)) is not None
    assert nightly.window_for("x", datetime(2026, 11, 24, 1, 31, tzinfo=BERLIN)) is None


def test_one_off_window_with_naive_times_in_the_team_zone() -> None:
    upgrade = calendar(
        probes=["db-*"], start="2026-12-01T22:00:00", end="2026-12-02T01:00:00", reason="upgrade"
    )
    assert upgrade.window_for("db-main", datetime(2026, 12, 1, 21, 30, tzinfo=UTC)) is not None
    assert upgrade.window_for("db-main", datetime(2026, 12, 2, 0, 30, tzinfo=UTC)) is None


def test_day_of_month_or_day_of_week_as_crontab_reads_them() -> None:
    """`0 2 1 * 0`: on the 1st of the month and on every Sunday, not only Sunday the 1st."""
    either = calendar(probes=["*"], cron="0 2 1 * 0", duration="1h", reason="backup")
    assert either.window_for("x", datetime(2026, 11, 8, 2, 30, tzinfo=BERLIN)) is not None
    assert either.window_for("x", datetime(2026, 12, 1, 2, 30, tzinfo=BERLIN)) is not None
    assert either.window_for("x", datetime(2026, 12, 2, 2, 30, tzinfo=BERLIN)) is None


def windows(*configured: Mapping[str, object]) -> ConfiguredCalendar:
    return ConfiguredCalendar([MaintenanceWindow.model_validate(w) for w in configured], BERLIN)


def berlin(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 1, hour, minute, tzinfo=BERLIN)


BACKUP: dict[str, object] = {
    "probes": ["shop-*"],
    "cron": "0 2 * * *",
    "duration": "1h",
    "reason": "backup",
}
UPGRADE: dict[str, object] = {
    "probes": ["shop-db"],
    "start": "2026-12-01T02:30:00",
    "end": "2026-12-01T04:00:00",
}


@pytest.mark.parametrize("order", [1, -1])
def test_overlapping_windows_report_the_later_end(order: int) -> None:
    both = windows(*[BACKUP, {**UPGRADE, "reason": "db upgrade"}][::order])
    window = both.window_for("shop-db", berlin(2, 45))
    assert window is not None
    assert window.ends_at == berlin(4)
    assert window.reason == "db upgrade"  # the window that holds it back longest
    only_backup = both.window_for("shop-home", berlin(2, 45))
    assert only_backup is not None and only_backup.ends_at == berlin(3)


def test_a_window_that_starts_before_the_current_one_ends_extends_it() -> None:
    """At 02:10 only the backup runs, but the upgrade takes over before it ends:
    the probe stays held back until 04:00, so that is the end to report."""
    both = windows(BACKUP, {**UPGRADE, "reason": "db upgrade"})
    window = both.window_for("shop-db", berlin(2, 10))
    assert window is not None
    assert window.ends_at == berlin(4)
    assert window.reason == "backup; db upgrade"


def test_adjacent_windows_are_one_stretch() -> None:
    adjacent = {**UPGRADE, "start": "2026-12-01T03:00:00", "reason": "db upgrade"}
    both = windows(BACKUP, adjacent)
    window = both.window_for("shop-db", berlin(2, 10))
    assert window is not None
    assert window.ends_at == berlin(4)
    assert both.window_for("shop-db", berlin(4)) is None


def test_a_cron_window_running_into_its_next_run_lasts_until_the_last_run_ends() -> None:
    """02:00-03:30 and 03:00-04:30: one stretch, held back (and reported) until 04:30."""
    twice = windows({**BACKUP, "cron": "0 2,3 * * *", "duration": "90m"})
    for at in (berlin(2, 15), berlin(3, 15), berlin(3, 30)):
        window = twice.window_for("shop-home", at)
        assert window is not None, at
        assert window.ends_at == berlin(4, 30)
        assert window.reason == "backup"
    [(_, ends)] = twice.active_at(berlin(2, 15))  # `/maint list` shows the same end
    assert ends == berlin(4, 30)
    assert twice.window_for("shop-home", berlin(4, 30)) is None


def test_a_window_that_never_ends_still_answers_with_a_later_end() -> None:
    """Every hour for an hour: always on. The answer comes at once, with an end well ahead
    (asked again later, the end moves on)."""
    always = windows({**BACKUP, "cron": "0 * * * *", "duration": "1h"})
    window = always.window_for("shop-home", berlin(2, 10))
    assert window is not None
    assert berlin(4) <= window.ends_at < berlin(2, 10) + timedelta(days=7)
