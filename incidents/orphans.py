"""Orphaned incidents: open probe incidents that no saved probe state points at.

Detection opens an incident and saves the states pointing at it in one
transaction, but a file written by an older tocsin that was killed before its
journal flush, or a state lost some other way, can leave a probe incident open
with its probes saved as merely failing or healthy. Nothing would ever resolve
it, and the group's next outage would join it. At start such an incident gets
its member probes back, so it ends the normal way: after `recover_after`
successes seen after the restart, never blindly at start.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from incidents.detection_rules import ProbeRule
from incidents.incident_reads import IncidentReads
from incidents.model import ACTIVE_STATUSES, Incident, Milestone
from incidents.probe_journal import ProbeJournal
from incidents.probe_state import ProbeState
from incidents.storm import group_dedup_key

log = logging.getLogger(__name__)


async def adopt_orphans(
    rules: Mapping[str, ProbeRule],
    states: Mapping[str, ProbeState],
    incidents: IncidentReads,
    journal: ProbeJournal,
) -> list[tuple[str, Incident]]:
    """Point the member probes of each orphaned incident at it; returns (probe, incident)."""
    groups = {group_dedup_key(rule.group_key): rule.group_key for rule in rules.values()}
    pointed = {s.incident for s in states.values() if s.role == "member" and s.incident}
    adopted: list[tuple[str, Incident]] = []
    for incident in await incidents.list_incidents(ACTIVE_STATUSES, limit=10_000):
        group = groups.get(incident.dedup_key or "")
        if group is None or incident.number in pointed:
            continue
        for probe_id in await _members(incident, group, rules, journal):
            state = states[probe_id]
            if state.incident is not None:
                continue
            _adopt(state, incident)
            adopted.append((probe_id, incident))
            log.warning(
                "%s was open with no probe state pointing at it; %s watches it again: %d "
                "successes resolve it",
                incident.id,
                probe_id,
                rules[probe_id].recover_after,
            )
    return adopted


async def _members(
    incident: Incident, group: str, rules: Mapping[str, ProbeRule], journal: ProbeJournal
) -> list[str]:
    """Members not yet recovered; a probe that recovered before a person reopened the
    incident has none left, so a reopened incident stays with people. Without any rows
    (written apart from the incident by older versions) the group's probes stand in."""
    rows = await journal.incident_probes(incident.number)
    if rows:
        wanted = [p for p, role, recovered in rows if role == "member" and not recovered]
    else:
        wanted = sorted(rules)
    return [p for p in wanted if p in rules and rules[p].group_key == group]


def _adopt(state: ProbeState, incident: Incident) -> None:
    if not state.firing:
        state.ok_streak = 0  # successes from before the restart do not count
    state.firing, state.incident, state.role = True, incident.number, "member"
    state.pushed = incident.severity
    state.detected_at = state.detected_at or incident.milestones.get(Milestone.DETECTED)
