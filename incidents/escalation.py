"""Escalation: who is paged, when, and the guarantee that nobody is paged after an ack.

`EscalationPlanner.on_change` runs inside the incident service's transaction,
so acknowledging an incident and cancelling its pending steps commit together:
the delivery ticker, which takes the same write lock, can never deliver a step
the ack already cancelled. Delivery writes the step's state, its timeline event
and its direct messages in one transaction too, so a restart delivers a step
that fell due while tocsin was down exactly once (marked late).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlite_utils

from incidents.clock import Clock
from incidents.database import Database, write_transaction
from incidents.escalation_policy import PlannedStep, Policy, QuietAction, plan_pages
from incidents.escalation_store import EscalationRecords, Step
from incidents.lifecycle import Action, next_status
from incidents.model import Actor, Incident, Milestone, Severity, Source, Status, TimelineEvent
from incidents.outbox import OutboxRecords
from incidents.store import IncidentRecords

log = logging.getLogger(__name__)

ESCALATION = Actor(Source.SYSTEM, "escalation", "escalation")
LATE_AFTER = timedelta(seconds=60)
USER_ID_PREFIXES = ("U", "W")


class EscalationPlanner:
    """Keeps each incident's pending steps in line with its status and severity."""

    def __init__(self, policies: Mapping[Severity, Policy]) -> None:
        self.policies = dict(policies)

    def on_change(
        self,
        db: sqlite_utils.Database,
        before: Incident | None,
        after: Incident,
        actor: Actor,
        now: datetime,
    ) -> None:
        steps = EscalationRecords(db)
        number = after.number
        if before is None or (before.status is not Status.OPEN and after.status is Status.OPEN):
            steps.cancel(number, now)
            start = now if before is not None else _declared(after, now)
            self._plan(steps, after, start, now)
            return
        if not after.status.is_active:
            steps.cancel(number, now)
            return
        if after.status is not before.status and after.status is Status.ACKNOWLEDGED:
            steps.cancel(number, now)
            self.plan_reminder(steps, number, _paged_person(actor), now, unanswered=0)
            return
        if after.severity is not before.severity:
            policy = self.policies.get(after.severity)
            if policy is None:
                steps.cancel(number, now, ("page",))
                return
            steps.snapshot(number, after.severity, policy, now)
            if after.status is Status.OPEN:
                already = steps.delivered_targets(number)
                steps.cancel(number, now, ("page",))
                fresh = [
                    _not_before(step, now)
                    for step in plan_pages(policy, _declared(after, now))
                    if step.due_at > now or not set(step.targets) <= already
                ]
                steps.add(number, "page", fresh)

    def _plan(
        self, steps: EscalationRecords, incident: Incident, start: datetime, now: datetime
    ) -> None:
        policy = self.policies.get(incident.severity)
        if policy is None:
            return
        steps.snapshot(incident.number, incident.severity, policy, now)
        steps.add(incident.number, "page", [_not_before(s, now) for s in plan_pages(policy, start)])

    def plan_reminder(
        self,
        steps: EscalationRecords,
        number: int,
        targets: tuple[str, ...],
        now: datetime,
        *,
        unanswered: int,
    ) -> None:
        policy = steps.policy_of(number)
        if policy is None or policy.remind_every is None or not targets:
            return
        # `round` of a reminder: 1 + the reminders already delivered without an answer.
        step = PlannedStep(unanswered + 1, 0, targets, now + policy.remind_every)
        steps.add(number, "reminder", [step])


