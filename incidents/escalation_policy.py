"""Escalation policies as data, and the plan of steps one policy makes for one incident.

A policy is snapshotted (as JSON) when an incident opens, so editing the
file later never changes who is paged for an incident already running.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

MIN_REPEAT_EVERY = timedelta(minutes=5)


class QuietAction(StrEnum):
    SKIP = "skip"  # the step is not delivered at all
    DELAY = "delay"  # the step waits for the end of the quiet hours


@dataclass(frozen=True)
class QuietHours:
    """A daily span in the team's time zone; `start > end` wraps past midnight."""

    start: time
    end: time
    action: QuietAction

    def covers(self, moment: datetime, zone: ZoneInfo) -> bool:
        local = moment.astimezone(zone).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends_after(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """The first end of quiet hours after `moment` (the step's new due time)."""
        local = moment.astimezone(zone)
        candidate = datetime.combine(local.date(), self.end, tzinfo=zone)
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=zone)
        return candidate

    def shown(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.action.value}"


@dataclass(frozen=True)
class Level:
    targets: tuple[str, ...]
    after: timedelta
    quiet: QuietHours | None = None


@dataclass(frozen=True)
class Policy:
    levels: tuple[Level, ...]
    repeat: int = 0
    repeat_every: timedelta | None = None
    remind_every: timedelta | None = None
    unacknowledge_after: int = 0

    @property
    def cycle(self) -> timedelta:
        """How long one round of the ladder lasts before the next round starts."""
        if self.repeat_every is not None:
            return self.repeat_every
        return max(self.levels[-1].after, MIN_REPEAT_EVERY)

    def to_json(self) -> str:
        return json.dumps(
            {
                "levels": [
                    {
                        "targets": list(level.targets),
                        "after": level.after.total_seconds(),
                        "quiet": None
                        if level.quiet is None
                        else [
                            level.quiet.start.isoformat(),
                            level.quiet.end.isoformat(),
                            level.quiet.action.value,
                        ],
                    }
                    for level in self.levels
                ],
                "repeat": self.repeat,
                "repeat_every": _seconds(self.repeat_every),
                "remind_every": _seconds(self.remind_every),
                "unacknowledge_after": self.unacknowledge_after,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Policy:
        data = json.loads(text)
        levels = tuple(
            Level(
                targets=tuple(item["targets"]),
                after=timedelta(seconds=item["after"]),
                quiet=None
                if item["quiet"] is None
                else QuietHours(
                    time.fromisoformat(item["quiet"][0]),
                    time.fromisoformat(item["quiet"][1]),
                    QuietAction(item["quiet"][2]),
                ),
            )
            for item in data["levels"]
        )
        return cls(
            levels=levels,
            repeat=data["repeat"],
            repeat_every=_delta(data["repeat_every"]),
            remind_every=_delta(data["remind_every"]),
            unacknowledge_after=data["unacknowledge_after"],
        )


@dataclass(frozen=True)
class PlannedStep:
    round: int  # 1-based
    level: int  # 1-based
    targets: tuple[str, ...]
    due_at: datetime


def plan_pages(policy: Policy, start: datetime) -> list[PlannedStep]:
    """Every page of every round, due relative to `start` (when the incident was declared)."""
    steps: list[PlannedStep] = []
    for round_index in range(policy.repeat + 1):
        round_start = start + policy.cycle * round_index
        for level_index, level in enumerate(policy.levels):
            steps.append(
                PlannedStep(
                    round=round_index + 1,
                    level=level_index + 1,
                    targets=level.targets,
                    due_at=round_start + level.after,
                )
            )
    return steps


def _seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else delta.total_seconds()


def _delta(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)
