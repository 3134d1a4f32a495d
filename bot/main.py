"""The composition root: everything tocsin runs is built here from the settings.

Nothing is created at import time anywhere in tocsin; `open_tocsin` builds the
database, stores and services in one readable place and closes them after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.config import LoadedConfig
from incidents.clock import Clock, SystemClock
from incidents.database import Database
from incidents.escalation import EscalationPlanner
from incidents.service import IncidentService
from incidents.store import IncidentStore


@dataclass(frozen=True)
class Tocsin:
    """The running parts of one tocsin process."""

    settings: LoadedConfig
    database: Database
    store: IncidentStore
    incidents: IncidentService
    planner: EscalationPlanner


@asynccontextmanager
async def open_tocsin(
    settings: LoadedConfig, clock: Clock | None = None, busy_timeout: float = 5.0
) -> AsyncIterator[Tocsin]:
    database = await Database.open(settings.config.storage.path, busy_timeout=busy_timeout)
    try:
        config = settings.config
        planner = EscalationPlanner(
            {severity: policy.policy() for severity, policy in config.escalation.items()}
        )
        store = IncidentStore(database)
        service = IncidentService(store, clock or SystemClock(), planner)
        yield Tocsin(settings, database, store, service, planner)
    finally:
        await database.close()
