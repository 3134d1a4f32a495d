"""Reading incidents: the queries the service offers next to its changes."""

from __future__ import annotations

from collections.abc import Iterable

from incidents.model import Incident, Status, TimelineEvent, parse_incident_id
from incidents.store import IncidentRecords, IncidentStore


class IncidentReads:
    """Read-only access to incidents and their timelines; never takes a write lock."""

    def __init__(self, store: IncidentStore) -> None:
        self._store = store

    async def get(self, incident_id: str) -> Incident:
        number = parse_incident_id(incident_id)
        return await self._store.read(lambda records: records.get(number))

    async def list_incidents(
        self, statuses: Iterable[Status] | None = None, limit: int = 50
    ) -> list[Incident]:
        wanted = None if statuses is None else list(statuses)
        return await self._store.read(lambda records: records.select(wanted, limit))

    async def timeline(self, incident_id: str) -> list[TimelineEvent]:
        number = parse_incident_id(incident_id)

        def work(records: IncidentRecords) -> list[TimelineEvent]:
            records.get(number)
            return records.timeline(number)

        return await self._store.read(work)

    async def find_by_thread(self, channel: str, thread_ts: str) -> Incident | None:
        """The incident whose card is the parent of this Slack thread, if any."""
        return await self._store.read(lambda records: records.by_thread(channel, thread_ts))

    async def event(self, timeline_id: int) -> TimelineEvent:
        return await self._store.read(lambda records: records.event(timeline_id))
