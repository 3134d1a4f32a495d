"""The incident vocabulary: severities, statuses, milestones, actors and timeline events.

Plain frozen dataclasses: the store builds them from rows, the service returns
them, renderers (CLI, Slack) read them. No behaviour lives here beyond naming.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from incidents.errors import IncidentNotFoundError

INCIDENT_ID = re.compile(r"^INC-(\d+)$", re.IGNORECASE)


class Severity(StrEnum):
    """P0 is the most severe; runbook response times are configured per severity."""

    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"

    @property
    def rank(self) -> int:
        """0 for P0 (worst) up to 3 for P3, so `min` picks the most severe."""
        return int(self.value[1])


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_active(self) -> bool:
        """Active incidents still need people; at most one per dedup key may exist."""
        return self in ACTIVE_STATUSES


ACTIVE_STATUSES = frozenset({Status.OPEN, Status.ACKNOWLEDGED, Status.MITIGATED})


class ClosureReason(StrEnum):
    RESOLVED = "resolved"
    DUPLICATE = "duplicate"
    FALSE_POSITIVE = "false_positive"
    CANCELLED = "cancelled"


class Milestone(StrEnum):
    """Points in an incident's life that metrics (MTTD/MTTA/MTTR) are computed from.

    Each records the first time it was reached, except `resolved`, which a
    reopen clears so that it always holds the final resolution.
    """

    STARTED = "started"
    DETECTED = "detected"
    DECLARED = "declared"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Source(StrEnum):
    """Where an action came from; shown in the timeline next to the actor."""

    PROBE = "probe"
    SLACK = "slack"
    CLI = "cli"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who did something. For Slack users `id` is `team_id:user_id`, never a name."""

    source: Source
    id: str
    name: str = ""

    @property
    def is_person(self) -> bool:
        return self.source in (Source.SLACK, Source.CLI)

    def __str__(self) -> str:
        return f"{self.name or self.id} ({self.source.value})"


@dataclass(frozen=True)
class Incident:
    number: int
    title: str
    severity: Severity
    status: Status
    service: str
    dedup_key: str | None
    channel: str | None
    thread_ts: str | None
    milestones: dict[Milestone, datetime]
    closure_reason: ClosureReason | None
    participants: tuple[Actor, ...] = field(default=())

    @property
    def id(self) -> str:
        return format_incident_id(self.number)


@dataclass(frozen=True)
class TimelineEvent:
    """One append-only line of an incident's story: who did what, when, old -> new."""

    incident_number: int
    at: datetime
    actor: Actor
    kind: str
    text: str = ""
    field: str | None = None
    old: str | None = None
    new: str | None = None
    id: int = 0  # set once stored


def format_incident_id(number: int) -> str:
    return f"INC-{number}"


def parse_incident_id(text: str) -> int:
    """Accept `INC-42`, `inc-42` or `42`; anything else is a user error."""
    stripped = text.strip()
    match = INCIDENT_ID.match(stripped)
    if match:
        return int(match.group(1))
    if stripped.isdigit():
        return int(stripped)
    raise IncidentNotFoundError(f"'{text}' is not an incident id; write it as INC-42")


@dataclass(frozen=True)
class Signal:
    """A detector's verdict that something is failing, keyed for deduplication."""

    dedup_key: str
    title: str
    severity: Severity
    service: str
    started_at: datetime
    detected_at: datetime
    actor: Actor
    reason: str = ""


@dataclass(frozen=True)
class Opened:
    incident: Incident
    created: bool
