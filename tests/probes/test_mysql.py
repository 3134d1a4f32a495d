"""The mysql probe against real mariadbd servers on loopback."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import aiomysql
import pytest
from pydantic import ValidationError

from probes.mysql import MysqlProbe, MysqlSettings
from probes.probe import ProbeContext, run_probe
from probes.replication import replica_health
from probes.result import ProbeResult, Status
from tests.servers.mariadb import MariaDBServer, running_mariadb, start_mariadbd
from tests.servers.ports import LOOPBACK, blackhole, free_port
from tests.servers.replica_fixtures import TABLE, ReplicaPair

ENV = "DB_PASSWORD"


def make_probe(server: MariaDBServer, **keys: Any) -> MysqlProbe:
    raw = {
        "host": server.host,
        "port": server.port,
        "user": server.user,
        "password_env": ENV,
        "database": server.database,
        **keys,
    }
    context = ProbeContext(environ={ENV: server.password})
    return MysqlProbe("db", MysqlSettings.model_validate(raw), context)


async def run(server: MariaDBServer, seconds: float = 5.0, **keys: Any) -> ProbeResult:
    return await run_probe(make_probe(server, **keys), seconds)


@pytest.fixture(scope="module")
def shop_db(mariadb_server: MariaDBServer) -> MariaDBServer:
    """Orders (three failed), and a function that writes, in the shared test database."""
    mariadb_server.root_sql(
        "CREATE TABLE orders (id INT PRIMARY KEY, status VARCHAR(20));"
        "INSERT INTO orders VALUES (1, 'failed'), (2, 'failed'), (3, 'failed'), (4, 'paid');"
        "CREATE TABLE writes (id INT AUTO_INCREMENT PRIMARY KEY);\n"
        "DELIMITER //\n"
        "CREATE FUNCTION bump() RETURNS INT MODIFIES SQL DATA"
        " BEGIN INSERT INTO writes VALUES (NULL); RETURN 1; END //\n"
        "DELIMITER ;\n",
        database=mariadb_server.database,
    )
    return mariadb_server


FAILED_ORDERS = "SELECT COUNT(*) FROM orders WHERE status = 'failed'"


async def test_ping_connects_and_selects_one(shop_db: MariaDBServer) -> None:
    result = await run(shop_db, expect={"connect_ms": {"below": 2000}})
    assert result.status is Status.OK
    assert result.reason.startswith("SELECT 1 in ")
    assert result.value_of("connect_ms") is not None
    assert result.value_of("query_ms") is not None
    assert "MariaDB" in dict(result.evidence)["server"]


async def test_query_value_within_threshold(shop_db: MariaDBServer) -> None:
    result = await run(shop_db, query=FAILED_ORDERS, expect={"value": {"below": 11}})
    assert result.status is Status.OK
    assert result.value_of("value") == 3
    assert result.reason.startswith("value 3 (expected below 11)")


async def test_query_value_breaking_threshold_fails(shop_db: MariaDBServer) -> None:
    result = await run(shop_db, query=FAILED_ORDERS, expect={"value": {"below": 3}})
    assert result.status is Status.FAIL
    assert result.reason == "value 3 (expected below 3)"


async def test_numeric_text_is_a_number(shop_db: MariaDBServer) -> None:
    query = (
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
        " WHERE VARIABLE_NAME = 'THREADS_CONNECTED'"
    )
    result = await run(shop_db, query=query, expect={"value": {"above": 0}})
    assert result.status is Status.OK
    assert (result.value_of("value") or 0) >= 1


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("SELECT NULL", "query returned NULL (expected a number below 5)"),
        ("SELECT 'many'", "query returned 'many', not a number (expected a number below 5)"),
        (
            "SELECT id FROM orders WHERE id > 99",
            "query returned no rows (expected a number below 5)",
        ),
    ],
)
async def test_no_number_fails(shop_db: MariaDBServer, query: str, reason: str) -> None:
    result = await run(shop_db, query=query, expect={"value": {"below": 5}})
    assert result.status is Status.FAIL
    assert result.reason == reason


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("SELECT COUNT(*) FROM no_such_table", "doesn't exist (error 1146)"),
        ("SELECT COUNT(*) FROM orders WHERE", "SQL syntax"),
    ],
)
async def test_our_broken_query_is_an_error(shop_db: MariaDBServer, query: str, words: str) -> None:
    result = await run(shop_db, query=query)
    assert result.status is Status.ERROR
    assert result.reason.startswith("the server refused the query: ")
    assert words in result.reason


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("DELETE FROM orders", "must start with SELECT, SHOW or WITH (it starts with 'DELETE')"),
        ("SELECT 1; DROP TABLE orders", "give one statement only"),
        ("WITH x AS (SELECT 1) UPDATE orders SET status = 'x'", "contains UPDATE"),
        ("SELECT * FROM orders INTO OUTFILE '/tmp/o'", "writes a file on the server"),
        ("/*! DELETE FROM orders */ SELECT 1", "executable comment"),
    ],
)
def test_writing_queries_are_refused_at_config_time(query: str, words: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(words)):
        MysqlSettings(host="db", user="probe", query=query)


def test_quoted_semicolons_and_trailing_semicolon_are_fine() -> None:
    settings = MysqlSettings(host="db", user="probe", query="SELECT COUNT(*) FROM t WHERE a = ';';")
    assert settings.query == "SELECT COUNT(*) FROM t WHERE a = ';'"
    assert settings.mode == "query"
    assert MysqlSettings(host="db", user="probe").mode == "ping"


def test_settings_that_contradict_each_other_say_the_fix() -> None:
    with pytest.raises(ValidationError, match="check: query needs `query:`"):
        MysqlSettings(host="db", user="probe", check="query")
    with pytest.raises(ValidationError, match=r"expect\.lag_seconds needs `check: replication`"):
        MysqlSettings.model_validate(
            {"host": "db", "user": "p", "expect": {"lag_seconds": {"below": 1}}}
        )
    with pytest.raises(ValidationError, match="check: replication runs no `query`"):
        MysqlSettings(host="db", user="probe", check="replication", query="SELECT 1")


async def test_a_write_hidden_in_a_function_meets_the_read_only_transaction(
    shop_db: MariaDBServer,
) -> None:
    result = await run(shop_db, query="SELECT bump()")
    assert result.status is Status.ERROR
    assert "read-only transaction refused it" in result.reason
    count = shop_db.root_sql("SELECT COUNT(*) AS n FROM writes", database=shop_db.database)
    assert count.split() == ["n", "0"]


async def test_slow_query_is_stopped_by_the_server(shop_db: MariaDBServer) -> None:
    began = time.monotonic()
    result = await run(shop_db, seconds=1.0, query="SELECT SLEEP(5)")
    assert time.monotonic() - began < 1.0
    assert result.status is Status.FAIL
    assert result.reason == "query exceeded 0.7s (stopped by the server)"
    processlist = shop_db.root_sql(
        "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST"
        f" WHERE USER = '{shop_db.user}' AND INFO LIKE '%SLEEP(5)%'"
    )
    assert processlist.split() == ["n", "0"]


async def test_wrong_password_is_our_error(shop_db: MariaDBServer) -> None:
    probe = make_probe(shop_db)
    probe.context = ProbeContext(environ={ENV: "not-the-password"})
    result = await run_probe(probe, 5.0)
    assert result.status is Status.ERROR
    assert result.reason.startswith(f"Access denied for user '{shop_db.user}'")
    assert result.reason.endswith(f"check `user` and {ENV}")
    assert "not-the-password" not in f"{result.reason} {result.evidence}"


async def test_unset_password_variable_is_our_error(shop_db: MariaDBServer) -> None:
    probe = make_probe(shop_db, password_env="STORE_DB_PASSWORD")
    result = await run_probe(probe, 5.0)
    assert result.status is Status.ERROR
    assert result.reason == "STORE_DB_PASSWORD is not set"


async def test_database_we_may_not_use_is_our_error(shop_db: MariaDBServer) -> None:
    result = await run(shop_db, database="no_such_db")
    assert result.status is Status.ERROR
    assert "to database 'no_such_db' (error 1044)" in result.reason


async def test_refused_connection_fails(shop_db: MariaDBServer) -> None:
    port = free_port()
    result = await run(shop_db, port=port)
    assert result.status is Status.FAIL
    assert result.reason == f"connection refused by {LOOPBACK}:{port}"


async def test_unresolvable_host_is_our_error(shop_db: MariaDBServer) -> None:
    result = await run(shop_db, host="no-such-host.invalid")
    assert result.status is Status.ERROR
    assert result.reason.startswith("cannot resolve no-such-host.invalid")


async def test_silent_server_fails_at_the_timeout(shop_db: MariaDBServer) -> None:
    with blackhole() as port:
        began = time.monotonic()
        result = await run(shop_db, seconds=1.0, port=port)
    assert time.monotonic() - began < 1.2
    assert result.status is Status.FAIL
    assert result.reason == f"no answer from {LOOPBACK}:{port} within 0.9s while connecting"


async def test_server_killed_mid_query_fails_then_recovers(tmp_path: Path) -> None:
    with running_mariadb(tmp_path) as server:
        probe = make_probe(server, query="SELECT SLEEP(3)")
        running = asyncio.create_task(run_probe(probe, 10.0))
        await asyncio.sleep(0.5)
        os.kill(server.pid, signal.SIGKILL)
        result = await running
        assert result.status is Status.FAIL
        where = f"{server.host}:{server.port}"
        assert result.reason == f"lost connection to {where} while querying (error 2013)"

        restarted = start_mariadbd(server.base_dir, server.port)
        try:
            again = await run(server)
        finally:
            restarted.stop()
    assert again.status is Status.OK, again.reason


# --- replication, against a real primary/replica pair -------------------------------------


def on_replica(pair: ReplicaPair, **keys: Any) -> MysqlProbe:
    return make_probe(pair.replica, check="replication", **keys)


async def test_healthy_replica_is_ok(mariadb_pair: ReplicaPair) -> None:
    result = await run_probe(on_replica(mariadb_pair, expect={"lag_seconds": {"below": 1}}), 5.0)
    assert result.status is Status.OK, result.reason
    assert result.value_of("lag_seconds") == 0
    assert result.reason == "replica running; lag_seconds 0 s (expected below 1)"
    evidence = dict(result.evidence)
    assert evidence["source"] == f"127.0.0.1:{mariadb_pair.primary.port}"
    assert evidence["Slave_SQL_Running"] == "Yes"


async def test_stopped_sql_thread_fails_naming_it(mariadb_pair: ReplicaPair) -> None:
    mariadb_pair.replica.root_sql("STOP SLAVE SQL_THREAD")
    mariadb_pair.primary.root_sql(f"UPDATE {TABLE} SET n = n + 1 WHERE id = 1")
    result = await run_probe(on_replica(mariadb_pair), 5.0)
    assert result.status is Status.FAIL
    assert result.reason == "replica SQL thread is not running: stopped, no error recorded"
    assert dict(result.evidence)["Seconds_Behind_Master"] == "NULL"


async def test_stopped_io_thread_fails_naming_it(mariadb_pair: ReplicaPair) -> None:
    mariadb_pair.replica.root_sql("STOP SLAVE IO_THREAD")
    result = await run_probe(on_replica(mariadb_pair), 5.0)
    assert result.status is Status.FAIL
    assert result.reason == "replica IO thread is not running: stopped, no error recorded"


async def test_replication_error_is_in_the_reason(mariadb_pair: ReplicaPair) -> None:
    """A row written on the replica by hand collides with the same row from the primary."""
    mariadb_pair.replica.root_sql(f"INSERT INTO {TABLE} VALUES (7, 0)")
    try:
        mariadb_pair.primary.root_sql(f"INSERT INTO {TABLE} VALUES (7, 1)")
        probe = on_replica(mariadb_pair)
        for _ in range(100):
            result = await run_probe(probe, 5.0)
            if result.status is not Status.OK:
                break
            await asyncio.sleep(0.05)
        assert result.status is Status.FAIL
        assert result.reason.startswith("replica SQL thread is not running: error 1062: ")
        assert "Duplicate entry '7'" in result.reason
    finally:
        mariadb_pair.replica.root_sql(f"DELETE FROM {TABLE} WHERE id = 7")
        mariadb_pair.primary.root_sql(f"DELETE FROM {TABLE} WHERE id = 7")


async def test_lagging_replica_fails_its_threshold(mariadb_pair: ReplicaPair) -> None:
    """A replica session holding a row lock keeps the SQL thread waiting: real lag."""
    blocker = await aiomysql.connect(
        unix_socket=str(mariadb_pair.replica.socket_path), user="root", password=""
    )
    probe = on_replica(mariadb_pair, expect={"lag_seconds": {"below": 1}})
    try:
        async with blocker.cursor() as cursor:
            await cursor.execute("BEGIN")
            await cursor.execute(f"SELECT n FROM {TABLE} WHERE id = 1 FOR UPDATE")
        mariadb_pair.primary.root_sql(f"UPDATE {TABLE} SET n = n + 1 WHERE id = 1")
        await asyncio.sleep(2.5)
        lagging = await run_probe(probe, 5.0)
    finally:
        await blocker.rollback()
        blocker.close()
    await asyncio.to_thread(mariadb_pair.wait_caught_up)
    caught_up = await run_probe(probe, 5.0)

    assert lagging.status is Status.FAIL
    assert (lagging.value_of("lag_seconds") or 0) >= 2
    assert lagging.reason.startswith("lag_seconds ")
    assert lagging.reason.endswith(" s (expected below 1)")
    assert caught_up.status is Status.OK
    assert caught_up.value_of("lag_seconds") == 0


async def test_replication_check_on_a_primary_is_our_error(mariadb_pair: ReplicaPair) -> None:
    result = await run_probe(make_probe(mariadb_pair.primary, check="replication"), 5.0)
    assert result.status is Status.ERROR
    assert result.reason.startswith(f"not a replica: 127.0.0.1:{mariadb_pair.primary.port}")


def test_mysql_8_column_names_and_unknown_lag() -> None:
    """MySQL 8.0.22+ says Replica_*/Source_*; the same reasons come out."""
    row = {
        "Source_Host": "db-1",
        "Source_Port": 3306,
        "Replica_IO_Running": "Yes",
        "Replica_SQL_Running": "Yes",
        "Seconds_Behind_Source": None,
        "Last_IO_Error": "",
        "Last_SQL_Error": "",
    }
    health = replica_health([row])
    assert health.problems == ("replication lag unknown (Seconds_Behind_Source is NULL)",)
    assert ("source", "db-1:3306") in health.evidence

    reconnecting = {
        **row,
        "Replica_IO_Running": "Connecting",
        "Last_IO_Errno": 2003,
        "Last_IO_Error": "error connecting to source 'repl@db-1:3306' - retry-time: 60",
    }
    assert replica_health([reconnecting]).problems == (
        "replica IO thread is not running (Connecting): error 2003: "
        "error connecting to source 'repl@db-1:3306' - retry-time: 60",
    )
