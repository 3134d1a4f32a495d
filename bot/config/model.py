"""The shape of tocsin.yml (DESIGN.md section 4), validated by pydantic.

Field-level rules live here; rules that relate one part of the file to another
(a probe's `depends_on`, a command's hosts) live in `references.py`, so that
every problem of a file can be reported at once.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from bot.config.durations import ByteSize, Duration, format_duration
from bot.config.problems import ConfigProblem, suggest
from commands.catalogue import RiskTier, pattern_problems, template_problems
from incidents.model import Severity
from probes.kinds import PROBE_KINDS

SLUG = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
SLACK_TARGET = re.compile(r"^(@[\w.-]+|[UW][A-Z0-9]{2,}|S[A-Z0-9]{2,}|!(here|channel))$")
SLACK_CHANNEL = re.compile(r"^(#[a-z0-9][a-z0-9_-]{0,79}|[CG][A-Z0-9]{2,})$")


def _slack_target(value: str) -> str:
    if not SLACK_TARGET.match(value):
        raise ValueError(
            f"'{value}' is not a Slack target; write a user group handle (@oncall), a user id "
            "(U024BE7LH) or a user group id (S0614TZR7)"
        )
    return value


def _slack_channel(value: str) -> str:
    if not SLACK_CHANNEL.match(value):
        raise ValueError(
            f"'{value}' is not a channel; write #ops-incidents or a channel id such as C0123ABC"
        )
    return value


def _probe_kind(value: str) -> str:
    if value not in PROBE_KINDS:
        raise ValueError(f"unknown probe kind '{value}'; use one of {', '.join(PROBE_KINDS)}")
    return value


Slug = Annotated[str, Field(pattern=SLUG)]
EnvName = Annotated[str, Field(pattern=ENV_NAME, description="name of an environment variable")]
SlackTarget = Annotated[str, AfterValidator(_slack_target)]
SlackChannel = Annotated[str, AfterValidator(_slack_channel)]
ProbeKind = Annotated[
    str, AfterValidator(_probe_kind), Field(json_schema_extra={"enum": list(PROBE_KINDS)})
]


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SlackSettings(Strict):
    channel: SlackChannel = Field(description="where incident cards are posted")
    pin_reaction: str = Field("pushpin", description="reaction that adds a message to the timeline")


class StorageSettings(Strict):
    path: Path = Field(
        Path("tocsin.db"), description="SQLite file, relative to the working directory"
    )


class SeveritySettings(Strict):
    name: str
    respond_within: Duration | None = Field(
        None, description="default: the runbook default of this severity (0m, 15m, 30m, 1h)"
    )

    @property
    def response_time(self) -> timedelta:
        """Always set once the file is loaded: the loader fills gaps with defaults."""
        assert self.respond_within is not None
        return self.respond_within


DEFAULT_SEVERITIES = {
    Severity.P0: SeveritySettings(name="Critical", respond_within=timedelta(0)),
    Severity.P1: SeveritySettings(name="High", respond_within=timedelta(minutes=15)),
    Severity.P2: SeveritySettings(name="Medium", respond_within=timedelta(minutes=30)),
    Severity.P3: SeveritySettings(name="Low", respond_within=timedelta(hours=1)),
}


class EscalationLevel(Strict):
    notify: list[SlackTarget] = Field(min_length=1)
    after: Duration = timedelta(0)


class EscalationPolicy(Strict):
    levels: list[EscalationLevel] = Field(min_length=1)
    repeat: int = Field(0, ge=0, le=10, description="times the whole ladder runs again")

    @model_validator(mode="after")
    def _levels_in_order(self) -> EscalationPolicy:
        delays = [level.after for level in self.levels]
        if delays != sorted(delays):
            shown = ", ".join(format_duration(delay) for delay in delays)
            raise ValueError(f"levels must be in order of `after` (got {shown}); reorder them")
        return self


class HostSettings(Strict):
    address: str = Field(min_length=1)
    port: int = Field(22, ge=1, le=65535)
    user: str = Field(min_length=1)
    key: Path = Field(description="private key file used to log in")
    key_passphrase_env: EnvName | None = None
    known_hosts: Path = Field(description="pinned known_hosts file; host keys are always verified")

    @model_validator(mode="before")
    @classmethod
    def _known_hosts_required(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("known_hosts"):
            raise ValueError(
                "known_hosts is required: tocsin always verifies host keys. Pin the key with "
                "`ssh-keyscan -p PORT ADDRESS >> known_hosts`, check its fingerprint, and add "
                "`known_hosts: /path/to/known_hosts`"
            )
        return data


class ProbeSettings(BaseModel):
    """Fields common to every probe; kind-specific fields are kept for the probe classes."""

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

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> ProbeSettings:
        if self.interval <= timedelta(0):
            raise ValueError("interval must be longer than 0s")
        if self.timeout is None:
            object.__setattr__(self, "timeout", min(timedelta(seconds=10), self.interval * 0.8))
        elif not timedelta(0) < self.timeout < self.interval:
            raise ValueError(
                f"timeout ({format_duration(self.timeout)}) must be above 0s and shorter than "
                f"interval ({format_duration(self.interval)}); lower the timeout or raise "
                "the interval"
            )
        return self

    @property
    def effective_timeout(self) -> timedelta:
        assert self.timeout is not None
        return self.timeout

    @property
    def service(self) -> str:
        return self.labels.get("service", "")


class ParamSettings(Strict):
    pattern: str | None = None
    enum: list[str] | None = Field(None, min_length=1)
    description: str = ""

    @model_validator(mode="after")
    def _constrained(self) -> ParamSettings:
        if (self.pattern is None) == (self.enum is None):
            raise ValueError(
                "give exactly one of `pattern` or `enum`: every parameter is constrained"
            )
        if self.pattern is not None and (problems := pattern_problems(self.pattern)):
            raise ValueError(problems[0])
        for choice in self.enum or []:
            if choice.startswith("-") or not choice.strip():
                raise ValueError(f"enum value {choice!r} is blank or starts with '-'; remove it")
        return self


class CommandSettings(Strict):
    description: str = ""
    hosts: list[str] = Field(min_length=1)
    run: list[str] = Field(min_length=1, description="argv; {name} placeholders are parameters")
    params: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], ParamSettings] = {}
    risk: RiskTier
    timeout: Duration = timedelta(seconds=60)
    output_cap: ByteSize = Field(65536, gt=0, description="bytes of output kept and posted")

    @model_validator(mode="after")
    def _safe_template(self) -> CommandSettings:
        problems = template_problems(self.run, set(self.params))
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ApprovalPolicy(Strict):
    approvers: list[SlackTarget] = Field(min_length=1)
    count: int = Field(1, ge=1, le=5)
    not_requester: bool = True


class MaintenanceWindow(Strict):
    probes: list[str] = Field(min_length=1, description="probe ids or globs such as shop-*")
    reason: str = Field(min_length=1)
    cron: str | None = None
    duration: Duration | None = None
    start: datetime | None = None
    end: datetime | None = None

    @model_validator(mode="after")
    def _one_schedule(self) -> MaintenanceWindow:
        recurring = self.cron is not None or self.duration is not None
        one_off = self.start is not None or self.end is not None
        if recurring == one_off:
            raise ValueError("give either `cron` with `duration`, or `start` with `end`")
        if recurring and (self.cron is None or self.duration is None):
            raise ValueError("a recurring window needs both `cron` and `duration`")
        if one_off and (self.start is None or self.end is None):
            raise ValueError("a one-off window needs both `start` and `end`")
        if self.cron is not None:
            try:
                CronTrigger.from_crontab(self.cron)
            except ValueError as error:
                raise ValueError(f"cron '{self.cron}' is not a crontab line: {error}") from None
        if self.start is not None and self.end is not None and not self.start < self.end:
            raise ValueError("start must be before end")
        return self


class TocsinConfig(Strict):
    """The whole file."""

    timezone: str = Field("UTC", description="time zone people read times in, e.g. Europe/Berlin")
    slack: SlackSettings
    storage: StorageSettings = StorageSettings()
    severities: dict[Severity, SeveritySettings] = {}
    escalation: dict[Severity, EscalationPolicy] = {}
    hosts: dict[Slug, HostSettings] = {}
    probes: list[ProbeSettings] = []
    commands: dict[Slug, CommandSettings] = {}
    approvals: dict[RiskTier, ApprovalPolicy] = {}
    maintenance: list[MaintenanceWindow] = []

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone '{value}' is unknown; use an IANA name such as Europe/Berlin"
            ) from None
        return value

    @model_validator(mode="after")
    def _complete_severities(self) -> TocsinConfig:
        """Severities the file omits, or gives without a response time, take the defaults."""
        merged = dict(DEFAULT_SEVERITIES)
        for severity, given in self.severities.items():
            default = DEFAULT_SEVERITIES[severity].respond_within
            merged[severity] = given.model_copy(
                update={"respond_within": given.respond_within or default}
            )
        object.__setattr__(self, "severities", merged)
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


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
