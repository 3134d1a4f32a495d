"""What the detector knows about each probe: when to open, when to resolve, how severe.

`bot/` builds these from tocsin.yml; detection never sees the YAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from incidents.model import Severity
from probes.result import ProbeResult


@dataclass(frozen=True)
class SeverityStep:
    """One rung of a severity ladder: `value above 95` makes the incident P1."""

    measure: str
    severity: Severity
    above: float | None = None
    below: float | None = None

    def reached_by(self, result: ProbeResult) -> str | None:
        """Why this rung is reached by `result` (e.g. `value 96 above 95`), or None."""
        value = result.value_of(self.measure)
        if value is None:
            return None
        if self.above is not None and value > self.above:
            return f"{self.measure} {value:g} above {self.above:g}"
        if self.below is not None and value < self.below:
            return f"{self.measure} {value:g} below {self.below:g}"
        return None


@dataclass(frozen=True)
class ProbeRule:
    probe_id: str
    severity: Severity
    interval: timedelta
    timeout: timedelta
    fail_after: int = 3
    fail_window: int = 3
    recover_after: int = 2
    depends_on: tuple[str, ...] = ()
    group: str = ""
    service: str = ""
    ladder: tuple[SeverityStep, ...] = ()

    @property
    def group_key(self) -> str:
        """Probes with the same key share one incident; a probe without a label is its own group."""
        return self.group or f"probe={self.probe_id}"

    def severity_of(self, result: ProbeResult) -> tuple[Severity, str]:
        """The highest severity `result` reaches on the ladder, and why."""
        best, why = self.severity, ""
        for step in self.ladder:
            reached = step.reached_by(result)
            if reached and step.severity.rank < best.rank:
                best, why = step.severity, f"{reached} (severity ladder)"
        return best, why


@dataclass(frozen=True)
class DetectionSettings:
    """Process-wide detection knobs (`detection:` in tocsin.yml)."""

    group_wait: timedelta = timedelta(seconds=10)
    flap_high: float = 40.0
    flap_low: float = 20.0
    history: int = 20


def detection_budget(rule: ProbeRule, settings: DetectionSettings) -> timedelta:
    """Worst case from the first failing sample to an open incident (shown by `tocsin check`)."""
    return rule.interval * rule.fail_after + rule.timeout + settings.group_wait
