"""Escalation against the real service and SQLite, with a fake clock."""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils

from incidents.database import Database
from incidents.escalation import Escalation, EscalationPlanner
from incidents.escalation_policy import Level, Policy, QuietAction, QuietHours
from incidents.model import Severity, Status
from incidents.service import IncidentService
from incidents.store import IncidentStore
from tests.conftest import ALICE
from tests.fakes import FakeClock

UTC = ZoneInfo("UTC")
P1_POLICY = Policy(
    levels=(
        Level(("@oncall",), timedelta(0)),
        Level(("U0LEAD",), timedelta(minutes=15)),
    )
)


def desk(
    database: Database, clock: FakeClock, policies: dict[Severity, Policy]
) -> tuple[IncidentService, Escalation]:
    planner = EscalationPlanner(policies)
    service = IncidentService(IncidentStore(database), clock, planner)
    return service, Escalation(database, planner, clock, UTC)


async def events(database: Database, number: int, kind: str) -> list[dict[str, object]]:
    def work(db: sqlite_utils.Database) -> list[dict[str, object]]:
        return list(
            db.query(
                "SELECT * FROM timeline WHERE incident_number = ? AND kind = ? ORDER BY id",
                [number, kind],
            )
        )

    return await database.run(work)


async def dms(database: Database) -> list[str]:
    def work(db: sqlite_utils.Database) -> list[str]:
        return [r["recipient"] for r in db.query("SELECT recipient FROM outbox WHERE kind='dm'")]

    return await database.run(work)


async def test_levels_are_delivered_in_turn_with_a_dm_to_user_targets(
    database: Database, clock: FakeClock
) -> None:
    service, escalation = desk(database, clock, {Severity.P1: P1_POLICY})
    incident = await service.declare("checkout down", Severity.P1, ALICE)
    assert await escalation.deliver_due() == 1
    first = await events(database, incident.number, "escalated")
    assert [e["new"] for e in first] == ["@oncall"]
    assert await dms(database) == []

    clock.advance(minutes=14)
    assert await escalation.deliver_due() == 0
    clock.advance(minutes=1)
    assert await escalation.deliver_due() == 1
    assert [e["new"] for e in await events(database, incident.number, "escalated")] == [
        "@oncall",
        "U0LEAD",
    ]
    assert await dms(database) == ["U0LEAD"]
    assert await escalation.next_step(incident.number) is None


async def test_acknowledge_cancels_steps_even_one_already_due(
    database: Database, clock: FakeClock
) -> None:
    service, escalation = desk(database, clock, {Severity.P1: P1_POLICY})
    incident = await service.declare("checkout down", Severity.P1, ALICE)
    await escalation.deliver_due()
    clock.advance(minutes=20)  # level 2 is due, but the ticker has not run yet
    await service.acknowledge(incident.id, ALICE)
    assert await escalation.deliver_due() == 0
    clock.advance(hours=5)
    assert await escalation.deliver_due() == 0
    assert len(await events(database, incident.number, "escalated")) == 1
    assert await escalation.next_step(incident.number) is None


async def test_resolve_cancels_and_a_restart_delivers_a_missed_step_once_marked_late(
    database: Database, clock: FakeClock
) -> None:
    service, escalation = desk(database, clock, {Severity.P1: P1_POLICY})
    incident = await service.declare("checkout down", Severity.P1, ALICE)
    other = await service.declare("search slow", Severity.P1, ALICE)
    await escalation.deliver_due()
    await service.resolve(other.id, ALICE, "fixed")
    clock.advance(minutes=40)  # tocsin was down when level 2 fell due
    _, restarted = desk(database, clock, {Severity.P1: P1_POLICY})
    assert await restarted.deliver_due() == 1
    assert await restarted.deliver_due() == 0
    late = await events(database, incident.number, "escalated")
    assert "late: was due" in str(late[-1]["text"])
    assert len(await events(database, other.number, "escalated")) == 1


