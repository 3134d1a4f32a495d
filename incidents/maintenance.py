"""Maintenance windows as detection sees them: is this probe inside one right now?

The calendar is a port: `bot/` implements it from tocsin.yml (cron expressions
need APScheduler, which only `bot/` may import); tests pass a fixed calendar.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

MAX_CHAIN = 24  # windows followed into one stretch; only an always-on cron line gets there


@dataclass(frozen=True)
class ActiveWindow:
    reason: str
    ends_at: datetime


class MaintenanceCalendar(Protocol):
    def window_for(self, probe_id: str, at: datetime) -> ActiveWindow | None: ...


class NoMaintenance:
    def window_for(self, probe_id: str, at: datetime) -> ActiveWindow | None:
        return None


def ending_last(*windows: ActiveWindow | None) -> ActiveWindow | None:
    """Of the windows running at one moment, the one that holds a probe back longest."""
    return max((w for w in windows if w is not None), key=lambda w: w.ends_at, default=None)


def covered_stretch(
    running_at: Callable[[datetime], ActiveWindow | None], at: datetime
) -> ActiveWindow | None:
    """The window running at `at`, its end moved to the end of the whole covered stretch.

    `running_at(moment)` answers with a window covering that moment (best the one ending
    last). Windows that overlap or touch are followed one into the next, so the end people
    are told is the moment suppression really stops. An always-on window is followed
    `MAX_CHAIN` times: its end is then a lower bound, and moves on when asked again.
    """
    window = running_at(at)
    if window is None:
        return None
    reasons, ends = [window.reason], window.ends_at
    for _ in range(MAX_CHAIN):
        following = running_at(ends)
        if following is None or following.ends_at <= ends:
            break
        ends = following.ends_at
        if following.reason not in reasons:
            reasons.append(following.reason)
    return ActiveWindow("; ".join(reasons), ends)
