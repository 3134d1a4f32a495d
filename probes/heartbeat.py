"""The heartbeat probe: a dead-man's switch for cron jobs and backups.

Jobs ping tocsin's listener (`POST /heartbeat/<probe-id>`); this probe only
reads the ledger the listener writes, so it costs nothing and never touches
the network. A job that never pinged is measured from when tocsin started
watching, so a fresh install does not page for every job at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field

from probes.durations import Duration, format_duration
from probes.probe import KindSettings, Probe
from probes.result import Observation, Status
from probes.thresholds import Threshold, measure

MIN_TOKEN_LENGTH = 16  # a shorter token could be guessed through the listener


class HeartbeatSettings(KindSettings):
    period: Duration = Field(description="how often the job runs")
    grace: Duration = Field(timedelta(0), description="how late a ping may be")
    token_env: str = Field(
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="environment variable holding the token the job sends (Bearer or ?token=)",
    )


class HeartbeatProbe(Probe):
    kind = "heartbeat"
    settings_model = HeartbeatSettings

    def configure(self, settings: KindSettings) -> None:
        assert isinstance(settings, HeartbeatSettings)
        self.settings = settings

    @property
    def target_host(self) -> str:
        return ""

    @property
    def deadline(self) -> timedelta:
        return self.settings.period + self.settings.grace

    async def observe(self, budget: float) -> Observation:
        ledger = self.context.heartbeats
        if ledger is None:
            return Observation(Status.ERROR, "the heartbeat listener is not running")
        now = self.context.now()
        last = ledger.last_ping(self.probe_id)
        failed = ledger.failed_at(self.probe_id)
        if failed is not None:
            return Observation(
                Status.FAIL,
                f"the job reported failure at {_clock(failed)}",
                evidence=(("failure ping", failed.isoformat()),),
            )
        since = last if last is not None else ledger.watching_since(self.probe_id)
        age = now - since
        limit = self.deadline
        # "At most period + grace": a ping exactly on the limit is still on time.
        threshold = Threshold(below=limit.total_seconds() + 0.001)
        age_measure = measure("since_last_ping_s", round(age.total_seconds(), 1), "s", threshold)
        evidence = (("last ping", last.isoformat() if last else "never"),)
        if age <= limit:
            reason = (
                f"last ping {format_duration(_whole(age))} ago"
                if last
                else "waiting for a first ping"
            )
            return Observation(Status.OK, reason, (age_measure,), evidence)
        allowed = (
            f"period {format_duration(self.settings.period)}"
            f" + grace {format_duration(self.settings.grace)}"
        )
        if last is None:
            reason = f"no ping since tocsin started {format_duration(_whole(age))} ago ({allowed})"
        else:
            reason = f"last ping {format_duration(_whole(age))} ago, at {_clock(last)} ({allowed})"
        return Observation(Status.FAIL, reason, (age_measure,), evidence)


def _whole(age: timedelta) -> timedelta:
    return timedelta(seconds=int(age.total_seconds()))


def _clock(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