async def test_severity_change_replans_from_the_new_policy(
    database: Database, clock: FakeClock
) -> None:
    p0 = Policy(levels=(Level(("@oncall",), timedelta(0)), Level(("@sre",), timedelta(minutes=5))))
    p3 = Policy(levels=(Level(("@web",), timedelta(hours=1)),))
    service, escalation = desk(database, clock, {Severity.P0: p0, Severity.P3: p3})
    incident = await service.declare("coupon page slow", Severity.P3, ALICE)
    assert await escalation.deliver_due() == 0
    clock.advance(minutes=6)
    await service.change_severity(incident.id, Severity.P0, ALICE, "checkout affected")
    assert await escalation.deliver_due() == 2  # both P0 levels were already due
    targets = [e["new"] for e in await events(database, incident.number, "escalated")]
    assert targets == ["@oncall", "@sre"]
    clock.advance(hours=2)
    assert await escalation.deliver_due() == 0  # the P3 step is gone


@pytest.mark.parametrize("action", [QuietAction.SKIP, QuietAction.DELAY])
async def test_quiet_hours_skip_or_delay_a_level(
    database: Database, clock: FakeClock, action: QuietAction
) -> None:
    quiet = QuietHours(time(8, 0), time(10, 0), action)  # the fake clock starts at 09:00 UTC
    policy = Policy(levels=(Level(("@oncall",), timedelta(0), quiet),))
    service, escalation = desk(database, clock, {Severity.P2: policy})
    incident = await service.declare("stock sync late", Severity.P2, ALICE)
    assert await escalation.deliver_due() == 0
    clock.advance(hours=1, minutes=1)
    delivered = await escalation.deliver_due()
    if action is QuietAction.SKIP:
        assert delivered == 0
        assert len(await events(database, incident.number, "escalation_skipped")) == 1
    else:
        assert delivered == 1
        assert len(await events(database, incident.number, "escalated")) == 1


async def test_repeat_runs_the_ladder_again(database: Database, clock: FakeClock) -> None:
    policy = Policy(levels=(Level(("@oncall",), timedelta(0)),), repeat=2)
    service, escalation = desk(database, clock, {Severity.P0: policy})
    incident = await service.declare("shop down", Severity.P0, ALICE)
    delivered = 0
    for _ in range(4):
        delivered += await escalation.deliver_due()
        clock.advance(minutes=5)
    assert delivered == 3
    texts = [e["text"] for e in await events(database, incident.number, "escalated")]
    assert texts[-1] == "level 1 of 1, round 3 of 3"


async def test_reminders_then_unacknowledge_when_nobody_answers(
    database: Database, clock: FakeClock
) -> None:
    policy = Policy(
        levels=(Level(("@oncall",), timedelta(0)),),
        remind_every=timedelta(minutes=30),
        unacknowledge_after=1,
    )
    service, escalation = desk(database, clock, {Severity.P1: policy})
    incident = await service.declare("orders stuck", Severity.P1, ALICE)
    await escalation.deliver_due()
    await service.acknowledge(incident.id, ALICE)
    clock.advance(minutes=30)
    assert await escalation.deliver_due() == 1
    reminder = await events(database, incident.number, "reminder")
    assert reminder[0]["new"] == "U01ALICE"
    clock.advance(minutes=30)
    await escalation.deliver_due()
    assert (await service.get(incident.id)).status is Status.OPEN
    assert len(await events(database, incident.number, "unacknowledged")) == 1
    assert await escalation.deliver_due() == 1  # paged again from level 1
    assert len(await events(database, incident.number, "escalated")) == 2


async def test_an_answer_keeps_the_acknowledgement(database: Database, clock: FakeClock) -> None:
    policy = Policy(
        levels=(Level(("@oncall",), timedelta(0)),),
        remind_every=timedelta(minutes=30),
        unacknowledge_after=1,
    )
    service, escalation = desk(database, clock, {Severity.P1: policy})
    incident = await service.declare("orders stuck", Severity.P1, ALICE)
    await service.acknowledge(incident.id, ALICE)
    for _ in range(4):
        clock.advance(minutes=30)
        await escalation.deliver_due()
        await service.add_note(incident.id, ALICE, "still on it")
    assert (await service.get(incident.id)).status is Status.ACKNOWLEDGED
    assert len(await events(database, incident.number, "reminder")) == 4


async def test_escalate_now_brings_the_next_level_forward(
    database: Database, clock: FakeClock
) -> None:
    service, escalation = desk(database, clock, {Severity.P1: P1_POLICY})
    incident = await service.declare("checkout down", Severity.P1, ALICE)
    await escalation.deliver_due()
    clock.advance(minutes=2)
    step = await escalation.escalate_now(incident.number, ALICE)
    assert step is not None and step.due_at == clock.now()
    assert await escalation.deliver_due() == 1
    assert await dms(database) == ["U0LEAD"]
