"""The mysql probe: connect, run one read-only statement, judge what it returns.

Checks: `ping` (connect and `SELECT 1`), `query` (the first column of the first
row as a number) and `replication` (`SHOW REPLICA STATUS` on a replica). Works
against MySQL and MariaDB; the server flavour comes from its handshake.

Each run opens a fresh connection and closes it: a connection that timed out
or failed is never reused, and `connect_ms` measures what a client sees. The
query is bounded twice: on the server (MariaDB `max_statement_time`, MySQL
`max_execution_time`, set a little below the probe's own deadline so the
server stops it first) and on the client (the deadline itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from decimal import Decimal
from typing import Any, Literal

import aiomysql
from pydantic import Field, field_validator, model_validator

from probes.mysql_errors import (
    PARSE_ERROR,
    STATEMENT_TIMEOUTS,
    UNKNOWN_VARIABLE,
    classify,
    describe,
    error_code,
)
from probes.probe import KindSettings, Probe
from probes.readonly_sql import check_read_only
from probes.replication import replica_health
from probes.result import Measurement, Observation, Status
from probes.thresholds import Threshold, judge, measure

ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
Check = Literal["query", "replication", "ping"]


class MysqlExpect(KindSettings):
    value: Threshold | None = Field(None, description="the query's number, e.g. {below: 80}")
    lag_seconds: Threshold | None = Field(None, description="replica lag, e.g. {below: 1}")
    connect_ms: Threshold | None = None
    query_ms: Threshold | None = None


class MysqlSettings(KindSettings):
    host: str = Field(min_length=1)
    port: int = Field(3306, ge=1, le=65535)
    user: str = Field(min_length=1)
    password_env: str | None = Field(
        None, pattern=ENV_NAME, description="environment variable holding the password"
    )
    database: str | None = Field(None, min_length=1)
    query: str | None = Field(None, description="one read-only SELECT, SHOW or WITH statement")
    check: Check | None = Field(None, description="default: query when `query` is given, else ping")
    expect: MysqlExpect = MysqlExpect()

    @field_validator("query")
    @classmethod
    def _read_only(cls, query: str | None) -> str | None:
        return None if query is None else check_read_only(query)

    @property
    def mode(self) -> Check:
        return self.check or ("query" if self.query is not None else "ping")

    @model_validator(mode="after")
    def _consistent(self) -> MysqlSettings:
        mode = self.mode
        if mode == "query" and self.query is None:
            raise ValueError('check: query needs `query:`, e.g. query: "SELECT COUNT(*) FROM t"')
        if mode != "query" and self.query is not None:
            raise ValueError(f"check: {mode} runs no `query`; remove `query` or the `check` line")
        if self.expect.value is not None and mode != "query":
            raise ValueError("expect.value is the number a `query` returns; give a query")
        if self.expect.lag_seconds is not None and mode != "replication":
            raise ValueError("expect.lag_seconds needs `check: replication` (on the replica)")
        return self


def own_deadline(timeout: float) -> float:
    """Seconds the probe gives itself, leaving time to close before the runner cancels it."""
    return timeout - min(0.5, timeout * 0.1)


def statement_limit(remaining: float) -> float:
    """Server-side limit in seconds: below what is left, so the server stops the query first."""
    return max(0.1, math.floor((remaining - min(1.0, remaining * 0.2)) * 10) / 10)


def as_number(cell: Any) -> float | None:
    if isinstance(cell, bool | int | float | Decimal):
        return float(cell)
    if isinstance(cell, bytes | bytearray):
        cell = cell.decode("utf-8", "replace")
    if isinstance(cell, str):
        with contextlib.suppress(ValueError):
            number = float(cell)
            return number if math.isfinite(number) else None
    return None


def _ms(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 1)


class MysqlProbe(Probe):
    kind = "mysql"
    settings_model = MysqlSettings

    def configure(self, settings: KindSettings) -> None:
        assert isinstance(settings, MysqlSettings)
        self.settings = settings
        self.where = f"{settings.host}:{settings.port}"

    @property
    def target_host(self) -> str:
        return self.settings.host

    async def observe(self, timeout: float) -> Observation:  # noqa: ASYNC109 - the contract
        settings = self.settings
        password = ""
        if settings.password_env is not None:
            if settings.password_env not in self.context.environ:
                return Observation(Status.ERROR, f"{settings.password_env} is not set")
            password = self.context.environ[settings.password_env]
        budget = own_deadline(timeout)
        deadline = asyncio.get_running_loop().time() + budget
        # Built by hand rather than with aiomysql.connect(), which loses a half-open
        # connection when cancelled; this one is always closed in `finally`.
        conn = aiomysql.Connection(
            host=settings.host,
            port=settings.port,
            user=settings.user,
            password=password,
            db=settings.database,
            autocommit=True,  # no connect_timeout: the deadline below bounds every phase
            program_name="tocsin",
        )
        phase = "connecting"
        try:
            async with asyncio.timeout_at(deadline):
                began = time.perf_counter()
                await conn._connect()
                connect = measure("connect_ms", _ms(began), "ms", settings.expect.connect_ms)
                phase = "querying"
                observation = await self._check(conn, connect, deadline)
                with contextlib.suppress(OSError):
                    await conn.ensure_closed()
                return observation
        except TimeoutError:
            return Observation(
                Status.FAIL, f"no answer from {self.where} within {budget:g}s while {phase}"
            )
        except aiomysql.MySQLError as error:
            return classify(
                error,
                host=settings.host,
                where=self.where,
                phase=phase,
                password_env=settings.password_env,
            )
        finally:
            conn.close()

    async def _check(self, conn: Any, connect: Measurement, deadline: float) -> Observation:
        """Bound the session, open a read-only transaction, run the check's statement."""
        # MariaDB prefixes "5.5.5-" for clients that parse only the first number.
        version = str(conn.get_server_info()).removeprefix("5.5.5-")
        limit = statement_limit(deadline - asyncio.get_running_loop().time())
        replication = self.settings.mode == "replication"
        async with conn.cursor(aiomysql.DictCursor if replication else aiomysql.Cursor) as cursor:
            try:
                if "mariadb" in version.lower():
                    await cursor.execute(f"SET SESSION max_statement_time = {limit}")
                else:
                    await cursor.execute(f"SET SESSION max_execution_time = {round(limit * 1000)}")
            except aiomysql.MySQLError as error:
                if error_code(error) != UNKNOWN_VARIABLE:  # servers too old for a limit
                    raise
            await cursor.execute("START TRANSACTION READ ONLY")
            began = time.perf_counter()
            try:
                rows = await self._statement(cursor)
            except aiomysql.MySQLError as error:
                if error_code(error) not in STATEMENT_TIMEOUTS:
                    raise
                rows = None
            query_ms = _ms(began)
        query = measure("query_ms", query_ms, "ms", self.settings.expect.query_ms)
        evidence = (("server", version),)
        if rows is None or query_ms >= limit * 1000:  # MySQL's SLEEP() returns 1 when stopped
            return Observation(
                Status.FAIL,
                f"query exceeded {limit:g}s (stopped by the server)",
                (connect, query),
                (*evidence, ("statement limit", f"{limit:g}s")),
            )
        if replication:
            return self._replication(rows, (connect, query), evidence)
        if self.settings.mode == "ping":
            healthy = f"SELECT 1 in {query_ms:.0f} ms (connected in {connect.value:.0f} ms)"
            return judge((connect, query), evidence, healthy=healthy)
        return self._value(rows, (connect, query), evidence)

    async def _statement(self, cursor: Any) -> list[Any]:
        mode = self.settings.mode
        if mode == "replication":
            try:
                await cursor.execute("SHOW REPLICA STATUS")
            except aiomysql.MySQLError as error:
                if error_code(error) != PARSE_ERROR:  # before MariaDB 10.5 and MySQL 8.0.22
                    raise
                await cursor.execute("SHOW SLAVE STATUS")
        else:
            await cursor.execute(self.settings.query if mode == "query" else "SELECT 1")
        return list(await cursor.fetchall())

    def _value(
        self,
        rows: list[Any],
        timings: tuple[Measurement, ...],
        evidence: tuple[tuple[str, str], ...],
    ) -> Observation:
        threshold = self.settings.expect.value
        cell = rows[0][0] if rows and rows[0] else None
        number = as_number(cell)
        shown = describe(cell) if rows else "no rows"
        evidence = (*evidence, ("value", shown))
        if number is None:
            if threshold is None:
                return judge(timings, evidence, healthy=f"query answered: {shown}")
            what = "no rows" if not rows else "NULL" if cell is None else f"'{shown}', not a number"
            problem = f"query returned {what} (expected a number {threshold.shown()})"
            return judge(timings, evidence, problems=(problem,))
        value = measure("value", number, "", threshold)
        healthy = f"{value.shown()}; query took {timings[1].value:.0f} ms"
        return judge((value, *timings), evidence, healthy=healthy)

    def _replication(
        self,
        rows: list[dict[str, Any]],
        timings: tuple[Measurement, ...],
        evidence: tuple[tuple[str, str], ...],
    ) -> Observation:
        if not rows:
            return Observation(
                Status.ERROR,
                f"not a replica: {self.where} has no replica status "
                "(check: replication must point at the replica)",
                timings,
                evidence,
            )
        health = replica_health(rows)
        measurements, healthy = timings, "replica threads running"
        if health.lag_seconds is not None:
            lag = measure("lag_seconds", health.lag_seconds, "s", self.settings.expect.lag_seconds)
            measurements, healthy = (lag, *timings), f"replica running; {lag.shown()}"
        return judge(
            measurements, (*evidence, *health.evidence), healthy=healthy, problems=health.problems
        )
