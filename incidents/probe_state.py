"""One probe's detection state: streaks, the recent window, flapping, where it is attached.

Pure data and arithmetic, no I/O: the detector changes it, the journal saves it,
so a restart resumes a streak instead of forgetting or re-paging it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from incidents.detection_rules import DetectionSettings, ProbeRule
from incidents.model import Severity
from probes.result import ProbeResult, Status


class Health(StrEnum):
    """What `tocsin probe` and the card show for a probe."""

    UNKNOWN = "unknown"
    OK = "ok"
    FAILING = "failing"  # failing, not yet `fail_after` times
    PENDING = "pending"  # threshold met, waiting for `group_wait` or for a failing parent
    FIRING = "firing"  # part of an open incident
    SYMPTOM = "symptom"  # failing under a parent's open incident
    SUPPRESSED = "suppressed"  # threshold met inside a maintenance window
    ERROR = "error"  # the prober cannot tell


@dataclass
class ProbeState:
    probe_id: str
    health: Health = Health.UNKNOWN
    recent: str = ""  # 'o' and 'f', oldest first; `error` results are not counted
    fail_streak: int = 0
    ok_streak: int = 0
    error_streak: int = 0
    firing: bool = False
    flapping: bool = False
    failing_since: datetime | None = None
    detected_at: datetime | None = None
    incident: int | None = None
    role: str | None = None  # "member" or "symptom"
    severity: Severity | None = None
    severity_reason: str = ""
    pushed: Severity | None = None  # the severity this probe last gave its incident
    counted: int = 0  # results counted since the last recovery (k of n looks no further)
    last_status: Status | None = None
    last_reason: str = ""
    fail_reason: str = ""  # the latest failure's: what an incident quotes while flapping
    last_at: datetime | None = None
    note: str = ""  # why it is pending or suppressed
    stale_runs: int = 0
    stale: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, result: ProbeResult, rule: ProbeRule, history: int) -> None:
        """Count one result into the streaks and the recent window."""
        self.last_status, self.last_reason, self.last_at = (
            result.status,
            result.reason,
            result.started_at,
        )
        self.stale = False
        if result.status is Status.ERROR:
            self.error_streak += 1
            return
        self.error_streak = 0
        self.counted += 1
        failed = result.status is Status.FAIL
        self.recent = (self.recent + ("f" if failed else "o"))[-max(history, rule.fail_window) :]
        if failed:
            self.fail_reason = result.reason
            self.fail_streak, self.ok_streak = self.fail_streak + 1, 0
            if self.failing_since is None:
                self.failing_since = result.started_at
            severity, why = rule.severity_of(result)
            if self.severity is None or severity.rank < self.severity.rank:
                self.severity, self.severity_reason = severity, why
        else:
            self.fail_streak, self.ok_streak = 0, self.ok_streak + 1
            if not self.firing and "f" not in self.recent[-rule.fail_window :]:
                self.failing_since, self.severity, self.severity_reason = None, None, ""

    def meets_open(self, rule: ProbeRule) -> bool:
        """`fail_after` failures among the last `fail_window` results, and not recovering."""
        window = min(rule.fail_window, self.counted)
        failures = self.recent[-window:].count("f") if window else 0
        return failures >= rule.fail_after and self.ok_streak < rule.recover_after

    def meets_recover(self, rule: ProbeRule) -> bool:
        return self.ok_streak >= rule.recover_after

    def flap_percent(self, settings: DetectionSettings) -> float:
        """Weighted share of state changes in the window, newer changes weighing more (Nagios)."""
        window = self.recent[-(settings.history + 1) :]
        changes = len(window) - 1
        if changes < settings.history // 3:
            return 0.0
        weights = [0.8 + 0.4 * i / max(changes - 1, 1) for i in range(changes)]
        changed = sum(w for i, w in enumerate(weights) if window[i] != window[i + 1])
        return 100.0 * changed / sum(weights)

    def update_flapping(self, settings: DetectionSettings) -> bool | None:
        """True when flapping starts, False when it stops, None when nothing changed."""
        percent = self.flap_percent(settings)
        if not self.flapping and percent >= settings.flap_high:
            self.flapping = True
            return True
        if self.flapping and percent < settings.flap_low:
            self.flapping = False
            return False
        return None

    def clear_episode(self) -> None:
        self.firing, self.incident, self.role, self.pushed = False, None, None, None
        self.failing_since, self.detected_at = None, None
        self.severity, self.severity_reason, self.note = None, "", ""

    def to_json(self) -> str:
        """Shallow and by hand: this runs for every sample, `asdict` deep-copies."""
        data = {name: getattr(self, name) for name in FIELDS}
        for key in ("failing_since", "detected_at", "last_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ProbeState:
        data = json.loads(text)
        for key in ("failing_since", "detected_at", "last_at"):
            if data.get(key):
                data[key] = datetime.fromisoformat(data[key])
        data["health"] = Health(data["health"])
        data.setdefault("fail_reason", data.get("last_reason", ""))  # saved before it was kept
        for key in ("severity", "pushed"):
            data[key] = Severity(data[key]) if data.get(key) else None
        data["last_status"] = Status(data["last_status"]) if data.get("last_status") else None
        return cls(**data)


FIELDS = tuple(f.name for f in fields(ProbeState))
