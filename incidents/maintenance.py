"""Maintenance windows as detection sees them: is this probe inside one right now?

The calendar is a port: `bot/` implements it from tocsin.yml (cron expressions
need APScheduler, which only `bot/` may import); tests pass a fixed calendar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class ActiveWindow:
    reason: str
    ends_at: datetime


class MaintenanceCalendar(Protocol):
    def window_for(self, probe_id: str, at: datetime) -> ActiveWindow | None: ...


class NoMaintenance:
    def window_for(self, probe_id: str, at: datetime) -> ActiveWindow | None:
        return None
