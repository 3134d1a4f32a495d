"""Every secret tocsin holds is redacted by value wherever a probe result goes.

A target that echoes a secret header as bare text (nginx's `/invalid-key` answers
`invalid key $http_x_api_key`) matches no secret pattern, so tocsin redacts the
values it holds: what `*_env` keys name, the Slack tokens and signing secret. The
key must not reach the card, `/probe`, the database or `tocsin probe --json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from bot.cli import main
from bot.config.loader import load_config
from bot.main import open_tocsin
from bot.probe_plan import probe_context
from bot.runtime import running_engine
from bot.slack_connection import slack_credentials
from incidents.clock import SystemClock
from tests.servers.nginx import NginxServer
from tests.slack_fake import BOT_TOKEN, INCIDENTS_CHANNEL, SlackFake
from tests.slack_requests import SIGNING_SECRET, signed_headers, slash_command
from tests.test_run import wait_for

KEY = "pk-4e9a1c07d2b85f36"
ALICE = "U0ALICE"


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "tocsin.yml"
    path.write_text(
        f"""
slack: {{channel: "#ops-incidents"}}
storage: {{path: {tmp_path / "tocsin.db"}}}
listener: {{port: 0}}
detection: {{group_wait: 0s}}
probes:
  - id: partner-api
    kind: http
    url: {url}
    headers: {{X-Api-Key_env: PARTNER_API_KEY}}
    interval: 1s
    timeout: 500ms
    fail_after: 1
    severity: P2
"""
    )
    return path


def database_files(folder: Path) -> dict[Path, bytes]:
    """The database and whatever WAL files it left, byte for byte."""
    return {path: path.read_bytes() for path in folder.glob("tocsin.db*")}


async def test_an_echoed_key_is_redacted_on_the_card_in_probe_and_in_the_database(
    slack_fake: SlackFake, nginx_server: NginxServer, tmp_path: Path
) -> None:
    environ = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack_fake.api_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "PARTNER_API_KEY": KEY,
    }
    slack_fake.add_user(ALICE, "alice")
    loaded = load_config(write_config(tmp_path, nginx_server.url("/invalid-key")))
    async with (
        open_tocsin(loaded) as tocsin,
        running_engine(tocsin, SystemClock(), environ, slack=slack_credentials(environ)) as engine,
    ):
        card = await slack_fake.wait_for(
            lambda: next(iter(slack_fake.top_level(INCIDENTS_CHANNEL)), None), timeout=10
        )
        assert card is not None and "partner-api" in card["text"]
        body = slash_command(
            "/probe",
            "partner-api",
            user=ALICE,
            channel=INCIDENTS_CHANNEL,
            response_url=slack_fake.response_url("probe"),
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{engine.listener_url}/slack/events", data=body, headers=signed_headers(body)
            ) as answer,
        ):
            assert answer.status == 200
        [shown] = await slack_fake.wait_for(lambda: slack_fake.responses_to("probe"), timeout=10)
        assert "invalid key [redacted]" in json.dumps(shown)

        async def stored() -> bool:
            await engine.journal.flush()
            history = await engine.journal.history("partner-api", 5)
            return bool(history.samples)

        await wait_for(stored, 10)
        [sample, *_] = (await engine.journal.history("partner-api", 5)).samples
        assert dict(sample.evidence)["body"] == "invalid key [redacted]"
    sent_to_slack = json.dumps([call.args for call in slack_fake.calls])
    sent_to_slack += json.dumps([response.body for response in slack_fake.responses])
    assert KEY not in sent_to_slack
    files = database_files(tmp_path)
    assert tmp_path / "tocsin.db" in files
    assert all(KEY.encode() not in data for data in files.values())


def test_probe_json_shows_an_echoed_key_redacted(
    nginx_server: NginxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARTNER_API_KEY", KEY)
    config = write_config(tmp_path, nginx_server.url("/invalid-key"))
    code = main(["probe", "partner-api", "--json", "-c", str(config)])
    out = capsys.readouterr().out
    assert code == 1  # failing
    [result] = json.loads(out)
    assert result["evidence"]["body"] == "invalid key [redacted]"
    assert KEY not in out


def test_every_secret_tocsin_holds_is_redacted_and_nothing_else(tmp_path: Path) -> None:
    """`*_env` values anywhere in the file, the Slack credentials, a proxy password; not other
    variables, and not values too short to tell from ordinary words."""
    for name in ("id_ed25519", "known_hosts"):
        (tmp_path / name).write_text("")
    path = tmp_path / "tocsin.yml"
    path.write_text(
        f"""
slack: {{channel: "#ops-incidents"}}
storage: {{path: {tmp_path / "tocsin.db"}}}
hosts:
  web-1: {{address: 127.0.0.1, user: tocsin, key: {tmp_path / "id_ed25519"},
          known_hosts: {tmp_path / "known_hosts"}, key_passphrase_env: KEY_PASSPHRASE}}
probes:
  - {{id: api, kind: http, url: "http://127.0.0.1/", headers: {{Authorization_env: API_AUTH}}}}
  - {{id: db, kind: mysql, host: 127.0.0.1, user: probe, password_env: DB_PASSWORD}}
  - {{id: cache, kind: redis, host: 127.0.0.1, password_env: SHORT_ONE}}
  - {{id: backup, kind: heartbeat, period: 1d, token_env: BACKUP_TOKEN}}
"""
    )
    secrets = {
        "KEY_PASSPHRASE": "correct horse battery",
        "API_AUTH": "ApiKey 5b0c93e1",
        "DB_PASSWORD": "Hunter2!Shop",
        "BACKUP_TOKEN": "0f8e4c2a9b7d6e5f",
        "SLACK_BOT_TOKEN": "xoxb-1-2-abcdef",
        "SLACK_APP_TOKEN": "xapp-1-A0-9-abc",
        "SLACK_SIGNING_SECRET": "8f742231b10e8888",
    }
    proxy = {"HTTPS_PROXY": "http://egress:Pr0xy%40pass@proxy.internal:3128"}
    environ = {**secrets, **proxy, "SHORT_ONE": "redis", "HOME": "/home/tocsin-user"}
    context = probe_context(load_config(path).config, environ=environ)
    for value in [*secrets.values(), "Pr0xy@pass", "Pr0xy%40pass"]:
        assert context.redaction.redact(f"said {value}.") == "said [redacted]."
    kept = "redis at /home/tocsin-user"
    assert context.redaction.redact(kept) == kept
