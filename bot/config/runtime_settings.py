"""The process-wide sections: detection knobs, scheduler limits, the HTTP listener, the
event loop's watchdog."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator, model_validator

from bot.config.fields import SlackChannel, SlackTarget, Strict
from probes.durations import Duration


class FlappingSettings(Strict):
    high: float = Field(40.0, gt=0, le=100, description="% of weighted state changes to start")
    low: float = Field(20.0, ge=0, lt=100, description="% of weighted state changes to stop")

    @model_validator(mode="after")
    def _ordered(self) -> FlappingSettings:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        return self


class BlindnessConfig(Strict):
    """When tocsin says it cannot see: probes giving only `error` results for `after`."""

    after: Duration = Field(
        timedelta(minutes=10), description="errors for this long make a probe a blind spot"
    )
    channel: SlackChannel | None = Field(
        None, description="where the notices go (default: slack.channel)"
    )
    notify: list[SlackTarget] = Field(
        [], description="people or groups mentioned in the notice (none: it pages nobody)"
    )

    @field_validator("after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("give a duration above zero, e.g. 10m")
        return value


class DetectionConfig(Strict):
    group_by: str = Field("service", description="label whose failing probes share one incident")
    group_wait: Duration = Field(timedelta(seconds=10), description="how long to gather a storm")
    flapping: FlappingSettings = FlappingSettings()
    blindness: BlindnessConfig = BlindnessConfig()


class SchedulerConfig(Strict):
    max_concurrent: int = Field(256, ge=1, le=10_000, description="probes running at once")
    max_per_kind: dict[str, int] = Field({}, description="e.g. {ssh: 16}")
    max_per_host: dict[str, int] = Field(
        {"ssh": 2, "mysql": 4}, description="per kind and target host, e.g. {ssh: 2}"
    )


class ListenerConfig(Strict):
    host: str = Field("127.0.0.1", description="address of the HTTP listener (heartbeats)")
    port: int = Field(8080, ge=0, le=65535, description="0 picks a free port")
    header_timeout: Duration = Field(
        timedelta(seconds=10),
        description="a request's line and headers must arrive within this; an idle "
        "connection is closed after it too",
    )
    body_timeout: Duration = Field(
        timedelta(seconds=30), description="a request's body must arrive within this"
    )
    max_connections: int = Field(
        1024,
        ge=1,
        le=1_000_000,
        description="connections open at once (more wait to be accepted); lowered to what "
        "the open-file limit leaves beside probes and SQLite",
    )

    @field_validator("header_timeout", "body_timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        return _positive(value)


class WatchdogConfig(Strict):
    stall_after: Duration = Field(
        timedelta(seconds=5),
        description="the event loop not turning for this long is a stall: its stack is "
        "logged, /healthz fails and systemd watchdog pings stop",
    )

    @field_validator("stall_after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        return _positive(value)


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s, e.g. 10s")
    return value
