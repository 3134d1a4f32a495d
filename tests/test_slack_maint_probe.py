"""`/probe` and `/maint` end to end, through the real Bolt app in HTTP mode with signed requests.

`/probe <id>` runs an http probe now against the test nginx and shows its result to
the asker alone; an unknown id gets the known ones. `/maint` starts an ad-hoc window
(announced in the channel, listed by `/maint list`, kept in SQLite) and ends it; a
bad duration is explained and starts nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.runtime import Engine
from tests.servers.nginx import NginxServer
from tests.slack_fake import SlackFake
from tests.test_slack_commands import ALICE, command, shown, tocsin_over_http


def probe(probe_id: str, url: str, expect: str = "{}") -> str:
    """An http probe that the schedule leaves alone during a test: `/probe` runs it."""
    return (
        f"  - {{id: {probe_id}, kind: http, url: {url}, interval: 1h, timeout: 2s,"
        f" fail_after: 3, severity: P2, expect: {expect}}}\n"
    )


@pytest.fixture
def page(nginx_server: NginxServer) -> tuple[str, str]:
    """A page only this test asks nginx for: its name and its text."""
    name, text = f"probe-{secrets.token_hex(6)}.txt", f"shop is up {secrets.token_hex(4)}"
    path = nginx_server.root / name
    path.write_text(text + "\n")
    path.chmod(0o644)  # nginx workers may run as nobody
    return name, text


@pytest.fixture
async def engine(
    slack_fake: SlackFake, tmp_path: Path, nginx_server: NginxServer, page: tuple[str, str]
) -> AsyncIterator[Engine]:
    name, text = page
    probes = "probes:\n" + probe(
        "shop-home", nginx_server.url(name), f'{{body_contains: "{text}"}}'
    )
    probes += probe("shop-api", nginx_server.url("/error"))
    async with tocsin_over_http(slack_fake, tmp_path, probes) as running:
        yield running


async def test_probe_runs_now_against_nginx_and_shows_the_result_privately(
    engine: Engine, slack_fake: SlackFake, nginx_server: NginxServer, page: tuple[str, str]
) -> None:
    healthy = await command(engine, slack_fake, "/probe", "shop-home", "home")
    assert healthy["response_type"] == "ephemeral"
    assert healthy["text"] == "shop-home: ok"
    assert ":white_check_mark: *shop-home* ok" in shown(healthy)
    assert f"GET /{page[0]} " in nginx_server.access_log.read_text()  # nginx was asked

    failing = await command(engine, slack_fake, "/probe", "shop-api", "api")
    assert failing["response_type"] == "ephemeral"
    assert failing["text"] == "shop-api: fail"
    assert ":x: *shop-api* fail" in shown(failing) and "500" in shown(failing)


async def test_probe_with_an_unknown_id_lists_the_known_ones(
    engine: Engine, slack_fake: SlackFake
) -> None:
    answer = await command(engine, slack_fake, "/probe", "shop-db")
    assert answer["response_type"] == "ephemeral"
    assert "no probe 'shop-db'; known: shop-home, shop-api" in answer["text"]


async def test_maint_starts_lists_and_ends_a_window(engine: Engine, slack_fake: SlackFake) -> None:
    book = engine.maintenance.book
    started = await command(engine, slack_fake, "/maint", "shop-* 30m deploy", "start")
    assert started["response_type"] == "in_channel"  # the channel learns why probes are quiet
    assert f"<@{ALICE}> started maintenance *#1* for `shop-*`" in started["text"]
    assert "(30m): deploy" in started["text"] and "`/maint end 1`" in started["text"]
    assert "matches no configured probe" not in started["text"]
    [window] = await book.active()
    assert (window.id, window.globs, window.reason) == (1, ("shop-*",), "deploy")
    assert window.ends_at - window.starts_at == timedelta(minutes=30)
    assert ALICE in window.created_by
    assert book.window_for("shop-home", window.starts_at) is not None
    assert book.window_for("blog-home", window.starts_at) is None

    listed = await command(engine, slack_fake, "/maint", "list", "list")
    assert listed["response_type"] == "ephemeral"
    assert "*#1* `shop-*` until" in shown(listed) and ": deploy" in shown(listed)

    ended = await command(engine, slack_fake, "/maint", "end 1", "end")
    assert ended["response_type"] == "in_channel"
    assert f"<@{ALICE}> ended maintenance *#1* for `shop-*`" in ended["text"]
    assert await book.active() == []
    assert book.window_for("shop-home", window.starts_at) is None
    after = await command(engine, slack_fake, "/maint", "list", "after")
    assert "No maintenance window is active." in after["text"]


async def test_maint_keeps_the_reason_as_typed(engine: Engine, slack_fake: SlackFake) -> None:
    reason = r"""deploying "4.2" from C:\builds\new  (don't page)"""
    await command(engine, slack_fake, "/maint", f"shop-*  30m {reason}", "start")
    [window] = await engine.maintenance.book.active()
    assert (window.globs, window.reason) == (("shop-*",), reason)


@pytest.mark.parametrize(
    ("duration", "explanation"),
    [
        ("30", "'30' is not a duration; write e.g. 30s, 5m, 1h30m"),
        ("soon", "'soon' is not a duration"),
        ("30s", "the duration 30s is too short; at least 1m"),
        ("8d", "the duration 8d is too long; at most 7d"),
    ],
)
async def test_maint_with_a_bad_duration_is_explained_and_starts_nothing(
    engine: Engine, slack_fake: SlackFake, duration: str, explanation: str
) -> None:
    answer = await command(engine, slack_fake, "/maint", f"shop-* {duration} deploy")
    assert answer["response_type"] == "ephemeral"
    assert explanation in answer["text"]
    assert await engine.maintenance.book.active() == []
    listed = await command(engine, slack_fake, "/maint", "list", "list")
    assert "No maintenance window is active." in listed["text"]


async def test_maint_end_of_an_unknown_window_is_explained(
    engine: Engine, slack_fake: SlackFake
) -> None:
    answer = await command(engine, slack_fake, "/maint", "end 7")
    assert answer["response_type"] == "ephemeral"
    assert "there is no maintenance window #7" in answer["text"]
