"""Storm grouping: failures sharing a group key within `group_wait` become one incident."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from incidents.detection_rules import ProbeRule
from incidents.incident_text import MAX_NOTE, MAX_TITLE
from incidents.model import Actor, Signal, Source
from incidents.probe_state import ProbeState

DETECTOR = Actor(Source.PROBE, "detection", "tocsin detection")
MAX_REASON = MAX_NOTE


@dataclass
class PendingGroup:
    """Probes past their threshold, gathered until `deadline` before one incident opens."""

    deadline: datetime
    members: list[str] = field(default_factory=list)


def group_dedup_key(group: str) -> str:
    """The dedup key of the incidents a group opens (at most one active at a time)."""
    return f"probes:{group}"


def group_signal(
    group: str, rules: list[ProbeRule], states: list[ProbeState], now: datetime
) -> Signal:
    """The incident a group opens: the most severe member's severity, the earliest failure.

    Titles and reasons quote each member's latest failure: a flapping probe's last result
    may well be ok, which says nothing about what is wrong."""
    severity = min(
        (state.severity or rule.severity for rule, state in zip(rules, states, strict=True)),
        key=lambda value: value.rank,
    )
    first = rules[0]
    names = [rule.probe_id for rule in rules]
    if len(rules) == 1:
        title = f"{first.probe_id} failing: {states[0].fail_reason}"
    else:
        title = f"{first.service or group}: {len(rules)} probes failing ({', '.join(names)})"
    if any(state.flapping for state in states):
        title = f"{title} (flapping)"
    reasons = "; ".join(
        f"{name}: {state.fail_reason}" for name, state in zip(names, states, strict=True)
    )
    return Signal(
        dedup_key=group_dedup_key(group),
        title=title[:MAX_TITLE],
        severity=severity,
        service=first.service,
        started_at=min(state.failing_since or now for state in states),
        detected_at=min(state.detected_at or now for state in states),
        actor=DETECTOR,
        reason=reasons[:MAX_REASON],
    )