class Escalation:
    """Delivers due steps, escalates on demand, and previews policies."""

    def __init__(
        self, database: Database, planner: EscalationPlanner, clock: Clock, zone: ZoneInfo
    ) -> None:
        self._database = database
        self._planner = planner
        self._clock = clock
        self._zone = zone

    async def deliver_due(self) -> int:
        """Deliver every step that is due now; returns how many were delivered."""
        now = self._clock.now()

        def work(db: sqlite_utils.Database) -> int:
            with write_transaction(db):
                return sum(self._deliver(db, step, now) for step in EscalationRecords(db).due(now))

        return await self._database.run(work)

    async def escalate_now(self, number: int, actor: Actor) -> Step | None:
        """Bring the next page forward to now (later pages keep their spacing)."""
        now = self._clock.now()

        def work(db: sqlite_utils.Database) -> Step | None:
            with write_transaction(db):
                incident = IncidentRecords(db).get(number)
                steps = EscalationRecords(db)
                pages = [s for s in steps.pending(number) if not s.is_reminder]
                if not pages:
                    policy = steps.policy_of(number) or self._planner.policies.get(
                        incident.severity
                    )
                    if policy is None:
                        return None
                    level = policy.levels[-1]
                    steps.add(
                        number, "page", [PlannedStep(0, len(policy.levels), level.targets, now)]
                    )
                    pages = [s for s in steps.pending(number) if not s.is_reminder]
                shift = max(pages[0].due_at - now, timedelta(0))
                for step in pages:
                    steps.move(step.id, step.due_at - shift)
                IncidentRecords(db).append(
                    TimelineEvent(number, now, actor, "escalate_requested", text="escalate now")
                )
                return steps.pending(number)[0]

        return await self._database.run(work)

    async def next_step(self, number: int) -> Step | None:
        def work(db: sqlite_utils.Database) -> Step | None:
            pending = EscalationRecords(db).pending(number)
            return pending[0] if pending else None

        return await self._database.run(work)

    def preview(
        self, severity: Severity, start: datetime
    ) -> tuple[Policy | None, list[PlannedStep]]:
        """The steps an incident of `severity` declared at `start` would get."""
        policy = self._planner.policies.get(severity)
        if policy is None:
            return None, []
        return policy, plan_pages(policy, start)

    def _deliver(self, db: sqlite_utils.Database, step: Step, now: datetime) -> int:
        records = IncidentRecords(db)
        steps = EscalationRecords(db)
        incident = records.get(step.incident_number)
        wanted = Status.ACKNOWLEDGED if step.is_reminder else None
        if not incident.status.is_active or (wanted and incident.status is not wanted):
            steps.finish(step.id, "cancelled", now)
            return 0
        policy = steps.policy_of(incident.number)
        if not step.is_reminder and policy is not None and 0 < step.level <= len(policy.levels):
            quiet = policy.levels[step.level - 1].quiet
            if quiet is not None and quiet.covers(now, self._zone):
                if quiet.action is QuietAction.DELAY:
                    steps.move(step.id, quiet.ends_after(now, self._zone))
                    return 0
                steps.finish(step.id, "skipped", now)
                records.append(
                    TimelineEvent(
                        incident.number,
                        now,
                        ESCALATION,
                        "escalation_skipped",
                        text=f"level {step.level} skipped: quiet hours {quiet.shown()}",
                    )
                )
                return 0
        unanswered = 0  # reminders delivered since a person last did anything
        if step.is_reminder and policy is not None and policy.remind_every is not None:
            since = step.due_at - policy.remind_every
            answered = records.person_activity_since(incident.number, since)
            unanswered = 0 if answered else step.round - 1
            if policy.unacknowledge_after and unanswered >= policy.unacknowledge_after:
                self._unacknowledge(db, incident, now)
                steps.finish(step.id, "cancelled", now)
                return 0
        late = now - step.due_at > LATE_AFTER
        if not steps.finish(step.id, "delivered", now, late=late):
            return 0
        kind = "reminder" if step.is_reminder else "escalated"
        text = "reminder while acknowledged" if step.is_reminder else self._level_text(step, policy)
        if late:
            text += f", late: was due {step.due_at.astimezone(self._zone):%H:%M %Z}"
        records.append(
            TimelineEvent(
                incident.number, now, ESCALATION, kind, text=text, new=" ".join(step.targets)
            )
        )
        outbox = OutboxRecords(db)
        for target in step.targets:
            if target.startswith(USER_ID_PREFIXES):
                outbox.dm(incident.number, target, text, f"step{step.id}:{target}", now)
        if step.is_reminder:
            self._planner.plan_reminder(
                steps, incident.number, step.targets, now, unanswered=unanswered + 1
            )
        return 1

    def _unacknowledge(self, db: sqlite_utils.Database, incident: Incident, now: datetime) -> None:
        records = IncidentRecords(db)
        target = next_status(incident.id, incident.status, Action.UNACKNOWLEDGE)
        records.update(incident.number, incident.status, now, {"status": target})
        records.append(
            TimelineEvent(
                incident.number,
                now,
                ESCALATION,
                "unacknowledged",
                text="nobody answered the reminders; escalating again",
                field="status",
                old=incident.status.value,
                new=target.value,
            )
        )
        self._planner.on_change(db, incident, records.get(incident.number), ESCALATION, now)

    @staticmethod
    def _level_text(step: Step, policy: Policy | None) -> str:
        levels = len(policy.levels) if policy else step.level
        rounds = policy.repeat + 1 if policy else 1
        text = f"level {step.level} of {levels}"
        return text + (f", round {step.round} of {rounds}" if rounds > 1 and step.round else "")


def _declared(incident: Incident, now: datetime) -> datetime:
    return incident.milestones.get(Milestone.DECLARED, now)


def _not_before(step: PlannedStep, now: datetime) -> PlannedStep:
    """A step planned in the past is due now, not skipped."""
    if step.due_at >= now:
        return step
    return PlannedStep(step.round, step.level, step.targets, now)


def _paged_person(actor: Actor) -> tuple[str, ...]:
    """Reminders go to whoever acknowledged, when that is a Slack user."""
    if actor.source is Source.SLACK and ":" in actor.id:
        return (actor.id.split(":", 1)[1],)
    return ()
