"""What detection knows of the incidents its probes opened, and how it writes to them.

One place holds which group has which open incident and at what severity, and
turns the detector's wishes (add a timeline event, raise the severity, resolve)
into incident-service calls that never stop detection when a person got there
first (an incident already resolved or closed is logged, not raised).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from incidents.errors import IncidentError
from incidents.model import ACTIVE_STATUSES, Incident, Severity, format_incident_id
from incidents.service import IncidentService
from incidents.storm import DETECTOR

log = logging.getLogger(__name__)


class IncidentLinks:
    def __init__(self, service: IncidentService) -> None:
        self._service = service
        self._by_group: dict[str, int] = {}
        self._severity: dict[int, Severity] = {}

    def incident_of(self, group: str) -> int | None:
        return self._by_group.get(group)

    def link(self, group: str, incident: Incident) -> None:
        self._by_group[group] = incident.number
        self._severity[incident.number] = incident.severity

    def forget(self, number: int) -> None:
        self._severity.pop(number, None)
        for group, linked in list(self._by_group.items()):
            if linked == number:
                del self._by_group[group]

    async def active(self, numbers: Iterable[int]) -> dict[int, Incident]:
        """Which of `numbers` are still active; the others (a person ended them) are forgotten."""
        wanted = set(numbers)
        if not wanted:
            return {}
        found = await self._service.list_incidents(ACTIVE_STATUSES, limit=10_000)
        active = {i.number: i for i in found if i.number in wanted}
        for number in wanted - set(active):
            self.forget(number)
        for incident in active.values():
            self._severity[incident.number] = incident.severity
        return active

    async def event(self, number: int, kind: str, text: str) -> None:
        try:
            await self._service.record_event(format_incident_id(number), DETECTOR, kind, text)
        except IncidentError as error:
            log.info("timeline of %s not updated: %s", format_incident_id(number), error)

    async def raise_severity(self, number: int, severity: Severity, why: str) -> None:
        current = self._severity.get(number)
        if current is not None and severity.rank >= current.rank:
            return
        try:
            incident = await self._service.change_severity(
                format_incident_id(number), severity, DETECTOR, why
            )
            self._severity[number] = incident.severity
        except IncidentError as error:
            log.info("severity of %s unchanged: %s", format_incident_id(number), error)

    async def resolve(self, number: int, why: str) -> None:
        try:
            await self._service.resolve(format_incident_id(number), DETECTOR, why)
            log.warning("resolved %s: %s", format_incident_id(number), why)
        except IncidentError as error:
            log.info("not resolving %s: %s", format_incident_id(number), error)
        self.forget(number)
