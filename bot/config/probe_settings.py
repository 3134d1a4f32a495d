"""The fields every probe shares; kind-specific fields are kept for the probe classes."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.config.fields import SlackChannel, Slug
from bot.config.problems import ConfigProblem, problems_from_validation
from incidents.model import Severity
from probes.durations import Duration, format_duration
from probes.probe import KindSettings
from probes.registry import PROBE_CLASSES, kind_settings

DEFAULT_TIMEOUT = timedelta(seconds=10)


PROBE_KINDS = tuple(PROBE_CLASSES)


def _probe_kind(value: str) -> str:
    if value not in PROBE_KINDS:
        raise ValueError(f"unknown probe kind '{value}'; use one of {', '.join(PROBE_KINDS)}")
    return value


ProbeKind = Annotated[
    str, AfterValidator(_probe_kind), Field(json_schema_extra={"enum": list(PROBE_KINDS)})
]


class LadderStep(BaseModel):
    """`{above: 95, severity: P1}`: a measured value that makes the incident more severe."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    measure: str = Field("value", description="measurement name, e.g. value, ttfb_ms, days_left")
    above: float | None = None
    below: float | None = None
    severity: Severity

    @model_validator(mode="after")
    def _one_bound(self) -> LadderStep:
        if (self.above is None) == (self.below is None):
            raise ValueError(
                "give exactly one of `above` or `below`, e.g. {above: 95, severity: P1}"
            )
        return self


class ProbeSettings(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    id: Slug
    kind: ProbeKind
    interval: Duration = timedelta(seconds=60)
    timeout: Duration | None = Field(
        None, description="default: the smaller of 10s and 80% of interval"
    )
    severity: Severity = Severity.P2
    fail_after: int = Field(3, ge=1, le=100)
    fail_window: int | None = Field(
        None, ge=1, le=100, description="open on fail_after failures among this many results"
    )
    recover_after: int = Field(2, ge=1, le=100)
    depends_on: list[str] = []
    remediate: list[str] = []
    labels: dict[str, str] = {}
    channel: SlackChannel | None = Field(
        None, description="post this probe's incidents here instead of slack.channel"
    )
    severity_ladder: list[LadderStep] = []

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
    def _defaults(self) -> ProbeSettings:
        if self.timeout is None:
            object.__setattr__(self, "timeout", min(DEFAULT_TIMEOUT, self.interval * 0.8))
        if self.fail_window is None:
            object.__setattr__(self, "fail_window", self.fail_after)
        elif self.fail_window < self.fail_after:
            raise ValueError(
                f"fail_window ({self.fail_window}) must be at least fail_after "
                f"({self.fail_after}): it is the n of 'fail_after out of the last n results'"
            )
        return self

    @property
    def window(self) -> int:
        assert self.fail_window is not None
        return self.fail_window

    def kind_settings(self) -> KindSettings:
        """The kind-specific keys, typed (already checked by `kind_problems` at load time)."""
        return kind_settings(self.kind, self.model_extra or {})

    @property
    def effective_timeout(self) -> timedelta:
        assert self.timeout is not None
        return self.timeout

    @property
    def service(self) -> str:
        return self.labels.get("service", "")


def kind_problems(data: dict[str, Any]) -> list[ConfigProblem]:
    """Check each probe's kind-specific keys against its kind's own settings model.

    Unknown keys get a hint drawn from the common keys and the kind's keys, so
    `intervl` and `ulr` are both caught with the right suggestion.
    """
    common = set(ProbeSettings.model_fields)
    probes = data.get("probes")
    problems: list[ConfigProblem] = []
    for index, probe in enumerate(probes if isinstance(probes, list) else []):
        if not isinstance(probe, dict) or probe.get("kind") not in PROBE_CLASSES:
            continue
        model = PROBE_CLASSES[str(probe["kind"])].settings_model
        own = {str(k): v for k, v in probe.items() if str(k) not in common}
        try:
            model.model_validate(own)
        except ValidationError as error:
            names = common | set(model.model_fields) | _nested_names(model)
            for problem in problems_from_validation(error, names):
                problems.append(ConfigProblem(("probes", index, *problem.path), problem.message))
    return problems


def _nested_names(model: type[BaseModel]) -> set[str]:
    schema = model.model_json_schema()
    names: set[str] = set()
    for definition in schema.get("$defs", {}).values():
        names.update(definition.get("properties", {}))
    return names
