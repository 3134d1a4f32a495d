"""Heartbeats: the listener's endpoints and tokens, the ledger, and the heartbeat probe."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.listener import listener_app
from incidents.database import Database
from incidents.heartbeats import HeartbeatBook
from probes.heartbeat import HeartbeatProbe, HeartbeatSettings
from probes.probe import ProbeContext, run_probe
from probes.result import Status
from tests.fakes import FakeClock

TOKEN = "s3cret-heartbeat-token"


@pytest.fixture
async def book(database: Database, clock: FakeClock) -> HeartbeatBook:
    book = HeartbeatBook(database, clock)
    await book.load()
    return book


@pytest.fixture
async def server(book: HeartbeatBook) -> AsyncIterator[TestServer]:
    app = listener_app(
        book, {"backup": TOKEN, "import": None}, lambda: {"status": "ok", "probes": 2}
    )
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


async def call(
    server: TestServer, method: str, path: str, **kwargs: object
) -> tuple[int, dict[str, object]]:
    url = str(server.make_url(path))
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, **kwargs) as response,  # type: ignore[arg-type]
    ):
        return response.status, await response.json()


async def test_ping_with_bearer_token_is_recorded(
    server: TestServer, book: HeartbeatBook, clock: FakeClock
) -> None:
    status, body = await call(
        server, "POST", "/heartbeat/backup", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert (status, body["ok"]) == (200, True)
    assert book.last_ping("backup") == clock.now()


async def test_ping_with_query_token_for_curl_in_crontab(
    server: TestServer, book: HeartbeatBook
) -> None:
    status, _ = await call(server, "GET", f"/heartbeat/backup?token={TOKEN}")
    assert status == 200
    assert book.last_ping("backup") is not None


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        ("/heartbeat/backup", {}, 401),
        ("/heartbeat/backup", {"Authorization": "Bearer wrong"}, 401),
        ("/heartbeat/nosuch", {"Authorization": f"Bearer {TOKEN}"}, 404),
        ("/heartbeat/import", {"Authorization": "Bearer anything"}, 503),
    ],
)
async def test_refused_pings_change_nothing(
    server: TestServer, book: HeartbeatBook, path: str, headers: dict[str, str], expected: int
) -> None:
    status, body = await call(server, "POST", path, headers=headers)
    assert status == expected
    assert body["ok"] is False and body["error"]
    assert book.last_ping("backup") is None and book.last_ping("import") is None


async def test_fail_ping_and_persistence(
    server: TestServer, book: HeartbeatBook, database: Database, clock: FakeClock
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    await call(server, "POST", "/heartbeat/backup", headers=auth)
    clock.advance(minutes=5)
    status, _ = await call(server, "POST", "/heartbeat/backup/fail", headers=auth)
    assert status == 200
    reloaded = HeartbeatBook(database, clock)
    await reloaded.load()
    assert reloaded.failed_at("backup") == clock.now()
    assert reloaded.last_ping("backup") == clock.now() - timedelta(minutes=5)


async def test_healthz(server: TestServer) -> None:
    status, body = await call(server, "GET", "/healthz")
    assert (status, body["status"]) == (200, "ok")


def heartbeat_probe(book: HeartbeatBook, clock: FakeClock) -> HeartbeatProbe:
    settings = HeartbeatSettings.model_validate(
        {"period": "24h", "grace": "1h", "token_env": "BACKUP_TOKEN"}
    )
    return HeartbeatProbe("backup", settings, ProbeContext(heartbeats=book, now=clock.now))


async def test_heartbeat_probe_waits_then_fails_then_recovers(
    book: HeartbeatBook, clock: FakeClock
) -> None:
    probe = heartbeat_probe(book, clock)
    first = await run_probe(probe, 1)
    assert (first.status, first.reason) == (Status.OK, "waiting for a first ping")
    clock.advance(hours=25, minutes=1)
    late = await run_probe(probe, 1)
    assert late.status is Status.FAIL
    assert late.reason == "no ping since tocsin started 1d1h1m ago (period 1d + grace 1h)"
    await book.ping("backup")
    clock.advance(hours=2)
    assert (await run_probe(probe, 1)).status is Status.OK
    await book.fail("backup")
    failed = await run_probe(probe, 1)
    assert failed.status is Status.FAIL
    assert failed.reason.startswith("the job reported failure at ")
    await book.ping("backup")
    assert (await run_probe(probe, 1)).status is Status.OK


async def test_a_restart_keeps_the_clock_of_a_job_that_never_pinged(
    database: Database, clock: FakeClock
) -> None:
    first = HeartbeatBook(database, clock)
    await first.load(["backup"])
    clock.advance(hours=25, minutes=30)
    restarted = HeartbeatBook(database, clock)
    await restarted.load(["backup"])
    result = await run_probe(heartbeat_probe(restarted, clock), 1)
    assert result.status is Status.FAIL
    assert result.reason.startswith("no ping since tocsin started 1d1h30m ago")
