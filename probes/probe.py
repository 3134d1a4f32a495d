"""The probe contract: one class per kind, built from its settings, observed by a runner.

A probe class never raises to its caller: `run_probe` turns a timeout into a
`fail` (the target did not answer in time) and an unexpected exception into an
`error` (tocsin could not tell), so one broken probe cannot stop the others.
It also passes every reason and piece of evidence through the context's
`Redaction`, and logs a probe's crash with its secrets redacted too.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from probes.redaction import MAX_EVIDENCE, MAX_REASON, Redaction
from probes.result import Observation, ProbeResult, Status

log = logging.getLogger(__name__)


class KindSettings(BaseModel):
    """Base of each kind's own keys (`url`, `query`, `expect`, ...); unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


@dataclass(frozen=True)
class SshHost:
    """A `hosts:` entry as the ssh probe needs it; the key passphrase is already resolved."""

    name: str
    address: str
    port: int
    user: str
    key: Path
    known_hosts: Path
    key_passphrase: str | None = None


class HeartbeatLedger(Protocol):
    """Where the heartbeat listener records pings; the heartbeat probe reads it."""

    def last_ping(self, probe_id: str) -> datetime | None: ...

    def failed_at(self, probe_id: str) -> datetime | None:
        """When the job reported failure (`/heartbeat/<id>/fail`) after its last good ping."""
        ...

    def watching_since(self, probe_id: str) -> datetime:
        """When tocsin first watched this job: one that never pinged is late from here on."""
        ...


@dataclass(frozen=True)
class ProbeContext:
    """What probes may use from the process around them (bot builds it)."""

    environ: Mapping[str, str] = field(default_factory=dict)
    hosts: Mapping[str, SshHost] = field(default_factory=dict)
    heartbeats: HeartbeatLedger | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now().astimezone())
    # Masks every secret the process holds (not only those in `environ`) in what probes say.
    redaction: Redaction = field(default_factory=Redaction)


class Probe(ABC):
    """One configured check of one target."""

    kind: ClassVar[str]
    settings_model: ClassVar[type[KindSettings]]

    def __init__(self, probe_id: str, settings: KindSettings, context: ProbeContext) -> None:
        self.probe_id = probe_id
        self.context = context
        self.configure(settings)

    @abstractmethod
    def configure(self, settings: KindSettings) -> None:
        """Keep the typed settings; called once, from the constructor."""

    @property
    @abstractmethod
    def target_host(self) -> str:
        """The host this probe talks to, for per-host concurrency caps."""

    @abstractmethod
    async def observe(self, budget: float) -> Observation:
        """Check the target once; `run_probe` cancels it after `budget` seconds."""

    async def close(self) -> None:  # noqa: B027 - most kinds hold nothing open
        """Release connections kept between runs."""


async def run_probe(probe: Probe, budget: float) -> ProbeResult:
    """Run `probe` once, within `budget` seconds, and time it; never raises."""
    started_at = probe.context.now()
    redaction = probe.context.redaction
    began = time.perf_counter()
    try:
        async with asyncio.timeout(budget):
            observation = await probe.observe(budget)
    except TimeoutError:
        observation = Observation(Status.FAIL, f"no answer within {budget:g}s")
    except Exception as error:  # a probe bug must not stop the schedule
        # The error may quote what a target said: its secrets stay out of the log too.
        log.error("probe %s raised\n%s", probe.probe_id, redaction.redact(traceback.format_exc()))
        observation = Observation(Status.ERROR, f"probe raised {type(error).__name__}: {error}")
    return ProbeResult(
        probe_id=probe.probe_id,
        status=observation.status,
        reason=redaction.clean(observation.reason, MAX_REASON, one_line=True),
        started_at=started_at,
        duration=time.perf_counter() - began,
        measurements=observation.measurements,
        evidence=tuple(
            (label, redaction.clean(text, MAX_EVIDENCE))  # labels are tocsin's own words
            for label, text in observation.evidence
        ),
    )
