"""The shape of tocsin.yml (DESIGN.md section 4), validated by pydantic.

Field-level rules live here; rules that relate one part of the file to another
(a probe's `depends_on`, a command's hosts) live in `references.py`, so that
every problem of a file can be reported at once.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from bot.config.command_settings import ApprovalPolicy, CommandSettings
from bot.config.crontab import cron_triggers
from bot.config.fields import EnvName, SlackChannel, SlackTarget, Slug, Strict
from bot.config.probe_settings import ProbeSettings
from bot.config.runtime_settings import (
    DetectionConfig,
    ListenerConfig,
    SchedulerConfig,
    WatchdogConfig,
)
from commands.catalogue import RiskTier
from incidents.escalation_policy import Level, Policy, QuietAction, QuietHours
from incidents.model import Severity
from probes.durations import Duration, format_duration


class SlackSettings(Strict):
    channel: SlackChannel = Field(description="where incident cards are posted")
    service_channels: dict[str, SlackChannel] = Field(
        {}, description="per-service channel overrides, e.g. {checkout: '#shop-incidents'}"
    )
    pin_reaction: str = Field(
        "pushpin",
        pattern=r"^[a-z0-9_+'-]+$",
        description="reaction that adds a message to the timeline",
    )
    confirm_after: Duration = Field(
        timedelta(seconds=30),
        description="a post whose answer never came (timeout, dropped connection, 5xx, "
        "restart) is looked for in the channel this long after it was sent, once Slack has "
        "finished it, before it is posted again",
    )

    @field_validator("confirm_after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s, e.g. 30s")
        return value


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


class QuietHoursSettings(Strict):
    """`{from: "22:00", to: "07:00", then: delay}` in the team's time zone."""

    start: time = Field(alias="from")
    end: time = Field(alias="to")
    then: QuietAction = Field(QuietAction.DELAY, description="skip the level, or delay it")

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHoursSettings:
        if self.start == self.end:
            raise ValueError("`from` and `to` are equal; quiet hours need a span")
        return self


class EscalationLevel(Strict):
    notify: list[SlackTarget] = Field(min_length=1)
    after: Duration = timedelta(0)
    quiet_hours: QuietHoursSettings | None = None


class EscalationPolicy(Strict):
    levels: list[EscalationLevel] = Field(min_length=1)
    repeat: int = Field(0, ge=0, le=10, description="times the whole ladder runs again")
    repeat_every: Duration | None = Field(
        None, description="length of one round; default: the last level's `after`, at least 5m"
    )
    remind_every: Duration | None = Field(
        None, description="remind whoever acknowledged this often while it stays acknowledged"
    )
    unacknowledge_after: int = Field(
        0, ge=0, le=10, description="unanswered reminders before the incident is open again"
    )

    def policy(self) -> Policy:
        """The domain's snapshot of this policy."""
        return Policy(
            levels=tuple(
                Level(
                    tuple(level.notify),
                    level.after,
                    None
                    if level.quiet_hours is None
                    else QuietHours(
                        level.quiet_hours.start, level.quiet_hours.end, level.quiet_hours.then
                    ),
                )
                for level in self.levels
            ),
            repeat=self.repeat,
            repeat_every=self.repeat_every,
            remind_every=self.remind_every,
            unacknowledge_after=self.unacknowledge_after,
        )

    @model_validator(mode="after")
    def _reminders(self) -> EscalationPolicy:
        if self.unacknowledge_after and self.remind_every is None:
            raise ValueError("`unacknowledge_after` needs `remind_every`")
        return self

    @field_validator("levels")
    @classmethod
    def _in_order(cls, levels: list[EscalationLevel]) -> list[EscalationLevel]:
        delays = [level.after for level in levels]
        if delays != sorted(delays):
            shown = ", ".join(format_duration(delay) for delay in delays)
            raise ValueError(f"levels must be in order of `after` (got {shown}); reorder them")
        return levels


class HostSettings(Strict):
    address: str = Field(min_length=1)
    port: int = Field(22, ge=1, le=65535)
    user: str = Field(min_length=1)
    key: Path = Field(description="private key file used to log in")
    key_passphrase_env: EnvName | None = None
    known_hosts: Path = Field(description="pinned known_hosts file; host keys are always verified")


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
                cron_triggers(self.cron, ZoneInfo("UTC"))
            except ValueError as error:
                raise ValueError(f"cron '{self.cron}' is not a crontab line: {error}") from None
        if self.start is not None and self.end is not None:
            if (self.start.tzinfo is None) != (self.end.tzinfo is None):
                raise ValueError(
                    "give `start` and `end` both with a UTC offset (…Z, …+01:00) or both "
                    "without one (then they are read in `timezone`)"
                )
            if not self.start < self.end:
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
    detection: DetectionConfig = DetectionConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    listener: ListenerConfig = ListenerConfig()
    watchdog: WatchdogConfig = WatchdogConfig()

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
                update={
                    "respond_within": default
                    if given.respond_within is None
                    else given.respond_within
                }
            )
        object.__setattr__(self, "severities", merged)
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
