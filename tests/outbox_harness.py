"""An outbox sender wired to a SQLite file and a Slack API URL, for fault and crash tests.

Run as `python -m tests.outbox_harness DB API_URL` it delivers until killed,
so a test can SIGKILL it between a post and its record.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

from bot.card_source import CardSource
from bot.config.model import SlackSettings, TocsinConfig
from bot.slack_sender import SlackSender
from incidents.clock import Clock, SystemClock
from incidents.database import Database
from incidents.escalation import Escalation, EscalationPlanner
from incidents.outbox import Outbox
from incidents.probe_journal import ProbeJournal
from incidents.service import IncidentService
from incidents.store import IncidentStore

CONFIG = TocsinConfig(slack=SlackSettings(channel="#ops-incidents"))


def build_sender(
    database: Database, api_url: str, clock: Clock, *, timeout: int = 2
) -> tuple[IncidentService, SlackSender]:
    planner = EscalationPlanner({})
    service = IncidentService(IncidentStore(database), clock, planner)
    escalation = Escalation(database, planner, clock, CONFIG.zone)
    cards = CardSource(
        CONFIG, service, ProbeJournal(database), escalation, clock, lambda target: target
    )
    client = AsyncWebClient(token="xoxb-test", base_url=api_url, timeout=timeout)
    client.retry_handlers = []
    return service, SlackSender(Outbox(database), client, cards, clock)


async def deliver_forever(path: Path, api_url: str) -> None:
    database = await Database.open(path)
    _, sender = build_sender(database, api_url, SystemClock(), timeout=30)
    await sender.run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(deliver_forever(Path(sys.argv[1]), sys.argv[2]))
