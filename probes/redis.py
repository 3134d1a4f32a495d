"""The redis probe: PING latency always, plus a cache hit rate or one INFO field.

The hit rate is taken from the change in `keyspace_hits`/`keyspace_misses`
between two samples of the same probe, not from the lifetime totals, which
would hide a cache that went cold an hour ago behind a month of good traffic.
The counters are server-wide: every db and every client on the server counts.

Each run opens a fresh connection with socket timeouts inside the probe's own
deadline and closes it, so a connection that timed out is never reused.
Retries are off: a retry would hide the very failure the probe is there to see.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio
from pydantic import Field, model_validator
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    BusyLoadingError,
    ConnectionError,
    NoPermissionError,
    RedisError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from probes.net import connect_status
from probes.probe import KindSettings, Probe
from probes.result import Measurement, Observation, Status
from probes.thresholds import Threshold, judge, measure

ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
Check = Literal["ping", "hit_rate", "info"]
_TEXT_CAP = 200
_BASELINE = "first sample: baseline taken; the hit rate needs a second sample"


class RedisExpect(KindSettings):
    ping_ms: Threshold | None = None
    hit_rate_percent: Threshold | None = Field(None, description="e.g. {above: 70}")
    value: Threshold | None = Field(None, description="a numeric info_field, e.g. {below: 100}")
    equals: str | None = Field(None, description="a text info_field, e.g. up")


class RedisSettings(KindSettings):
    host: str = Field(min_length=1)
    port: int = Field(6379, ge=1, le=65535)
    username: str | None = Field(None, min_length=1, description="ACL user (default: default)")
    password_env: str | None = Field(
        None, pattern=ENV_NAME, description="environment variable holding the password"
    )
    db: int = Field(0, ge=0)
    check: Check = "ping"
    info_field: str | None = Field(
        None,
        pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)?$",
        description="an INFO field such as used_memory, or db0.keys",
    )
    expect: RedisExpect = RedisExpect()

    @model_validator(mode="after")
    def _consistent(self) -> RedisSettings:
        expect = self.expect
        if self.check == "info" and self.info_field is None:
            raise ValueError("check: info needs `info_field:`, e.g. info_field: connected_clients")
        if self.check != "info" and self.info_field is not None:
            raise ValueError("info_field is read by `check: info`; add that line")
        if expect.hit_rate_percent is not None and self.check != "hit_rate":
            raise ValueError("expect.hit_rate_percent needs `check: hit_rate`")
        if (expect.value is not None or expect.equals is not None) and self.check != "info":
            raise ValueError(
                "expect.value and expect.equals compare an `info_field`; use check: info"
            )
        if expect.value is not None and expect.equals is not None:
            raise ValueError("give expect.value (a number) or expect.equals (a text), not both")
        return self


@dataclass(frozen=True)
class _Counters:
    run_id: str
    hits: int
    misses: int


def own_deadline(timeout: float) -> float:
    """Seconds the probe gives itself, leaving time to close before the runner cancels it."""
    return timeout - min(0.5, timeout * 0.1)


def _ms(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 1)


def _text(value: Any) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= _TEXT_CAP else text[: _TEXT_CAP - 1] + "…"


class RedisProbe(Probe):
    kind = "redis"
    settings_model = RedisSettings

    def configure(self, settings: KindSettings) -> None:
        assert isinstance(settings, RedisSettings)
        self.settings = settings
        self.where = f"{settings.host}:{settings.port}"
        self._counters: _Counters | None = None

    @property
    def target_host(self) -> str:
        return self.settings.host

    async def observe(self, timeout: float) -> Observation:  # noqa: ASYNC109 - the contract
        settings = self.settings
        password = None
        if settings.password_env is not None:
            password = self.context.environ.get(settings.password_env)
            if password is None:
                return Observation(Status.ERROR, f"{settings.password_env} is not set")
        budget = own_deadline(timeout)
        client = redis.asyncio.Redis(
            host=settings.host,
            port=settings.port,
            db=settings.db,
            username=settings.username,
            password=password,
            socket_connect_timeout=budget,
            socket_timeout=budget,
            retry=Retry(NoBackoff(), 0),
            single_connection_client=True,
            decode_responses=True,
        )
        try:
            async with asyncio.timeout(budget):
                began = time.perf_counter()
                await client.initialize()
                connect = Measurement("connect_ms", _ms(began), "ms")
                began = time.perf_counter()
                await client.ping()
                ping = measure("ping_ms", _ms(began), "ms", settings.expect.ping_ms)
                if settings.check == "ping":
                    healthy = f"PONG in {ping.value:g} ms"
                    return judge((ping, connect), healthy=healthy)
                info: dict[str, Any] = await client.info()
                if settings.check == "hit_rate":
                    return self._hit_rate(info, (ping, connect))
                return self._info_field(info, (ping, connect))
        except (TimeoutError, RedisTimeoutError):
            return Observation(Status.FAIL, f"no answer from {self.where} within {budget:g}s")
        except RedisError as error:
            return self._failure(error)
        finally:
            await client.aclose()

    def _hit_rate(self, info: dict[str, Any], timings: tuple[Measurement, ...]) -> Observation:
        now = _Counters(
            str(info.get("run_id", "")), int(info["keyspace_hits"]), int(info["keyspace_misses"])
        )
        before, self._counters = self._counters, now
        evidence: tuple[tuple[str, str], ...] = (
            ("keyspace_hits", str(now.hits)),
            ("keyspace_misses", str(now.misses)),
        )
        if before is None:
            return judge(timings, evidence, healthy=_BASELINE)
        if before.run_id != now.run_id or now.hits < before.hits or now.misses < before.misses:
            healthy = "counters restarted (server restart or CONFIG RESETSTAT): new baseline taken"
            return judge(timings, evidence, healthy=healthy)
        hits, misses = now.hits - before.hits, now.misses - before.misses
        if hits + misses == 0:
            return judge(timings, evidence, healthy="no cache traffic since the last sample")
        rate = round(100 * hits / (hits + misses), 1)
        measured = measure("hit_rate_percent", rate, "%", self.settings.expect.hit_rate_percent)
        evidence = (*evidence, ("since last sample", f"{hits} hits, {misses} misses"))
        healthy = f"hit rate {rate:g} % ({hits} hits, {misses} misses since the last sample)"
        return judge((measured, *timings), evidence, healthy=healthy)

    def _info_field(self, info: dict[str, Any], timings: tuple[Measurement, ...]) -> Observation:
        name = self.settings.info_field
        assert name is not None
        expect = self.settings.expect
        section, _, key = name.partition(".")
        found = info.get(section)
        if key:
            found = found.get(key) if isinstance(found, dict) else None
        evidence: tuple[tuple[str, str], ...] = (
            ("role", str(info.get("role", "?"))),
            ("redis_version", str(info.get("redis_version", "?"))),
        )
        if found is None:
            hint = (
                f"{self.where} is not a replica (role {info.get('role')})"
                if name.startswith(("master_", "slave_")) and info.get("role") == "master"
                else "check info_field against the server's INFO output"
            )
            return Observation(Status.ERROR, f"INFO has no field {name}: {hint}", timings, evidence)
        evidence = (*evidence, (name, _text(found)))
        if expect.equals is not None:
            shown = f"{name} is {_text(found)}"
            problems = (
                () if str(found) == expect.equals else (f"{shown} (expected {expect.equals})",)
            )
            return judge(timings, evidence, healthy=shown, problems=problems)
        if isinstance(found, bool) or not isinstance(found, int | float):
            if expect.value is None:
                return judge(timings, evidence, healthy=f"{name} is {_text(found)}")
            problem = f"{name} is '{_text(found)}', not a number (expected {expect.value.shown()})"
            return judge(timings, evidence, problems=(problem,))
        value = measure(name, float(found), "", expect.value)
        return judge((value, *timings), evidence, healthy=value.shown())

    def _failure(self, error: RedisError) -> Observation:
        """Our credentials, grants and db number are ours (`error`); the rest is the target's."""
        text = _text(error) or type(error).__name__
        if isinstance(error, NoPermissionError):
            return Observation(
                Status.ERROR, f"{self.where} refused a command: {text}; check the ACL"
            )
        if isinstance(error, AuthenticationError | AuthorizationError):
            if self.settings.password_env is None:
                reason = f"{self.where} requires authentication: {text}; set password_env"
            else:
                secret = f"username and {self.settings.password_env}"
                reason = f"authentication refused by {self.where}: {text}; check {secret}"
            return Observation(Status.ERROR, reason)
        if isinstance(error, BusyLoadingError):
            return Observation(Status.FAIL, f"{self.where} is loading its dataset: {text}")
        if isinstance(error, ResponseError) and "DB index" in text:
            return Observation(Status.ERROR, f"{text}: check db ({self.settings.db})")
        if isinstance(error, ConnectionError):
            cause = error.__cause__ or error.__context__
            if isinstance(cause, socket.gaierror):
                reason = f"cannot resolve {self.settings.host}: {cause.strerror}"
                return Observation(Status.ERROR, reason)
            if isinstance(cause, ConnectionRefusedError):
                return Observation(Status.FAIL, f"connection refused by {self.where}")
            return Observation(connect_status(cause), f"cannot talk to {self.where}: {text}")
        return Observation(Status.FAIL, f"{self.where} answered with an error: {text}")
