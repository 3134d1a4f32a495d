"""Shared fixtures: a fake clock, a real SQLite store in a temporary file, real servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from incidents.database import Database
from incidents.model import Actor, Source
from incidents.service import IncidentService
from incidents.store import IncidentStore
from tests.fakes import FakeClock

pytest_plugins = [
    "tests.servers.fixtures",
    "tests.servers.tls_fixtures",
    "tests.servers.replica_fixtures",
    "tests.slack_fake",
]

ALICE = Actor(Source.SLACK, "T01:U01ALICE", "alice")
BOB = Actor(Source.CLI, "bob", "bob")
PROBE = Actor(Source.PROBE, "shop-home")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "tocsin.db"


@pytest.fixture
async def database(db_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(db_path)
    yield database
    await database.close()


@pytest.fixture
def service(database: Database, clock: FakeClock) -> IncidentService:
    return IncidentService(IncidentStore(database), clock)
