"""A real MariaDB primary and a replica following it, for the mysql probe's replication check.

Both servers live for the whole session (each ``mariadb-install-db`` costs about 1.5 s).
Tests take ``mariadb_pair``: after each test it starts any replica thread the test
stopped and waits until the replica has caught up, so the next test starts healthy.
The replica follows by GTID from the primary's position at set-up time, so the
users and database each server created for itself are not replayed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.fixtures import missing_binary
from tests.servers.mariadb import DATABASE, MariaDBServer, running_mariadb
from tests.servers.process import POLL_INTERVAL, MissingBinaryError, ServerStartError

__all__ = ["mariadb_pair"]

REPLICATION_USER = "repl"
TABLE = f"`{DATABASE}`.`ticks`"
READY_TIMEOUT = 20.0


def _first_row(output: str) -> dict[str, str]:
    """The first row of ``mariadb --batch`` output, keyed by the header line."""
    lines = output.splitlines()
    if len(lines) < 2:
        return {}
    return dict(zip(lines[0].split("\t"), lines[1].split("\t"), strict=False))


@dataclass(frozen=True)
class ReplicaPair:
    """The primary (binary log on, server_id 1) and its replica (server_id 2).

    ``ticks`` (``id`` primary key, ``n``) exists on both, with row ``(1, 0)``.
    """

    primary: MariaDBServer
    replica: MariaDBServer

    def replica_status(self) -> dict[str, str]:
        return _first_row(self.replica.root_sql("SHOW REPLICA STATUS"))

    def wait_running(self, timeout: float = READY_TIMEOUT) -> None:
        """Block until both replica threads say Yes."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.replica_status()
            if status.get("Slave_IO_Running") == "Yes" == status.get("Slave_SQL_Running"):
                return
            if time.monotonic() > deadline:
                raise ServerStartError(f"replication did not start within {timeout:.0f}s: {status}")
            time.sleep(POLL_INTERVAL)

    def wait_caught_up(self, timeout: float = READY_TIMEOUT) -> None:
        """Block until the replica has applied everything the primary has logged."""
        position = _first_row(self.primary.root_sql("SELECT @@GLOBAL.gtid_binlog_pos AS pos"))
        waited = self.replica.root_sql(
            f"SELECT MASTER_GTID_WAIT('{position.get('pos', '')}', {timeout}) AS done"
        )
        if _first_row(waited).get("done") != "0":
            raise ServerStartError(f"replica did not catch up within {timeout:.0f}s")

    def restore(self) -> None:
        """Start whatever thread a test stopped and let the replica catch up."""
        self.replica.root_sql("START SLAVE")
        self.wait_running()
        self.wait_caught_up()


def _follow(primary: MariaDBServer, replica: MariaDBServer) -> ReplicaPair:
    password = secrets.token_urlsafe(18)
    primary.root_sql(
        f"CREATE USER '{REPLICATION_USER}'@'127.0.0.1' IDENTIFIED BY '{password}';"
        f"GRANT REPLICATION SLAVE ON *.* TO '{REPLICATION_USER}'@'127.0.0.1';"
    )
    position = _first_row(primary.root_sql("SELECT @@GLOBAL.gtid_binlog_pos AS pos"))["pos"]
    replica.root_sql(
        f"SET GLOBAL gtid_slave_pos = '{position}';"
        f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary.port},"
        f" MASTER_USER='{REPLICATION_USER}', MASTER_PASSWORD='{password}',"
        " MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;"
        "START SLAVE;"
    )
    pair = ReplicaPair(primary, replica)
    pair.wait_running()
    # Created after the replica follows, so it replicates like any later write.
    primary.root_sql(
        f"CREATE TABLE {TABLE} (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB;"
        f"INSERT INTO {TABLE} VALUES (1, 0);"
    )
    pair.wait_caught_up()
    return pair


def _server_args(base_dir: Path, server_id: int) -> list[str]:
    args = [f"--server-id={server_id}", f"--relay-log={base_dir / 'relay'}"]
    if server_id == 1:
        args += [f"--log-bin={base_dir / 'binlog'}", "--binlog-format=ROW"]
    return args


@pytest.fixture(scope="session")
def _mariadb_pair_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicaPair]:
    primary_dir = tmp_path_factory.mktemp("mariadb-primary")
    replica_dir = tmp_path_factory.mktemp("mariadb-replica")
    try:
        with (
            running_mariadb(primary_dir, _server_args(primary_dir, 1)) as primary,
            running_mariadb(replica_dir, _server_args(replica_dir, 2)) as replica,
        ):
            yield _follow(primary, replica)
    except MissingBinaryError as error:
        missing_binary(error)


@pytest.fixture
def mariadb_pair(_mariadb_pair_session: ReplicaPair) -> Iterator[ReplicaPair]:
    """The session's primary/replica pair, replicating again after the test."""
    yield _mariadb_pair_session
    _mariadb_pair_session.restore()
