"""Detection: probe results in, incidents opened, joined and resolved out.

The hot path (`observe`) is in-memory arithmetic on the probe's state; only a
change of verdict touches the incident service. Verdict changes run under one
lock so that a storm of simultaneous failures cannot open two incidents for
one group. `tick()` (about once a second) opens groups whose `group_wait` has
passed and re-checks probes held back by a maintenance window or a failing
parent, so a window's end or a parent's incident takes effect at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from incidents.clock import Clock
from incidents.dependencies import failing_ancestor, parent_incident
from incidents.detection_rules import DetectionSettings, ProbeRule
from incidents.incident_links import IncidentLinks
from incidents.maintenance import MaintenanceCalendar, NoMaintenance
from incidents.model import format_incident_id
from incidents.orphans import adopt_orphans
from incidents.probe_journal import ProbeJournal, StateChange
from incidents.probe_state import Health, ProbeState
from incidents.service import IncidentService
from incidents.storm import PendingGroup, group_signal
from probes.durations import format_duration
from probes.result import ProbeResult, Status

log = logging.getLogger(__name__)

REFRESH_EVERY = timedelta(seconds=10)


class Detection:
    def __init__(
        self,
        rules: Iterable[ProbeRule],
        service: IncidentService,
        journal: ProbeJournal,
        clock: Clock,
        settings: DetectionSettings | None = None,
        maintenance: MaintenanceCalendar | None = None,
    ) -> None:
        self.rules = {rule.probe_id: rule for rule in rules}
        self.settings = settings or DetectionSettings()
        self._service = service
        self._journal = journal
        self._clock = clock
        self._maintenance = maintenance or NoMaintenance()
        self.states: dict[str, ProbeState] = {p: ProbeState(p) for p in self.rules}
        self._pending: dict[str, PendingGroup] = {}
        self._links = IncidentLinks(service)
        self._held: set[str] = set()  # threshold met, held back by maintenance or a parent
        self._lock = asyncio.Lock()
        self._refreshed: datetime | None = None

    async def restore(self) -> None:
        """Resume streaks and incident links saved before a restart."""
        saved = await self._journal.load_states()
        for probe_id, state in saved.items():
            if probe_id in self.rules:
                self.states[probe_id] = state
        await self._refresh_incidents(force=True)
        for probe_id, incident in await adopt_orphans(
            self.rules, self.states, self._service, self._journal
        ):
            self._links.link(self.rules[probe_id].group_key, incident)
            self._set_health(self.states[probe_id], Health.FIRING, f"{incident.id} (restart)")
            self._journal.state(self.states[probe_id])
        now = self._clock.now()
        for probe_id, state in self.states.items():
            if state.firing and state.incident is None:
                self._add_pending(probe_id, now)
            elif state.health in (Health.PENDING, Health.SUPPRESSED):
                self._held.add(probe_id)

    async def observe(self, result: ProbeResult) -> None:
        rule = self.rules[result.probe_id]
        state = self.states[result.probe_id]
        state.add(result, rule, self.settings.history)
        self._journal.sample(result)
        flap = state.update_flapping(self.settings)
        if flap is not None or self._needs_decision(rule, state, result):
            async with self._lock:
                await self._decide(rule, state, result, flap)
        elif not state.firing and state.health not in (Health.PENDING, Health.SUPPRESSED):
            self._set_health(state, _quiet_health(result))
        self._journal.state(state)

    def mark_stale(self, probe_id: str, reason: str) -> None:
        """A run was late or skipped: count it so it cannot vanish silently."""
        state = self.states[probe_id]
        state.stale_runs += 1
        state.stale = True
        self._journal.change(
            StateChange(probe_id, self._clock.now(), state.health.value, "stale", reason)
        )
        self._journal.state(state)

    async def tick(self) -> None:
        now = self._clock.now()
        async with self._lock:
            await self._refresh_incidents()
            for group in [g for g, p in self._pending.items() if p.deadline <= now]:
                await self._open_group(group)
            for probe_id in sorted(self._held):
                await self._retry_held(probe_id, now)

    # -- decisions -----------------------------------------------------------------------

    def _needs_decision(self, rule: ProbeRule, state: ProbeState, result: ProbeResult) -> bool:
        if result.status is Status.ERROR:
            return False
        if state.firing:
            return state.meets_recover(rule) or (
                result.status is Status.FAIL
                and state.incident is not None
                and state.role == "member"
                and state.severity is not None
                and (state.pushed is None or state.severity.rank < state.pushed.rank)
            )
        return result.status is Status.FAIL and state.meets_open(rule)

    async def _decide(
        self, rule: ProbeRule, state: ProbeState, result: ProbeResult, flap: bool | None
    ) -> None:
        now = self._clock.now()
        if flap is not None and state.incident is not None:
            words = "started flapping" if flap else "stopped flapping"
            percent = state.flap_percent(self.settings)
            await self._links.event(
                state.incident,
                "flapping",
                f"{rule.probe_id} {words} ({percent:.0f}% state changes)",
            )
        if state.firing:
            if state.meets_recover(rule) and not state.flapping:
                await self._recover(rule, state, now)
            elif state.role == "member":
                await self._push_severity(state, state.severity_reason)
            return
        flapping_now = flap is True
        if flapping_now or (result.status is Status.FAIL and state.meets_open(rule)):
            why = (
                f"flapping: {state.flap_percent(self.settings):.0f}% state changes in the last "
                f"{len(state.recent)} results"
                if flapping_now and not state.meets_open(rule)
                else state.fail_reason
            )
            await self._fire(rule, state, now, why)

    async def _fire(
        self, rule: ProbeRule, state: ProbeState, now: datetime, why: str, *, at_once: bool = False
    ) -> None:
        """The threshold is met: suppress, attach as a symptom, hold, join or start a group
        (or open it `at_once`, for a probe that already waited out a maintenance window)."""
        window = self._maintenance.window_for(rule.probe_id, now)
        if window is not None:
            note = f"maintenance until {window.ends_at.isoformat()}: {window.reason}"
            number = state.incident or self._links.incident_of(rule.group_key)
            if state.health is not Health.SUPPRESSED and number is not None:
                # the incident's thread learns what is held back (before it counts as told)
                await self._links.event(
                    number, "suppressed", f"{rule.probe_id} failing: {why}; {note}"
                )
            self._hold(state, Health.SUPPRESSED, note)
            return
        parent = parent_incident(rule, self.rules, self.states)
        if parent is not None:
            state.firing, state.incident, state.role = True, parent, "symptom"
            state.detected_at = state.detected_at or now
            self._held.discard(rule.probe_id)
            self._set_health(state, Health.SYMPTOM, f"symptom of {format_incident_id(parent)}")
            await self._journal.join(parent, rule.probe_id, "symptom", now, why, state)
            await self._links.event(parent, "symptom", f"{rule.probe_id} failing: {why}")
            return
        failing_parent = failing_ancestor(rule, self.rules, self.states)
        if failing_parent is not None:
            self._hold(state, Health.PENDING, f"waiting for parent {failing_parent}")
            return
        self._held.discard(rule.probe_id)
        state.firing = True
        state.detected_at = state.detected_at or now
        state.note = why
        group = rule.group_key
        number = self._links.incident_of(group)
        if number is not None:
            await self._join(number, rule, state, now, why)
            return
        self._add_pending(rule.probe_id, now)
        self._set_health(
            state, Health.PENDING, f"grouping for {format_duration(self.settings.group_wait)}"
        )
        if at_once or self.settings.group_wait <= timedelta(0):
            await self._open_group(group)

    def _add_pending(self, probe_id: str, now: datetime) -> None:
        group = self.rules[probe_id].group_key
        pending = self._pending.setdefault(group, PendingGroup(now + self.settings.group_wait))
        if probe_id not in pending.members:
            pending.members.append(probe_id)

    async def _open_group(self, group: str) -> None:
        pending = self._pending.pop(group)
        members = [
            p for p in pending.members if self.states[p].firing and self.states[p].incident is None
        ]
        now = self._clock.now()
        for probe_id in [p for p in members if self._maintenance.window_for(p, now) is not None]:
            # A window began while the group waited: the held re-check (this very tick)
            # suppresses the probe and tells the group's incident, if one opens now.
            members.remove(probe_id)
            self.states[probe_id].firing, self.states[probe_id].detected_at = False, None
            self._held.add(probe_id)
        if not members:
            return
        states = [self.states[p] for p in members]
        signal = group_signal(group, [self.rules[p] for p in members], states, now)
        write = self._journal.members_writer(states, now)
        async with self._journal.paused():  # the states saved with the incident stay newest
            try:
                opened = await self._service.open_or_update(
                    signal, lambda records, number: write(records.db, number)
                )
            except Exception:
                # Keep the group: the next tick tries again, so a busy store cannot lose a page.
                self._pending[group] = pending
                log.exception("could not open the incident of %s; retrying", group)
                return
            number = opened.incident.number
            for state in states:
                state.incident, state.role, state.pushed = number, "member", state.severity
                self._set_health(state, Health.FIRING, format_incident_id(number))
        self._links.link(group, opened.incident)
        for probe_id, state in zip(members, states, strict=True):
            if not opened.created:
                await self._links.event(
                    number, "joined", f"{probe_id} failing: {state.fail_reason}"
                )
            if state.flapping:
                percent = state.flap_percent(self.settings)
                await self._links.event(
                    number, "flapping", f"{probe_id} is flapping ({percent:.0f}% state changes)"
                )
            self._journal.state(state)
        if opened.created:
            incident = opened.incident
            log.warning("opened %s [%s] %s", incident.id, incident.severity.value, incident.title)

    async def _join(
        self, number: int, rule: ProbeRule, state: ProbeState, now: datetime, why: str
    ) -> None:
        state.incident, state.role = number, "member"
        self._set_health(state, Health.FIRING, format_incident_id(number))
        await self._journal.join(number, rule.probe_id, "member", now, why, state)
        await self._links.event(number, "joined", f"{rule.probe_id} failing: {why}")
        await self._push_severity(state, state.severity_reason)

    async def _push_severity(self, state: ProbeState, why: str) -> None:
        """Raise the incident to this member's severity; remember it, so a person's
        later downgrade sticks until the probe itself gets worse."""
        if state.incident is None or state.severity is None:
            return
        state.pushed = state.severity
        reason = why or f"{state.probe_id} is {state.severity.value}"
        await self._links.raise_severity(state.incident, state.severity, reason)

    async def _recover(self, rule: ProbeRule, state: ProbeState, now: datetime) -> None:
        number, role = state.incident, state.role
        state.clear_episode()
        state.counted = 0  # failures before a recovery never count towards the next incident
        self._set_health(state, Health.OK, "recovered")
        for pending in self._pending.values():
            if rule.probe_id in pending.members:
                pending.members.remove(rule.probe_id)
        if number is None:
            return
        # No flush until the incident has ended: a kill before that must find the state
        # still pointing at it, so the restarted detector resolves it again.
        async with self._journal.paused():
            await self._journal.recovered(number, rule.probe_id, now)
            kind = "symptom_recovered" if role == "symptom" else "recovered"
            text = f"{rule.probe_id} recovered: {state.last_reason}"
            await self._links.event(number, kind, text)
            still = [
                p
                for p, s in self.states.items()
                if s.incident == number and s.role == "member" and s.firing
            ]
            if role == "member" and not still:
                await self._links.resolve(number, "all probes recovered")

    async def _retry_held(self, probe_id: str, now: datetime) -> None:
        rule, state = self.rules[probe_id], self.states[probe_id]
        still_failing = state.last_status is Status.FAIL or state.flapping
        if state.firing or not still_failing or not (state.meets_open(rule) or state.flapping):
            self._held.discard(probe_id)
            if not state.firing:
                self._set_health(
                    state,
                    Health.OK if state.last_status is Status.OK else Health.FAILING,
                    "recovered while held",
                )
            return
        # A window's end releases what it held back at once: the probe has waited long enough.
        at_once = state.health is Health.SUPPRESSED
        await self._fire(rule, state, now, state.fail_reason, at_once=at_once)
        self._journal.state(state)

    def _hold(self, state: ProbeState, health: Health, note: str) -> None:
        self._held.add(state.probe_id)
        self._set_health(state, health, note)

    # -- dependencies and incidents ------------------------------------------------------

    async def _refresh_incidents(self, *, force: bool = False) -> None:
        """Notice incidents a person resolved or closed, so their probes can page again."""
        now = self._clock.now()
        if not force and self._refreshed is not None and now - self._refreshed < REFRESH_EVERY:
            return
        self._refreshed = now
        linked = {s.incident for s in self.states.values() if s.incident is not None}
        active = await self._links.active(linked)
        for state in self.states.values():
            if state.incident is None:
                continue
            if state.incident in active:
                if state.role == "member":
                    self._links.link(self.rules[state.probe_id].group_key, active[state.incident])
                continue
            ended = format_incident_id(state.incident)
            state.clear_episode()
            health = Health.FAILING if state.last_status is Status.FAIL else Health.OK
            self._set_health(state, health, f"{ended} ended")
            self._journal.state(state)

    def _set_health(self, state: ProbeState, health: Health, note: str = "") -> None:
        if state.health is not health:
            self._journal.change(
                StateChange(
                    state.probe_id,
                    self._clock.now(),
                    state.health.value,
                    health.value,
                    note or state.last_reason,
                )
            )
            log.info(
                "probe %s: %s -> %s (%s)",
                state.probe_id,
                state.health,
                health,
                note or state.last_reason,
            )
            state.health = health
        if note:
            state.note = note


def _quiet_health(result: ProbeResult) -> Health:
    if result.status is Status.ERROR:
        return Health.ERROR
    return Health.FAILING if result.status is Status.FAIL else Health.OK
