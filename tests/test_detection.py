"""Detection sequences with a fake clock against a real SQLite store.

Each case feeds results (o ok, f fail, e error; 30 s apart) and checks the
incidents a user would see afterwards: status, severity and the probes attached
(`child~` marks a symptom).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from incidents.database import Database
from incidents.detection_rules import DetectionSettings, ProbeRule, SeverityStep
from incidents.model import Milestone, Severity, Status
from tests.detection_harness import FixedWindows, Harness, rule
from tests.fakes import FakeClock

CASES: list[tuple[str, list[ProbeRule], list[str], list[str]]] = [
    ("two failures stay quiet", [rule("a")], ["a:ff"], []),
    ("three failures open after group_wait", [rule("a")], ["a:fff"], ["open P2 a"]),
    ("a success resets the streak", [rule("a")], ["a:ffoff"], []),
    ("one success is not recovery", [rule("a")], ["a:fffo"], ["open P2 a"]),
    ("recover_after successes resolve", [rule("a")], ["a:fffoo"], ["resolved P2 a"]),
    ("fail_after 1", [rule("a", fail_after=1, fail_window=1)], ["a:f"], ["open P2 a"]),
    ("k of n opens on scattered failures", [rule("a", fail_window=5)], ["a:fofof"], ["open P2 a"]),
    ("k of n needs k", [rule("a", fail_window=5)], ["a:fooof"], []),
    ("errors never open", [rule("a")], ["a:eeeeeeee"], []),
    ("errors do not break a streak", [rule("a")], ["a:fefef"], ["open P2 a"]),
    (
        "a probe failing again after recovery opens a new incident",
        [rule("a")],
        ["a:fffoo", "a:fff"],
        ["resolved P2 a", "open P2 a"],
    ),
    (
        "storm: one group, later failures join",
        [rule(p, group="service=shop", service="shop") for p in ("a", "b", "c", "d")],
        ["a:f", "b:f", "c:f", "a:ff", "b:ff", "c:ff", "wait 600", "d:fff"],
        ["open P2 a,b,c,d"],
    ),
    (
        "different groups open different incidents",
        [rule("a", group="service=shop"), rule("b", group="service=blog")],
        ["a:fff", "b:fff"],
        ["open P2 a", "open P2 b"],
    ),
    (
        "group resolves only when every member recovered",
        [rule(p, group="service=shop") for p in ("a", "b")],
        ["a:fff", "b:fff", "a:oo"],
        ["open P2 a,b"],
    ),
    (
        "the group takes the highest member severity",
        [rule("a", group="g"), rule("b", group="g", severity=Severity.P0)],
        ["a:fff", "b:fff"],
        ["open P0 a,b"],
    ),
    (
        "a failing child of an open parent is a symptom",
        [rule("db"), rule("web", depends_on=("db",))],
        ["db:fff", "web:fff"],
        ["open P2 db,web~"],
    ),
    (
        "a child waits for a failing parent, then becomes its symptom",
        [rule("db", fail_after=4, fail_window=4), rule("web", depends_on=("db",))],
        ["db:f", "web:fff", "db:fff"],
        ["open P2 db,web~"],
    ),
    (
        "a symptom's recovery goes through, the parent stays open",
        [rule("db"), rule("web", depends_on=("db",))],
        ["db:fff", "web:fff", "web:oo"],
        ["open P2 db,web~"],
    ),
    (
        "a child whose parent recovered pages on its own",
        [rule("db"), rule("web", depends_on=("db",))],
        ["db:fff", "web:fff", "db:oo", "web:f"],
        ["resolved P2 db,web~", "open P2 web"],
    ),
    (
        "a child of a healthy parent pages",
        [rule("db"), rule("web", depends_on=("db",))],
        ["db:o", "web:fff"],
        ["open P2 web"],
    ),
    (
        "restart in the middle of a streak keeps it",
        [rule("a")],
        ["a:ff", "restart", "a:f"],
        ["open P2 a"],
    ),
    (
        "restart after opening neither re-pages nor forgets",
        [rule("a")],
        ["a:fff", "restart", "a:fff", "restart", "a:oo"],
        ["resolved P2 a"],
    ),
    (
        "restart while grouping still opens",
        [rule("a")],
        ["a:ff", "a:f 1", "restart", "wait 30"],
        ["open P2 a"],
    ),
]


def summary(status: Status, severity: Severity, members: list[tuple[str, str, bool]]) -> str:
    names = ",".join(p + ("~" if role == "symptom" else "") for p, role, _ in members)
    return f"{status.value} {severity.value} {names}"


async def run_case(harness: Harness, steps: list[str]) -> list[str]:
    for step in steps:
        if step == "restart":
            await harness.restart()
        elif step.startswith("wait "):
            await harness.wait(float(step.split()[1]))
        else:
            probe, rest = step.split(":")
            letters, _, every = rest.partition(" ")
            await harness.feed(probe, letters, every=float(every or 30))
    shown = []
    for incident in await harness.incidents():
        members = await harness.journal.incident_probes(incident.number)
        shown.append(summary(incident.status, incident.severity, members))
    return shown


@pytest.mark.parametrize(
    ("rules", "steps", "expected"),
    [pytest.param(r, s, e, id=name) for name, r, s, e in CASES],
)
async def test_detection_sequence(
    database: Database,
    clock: FakeClock,
    rules: list[ProbeRule],
    steps: list[str],
    expected: list[str],
) -> None:
    harness = Harness(database, clock, rules)
    assert await run_case(harness, steps) == expected


async def test_opened_incident_dates_the_first_failure_and_detection(
    database: Database, clock: FakeClock
) -> None:
    harness = Harness(database, clock, [rule("a")])
    first_failure = clock.now()
    await harness.feed("a", "fff")
    [incident] = await harness.incidents()
    assert incident.milestones[Milestone.STARTED] == first_failure
    assert incident.milestones[Milestone.DETECTED] == first_failure + timedelta(seconds=60)
    assert incident.milestones[Milestone.DECLARED] == first_failure + timedelta(seconds=90)
    assert incident.title == "a failing: a said f"


async def test_group_wait_zero_opens_at_the_threshold(database: Database, clock: FakeClock) -> None:
    harness = Harness(database, clock, [rule("a")], DetectionSettings(group_wait=timedelta(0)))
    await harness.feed("a", "fff", every=0)
    assert [i.status for i in await harness.incidents()] == [Status.OPEN]


async def test_flapping_yields_one_incident_marked_flapping(
    database: Database, clock: FakeClock
) -> None:
    """ffo repeated would open and resolve every third sample without damping."""
    rules = [rule("a", fail_after=2, fail_window=2, recover_after=1)]
    harness = Harness(database, clock, rules)
    await harness.feed("a", "ffo" * 12)
    incidents = await harness.incidents()
    assert len(incidents) <= 3  # the first cycles, before the window knows it flaps
    flapping = [i for i in incidents if "flapping" in await harness.timeline_kinds(i)]
    assert len(flapping) == 1
    assert flapping[0].status is Status.OPEN
    assert harness.detection.states["a"].flapping
    before = len(incidents)
    await harness.feed("a", "ffo" * 6)
    assert len(await harness.incidents()) == before  # still the same incident, not new pairs
    await harness.feed("a", "o" * 20)
    assert [i.status for i in await harness.incidents()][-1] is Status.RESOLVED
    assert not harness.detection.states["a"].flapping


async def test_flapping_without_reaching_the_threshold_opens_one_incident(
    database: Database, clock: FakeClock
) -> None:
    harness = Harness(database, clock, [rule("a")])
    await harness.feed("a", "fo" * 15)
    [incident] = await harness.incidents()
    assert incident.status is Status.OPEN
    assert "flapping" in incident.title or "flapping" in await harness.timeline_kinds(incident)


async def test_maintenance_suppresses_then_opens_at_window_end(
    database: Database, clock: FakeClock
) -> None:
    start = clock.now()
    end = start + timedelta(minutes=10)
    calendar = FixedWindows([({"a"}, start, end, "weekly backup")])
    harness = Harness(database, clock, [rule("a")], maintenance=calendar)
    await harness.feed("a", "ffff")
    assert await harness.incidents() == []
    assert harness.detection.states["a"].health == "suppressed"
    clock.advance(seconds=(end - clock.now()).total_seconds())
    await harness.detection.tick()  # the window has just ended: no need to wait for a sample
    await harness.wait(11)
    [incident] = await harness.incidents()
    assert incident.status is Status.OPEN


async def test_a_probe_held_back_by_maintenance_is_told_to_its_groups_incident(
    database: Database, clock: FakeClock
) -> None:
    start = clock.now() + timedelta(minutes=5)
    calendar = FixedWindows([({"b"}, start, start + timedelta(hours=1), "php upgrade")])
    rules = [rule("a", group="service=shop"), rule("b", group="service=shop")]
    harness = Harness(database, clock, rules, maintenance=calendar)
    await harness.feed("a", "fff")
    await harness.wait(11)
    [incident] = await harness.incidents()
    await harness.wait((start - clock.now()).total_seconds())
    await harness.feed("b", "ffff")  # held back on each result, told once
    assert harness.detection.states["b"].health == "suppressed"
    kinds = await harness.timeline_kinds(incident)
    assert kinds.count("suppressed") == 1


async def test_maintenance_recovery_inside_the_window_stays_quiet(
    database: Database, clock: FakeClock
) -> None:
    start = clock.now()
    end = start + timedelta(minutes=10)
    calendar = FixedWindows([({"a"}, start, end, "weekly backup")])
    harness = Harness(database, clock, [rule("a")], maintenance=calendar)
    await harness.feed("a", "ffffoo")
    await harness.wait((end - clock.now()).total_seconds() + 60)
    assert await harness.incidents() == []


async def test_maintenance_never_blocks_resolution(database: Database, clock: FakeClock) -> None:
    start = clock.now() + timedelta(minutes=3)
    calendar = FixedWindows([({"a"}, start, start + timedelta(hours=1), "upgrade")])
    harness = Harness(database, clock, [rule("a")], maintenance=calendar)
    await harness.feed("a", "fff")
    assert clock.now() < start
    await harness.wait(120)
    await harness.feed("a", "oo")
    assert [i.status for i in await harness.incidents()] == [Status.RESOLVED]


async def test_severity_ladder_raises_and_says_why(database: Database, clock: FakeClock) -> None:
    ladder = (SeverityStep("value", Severity.P1, above=95),)
    harness = Harness(database, clock, [rule("disk", ladder=ladder)])
    await harness.feed("disk", "fff", value=90)
    [incident] = await harness.incidents()
    assert incident.severity is Severity.P2
    await harness.feed("disk", "f", value=97)
    [incident] = await harness.incidents()
    assert incident.severity is Severity.P1
    events = await harness.service.timeline(incident.id)
    raised = [e for e in events if e.kind == "severity_changed"]
    assert raised[-1].text == "value 97 above 95 (severity ladder)"
    await harness.feed("disk", "f", value=88)
    [incident] = await harness.incidents()
    assert incident.severity is Severity.P1  # the highest severity reached stays


async def test_a_person_resolving_a_failing_incident_lets_it_page_again(
    database: Database, clock: FakeClock
) -> None:
    from tests.conftest import ALICE

    harness = Harness(database, clock, [rule("a")])
    await harness.feed("a", "fff")
    [incident] = await harness.incidents()
    await harness.service.resolve(incident.id, ALICE, "looked fine to me")
    await harness.wait(30)
    await harness.feed("a", "f")
    incidents = await harness.incidents()
    assert [i.status for i in incidents] == [Status.RESOLVED, Status.OPEN]


async def test_symptoms_and_recoveries_are_in_the_parent_timeline(
    database: Database, clock: FakeClock
) -> None:
    harness = Harness(database, clock, [rule("db"), rule("web", depends_on=("db",))])
    await harness.feed("db", "fff")
    await harness.feed("web", "fffoo")
    await harness.feed("db", "oo")
    [incident] = await harness.incidents()
    kinds = await harness.timeline_kinds(incident)
    assert kinds == ["opened", "symptom", "symptom_recovered", "recovered", "resolved"]


async def test_history_keeps_samples_and_state_changes(
    database: Database, clock: FakeClock
) -> None:
    harness = Harness(database, clock, [rule("a")])
    await harness.feed("a", "offfoo")
    history = await harness.journal.history("a")
    assert [s.status.value for s in history.samples] == list(
        "offfoo".replace("o", "ok ").replace("f", "fail ").split()
    )
    assert [(c.old, c.new) for c in history.changes] == [
        ("unknown", "ok"),
        ("ok", "failing"),
        ("failing", "pending"),
        ("pending", "firing"),
        ("firing", "ok"),
    ]
