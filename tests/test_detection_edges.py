"""Detection edge cases: a store that refuses once, people overriding severity, symptoms,
flapping inside a maintenance window, k of n across a recovery, a window starting while a
group waits, the reason a flapping incident quotes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from incidents.database import Database
from incidents.detection_rules import DetectionSettings
from incidents.model import Milestone, Opened, Severity, Signal, Status
from incidents.service import IncidentService
from incidents.store import IncidentRecords, IncidentStore
from probes.result import ProbeResult
from probes.result import Status as ResultStatus
from tests.conftest import ALICE
from tests.detection_harness import FixedWindows, Harness, rule
from tests.fakes import FakeClock


class BusyOnceService(IncidentService):
    """The incident service, with the store refusing the first open as a busy SQLite would."""

    refused = 0

    async def open_or_update(
        self, signal: Signal, link: Callable[[IncidentRecords, int], None] | None = None
    ) -> Opened:
        if not self.refused:
            self.refused += 1
            raise TimeoutError("database is locked")
        return await super().open_or_update(signal, link)


async def test_an_open_refused_once_is_retried_on_the_next_tick(
    database: Database, clock: FakeClock
) -> None:
    harness = Harness(database, clock, [rule("a")])
    harness.service = BusyOnceService(IncidentStore(database), clock)
    harness.detection = harness._new()
    await harness.feed("a", "fff")
    await harness.wait(1)
    assert [i.status for i in await harness.incidents()] == [Status.OPEN]
    assert harness.service.refused == 1


async def test_a_persons_downgrade_sticks_until_the_probe_gets_worse(
    database: Database, clock: FakeClock
) -> None:
    harness = Harness(database, clock, [rule("a")])
    await harness.feed("a", "fff")
    [incident] = await harness.incidents()
    await harness.service.change_severity(incident.id, Severity.P3, ALICE, "only the blog")
    await harness.wait(11)
    await harness.feed("a", "ff")
    [incident] = await harness.incidents()
    assert incident.severity is Severity.P3


async def test_a_symptom_never_raises_its_parents_severity(
    database: Database, clock: FakeClock
) -> None:
    rules = [rule("db"), rule("web", depends_on=("db",), severity=Severity.P0)]
    harness = Harness(database, clock, rules)
    await harness.feed("db", "fff")
    await harness.feed("web", "ffff")
    [incident] = await harness.incidents()
    assert incident.severity is Severity.P2


async def test_flapping_through_a_maintenance_window_opens_one_incident_after_it(
    database: Database, clock: FakeClock
) -> None:
    end = clock.now() + timedelta(minutes=21)
    harness = Harness(
        database, clock, [rule("a")], maintenance=FixedWindows([({"a"}, clock.now(), end, "x")])
    )
    await harness.feed("a", "fo" * 20)  # 20 minutes
    assert await harness.incidents() == []
    await harness.feed("a", "fo" * 20)
    [incident] = await harness.incidents()
    assert incident.status is Status.OPEN
    assert incident.milestones[Milestone.DECLARED] == end


async def test_k_of_n_counts_no_failure_from_before_a_recovery(
    database: Database, clock: FakeClock
) -> None:
    harness = Harness(database, clock, [rule("a", fail_window=5)])
    await harness.feed("a", "fffoo")
    await harness.feed("a", "f")
    assert [i.status for i in await harness.incidents()] == [Status.RESOLVED]
    await harness.feed("a", "of")
    assert [i.status for i in await harness.incidents()] == [Status.RESOLVED, Status.OPEN]


async def test_a_group_pending_when_a_window_starts_opens_only_at_the_windows_end(
    database: Database, clock: FakeClock
) -> None:
    """The threshold is met just before the window; `group_wait` runs out inside it."""
    start = clock.now() + timedelta(seconds=2.5)
    end = start + timedelta(minutes=10)
    harness = Harness(
        database,
        clock,
        [rule("a", fail_after=2, fail_window=2, interval=timedelta(seconds=2))],
        DetectionSettings(group_wait=timedelta(seconds=1)),
        maintenance=FixedWindows([({"a"}, start, end, "deploy")]),
    )
    await harness.feed("a", "f", every=2)
    await harness.feed("a", "f", every=0.5)
    assert (clock.now(), harness.detection.states["a"].health) == (start, "pending")
    await harness.feed("a", "f" * 20, every=2)  # group_wait ends inside the window
    assert await harness.incidents() == []
    assert harness.detection.states["a"].health == "suppressed"
    await harness.wait((end - clock.now()).total_seconds())  # one tick at the window's end
    [incident] = await harness.incidents()
    assert incident.status is Status.OPEN
    assert incident.milestones[Milestone.DECLARED] == end  # at once: it waited long enough


async def test_a_window_starting_while_a_group_waits_holds_back_only_the_probes_it_covers(
    database: Database, clock: FakeClock
) -> None:
    start = clock.now() + timedelta(seconds=65)
    end = start + timedelta(minutes=10)
    harness = Harness(
        database,
        clock,
        [rule("a", group="service=shop"), rule("b", group="service=shop")],
        DetectionSettings(group_wait=timedelta(seconds=30)),
        maintenance=FixedWindows([({"b"}, start, end, "php upgrade")]),
    )
    await harness.feed("a", "ff", every=0)
    await harness.feed("b", "fff", every=0)
    await harness.feed("a", "f", every=70)  # both pending; the window starts for b
    [incident] = await harness.incidents()
    assert [p for p, _, _ in await harness.journal.incident_probes(incident.number)] == ["a"]
    assert harness.detection.states["b"].health == "suppressed"
    assert "suppressed" in await harness.timeline_kinds(incident)
    await harness.feed("b", "f", every=0)
    await harness.wait((end - clock.now()).total_seconds())
    members = await harness.journal.incident_probes(incident.number)
    assert [p for p, _, _ in members] == ["a", "b"]


async def test_a_flapping_incident_quotes_its_latest_failure_not_the_last_result(
    database: Database, clock: FakeClock
) -> None:
    harness = Harness(database, clock, [rule("flappy")])
    failures = iter(["HTTP 502", "HTTP 503", "HTTP 504"])
    for letter in "ofofofo":  # flapping starts with the last result, an ok one
        failed = letter == "f"
        await harness.detection.observe(
            ProbeResult(
                probe_id="flappy",
                status=ResultStatus.FAIL if failed else ResultStatus.OK,
                reason=next(failures) if failed else "HTTP 200 in 0.404 ms",
                started_at=clock.now(),
                duration=0.01,
            )
        )
        await harness.wait(30)
    [incident] = await harness.incidents()
    assert incident.title == "flappy failing: HTTP 504 (flapping)"
