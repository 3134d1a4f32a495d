"""Heartbeats: the listener's endpoints and tokens, the ledger, and the heartbeat probe."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.cli import main
from bot.listener import listener_app
from incidents.database import Database
from incidents.heartbeats import HeartbeatBook
from probes.heartbeat import HeartbeatProbe, HeartbeatSettings
from probes.probe import ProbeContext, run_probe
from probes.result import Status
from tests.fakes import FakeClock

TOKEN = "s3cret-heartbeat-token"
WRONG_TOKEN_BURST = 10  # wrong tokens a client may send before it must wait


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
    ("path", "headers"),
    [
        ("/heartbeat/backup", {}),
        ("/heartbeat/backup", {"Authorization": "Bearer wrong-but-long-enough"}),
        ("/heartbeat/nosuch", {"Authorization": f"Bearer {TOKEN}"}),
        ("/heartbeat/import", {"Authorization": "Bearer anything-at-all-here"}),
    ],
)
async def test_refused_pings_change_nothing_and_look_alike(
    server: TestServer, book: HeartbeatBook, path: str, headers: dict[str, str]
) -> None:
    """A wrong token, an unknown probe and a probe without a token on the server are one
    answer, so an outsider cannot tell which probe ids exist."""
    status, body = await call(server, "POST", path, headers=headers)
    assert (status, body) == (401, {"ok": False, "error": "wrong or missing token"})
    assert book.last_ping("backup") is None and book.last_ping("import") is None


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
async def test_the_bearer_scheme_is_read_in_any_case(
    server: TestServer, book: HeartbeatBook, scheme: str
) -> None:
    status, _ = await call(
        server, "POST", "/heartbeat/backup", headers={"Authorization": f"{scheme}  {TOKEN}"}
    )
    assert status == 200
    assert book.last_ping("backup") is not None


async def test_wrong_tokens_are_limited_per_client(
    server: TestServer, book: HeartbeatBook, caplog: pytest.LogCaptureFixture
) -> None:
    """After a burst of wrong tokens a client is told to wait, even with the right token;
    another client is not affected, and the log holds neither token nor a line per guess."""
    guesses = [f"guess-{n:04d}-of-the-token" for n in range(WRONG_TOKEN_BURST + 5)]
    with caplog.at_level(logging.INFO):
        answers = [
            (await call(server, "POST", "/heartbeat/backup", headers=bearer(guess)))[0]
            for guess in guesses
        ]
        limited, _ = await call(server, "POST", "/heartbeat/backup", headers=bearer(TOKEN))
        other = await call_from("127.0.0.2", server, "/heartbeat/backup", bearer(TOKEN))
    assert answers[:WRONG_TOKEN_BURST] == [401] * WRONG_TOKEN_BURST
    assert set(answers[WRONG_TOKEN_BURST:]) == {429}
    assert limited == 429
    assert other == 200
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(guess in logged for guess in guesses) and TOKEN not in logged
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) <= 2


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call_from(source: str, server: TestServer, path: str, headers: dict[str, str]) -> int:
    """POST from another loopback address, i.e. another client."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(str(server.make_url(path)), headers=headers) as response,
    ):
        return response.status


def test_check_refuses_a_heartbeat_token_shorter_than_16_characters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tocsin.yml"
    config.write_text(
        'slack: {channel: "#ops"}\n'
        "probes:\n"
        "  - {id: backup, kind: heartbeat, period: 1d, token_env: BACKUP_TOKEN, severity: P2}\n"
    )
    monkeypatch.setenv("BACKUP_TOKEN", "short-secret")
    assert main(["check", str(config)]) == 2
    err = capsys.readouterr().err
    assert "BACKUP_TOKEN" in err and "16" in err
    assert "short-secret" not in err
    monkeypatch.setenv("BACKUP_TOKEN", "x" * 16)
    assert main(["check", str(config)]) == 0


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
