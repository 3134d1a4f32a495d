"""What one run of a probe observed: the `result` of DESIGN.md section 2.

Results are plain frozen data so that detection, storage, the CLI and Slack can
all read them without knowing which kind of probe produced them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    """`fail`: the target is unhealthy. `error`: the prober could not tell."""

    OK = "ok"
    FAIL = "fail"
    ERROR = "error"


@dataclass(frozen=True)
class Measurement:
    """One measured value, with the expectation it was checked against (if any)."""

    name: str
    value: float
    unit: str = ""
    expected: str = ""
    met: bool | None = None

    def shown(self) -> str:
        """`ttfb_ms 950 ms (expected below 800)`: what a person reads on a card or a table."""
        number = f"{self.value:.0f}" if float(self.value).is_integer() else f"{self.value:.3g}"
        if abs(self.value) >= 1000:
            number = f"{self.value:.0f}"
        unit = f" {self.unit}" if self.unit else ""
        expected = f" (expected {self.expected})" if self.expected else ""
        return f"{self.name} {number}{unit}{expected}"


@dataclass(frozen=True)
class Observation:
    """What a probe class returns; the runner adds identity and timing."""

    status: Status
    reason: str
    measurements: tuple[Measurement, ...] = ()
    evidence: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ProbeResult:
    """One observation of one probe, timed."""

    probe_id: str
    status: Status
    reason: str
    started_at: datetime
    duration: float
    measurements: tuple[Measurement, ...] = ()
    evidence: tuple[tuple[str, str], ...] = field(default=())

    def value_of(self, name: str) -> float | None:
        for measurement in self.measurements:
            if measurement.name == name:
                return measurement.value
        return None
