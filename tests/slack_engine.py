"""tocsin running with Slack in HTTP mode against the Slack fake, as `tocsin run` would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.config.loader import load_config
from bot.main import open_tocsin
from bot.runtime import Engine, running_engine
from bot.slack_connection import slack_credentials
from incidents.clock import SystemClock
from tests.slack_fake import BOT_TOKEN, SlackFake
from tests.slack_requests import SIGNING_SECRET


@asynccontextmanager
async def http_engine(fake: SlackFake, tmp_path: Path, extra: str = "") -> AsyncIterator[Engine]:
    """The runtime with its listener on a free port; `extra` is YAML appended to the config."""
    path = tmp_path / "tocsin.yml"
    path.write_text(
        f'slack: {{channel: "#ops-incidents"}}\nstorage: {{path: {tmp_path / "t.db"}}}\n'
        f"listener: {{port: 0}}\n{extra}"
    )
    environ = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": fake.api_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    }
    async with (
        open_tocsin(load_config(path)) as tocsin,
        running_engine(tocsin, SystemClock(), environ, slack=slack_credentials(environ)) as running,
    ):
        yield running
