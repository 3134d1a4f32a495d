"""The fields every probe shares; kind-specific fields are kept for the probe classes."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from probes.durations import Duration, format_duration
from bot.config.fields import Slug
from bot.config.problems import ConfigProblem, suggest
from incidents.model import Severity
from probes.kinds import PROBE_KINDS

DEFAULT_TIMEOUT = timedelta(seconds=10)


def _probe_kind(value: str) -> str:
    if value not in PROBE_KINDS:
        raise ValueError(f"unknown probe kind '{value}'; use one of {', '.join(PROBE_KINDS)}")
    return value


ProbeKind = Annotated[
    str, AfterValidator(_probe_kind), Field(json_schema_extra={"enum": list(PROBE_KINDS)})
]


class ProbeSettings(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    id: Slug
    kind: ProbeKind
    interval: Duration = timedelta(seconds=60)
    timeout: Duration | None = Field(
        None, description="default: the smaller of 10s and 80% of interval"
    )
    severity: Severity = Severity.P2
    fail_after: int = Field(3, ge=1, le=100)
    recover_after: int = Field(2, ge=1, le=100)
    depends_on: list[str] = []
    remediate: list[str] = []
    labels: dict[str, str] = {}

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("interval must be longer than 0s")
        return value

    @field_validator("timeout")
    @classmethod
    def _below_interval(cls, value: timedelta | None, info: ValidationInfo) -> timedelta | None:
        interval = info.data.get("interval")
        if value is None or interval is None:
            return value
        if not timedelta(0) < value < interval:
            raise ValueError(
                f"timeout ({format_duration(value)}) must be above 0s and shorter than "
                f"interval ({format_duration(interval)}); lower the timeout or raise the interval"
            )
        return value

    @model_validator(mode="after")
    def _default_timeout(self) -> ProbeSettings:
        if self.timeout is None:
            object.__setattr__(self, "timeout", min(DEFAULT_TIMEOUT, self.interval * 0.8))
        return self

    @property
    def effective_timeout(self) -> timedelta:
        assert self.timeout is not None
        return self.timeout

    @property
    def service(self) -> str:
        return self.labels.get("service", "")


def probe_key_problems(data: dict[str, Any]) -> list[ConfigProblem]:
    """Probes accept kind-specific keys, so catch near-misses of the common ones (`intervl`).

    Only keys of about the same length count: `severity_ladder` is a key of its
    own, not a misspelt `severity`.
    """
    common = set(ProbeSettings.model_fields)
    probes = data.get("probes")
    problems = []
    for index, probe in enumerate(probes if isinstance(probes, list) else []):
        for key in probe if isinstance(probe, dict) else {}:
            name = str(key)
            near = [c for c in common if abs(len(c) - len(name)) <= 2]
            hint = suggest(name, near)
            if name not in common and hint:
                problems.append(
                    ConfigProblem(("probes", index, name), f"unknown key '{name}'{hint}")
                )
    return problems
