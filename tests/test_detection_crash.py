"""A kill -9 around an incident's opening: the incident and the probe state that points at
it survive together, so recovery after the restart resolves it and the next outage is a new
incident. An incident left open by a state that was never saved still recovers through
detection, after `recover_after` fresh successes, never blindly at start.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlite_utils

from incidents.database import Database
from incidents.detection_rules import DetectionSettings
from incidents.model import Status
from incidents.probe_journal import ProbeJournal
from tests.conftest import ALICE
from tests.detection_harness import Harness, rule
from tests.fakes import FakeClock


async def statuses(harness: Harness) -> list[str]:
    return [f"{i.id} {i.status.value}" for i in await harness.incidents()]


@pytest.mark.parametrize("group_wait", [0, 10])
async def test_a_kill_right_after_opening_still_resolves_and_pages_anew_later(
    database: Database, clock: FakeClock, group_wait: int
) -> None:
    settings = DetectionSettings(group_wait=timedelta(seconds=group_wait))
    harness = Harness(database, clock, [rule("a", fail_after=2, fail_window=2)], settings)
    await harness.feed("a", "f", every=1)
    await harness.journal.flush()  # the once-a-second flush saw the first failure
    await harness.feed("a", "f", every=1)
    if group_wait:
        await harness.journal.flush()  # ... and the probe waiting for its group
        await harness.wait(group_wait)
    assert await statuses(harness) == ["INC-1 open"]
    saved = (await ProbeJournal(database).load_states())["a"]  # what a restart reads
    assert (saved.firing, saved.incident, saved.role) == (True, 1, "member")
    await harness.crash()  # before the next flush
    await harness.feed("a", "oo", every=1)  # healthy again
    assert await statuses(harness) == ["INC-1 resolved"]
    [incident] = await harness.incidents()
    assert (await harness.timeline_kinds(incident))[-2:] == ["recovered", "resolved"]
    await harness.feed("a", "ff", every=1)
    await harness.wait(group_wait)
    assert await statuses(harness) == ["INC-1 resolved", "INC-2 open"]


async def test_a_member_joining_an_open_incident_is_saved_with_its_join(
    database: Database, clock: FakeClock
) -> None:
    rules = [rule(p, fail_after=2, fail_window=2, group="g") for p in ("a", "b")]
    harness = Harness(database, clock, rules, DetectionSettings(group_wait=timedelta(0)))
    await harness.feed("a", "ff", every=1)
    await harness.feed("b", "f", every=1)
    await harness.journal.flush()
    await harness.feed("b", "f", every=1)  # b joins INC-1
    await harness.crash()
    await harness.feed("a", "oo", every=1)
    assert await statuses(harness) == ["INC-1 open"]  # b still fails
    await harness.feed("b", "ff", every=1)
    [incident] = await harness.incidents()
    assert (await harness.timeline_kinds(incident)).count("joined") == 1  # not joined twice
    await harness.feed("b", "oo", every=1)
    assert await statuses(harness) == ["INC-1 resolved"]


async def saved_state(database: Database) -> str:
    def work(db: sqlite_utils.Database) -> str:
        return str(db.execute("SELECT state FROM probe_states").fetchone()[0])

    return await database.run(work)


async def put_state(database: Database, text: str) -> None:
    def work(db: sqlite_utils.Database) -> None:
        db.execute("UPDATE probe_states SET state = ?", [text])

    await database.run(work)


@pytest.mark.parametrize("healthy_at_restart", [True, False])
async def test_an_open_incident_whose_probe_state_was_lost_recovers_through_detection(
    database: Database, clock: FakeClock, healthy_at_restart: bool
) -> None:
    """The file an older tocsin left behind: INC-1 open, its probe saved as merely failing."""
    harness = Harness(
        database,
        clock,
        [rule("a", fail_after=2, fail_window=2)],
        DetectionSettings(group_wait=timedelta(0)),
    )
    await harness.feed("a", "f", every=1)
    await harness.journal.flush()
    before_opening = await saved_state(database)
    await harness.feed("a", "f", every=1)
    await harness.journal.flush()
    await put_state(database, before_opening)
    await harness.crash()
    if not healthy_at_restart:
        await harness.feed("a", "fff", every=1)
        assert await statuses(harness) == ["INC-1 open"]  # still the same outage
    await harness.feed("a", "o", every=1)
    assert await statuses(harness) == ["INC-1 open"]  # one success is not recovery
    await harness.feed("a", "o", every=1)
    assert await statuses(harness) == ["INC-1 resolved"]
    await harness.feed("a", "ff", every=1)
    assert await statuses(harness) == ["INC-1 resolved", "INC-2 open"]


async def test_an_incident_a_person_reopened_is_left_to_people_after_a_restart(
    database: Database, clock: FakeClock
) -> None:
    harness = Harness(
        database,
        clock,
        [rule("a", fail_after=2, fail_window=2)],
        DetectionSettings(group_wait=timedelta(0)),
    )
    await harness.feed("a", "ffoo", every=1)
    await harness.service.reopen("INC-1", ALICE, "customers still see errors")
    await harness.restart()
    await harness.feed("a", "oooo", every=1)
    [incident] = await harness.incidents()
    assert incident.status is Status.OPEN
