"""Ad-hoc maintenance windows: the book on real SQLite, `/maint`, and detection held back."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config.model import MaintenanceWindow
from bot.maintenance_calendar import CombinedCalendar, ConfiguredCalendar
from bot.slash_maint import MaintReply, run_maint
from incidents.database import Database
from incidents.detection import Detection
from incidents.maintenance_book import (
    InvalidWindowError,
    MaintenanceBook,
    WindowNotFoundError,
    WindowOverError,
)
from incidents.model import Actor, Status
from incidents.probe_journal import ProbeJournal
from incidents.service import IncidentService
from incidents.store import IncidentStore
from probes.result import ProbeResult
from probes.result import Status as ResultStatus
from tests.conftest import ALICE, BOB
from tests.detection_harness import rule
from tests.fakes import FakeClock

BERLIN = ZoneInfo("Europe/Berlin")
PROBES = ("shop-home", "shop-db", "blog-home")
NO_CONFIG = ConfiguredCalendar([], BERLIN)
# Monday 23 Nov 2026, 09:30 to 12:00 in Berlin; the fake clock starts at 10:00 Berlin.
MOVE = {"probes": ["shop-*"], "start": "2026-11-23T09:30:00", "end": "2026-11-23T12:00:00"}
CONFIG = ConfiguredCalendar(
    [MaintenanceWindow.model_validate({**MOVE, "reason": "datacentre move"})], BERLIN
)


@pytest.fixture
def book(database: Database, clock: FakeClock) -> MaintenanceBook:
    return MaintenanceBook(database, clock)


async def maint(
    text: str,
    book: MaintenanceBook,
    clock: FakeClock,
    *,
    actor: Actor = ALICE,
    configured: ConfiguredCalendar = NO_CONFIG,
) -> MaintReply:
    return await run_maint(text, actor, book, configured, PROBES, BERLIN, clock.now())


# -- the book ---------------------------------------------------------------------------


async def test_a_window_covers_matching_probes_only(
    book: MaintenanceBook, clock: FakeClock
) -> None:
    window = await book.add(["shop-*", "blog-db"], timedelta(hours=1), "deploy", ALICE)
    assert window.globs == ("shop-*", "blog-db")
    assert window.ends_at == clock.now() + timedelta(hours=1)
    assert window.created_by == ALICE.id
    found = book.window_for("shop-home", clock.now())
    assert found is not None
    assert found.ends_at == window.ends_at
    assert "deploy" in found.reason
    assert book.window_for("blog-db", clock.now()) is not None
    assert book.window_for("blog-home", clock.now()) is None
    assert book.window_for("shop", clock.now()) is None
    longer = await book.add(["shop-home"], timedelta(hours=3), "migration", ALICE)
    found = book.window_for("shop-home", clock.now())  # the window that ends last answers
    assert found is not None
    assert found.ends_at == longer.ends_at


async def test_ending_a_window_lifts_it_and_is_refused_twice(
    book: MaintenanceBook, clock: FakeClock
) -> None:
    window = await book.add(["shop-*"], timedelta(hours=1), "deploy", ALICE)
    clock.advance(minutes=5)
    ended = await book.end(window.id, BOB)
    assert ended.ended_at == clock.now()
    assert book.window_for("shop-home", clock.now()) is None
    assert await book.active() == []
    with pytest.raises(WindowOverError, match="already ended"):
        await book.end(window.id, ALICE)
    with pytest.raises(WindowNotFoundError, match="no maintenance window #99"):
        await book.end(99, ALICE)


async def test_a_window_runs_out_by_the_clock(book: MaintenanceBook, clock: FakeClock) -> None:
    window = await book.add(["shop-*"], timedelta(minutes=30), "deploy", ALICE)
    assert book.window_for("shop-home", clock.now() + timedelta(minutes=29)) is not None
    clock.advance(minutes=30)
    assert book.window_for("shop-home", clock.now()) is None
    assert await book.active() == []
    with pytest.raises(WindowOverError, match="ran out"):
        await book.end(window.id, ALICE)


async def test_active_windows_survive_a_restart(
    book: MaintenanceBook, database: Database, clock: FakeClock
) -> None:
    kept = await book.add(["shop-*"], timedelta(hours=2), "deploy", ALICE)
    ended = await book.add(["blog-*"], timedelta(hours=2), "theme", ALICE)
    await book.add(["db-*"], timedelta(minutes=5), "short", ALICE)
    await book.end(ended.id, ALICE)
    clock.advance(minutes=10)
    restarted = MaintenanceBook(database, clock)
    assert restarted.window_for("shop-home", clock.now()) is None  # not loaded yet
    await restarted.load()
    assert [w.id for w in await restarted.active()] == [kept.id]
    assert restarted.window_for("shop-home", clock.now()) is not None
    assert restarted.window_for("blog-home", clock.now()) is None
    assert restarted.window_for("db-main", clock.now()) is None


@pytest.mark.parametrize(
    ("globs", "duration", "reason", "message"),
    [
        ([], timedelta(hours=1), "x", "name the probes"),
        ([" "], timedelta(hours=1), "x", "name the probes"),
        (["Shop-*"], timedelta(hours=1), "x", "'Shop-\\*' is not a probe id or glob"),
        (["<!channel>"], timedelta(hours=1), "x", "is not a probe id or glob"),
        (["a" * 65], timedelta(hours=1), "x", "at most 64 characters"),
        (["shop-*"], timedelta(seconds=30), "x", "the duration 30s is too short; at least 1m"),
        (["shop-*"], timedelta(days=9), "x", "the duration 9d is too long; at most 7d"),
        (["shop-*"], timedelta(hours=1), "   ", "give a reason"),
        (["shop-*"], timedelta(hours=1), "x" * 301, "301 characters long; at most 300"),
    ],
)
async def test_a_window_that_makes_no_sense_is_refused(
    book: MaintenanceBook,
    globs: list[str],
    duration: timedelta,
    reason: str,
    message: str,
) -> None:
    with pytest.raises(InvalidWindowError, match=message):
        await book.add(globs, duration, reason, ALICE)
    assert await book.active() == []


async def test_the_limits_themselves_are_accepted(book: MaintenanceBook) -> None:
    await book.add(["shop-*"], timedelta(minutes=1), "x", ALICE)
    await book.add(["shop-[ab]?"], timedelta(days=7), "y" * 300, ALICE)
    assert len(await book.active()) == 2


# -- calendars ---------------------------------------------------------------------------


async def test_combined_calendar_answers_from_both_sources(
    book: MaintenanceBook, clock: FakeClock
) -> None:
    combined = CombinedCalendar(CONFIG, book)
    now = clock.now()
    configured = combined.window_for("shop-home", now)
    assert configured is not None
    assert configured.reason == "datacentre move"
    assert combined.window_for("blog-home", now) is None
    await book.add(["blog-*"], timedelta(hours=1), "theme", ALICE)
    assert combined.window_for("blog-home", now) is not None
    short = await book.add(["shop-home"], timedelta(hours=1), "deploy", ALICE)
    both = combined.window_for("shop-home", now)
    assert both == configured  # the configured window ends later (11:00 UTC)
    assert short.ends_at < configured.ends_at
    longer = await book.add(["shop-home"], timedelta(hours=5), "migration", ALICE)
    found = combined.window_for("shop-home", now)
    assert found is not None
    assert found.ends_at == longer.ends_at


async def test_detection_holds_back_while_an_adhoc_window_covers_the_probe(
    book: MaintenanceBook, database: Database, clock: FakeClock
) -> None:
    service = IncidentService(IncidentStore(database), clock)
    detection = Detection(
        [rule("shop-home")],
        service,
        ProbeJournal(database),
        clock,
        maintenance=CombinedCalendar(NO_CONFIG, book),
    )
    window = await book.add(["shop-*"], timedelta(hours=1), "deploying 4.2", ALICE)

    async def fail(times: int) -> None:
        for _ in range(times):
            await detection.observe(
                ProbeResult(
                    probe_id="shop-home",
                    status=ResultStatus.FAIL,
                    reason="HTTP 502",
                    started_at=clock.now(),
                    duration=0.01,
                )
            )
            clock.advance(seconds=30)
            await detection.tick()

    await fail(5)
    assert await service.list_incidents(limit=10) == []
    state = detection.states["shop-home"]
    assert state.health == "suppressed"
    assert "deploying 4.2" in state.note
    await book.end(window.id, BOB)
    await detection.tick()  # no new sample needed: the held probe is retried at once
    clock.advance(seconds=11)
    await detection.tick()
    [incident] = await service.list_incidents(limit=10)
    assert incident.status is Status.OPEN
    assert clock.now() < window.ends_at


# An ad-hoc window from now (10:00 Berlin) for an hour, and a configured one taking over
# before it ends: the probe stays held back until 13:00, so 13:00 is the end to report.
TAKEOVER = ConfiguredCalendar(
    [
        MaintenanceWindow.model_validate(
            {
                "probes": ["shop-home"],
                "start": "2026-11-23T10:45:00",
                "end": "2026-11-23T13:00:00",
                "reason": "datacentre move",
            }
        )
    ],
    BERLIN,
)
TAKEOVER_END = datetime(2026, 11, 23, 13, 0, tzinfo=BERLIN)


async def test_combined_calendar_reports_the_end_of_the_whole_covered_stretch(
    book: MaintenanceBook, clock: FakeClock
) -> None:
    combined = CombinedCalendar(TAKEOVER, book)
    await book.add(["shop-*"], timedelta(hours=1), "deploying 4.2", ALICE)
    found = combined.window_for("shop-home", clock.now())
    assert found is not None
    assert found.ends_at == TAKEOVER_END
    assert "deploying 4.2" in found.reason and "datacentre move" in found.reason
    shop_db = combined.window_for("shop-db", clock.now())  # the move does not cover it
    assert shop_db is not None and shop_db.ends_at == clock.now() + timedelta(hours=1)


async def test_the_suppressed_notice_names_the_end_suppression_really_has(
    book: MaintenanceBook, database: Database, clock: FakeClock
) -> None:
    service = IncidentService(IncidentStore(database), clock)
    rules = [rule(p, group="service=shop") for p in ("shop-db", "shop-home")]
    detection = Detection(
        rules, service, ProbeJournal(database), clock, maintenance=CombinedCalendar(TAKEOVER, book)
    )

    async def fail(probe_id: str, times: int) -> None:
        for _ in range(times):
            await detection.observe(
                ProbeResult(
                    probe_id=probe_id,
                    status=ResultStatus.FAIL,
                    reason="HTTP 502",
                    started_at=clock.now(),
                    duration=0.01,
                )
            )
            clock.advance(seconds=30)
            await detection.tick()

    await book.add(["shop-home"], timedelta(hours=1), "deploying 4.2", ALICE)
    await fail("shop-db", 3)
    await fail("shop-home", 3)
    [incident] = await service.list_incidents(limit=10)
    [notice] = [e for e in await service.timeline(incident.id) if e.kind == "suppressed"]
    assert f"maintenance until {TAKEOVER_END.isoformat()}" in notice.text
    assert TAKEOVER_END.isoformat() in detection.states["shop-home"].note
    clock.advance(hours=1)  # the ad-hoc window is over, the move holds it back
    await fail("shop-home", 1)
    assert detection.states["shop-home"].health == "suppressed"
    clock.advance(seconds=(TAKEOVER_END - clock.now()).total_seconds())
    await detection.tick()
    assert detection.states["shop-home"].health == "firing"


# -- /maint --------------------------------------------------------------------------------


async def test_maint_starts_a_window_in_public(book: MaintenanceBook, clock: FakeClock) -> None:
    reply = await maint("shop-*,Blog-Home 2h deploying 4.2", book, clock)
    assert reply.public
    assert "<@U01ALICE> started maintenance *#1*" in reply.text
    assert "`shop-*`, `blog-home`" in reply.text
    assert "until 12:00 CET (2h): deploying 4.2" in reply.text
    assert "`/maint end 1`" in reply.text
    assert ":warning:" not in reply.text
    assert book.window_for("blog-home", clock.now()) is not None


async def test_maint_warns_about_a_glob_that_matches_no_probe(
    book: MaintenanceBook, clock: FakeClock
) -> None:
    reply = await maint("shop-*,shpo-db 30m deploy", book, clock)
    assert reply.public
    assert ":warning: `shpo-db` matches no configured probe" in reply.text
    assert "`shop-*` matches" not in reply.text


async def test_maint_escapes_what_people_write(book: MaintenanceBook, clock: FakeClock) -> None:
    reply = await maint("shop-* 1h <!channel> look at <https://x.example|this>", book, clock)
    assert "<!channel>" not in reply.text
    assert "&lt;!channel&gt; look at &lt;https://x.example|this&gt;" in reply.text
    listed = await maint("list", book, clock)
    assert "<!channel>" not in listed.text
    assert listed.blocks is not None
    assert all("<!channel>" not in str(block.to_dict()) for block in listed.blocks)
    refused = await maint("<!channel> 1h x", book, clock)
    assert not refused.public
    assert "<!channel>" not in refused.text
    assert "&lt;!channel&gt;" in refused.text


async def test_maint_lists_adhoc_and_configured_windows(
    book: MaintenanceBook, clock: FakeClock
) -> None:
    empty = await maint("", book, clock)
    assert not empty.public
    assert "No maintenance window is active" in empty.text
    await maint("blog-* 90m new theme", book, clock)
    reply = await maint("", book, clock, configured=CONFIG)
    assert not reply.public
    assert "*#1* `blog-*` until 11:30 CET (1h30m left), by <@U01ALICE>: new theme" in reply.text
    assert "*tocsin.yml* `shop-*` until 12:00 CET: datacentre move" in reply.text
    assert reply.blocks is not None
    assert reply.blocks[0].to_dict()["type"] == "header"
    assert "new theme" in str(reply.blocks[1].to_dict())
    assert reply == await maint("LIST", book, clock, configured=CONFIG)


async def test_maint_ends_a_window_in_public(book: MaintenanceBook, clock: FakeClock) -> None:
    await maint("blog-* 1h theme", book, clock)
    reply = await maint("end #1", book, clock, actor=BOB)
    assert reply.public
    assert "bob (cli) ended maintenance *#1* for `blog-*`" in reply.text
    assert book.window_for("blog-home", clock.now()) is None
    again = await maint("end 1", book, clock)
    assert not again.public
    assert "already ended" in again.text
    assert "No maintenance window is active" in (await maint("list", book, clock)).text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", "*Usage*"),
        ("shop-* 1h", "Give the probes, a duration and a reason"),
        ("shop-*", "*Usage*"),
        ("shop-* soon deploy", "'soon' is not a duration"),
        ("shop-* 1.5h deploy", "is not a duration"),
        ("shop-* 9d deploy", "the duration 9d is too long; at most 7d"),
        ("shop-* 10s deploy", "too short"),
        ("end", "Name the window to end"),
        ("end three", "Name the window to end"),
        ("end 1 2", "Name the window to end"),
        ("end 12345678901234567890", "Name the window to end"),
        ("end 42", "there is no maintenance window #42"),
    ],
)
async def test_maint_answers_mistakes_privately(
    book: MaintenanceBook, clock: FakeClock, text: str, expected: str
) -> None:
    reply = await maint(text, book, clock)
    assert not reply.public
    assert reply.blocks is None
    assert expected in reply.text
    assert await book.active() == []
