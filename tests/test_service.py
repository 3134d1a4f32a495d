"""The incident service against a real SQLite file: milestones, timeline, dedup, errors."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from incidents.database import Database
from incidents.errors import IllegalTransitionError, IncidentError, IncidentNotFoundError
from incidents.model import ClosureReason, Milestone, Severity, Signal, Status
from incidents.service import IncidentService
from incidents.store import IncidentStore
from tests.conftest import ALICE, BOB, PROBE
from tests.fakes import FakeClock


def shop_down(clock: FakeClock, severity: Severity = Severity.P1) -> Signal:
    first_failure = clock.now() - timedelta(seconds=90)
    return Signal(
        dedup_key="probe:shop-home",
        title="shop-home: HTTP 502",
        severity=severity,
        service="shop",
        started_at=first_failure,
        detected_at=clock.now() - timedelta(seconds=30),
        actor=PROBE,
        reason="3 consecutive failures: status 502, expected 200",
    )


async def test_declare_sets_people_milestones_and_first_timeline_event(
    service: IncidentService, clock: FakeClock
) -> None:
    incident = await service.declare("Checkout returns 500", Severity.P1, ALICE, service="shop")

    assert incident.id == "INC-1"
    assert incident.status is Status.OPEN
    assert incident.milestones == {
        Milestone.STARTED: clock.now(),
        Milestone.DETECTED: clock.now(),
        Milestone.DECLARED: clock.now(),
    }
    assert incident.participants == (ALICE,)
    [event] = await service.timeline("INC-1")
    assert (event.kind, event.actor, event.text, event.new) == (
        "declared",
        ALICE,
        "Checkout returns 500",
        "P1",
    )


async def test_ids_count_up_and_are_never_reused(service: IncidentService) -> None:
    first = await service.declare("one", Severity.P3, ALICE)
    second = await service.declare("two", Severity.P3, ALICE)
    await service.close(first.id, ALICE, ClosureReason.CANCELLED)
    third = await service.declare("three", Severity.P3, ALICE)
    assert [first.id, second.id, third.id] == ["INC-1", "INC-2", "INC-3"]


async def test_full_lifecycle_records_each_milestone_at_its_time(
    service: IncidentService, clock: FakeClock
) -> None:
    signal = shop_down(clock)
    opened = await service.open_or_update(signal)
    assert opened.created
    incident = opened.incident
    assert incident.milestones[Milestone.STARTED] == signal.started_at
    assert incident.milestones[Milestone.DETECTED] == signal.detected_at
    assert incident.milestones[Milestone.DECLARED] == clock.now()

    acked_at = clock.advance(minutes=4)
    await service.acknowledge(incident.id, ALICE)
    mitigated_at = clock.advance(minutes=10)
    await service.mitigate(incident.id, ALICE, "restarted php-fpm")
    resolved_at = clock.advance(minutes=5)
    await service.resolve(incident.id, PROBE, "2 successes")
    closed_at = clock.advance(hours=1)
    closed = await service.close(incident.id, BOB, ClosureReason.RESOLVED)

    assert closed.status is Status.CLOSED
    assert closed.closure_reason is ClosureReason.RESOLVED
    assert closed.milestones[Milestone.ACKNOWLEDGED] == acked_at
    assert closed.milestones[Milestone.MITIGATED] == mitigated_at
    assert closed.milestones[Milestone.RESOLVED] == resolved_at
    assert closed.milestones[Milestone.CLOSED] == closed_at
    assert set(closed.participants) == {ALICE, BOB}, "probes are not participants"

    timeline = await service.timeline(incident.id)
    assert [(e.kind, e.old, e.new) for e in timeline] == [
        ("opened", None, "P1"),
        ("acknowledged", "open", "acknowledged"),
        ("mitigated", "acknowledged", "mitigated"),
        ("resolved", "mitigated", "resolved"),
        ("closed", "resolved", "closed"),
    ]
    assert timeline[0].text == signal.reason
    assert timeline[2].text == "restarted php-fpm"
    assert [e.at for e in timeline] == sorted(e.at for e in timeline)


async def test_open_or_update_returns_the_active_incident_and_only_raises_severity(
    service: IncidentService, clock: FakeClock
) -> None:
    first = await service.open_or_update(shop_down(clock, Severity.P2))
    clock.advance(seconds=30)
    again = await service.open_or_update(shop_down(clock, Severity.P3))
    assert not again.created
    assert again.incident.number == first.incident.number
    assert again.incident.severity is Severity.P2, "a milder signal never lowers severity"

    worse = await service.open_or_update(shop_down(clock, Severity.P0))
    assert worse.incident.severity is Severity.P0
    kinds = [(e.kind, e.old, e.new) for e in await service.timeline(first.incident.id)]
    assert kinds == [("opened", None, "P2"), ("severity_changed", "P2", "P0")]


async def test_a_resolved_incident_frees_its_dedup_key(
    service: IncidentService, clock: FakeClock
) -> None:
    first = await service.open_or_update(shop_down(clock))
    await service.resolve(first.incident.id, PROBE)
    second = await service.open_or_update(shop_down(clock))
    assert second.created
    assert second.incident.number != first.incident.number


async def test_concurrent_open_or_update_for_one_key_yields_one_incident(
    service: IncidentService, clock: FakeClock
) -> None:
    results = await asyncio.gather(*(service.open_or_update(shop_down(clock)) for _ in range(40)))
    assert len({r.incident.number for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert len(await service.list_incidents()) == 1


async def test_two_processes_worth_of_writers_still_yield_one_incident(
    db_path: Path, clock: FakeClock, database: Database
) -> None:
    """Separate connections on separate threads race on one file: the index decides."""
    others = [await Database.open(db_path) for _ in range(3)]
    services = [IncidentService(IncidentStore(d), clock) for d in [database, *others]]
    try:
        results = await asyncio.gather(
            *(s.open_or_update(shop_down(clock)) for s in services for _ in range(10))
        )
    finally:
        for other in others:
            await other.close()
    assert len({r.incident.number for r in results}) == 1
    assert sum(r.created for r in results) == 1


async def test_reopen_needs_a_reason_and_clears_resolution(
    service: IncidentService, clock: FakeClock
) -> None:
    incident = await service.declare("Orders failing", Severity.P2, ALICE)
    await service.resolve(incident.id, ALICE, "gateway back")
    with pytest.raises(IncidentError, match="reopen reason is empty"):
        await service.reopen(incident.id, ALICE, "  ")
    clock.advance(minutes=3)
    reopened = await service.reopen(incident.id, BOB, "failing again")
    assert reopened.status is Status.OPEN
    assert Milestone.RESOLVED not in reopened.milestones
    final = clock.advance(minutes=7)
    resolved = await service.resolve(incident.id, BOB)
    assert resolved.milestones[Milestone.RESOLVED] == final


async def test_acknowledged_milestone_keeps_its_first_time_after_reopen(
    service: IncidentService, clock: FakeClock
) -> None:
    incident = await service.declare("Slow shop", Severity.P2, ALICE)
    first_ack = clock.advance(minutes=1)
    await service.acknowledge(incident.id, ALICE)
    await service.resolve(incident.id, ALICE)
    await service.reopen(incident.id, ALICE, "slow again")
    clock.advance(minutes=5)
    again = await service.acknowledge(incident.id, BOB)
    assert again.milestones[Milestone.ACKNOWLEDGED] == first_ack


async def test_illegal_transition_changes_nothing(service: IncidentService) -> None:
    incident = await service.declare("Disk full", Severity.P1, ALICE)
    with pytest.raises(IllegalTransitionError, match=r"INC-1 is open; it cannot be mitigated"):
        await service.mitigate(incident.id, ALICE)
    assert (await service.get("INC-1")).status is Status.OPEN
    assert [e.kind for e in await service.timeline("INC-1")] == ["declared"]


async def test_unknown_incident_is_a_clear_error(service: IncidentService) -> None:
    with pytest.raises(IncidentNotFoundError, match="no incident INC-99"):
        await service.acknowledge("INC-99", ALICE)
    with pytest.raises(IncidentNotFoundError, match="'SHOP-1' is not an incident id"):
        await service.get("SHOP-1")


async def test_severity_change_is_audited_and_refused_when_pointless(
    service: IncidentService,
) -> None:
    incident = await service.declare("Cache cold", Severity.P3, ALICE)
    changed = await service.change_severity(incident.id, Severity.P1, BOB, "checkout slow too")
    assert changed.severity is Severity.P1
    last = (await service.timeline(incident.id))[-1]
    assert (last.kind, last.old, last.new, last.text, last.actor) == (
        "severity_changed",
        "P3",
        "P1",
        "checkout slow too",
        BOB,
    )
    with pytest.raises(IncidentError, match="already P1"):
        await service.change_severity(incident.id, Severity.P1, BOB)
    await service.close(incident.id, BOB, ClosureReason.FALSE_POSITIVE)
    with pytest.raises(IncidentError, match="closed"):
        await service.change_severity(incident.id, Severity.P0, BOB)


async def test_started_is_editable_by_people_and_audited(
    service: IncidentService, clock: FakeClock
) -> None:
    incident = await service.declare("Import failed", Severity.P1, ALICE)
    declared_start = incident.milestones[Milestone.STARTED]
    earlier = clock.now() - timedelta(minutes=25)
    edited = await service.set_started(incident.id, earlier, BOB)
    assert edited.milestones[Milestone.STARTED] == earlier
    last = (await service.timeline(incident.id))[-1]
    assert (last.kind, last.field, last.old, last.new, last.actor) == (
        "started_edited",
        "started",
        declared_start.isoformat(),
        earlier.isoformat(),
        BOB,
    )
    detected = incident.milestones[Milestone.DETECTED]
    clock.advance(minutes=10)
    with pytest.raises(IncidentError, match="cannot be after detected"):
        await service.set_started(incident.id, detected + timedelta(minutes=1), BOB)
    with pytest.raises(IncidentError, match="in the future"):
        await service.set_started(incident.id, clock.now() + timedelta(hours=1), BOB)


async def test_notes_are_kept_in_order_and_empty_notes_refused(service: IncidentService) -> None:
    incident = await service.declare("Redis evictions", Severity.P2, ALICE)
    await service.add_note(incident.id, ALICE, "maxmemory at 95%")
    await service.add_note(incident.id, BOB, "raised maxmemory to 4gb")
    with pytest.raises(IncidentError, match="note is empty"):
        await service.add_note(incident.id, BOB, "")
    notes = [(e.actor, e.text) for e in await service.timeline(incident.id) if e.kind == "note"]
    assert notes == [(ALICE, "maxmemory at 95%"), (BOB, "raised maxmemory to 4gb")]


async def test_list_filters_by_status_newest_first(service: IncidentService) -> None:
    one = await service.declare("one", Severity.P3, ALICE)
    two = await service.declare("two", Severity.P2, ALICE)
    three = await service.declare("three", Severity.P1, ALICE)
    await service.acknowledge(two.id, ALICE)
    await service.resolve(three.id, ALICE)
    assert [i.id for i in await service.list_incidents()] == [three.id, two.id, one.id]
    active = await service.list_incidents({Status.OPEN, Status.ACKNOWLEDGED})
    assert [i.id for i in active] == [two.id, one.id]
    assert [i.id for i in await service.list_incidents(limit=1)] == [three.id]


async def test_attach_thread_remembers_where_the_card_lives(service: IncidentService) -> None:
    incident = await service.declare("Card", Severity.P3, ALICE)
    assert (incident.channel, incident.thread_ts) == (None, None)
    attached = await service.attach_thread(incident.id, "C0123", "1732353600.000100")
    assert (attached.channel, attached.thread_ts) == ("C0123", "1732353600.000100")
