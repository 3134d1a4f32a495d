"""Maintenance windows from the configuration: crontab days, durations, one-offs, globs."""

from __future__ import annotations

from datetime import UTC, datetime
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
