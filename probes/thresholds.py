"""Numeric expectations (`{below: 800}`, `{above: 70}`) and how measurements meet them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator

from probes.result import Measurement, Observation, Status


class Threshold(BaseModel):
    """A healthy value is strictly below `below` and strictly above `above`.

    Bounds are finite: nothing is below `.nan`, and `1e400` reads as infinity.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    below: float | None = None
    above: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Threshold:
        if self.below is None and self.above is None:
            raise ValueError("give `below`, `above` or both, e.g. {below: 800}")
        if self.below is not None and self.above is not None and self.above >= self.below:
            raise ValueError(f"`above` ({self.above}) must be less than `below` ({self.below})")
        return self

    def met_by(self, value: float) -> bool:
        if self.below is not None and not value < self.below:
            return False
        return not (self.above is not None and not value > self.above)

    def shown(self) -> str:
        parts = []
        if self.above is not None:
            parts.append(f"above {_number(self.above)}")
        if self.below is not None:
            parts.append(f"below {_number(self.below)}")
        return " and ".join(parts)


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:g}"


def measure(name: str, value: float, unit: str, threshold: Threshold | None) -> Measurement:
    """A measurement checked against its threshold (unchecked when there is none)."""
    if threshold is None:
        return Measurement(name, value, unit)
    return Measurement(name, value, unit, threshold.shown(), threshold.met_by(value))


def judge(
    measurements: tuple[Measurement, ...],
    evidence: tuple[tuple[str, str], ...] = (),
    *,
    healthy: str = "all expectations met",
    problems: tuple[str, ...] = (),
) -> Observation:
    """Fail on the first broken expectation (problems first, then thresholds), else ok."""
    broken = [*problems, *(m.shown() for m in measurements if m.met is False)]
    if broken:
        return Observation(Status.FAIL, "; ".join(broken), measurements, evidence)
    return Observation(Status.OK, healthy, measurements, evidence)
