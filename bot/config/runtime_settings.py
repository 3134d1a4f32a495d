"""The process-wide sections: detection knobs, scheduler limits, the HTTP listener."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from bot.config.fields import Strict
from probes.durations import Duration


class FlappingSettings(Strict):
    high: float = Field(40.0, gt=0, le=100, description="% of weighted state changes to start")
    low: float = Field(20.0, ge=0, lt=100, description="% of weighted state changes to stop")

    @model_validator(mode="after")
    def _ordered(self) -> FlappingSettings:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        return self


class DetectionConfig(Strict):
    group_by: str = Field("service", description="label whose failing probes share one incident")
    group_wait: Duration = Field(timedelta(seconds=10), description="how long to gather a storm")
    flapping: FlappingSettings = FlappingSettings()


class SchedulerConfig(Strict):
    max_concurrent: int = Field(256, ge=1, le=10_000, description="probes running at once")
    max_per_kind: dict[str, int] = Field({}, description="e.g. {ssh: 16}")
    max_per_host: dict[str, int] = Field(
        {"ssh": 2, "mysql": 4}, description="per kind and target host, e.g. {ssh: 2}"
    )


class ListenerConfig(Strict):
    host: str = Field("127.0.0.1", description="address of the HTTP listener (heartbeats)")
    port: int = Field(8080, ge=0, le=65535, description="0 picks a free port")
