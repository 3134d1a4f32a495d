"""Blind spots: probes stuck in `error` are told once an episode, and again when they see."""

from __future__ import annotations

from datetime import timedelta

import sqlite_utils

from incidents.blindness import Blindness, BlindnessSettings
from incidents.database import Database
from probes.result import ProbeResult, Status
from tests.fakes import FakeClock

SETTINGS = BlindnessSettings(after=timedelta(minutes=10), channel="#ops", mention=("@oncall",))


def result(clock: FakeClock, probe_id: str, status: Status, reason: str = "") -> ProbeResult:
    return ProbeResult(probe_id, status, reason or status.value, clock.now(), 0.01)


async def notices(database: Database) -> list[tuple[str, str, str]]:
    def read(db: sqlite_utils.Database) -> list[tuple[str, str, str]]:
        return db.execute(
            "SELECT channel, recipient, text FROM outbox WHERE kind = 'notice' ORDER BY id"
        ).fetchall()

    return await database.run(read)


async def run_minutes(
    blindness: Blindness, clock: FakeClock, minutes: int, *results: tuple[str, Status, str]
) -> None:
    """Each probe gives its result every minute for `minutes`; tocsin ticks after each."""
    for _ in range(minutes):
        clock.advance(minutes=1)
        for probe_id, status, reason in results:
            blindness.observe(result(clock, probe_id, status, reason))
        await blindness.tick()


async def test_a_probe_in_error_for_the_set_time_is_told_once_with_its_reason(
    database: Database, clock: FakeClock
) -> None:
    blindness = Blindness(database, SETTINGS, clock)
    erring = ("shop-db", Status.ERROR, "password for SHOP_DB_PASSWORD refused")
    await run_minutes(blindness, clock, 9, erring, ("shop-home", Status.OK, ""))
    assert await notices(database) == []
    await run_minutes(blindness, clock, 30, erring)
    [(channel, mention, text)] = await notices(database)
    assert (channel, mention) == ("#ops", "@oncall")
    assert text.startswith("tocsin cannot see 1 probe:\n• shop-db: password for")
    assert "(since 10 min ago)" in text


async def test_probes_that_turn_blind_together_share_one_notice_and_recover_in_one(
    database: Database, clock: FakeClock
) -> None:
    blindness = Blindness(database, SETTINGS, clock)
    dns = "DNS lookup of shop.test failed: Temporary failure in name resolution"
    await run_minutes(blindness, clock, 12, ("a", Status.ERROR, dns), ("b", Status.ERROR, dns))
    await run_minutes(blindness, clock, 1, ("a", Status.OK, ""), ("b", Status.FAIL, "HTTP 500"))
    blind, seeing = await notices(database)
    assert blind[2].startswith("tocsin cannot see 2 probes:\n• a: DNS")
    assert seeing == ("#ops", "", "tocsin sees again: a, b (blind for up to 12 min)")


async def test_a_short_error_spell_says_nothing(database: Database, clock: FakeClock) -> None:
    blindness = Blindness(database, SETTINGS, clock)
    for _ in range(5):  # nine minutes of errors, then one real result, over and over
        await run_minutes(blindness, clock, 9, ("flaky", Status.ERROR, "timeout"))
        await run_minutes(blindness, clock, 1, ("flaky", Status.OK, ""))
    assert await notices(database) == []


async def test_a_restart_neither_forgets_an_episode_nor_tells_it_twice(
    database: Database, clock: FakeClock
) -> None:
    first = Blindness(database, SETTINGS, clock)
    await run_minutes(first, clock, 6, ("db", Status.ERROR, "refused"))
    second = Blindness(database, SETTINGS, clock)  # tocsin restarted; the episode goes on
    await second.load()
    await run_minutes(second, clock, 5, ("db", Status.ERROR, "refused"))
    assert len(await notices(database)) == 1  # at 10 min since the first error, not 16
    third = Blindness(database, SETTINGS, clock)
    await third.load()
    await run_minutes(third, clock, 20, ("db", Status.ERROR, "refused"))
    await run_minutes(third, clock, 1, ("db", Status.OK, ""))
    texts = [text for _, _, text in await notices(database)]
    assert len(texts) == 2
    assert texts[1] == "tocsin sees again: db (blind for up to 31 min)"
