"""The SQLite database behind every store: one connection, owned by one thread.

sqlite3 connections are bound to the thread that made them, and the event loop
must never block on SQL. So a single-worker executor opens the connection and
runs every unit of work; callers `await database.run(fn)` and `fn` receives the
sqlite-utils `Database`. The file is in WAL mode, so `sqlite3` and Datasette
can read it while tocsin writes. Its files are private (see `private_files`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import sqlite_utils

from incidents.errors import StoreError, StoreLockedError
from incidents.private_files import create_private, refuse_shared_directory
from incidents.schema import MIGRATIONS, check_schema_version

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT = 5.0


class Database:
    """A SQLite file opened for tocsin: migrated, WAL, one owning thread."""

    def __init__(self, path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tocsin-sqlite")
        self._db: sqlite_utils.Database | None = None

    @classmethod
    async def open(cls, path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Database:
        """Open (creating if needed) and migrate the file; refuse a newer schema."""
        database = cls(path, busy_timeout=busy_timeout)
        try:
            await database._submit(database._connect)
        except BaseException:
            database._executor.shutdown(wait=True)
            raise
        return database

    async def run(self, work: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `work` on the owning thread and return its result."""
        return await self._submit(lambda: work(self._require()))

    async def close(self) -> None:
        await self._submit(self._disconnect)
        self._executor.shutdown(wait=True)

    async def _submit(self, call: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._translated, call)

    def _translated(self, call: Callable[[], T]) -> T:
        """Turn sqlite3's terse errors into messages a user can act on."""
        try:
            return call()
        except sqlite3.OperationalError as error:
            text = str(error)
            if "locked" in text or "busy" in text:
                raise StoreLockedError(
                    f"{self.path}: the database stayed locked by another writer for "
                    f"{self.busy_timeout:g} s; nothing was changed. Retry, or stop the "
                    "other process writing to it"
                ) from error
            raise StoreError(f"{self.path}: {text}") from error
        except sqlite3.IntegrityError as error:
            raise StoreError(f"{self.path}: the database refused the change: {error}") from error
        except sqlite3.DatabaseError as error:
            raise StoreError(
                f"{self.path}: not a usable tocsin database ({error}); "
                "point storage.path at another file"
            ) from error

    def _require(self) -> sqlite_utils.Database:
        if self._db is None:
            raise StoreError(f"{self.path}: the database is closed")
        return self._db

    def _connect(self) -> None:
        if not self.path.parent.exists():
            raise StoreError(
                f"{self.path}: directory {self.path.parent} does not exist; create it "
                "or change storage.path"
            )
        refuse_shared_directory(self.path)
        create_private(self.path)
        connection = sqlite3.connect(
            str(self.path), timeout=self.busy_timeout, isolation_level=None
        )
        db = sqlite_utils.Database(connection, execute_plugins=False)
        deadline = time.monotonic() + self.busy_timeout
        try:
            # Read-only first: a newer file must not even be switched to WAL.
            _retry_while_busy(deadline, lambda: check_schema_version(db, self.path))
            _retry_while_busy(deadline, lambda: db.execute("PRAGMA journal_mode=WAL"))
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            _retry_while_busy(deadline, lambda: _migrate(db, self.path))
        except BaseException:
            connection.close()
            raise
        self._db = db

    def _disconnect(self) -> None:
        if self._db is not None:
            self._db.conn.close()
            self._db = None


def _migrate(db: sqlite_utils.Database, path: Path) -> None:
    """Check and migrate under the write lock, so processes opening a new file take turns."""
    with write_transaction(db):
        check_schema_version(db, path)
        MIGRATIONS.apply(db)


def _retry_while_busy(deadline: float, step: Callable[[], object]) -> None:
    """SQLite answers some lock conflicts at once rather than waiting: wait here instead."""
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as error:
            busy = "locked" in str(error) or "busy" in str(error)
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """BEGIN IMMEDIATE: take the write lock up front so concurrent writers queue, not deadlock."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def encode_time(moment: datetime | None) -> str | None:
    """Stored as UTC ISO 8601, so text order is time order in SQL too."""
    return None if moment is None else moment.astimezone(UTC).isoformat()


def decode_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
