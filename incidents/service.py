"""The incident service: every change to an incident goes through here.

Each call takes `now` from the Clock, checks the lifecycle table, and writes
the change together with its timeline event in one transaction. Callers
(CLI, Slack, detection) pass an `Actor` so the timeline says who did it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from incidents.clock import Clock
from incidents.errors import IncidentError
from incidents.escalation import EscalationPlanner
from incidents.incident_reads import IncidentReads
from incidents.incident_text import MAX_NOTE, MAX_TITLE, checked_text, not_in_future
from incidents.lifecycle import MILESTONE_OF, PAST_TENSE, Action, next_status
from incidents.model import (
    Actor,
    ClosureReason,
    Incident,
    Milestone,
    Opened,
    Severity,
    Signal,
    Status,
    TimelineEvent,
    parse_incident_id,
)
from incidents.store import (
    MILESTONE_COLUMNS,
    IncidentRecords,
    IncidentStore,
    NewIncident,
)


class IncidentService(IncidentReads):
    def __init__(
        self, store: IncidentStore, clock: Clock, planner: EscalationPlanner | None = None
    ) -> None:
        super().__init__(store)
        self._clock = clock
        self._planner = planner or EscalationPlanner({})

    async def declare(
        self,
        title: str,
        severity: Severity,
        actor: Actor,
        *,
        service: str = "",
        started_at: datetime | None = None,
    ) -> Incident:
        """A person declares an incident: they detected it now; impact may have started earlier."""
        now = self._clock.now()
        clean_title = checked_text("title", title, MAX_TITLE)
        started = not_in_future(started_at, now) if started_at else now
        draft = NewIncident(
            title=clean_title,
            severity=severity,
            service=service,
            dedup_key=None,
            milestones={
                Milestone.STARTED: started,
                Milestone.DETECTED: now,
                Milestone.DECLARED: now,
            },
        )

        def work(records: IncidentRecords) -> Incident:
            number = records.insert(draft, Status.OPEN, now)
            records.append(
                TimelineEvent(
                    number,
                    now,
                    actor,
                    "declared",
                    text=clean_title,
                    field="severity",
                    new=severity.value,
                )
            )
            return self._planned(records, None, number, actor, now)

        return await self._store.write(work)

    async def open_or_update(
        self, signal: Signal, link: Callable[[IncidentRecords, int], None] | None = None
    ) -> Opened:
        """Open the incident for `signal.dedup_key`, or return the active one (raising severity).

        `link(records, number)` runs in the same transaction, so whatever points at the
        incident (the detector's probe states) commits with it or not at all."""
        now = self._clock.now()
        draft = NewIncident(
            title=checked_text("title", signal.title, MAX_TITLE),
            severity=signal.severity,
            service=signal.service,
            dedup_key=signal.dedup_key,
            milestones={
                Milestone.STARTED: signal.started_at,
                Milestone.DETECTED: signal.detected_at,
                Milestone.DECLARED: now,
            },
        )

        def work(records: IncidentRecords) -> Opened:
            opened = change(records)
            if link is not None:
                link(records, opened.incident.number)
            return opened

        def change(records: IncidentRecords) -> Opened:
            existing = records.active_by_key(signal.dedup_key)
            if existing is None:
                # The write lock is held (BEGIN IMMEDIATE), so nobody can insert between the
                # lookup and this insert; the partial unique index still refuses it if so.
                number = records.insert(draft, Status.OPEN, now)
                records.append(
                    TimelineEvent(
                        number,
                        now,
                        signal.actor,
                        "opened",
                        text=signal.reason,
                        field="severity",
                        new=signal.severity.value,
                    )
                )
                return Opened(self._planned(records, None, number, signal.actor, now), True)
            if signal.severity.rank < existing.severity.rank:
                records.change_severity(existing, signal.severity, signal.actor, now, signal.reason)
                return Opened(
                    self._planned(records, existing, existing.number, signal.actor, now), False
                )
            return Opened(records.get(existing.number), created=False)

        return await self._store.write(work)

    async def acknowledge(self, incident_id: str, actor: Actor) -> Incident:
        return await self._transition(incident_id, Action.ACKNOWLEDGE, actor)

    async def mitigate(self, incident_id: str, actor: Actor, note: str = "") -> Incident:
        return await self._transition(incident_id, Action.MITIGATE, actor, note)

    async def resolve(self, incident_id: str, actor: Actor, reason: str = "") -> Incident:
        return await self._transition(incident_id, Action.RESOLVE, actor, reason)

    async def reopen(self, incident_id: str, actor: Actor, reason: str) -> Incident:
        """Reopen a resolved incident; the reason is required so the timeline explains it."""
        text = checked_text("reopen reason", reason, MAX_NOTE)
        return await self._transition(
            incident_id, Action.REOPEN, actor, text, {MILESTONE_COLUMNS[Milestone.RESOLVED]: None}
        )

    async def close(
        self, incident_id: str, actor: Actor, reason: ClosureReason, note: str = ""
    ) -> Incident:
        return await self._transition(
            incident_id, Action.CLOSE, actor, note or reason.value, {"closure_reason": reason}
        )

    async def change_severity(
        self, incident_id: str, severity: Severity, actor: Actor, reason: str = ""
    ) -> Incident:
        number = parse_incident_id(incident_id)
        now = self._clock.now()

        def work(records: IncidentRecords) -> Incident:
            incident = records.get(number)
            if incident.status is Status.CLOSED:
                raise IncidentError(f"{incident.id} is closed; its severity can no longer change")
            if incident.severity is severity:
                raise IncidentError(f"{incident.id} is already {severity.value}")
            records.change_severity(incident, severity, actor, now, reason)
            return self._planned(records, incident, number, actor, now)

        return await self._store.write(work)

    async def set_started(self, incident_id: str, started_at: datetime, actor: Actor) -> Incident:
        """People correct when impact began; the edit is kept in the timeline."""
        number = parse_incident_id(incident_id)
        now = self._clock.now()
        started = not_in_future(started_at, now)

        def work(records: IncidentRecords) -> Incident:
            incident = records.get(number)
            detected = incident.milestones.get(Milestone.DETECTED)
            if detected is not None and started > detected:
                raise IncidentError(
                    f"{incident.id}: started ({started.isoformat()}) cannot be after detected "
                    f"({detected.isoformat()})"
                )
            old = incident.milestones.get(Milestone.STARTED)
            records.update(number, incident.status, now, {"started_at": started})
            records.append(
                TimelineEvent(
                    number,
                    now,
                    actor,
                    "started_edited",
                    field="started",
                    old=old.isoformat() if old else None,
                    new=started.isoformat(),
                )
            )
            return records.get(number)

        return await self._store.write(work)

    async def add_note(self, incident_id: str, actor: Actor, text: str) -> Incident:
        number = parse_incident_id(incident_id)
        now = self._clock.now()
        note = checked_text("note", text, MAX_NOTE)

        def work(records: IncidentRecords) -> Incident:
            records.get(number)
            records.append(TimelineEvent(number, now, actor, "note", text=note))
            return records.get(number)

        return await self._store.write(work)

    async def record_event(self, incident_id: str, actor: Actor, kind: str, text: str) -> None:
        """Append a system event (a probe joined, recovered, started flapping) to the timeline."""
        number = parse_incident_id(incident_id)
        now = self._clock.now()

        def work(records: IncidentRecords) -> None:
            records.get(number)
            records.append(TimelineEvent(number, now, actor, kind, text=text[:MAX_NOTE]))

        await self._store.write(work)

    async def attach_thread(self, incident_id: str, channel: str, thread_ts: str) -> Incident:
        """Remember where the incident's Slack card lives (set once Slack answers)."""
        number = parse_incident_id(incident_id)
        now = self._clock.now()

        def work(records: IncidentRecords) -> Incident:
            incident = records.get(number)
            records.update(
                number, incident.status, now, {"channel": channel, "thread_ts": thread_ts}
            )
            return records.get(number)

        return await self._store.write(work)

    async def _transition(
        self,
        incident_id: str,
        action: Action,
        actor: Actor,
        text: str = "",
        extra: dict[str, Any] | None = None,
    ) -> Incident:
        number = parse_incident_id(incident_id)
        now = self._clock.now()

        def work(records: IncidentRecords) -> Incident:
            incident = records.get(number)
            target = next_status(incident.id, incident.status, action)
            changes: dict[str, Any] = {"status": target, **(extra or {})}
            milestone = MILESTONE_OF.get(action)
            if milestone is not None and (
                milestone is Milestone.RESOLVED or milestone not in incident.milestones
            ):
                changes[MILESTONE_COLUMNS[milestone]] = now
            records.update(number, incident.status, now, changes)
            records.append(
                TimelineEvent(
                    number,
                    now,
                    actor,
                    PAST_TENSE[action],
                    text=text,
                    field="status",
                    old=incident.status.value,
                    new=target.value,
                )
            )
            return self._planned(records, incident, number, actor, now)

        return await self._store.write(work)

    def _planned(
        self,
        records: IncidentRecords,
        before: Incident | None,
        number: int,
        actor: Actor,
        now: datetime,
    ) -> Incident:
        """Re-plan escalation in the same transaction as the change it follows."""
        after = records.get(number)
        self._planner.on_change(records.db, before, after, actor, now)
        return after
