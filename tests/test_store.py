"""The SQLite file itself: WAL, one owning thread, migrations, refusals that touch nothing,
files only tocsin's user can read, in a directory only it can write to."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import stat
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlite_utils

from incidents.database import Database
from incidents.errors import (
    SchemaTooNewError,
    StoreError,
    StoreLockedError,
    UnsafeDirectoryError,
)
from incidents.model import Milestone, Severity
from incidents.outbox import OutboxRecords
from incidents.schema import MIGRATIONS, SCHEMA_VERSIONS
from incidents.service import IncidentService
from incidents.store import IncidentStore
from tests.conftest import ALICE
from tests.fakes import FakeClock


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_every_query_runs_on_one_thread_that_is_not_the_event_loop(
    database: Database,
) -> None:
    threads = {await database.run(lambda _db: threading.get_ident()) for _ in range(5)}
    assert len(threads) == 1
    assert threads != {threading.get_ident()}


async def test_file_is_wal_and_readable_by_sqlite3_while_open(
    service: IncidentService, db_path: Path
) -> None:
    await service.declare("Shop down", Severity.P0, ALICE)
    reader = await asyncio.create_subprocess_exec(
        "sqlite3",
        str(db_path),
        "PRAGMA journal_mode;",
        "SELECT number, title FROM incidents;",
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await reader.communicate()
    assert reader.returncode == 0
    assert stdout.decode().splitlines() == ["wal", "1|Shop down"]


async def test_migrations_apply_once(db_path: Path) -> None:
    for _ in range(2):
        database = await Database.open(db_path)
        await database.close()
    with sqlite3.connect(db_path) as raw:
        names = [row[0] for row in raw.execute("SELECT name FROM _sqlite_migrations")]
    assert names == SCHEMA_VERSIONS
    assert SCHEMA_VERSIONS == [
        "0001_incidents",
        "0002_probes",
        "0003_slack",
        "0004_outbox_late_copies",
        "0005_notices",
    ]


async def test_the_notices_migration_keeps_every_outbox_row(db_path: Path) -> None:
    """0005 copies the outbox into a table that also takes notices; nothing owed is lost."""
    before = sqlite_utils.Database(db_path)
    MIGRATIONS.apply(before, stop_before="0005_notices")
    before.execute(
        "INSERT INTO incidents (title, severity, status, updated_at) "
        "VALUES ('Shop down', 'P1', 'open', '2026-11-23T09:00:00+00:00')"
    )
    before.execute(
        "INSERT INTO outbox (incident_number, kind, key, state, created_at, recheck_at) "
        "VALUES (1, 'card', '1:card:x', 'sending', '2026-11-23T09:00:00+00:00', "
        "'2026-11-23T09:01:00+00:00')"
    )
    before.conn.commit()
    before.close()
    database = await Database.open(db_path)
    try:
        at = datetime(2026, 11, 23, 9, 2, tzinfo=UTC)
        await database.run(
            lambda db: OutboxRecords(db).notice("#ops", "tocsin cannot see 1 probe", [], at)
        )
        rows = await database.run(
            lambda db: db.execute(
                "SELECT incident_number, kind, state, recheck_at FROM outbox ORDER BY id"
            ).fetchall()
        )
    finally:
        await database.close()
    assert rows == [
        (1, "card", "sending", "2026-11-23T09:01:00+00:00"),
        (None, "notice", "pending", None),
    ]


async def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    raw = sqlite3.connect(path)
    raw.execute(
        "CREATE TABLE _sqlite_migrations "
        "(id INTEGER PRIMARY KEY, migration_set TEXT, name TEXT, applied_at TEXT)"
    )
    raw.executemany(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, ?, ?)",
        [("tocsin", "0001_incidents", "x"), ("tocsin", "0002_from_the_future", "y")],
    )
    raw.commit()
    raw.close()
    before = sha256(path)

    with pytest.raises(SchemaTooNewError, match="written by a newer tocsin") as refused:
        await Database.open(path)
    assert "0002_from_the_future" in str(refused.value)
    assert sha256(path) == before
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("delete",)


async def test_locked_database_gives_a_clear_error_and_stays_intact(
    db_path: Path, clock: FakeClock
) -> None:
    database = await Database.open(db_path, busy_timeout=0.3)
    service = IncidentService(IncidentStore(database), clock)
    await service.declare("before the lock", Severity.P3, ALICE)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreLockedError, match=r"locked by another writer for 0\.3 s"):
            await service.declare("during the lock", Severity.P3, ALICE)
    finally:
        other.execute("ROLLBACK")
        other.close()
    after = await service.declare("after the lock", Severity.P3, ALICE)
    assert after.id == "INC-2"
    assert [i.title for i in await service.list_incidents()] == [
        "after the lock",
        "before the lock",
    ]
    assert await database.run(lambda db: db.execute("PRAGMA integrity_check").fetchone()) == ("ok",)
    await database.close()


async def test_timeline_is_append_only_in_sqlite_itself(
    service: IncidentService, db_path: Path
) -> None:
    await service.declare("Audit me", Severity.P2, ALICE)
    with sqlite3.connect(db_path) as raw:
        for statement in ("UPDATE timeline SET text = 'forged'", "DELETE FROM timeline"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                raw.execute(statement)


async def test_one_active_incident_per_key_is_enforced_by_the_index(
    database: Database, db_path: Path
) -> None:
    insert = (
        "INSERT INTO incidents (title, severity, status, dedup_key, updated_at) "
        "VALUES ('t', 'P1', ?, 'probe:x', 'now')"
    )
    with sqlite3.connect(db_path) as raw:
        raw.execute(insert, ["resolved"])
        raw.execute(insert, ["open"])
        with pytest.raises(sqlite3.IntegrityError):
            raw.execute(insert, ["acknowledged"])
        raw.execute(insert, ["closed"])


async def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 100)
    before = sha256(path)
    with pytest.raises(StoreError, match="not a usable tocsin database"):
        await Database.open(path)
    assert sha256(path) == before


async def test_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"does not exist; create it or change storage\.path"):
        await Database.open(tmp_path / "nowhere" / "tocsin.db")


async def test_processes_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    """Each Database has its own connection and thread, as separate processes would."""
    for attempt in range(5):
        path = tmp_path / f"fresh-{attempt}.db"
        opened = await asyncio.gather(*(Database.open(path) for _ in range(8)))
        for database in opened:
            await database.close()
        with sqlite3.connect(path) as raw:
            assert raw.execute("SELECT COUNT(*) FROM _sqlite_migrations").fetchone() == (
                len(SCHEMA_VERSIONS),
            )


async def test_times_are_stored_in_utc(service: IncidentService, db_path: Path) -> None:
    incident = await service.declare("Import failed", Severity.P1, ALICE)
    started = datetime(2026, 11, 23, 5, 30, tzinfo=timezone(timedelta(hours=-3)))
    await service.set_started(incident.id, started, ALICE)
    with sqlite3.connect(db_path) as raw:
        stored = raw.execute("SELECT started_at FROM incidents").fetchone()[0]
    assert stored == "2026-11-23T08:30:00+00:00"
    assert (await service.get(incident.id)).milestones[Milestone.STARTED] == started


async def test_a_refused_write_is_reported_as_such(
    database: Database, service: IncidentService
) -> None:
    await service.declare("Audit me", Severity.P2, ALICE)
    with pytest.raises(StoreError, match=r"the database refused the change: .*append-only"):
        await database.run(lambda db: db.execute("DELETE FROM timeline"))


def modes(folder: Path) -> dict[str, int]:
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.glob("tocsin.db*")}


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
async def test_database_files_are_private_whatever_the_umask(
    tmp_path: Path, clock: FakeClock, umask: int
) -> None:
    """Probe evidence may quote secrets: the file, its WAL and shared memory are 0600."""
    previous = os.umask(umask)
    try:
        database = await Database.open(tmp_path / "tocsin.db")
        await IncidentService(IncidentStore(database), clock).declare("x", Severity.P3, ALICE)
        while_open = modes(tmp_path)
        await database.close()
    finally:
        os.umask(previous)
    assert while_open == {"tocsin.db": 0o600, "tocsin.db-wal": 0o600, "tocsin.db-shm": 0o600}


@pytest.mark.parametrize(
    ("mode", "fix"),
    [
        (0o770, "chmod g-w,o-w"),
        (0o757, "chmod g-w,o-w"),
        (0o1777, "Point storage.path at a directory only tocsin's user can write to"),
    ],
    ids=["group", "others", "sticky"],
)
async def test_a_directory_others_may_write_to_is_refused_and_left_alone(
    tmp_path: Path, mode: int, fix: str
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    with pytest.raises(UnsafeDirectoryError) as refused:
        await Database.open(shared / "tocsin.db")
    message = str(refused.value)
    assert f"{shared} is writable by other users (mode {mode:o})" in message
    assert fix in message
    assert list(shared.iterdir()) == []
