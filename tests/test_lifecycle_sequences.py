"""Random action sequences through the real service agree with the lifecycle table."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from incidents.database import Database
from incidents.errors import IllegalTransitionError
from incidents.lifecycle import SYSTEM_ACTIONS, Action
from incidents.model import ClosureReason, Incident, Milestone, Severity, Status
from incidents.service import IncidentService
from incidents.store import IncidentStore
from tests.conftest import ALICE
from tests.fakes import FakeClock
from tests.test_lifecycle import EXPECTED


async def apply(service: IncidentService, incident_id: str, action: Action) -> Incident:
    if action is Action.ACKNOWLEDGE:
        return await service.acknowledge(incident_id, ALICE)
    if action is Action.MITIGATE:
        return await service.mitigate(incident_id, ALICE)
    if action is Action.RESOLVE:
        return await service.resolve(incident_id, ALICE)
    if action is Action.REOPEN:
        return await service.reopen(incident_id, ALICE, "failing again")
    return await service.close(incident_id, ALICE, ClosureReason.RESOLVED)


def check_milestones(incident: Incident) -> None:
    """Milestones a status implies are present; a reopened incident has no resolution."""
    reached = incident.milestones
    assert {Milestone.STARTED, Milestone.DETECTED, Milestone.DECLARED} <= set(reached)
    if incident.status is Status.ACKNOWLEDGED:
        assert Milestone.ACKNOWLEDGED in reached
    if incident.status is Status.MITIGATED:
        assert {Milestone.ACKNOWLEDGED, Milestone.MITIGATED} <= set(reached)
    if incident.status is Status.RESOLVED:
        assert Milestone.RESOLVED in reached
    if incident.status is Status.OPEN:
        assert Milestone.RESOLVED not in reached
    assert (Milestone.CLOSED in reached) == (incident.status is Status.CLOSED)


async def play(actions: list[Action], folder: Path) -> None:
    clock = FakeClock()
    database = await Database.open(folder / "tocsin.db")
    try:
        service = IncidentService(IncidentStore(database), clock)
        incident = await service.declare("Shop down", Severity.P1, ALICE)
        status = Status.OPEN
        applied = 1
        for action in actions:
            clock.advance(minutes=1)
            expected = EXPECTED.get((status, action))
            if expected is None:
                try:
                    await apply(service, incident.id, action)
                except IllegalTransitionError:
                    pass
                else:
                    raise AssertionError(f"{action} from {status} was allowed")
                continue
            incident = await apply(service, incident.id, action)
            applied += 1
            assert incident.status is expected
            status = expected
            check_milestones(incident)
        timeline = await service.timeline(incident.id)
        assert len(timeline) == applied, "refused actions leave no trace"
    finally:
        await database.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([a for a in Action if a not in SYSTEM_ACTIONS]), max_size=12))
def test_random_sequences_follow_the_table(actions: list[Action]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(play(actions, Path(folder)))
