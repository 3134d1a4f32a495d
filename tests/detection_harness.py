"""A small driver for detection tests: feed result sequences, move a fake clock, restart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from incidents.database import Database
from incidents.detection import Detection
from incidents.detection_rules import DetectionSettings, ProbeRule
from incidents.maintenance import ActiveWindow
from incidents.model import Incident, Severity, TimelineEvent
from incidents.probe_journal import ProbeJournal
from incidents.service import IncidentService
from incidents.store import IncidentStore
from probes.result import Measurement, ProbeResult, Status
from tests.fakes import FakeClock

STATUS_OF = {"o": Status.OK, "f": Status.FAIL, "e": Status.ERROR}


def rule(probe_id: str, **changes: object) -> ProbeRule:
    base: dict[str, object] = {
        "probe_id": probe_id,
        "severity": Severity.P2,
        "interval": timedelta(seconds=30),
        "timeout": timedelta(seconds=5),
    }
    base.update(changes)
    return ProbeRule(**base)  # type: ignore[arg-type]


@dataclass
class FixedWindows:
    """A maintenance calendar of one-off windows: (probe ids, start, end, reason)."""

    windows: list[tuple[set[str], datetime, datetime, str]]

    def window_for(self, probe_id: str, at: datetime) -> ActiveWindow | None:
        for probes, start, end, reason in self.windows:
            if probe_id in probes and start <= at < end:
                return ActiveWindow(reason, end)
        return None


class Harness:
    def __init__(
        self,
        database: Database,
        clock: FakeClock,
        rules: list[ProbeRule],
        settings: DetectionSettings | None = None,
        maintenance: FixedWindows | None = None,
    ) -> None:
        self.database, self.clock, self.rules = database, clock, rules
        self.settings, self.maintenance = settings or DetectionSettings(), maintenance
        self.service = IncidentService(IncidentStore(database), clock)
        self.detection = self._new()

    def _new(self) -> Detection:
        self.journal = ProbeJournal(self.database)
        return Detection(
            self.rules, self.service, self.journal, self.clock, self.settings, self.maintenance
        )

    async def feed(
        self, probe_id: str, statuses: str, *, every: float = 30, value: float | None = None
    ) -> None:
        """One result per letter (o ok, f fail, e error), `every` seconds apart, ticking between."""
        for letter in statuses:
            measurements = () if value is None else (Measurement("value", value, "%"),)
            await self.detection.observe(
                ProbeResult(
                    probe_id=probe_id,
                    status=STATUS_OF[letter],
                    reason=f"{probe_id} said {letter}",
                    started_at=self.clock.now(),
                    duration=0.01,
                    measurements=measurements,
                )
            )
            await self.wait(every)

    async def wait(self, seconds: float) -> None:
        self.clock.advance(seconds=seconds)
        await self.detection.tick()

    async def restart(self) -> None:
        """Flush as the running process would, then build a fresh detector from the file."""
        await self.journal.flush()
        self.detection = self._new()
        await self.detection.restore()

    async def crash(self) -> None:
        """Lose what the journal has not flushed, as a kill -9 would, then start again."""
        self.detection = self._new()
        await self.detection.restore()

    async def incidents(self) -> list[Incident]:
        return sorted(await self.service.list_incidents(limit=100), key=lambda i: i.number)

    async def timeline_kinds(self, incident: Incident) -> list[str]:
        events: list[TimelineEvent] = await self.service.timeline(incident.id)
        return [event.kind for event in events]
