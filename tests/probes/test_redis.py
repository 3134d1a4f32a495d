"""The redis probe against real redis-server processes on loopback."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from pydantic import ValidationError

from probes.probe import ProbeContext, run_probe
from probes.redis import RedisProbe, RedisSettings
from probes.result import ProbeResult, Status
from tests.servers.ports import LOOPBACK, blackhole, free_port, port_accepts
from tests.servers.redis import RedisServer, running_redis

ENV = "REDIS_PASSWORD"


def make_probe(
    server: RedisServer, environ: dict[str, str] | None = None, **keys: Any
) -> RedisProbe:
    settings = RedisSettings.model_validate({"host": server.host, "port": server.port, **keys})
    return RedisProbe("cache", settings, ProbeContext(environ=environ or {}))


async def run(server: RedisServer, seconds: float = 5.0, **keys: Any) -> ProbeResult:
    return await run_probe(make_probe(server, **keys), seconds)


@pytest.fixture
async def traffic(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    """A separate client that reads keys, as the application would."""
    client = redis.asyncio.Redis(host=redis_server.host, port=redis_server.port)
    await client.set("product:1", "in stock")
    yield client
    await client.aclose()


async def reads(client: redis.asyncio.Redis, hits: int, misses: int) -> None:
    pipe = client.pipeline(transaction=False)
    for _ in range(hits):
        pipe.get("product:1")
    for number in range(misses):
        pipe.get(f"absent:{number}")
    await pipe.execute()


async def test_ping_measures_latency(redis_server: RedisServer) -> None:
    result = await run(redis_server, expect={"ping_ms": {"below": 1000}})
    assert result.status is Status.OK
    assert result.reason.startswith("PONG in ")
    assert 0 < (result.value_of("ping_ms") or 0) < 1000
    assert result.value_of("connect_ms") is not None


async def test_slow_ping_breaks_its_threshold(redis_server: RedisServer) -> None:
    result = await run(redis_server, expect={"ping_ms": {"below": 0.001}})
    assert result.status is Status.FAIL
    assert result.reason.startswith("ping_ms ")
    assert result.reason.endswith(" ms (expected below 0.001)")


async def test_hit_rate_comes_from_deltas_not_lifetime_totals(
    redis_server: RedisServer, traffic: redis.asyncio.Redis
) -> None:
    probe = make_probe(redis_server, check="hit_rate", expect={"hit_rate_percent": {"above": 70}})
    await reads(traffic, hits=200, misses=0)  # a good past: lifetime rate stays above 70 %

    first = await run_probe(probe, 5.0)
    assert first.status is Status.OK
    assert first.reason.startswith("first sample: baseline taken")
    assert first.value_of("hit_rate_percent") is None

    await reads(traffic, hits=30, misses=70)
    cold = await run_probe(probe, 5.0)
    assert cold.status is Status.FAIL
    assert cold.value_of("hit_rate_percent") == 30
    assert cold.reason == "hit_rate_percent 30 % (expected above 70)"

    await reads(traffic, hits=50, misses=0)
    warm = await run_probe(probe, 5.0)
    assert warm.status is Status.OK
    assert warm.value_of("hit_rate_percent") == 100
    assert warm.reason == "hit rate 100 % (50 hits, 0 misses since the last sample)"

    idle = await run_probe(probe, 5.0)
    assert idle.status is Status.OK
    assert idle.reason == "no cache traffic since the last sample"


async def test_counters_going_back_reset_the_baseline(
    redis_server: RedisServer, traffic: redis.asyncio.Redis
) -> None:
    probe = make_probe(redis_server, check="hit_rate", expect={"hit_rate_percent": {"above": 70}})
    await reads(traffic, hits=50, misses=0)
    await run_probe(probe, 5.0)
    await traffic.config_resetstat()
    await reads(traffic, hits=1, misses=9)

    reset = await run_probe(probe, 5.0)
    assert reset.status is Status.OK
    assert reset.reason.startswith("counters restarted")

    await reads(traffic, hits=9, misses=1)
    after = await run_probe(probe, 5.0)
    assert after.value_of("hit_rate_percent") == 90


async def test_numeric_info_field_against_threshold(
    redis_server: RedisServer, traffic: redis.asyncio.Redis
) -> None:
    clients = await run(
        redis_server,
        check="info",
        info_field="connected_clients",
        expect={"value": {"below": 1000}},
    )
    assert clients.status is Status.OK
    assert (clients.value_of("connected_clients") or 0) >= 2  # the probe and `traffic`

    memory = await run(
        redis_server, check="info", info_field="used_memory", expect={"value": {"below": 1}}
    )
    assert memory.status is Status.FAIL
    assert memory.reason.startswith("used_memory ")
    assert memory.reason.endswith(" (expected below 1)")

    keys = await run(redis_server, check="info", info_field="db0.keys")
    assert keys.status is Status.OK
    assert (keys.value_of("db0.keys") or 0) >= 1


async def test_text_info_field_equals(redis_server: RedisServer) -> None:
    master = await run(redis_server, check="info", info_field="role", expect={"equals": "master"})
    assert master.status is Status.OK
    assert master.reason == "role is master"

    replica = await run(redis_server, check="info", info_field="role", expect={"equals": "slave"})
    assert replica.status is Status.FAIL
    assert replica.reason == "role is master (expected slave)"


async def test_replica_field_on_a_primary_is_our_error(redis_server: RedisServer) -> None:
    result = await run(
        redis_server, check="info", info_field="master_link_status", expect={"equals": "up"}
    )
    assert result.status is Status.ERROR
    assert result.reason == (
        f"INFO has no field master_link_status: {redis_server.host}:{redis_server.port}"
        " is not a replica (role master)"
    )


async def test_missing_database_is_our_error(redis_server: RedisServer) -> None:
    result = await run(redis_server, db=99)
    assert result.status is Status.ERROR
    assert "DB index is out of range" in result.reason


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[RedisServer]:
    """A throwaway redis that requires a password."""
    with running_redis(tmp_path, ["--requirepass", "s3cret-pw"]) as server:
        yield server


async def test_password_from_the_environment(guarded: RedisServer) -> None:
    probe = make_probe(guarded, {ENV: "s3cret-pw"}, password_env=ENV)
    result = await run_probe(probe, 5.0)
    assert result.status is Status.OK


@pytest.mark.parametrize(
    ("environ", "keys", "reason"),
    [
        ({}, {}, "{where} requires authentication: * set password_env"),
        (
            {ENV: "wrong-pw"},
            {"password_env": ENV},
            "authentication refused by {where}: * check username and REDIS_PASSWORD",
        ),
        (
            {ENV: "s3cret-pw"},
            {"password_env": ENV, "username": "nobody"},
            "authentication refused by {where}: * check username and REDIS_PASSWORD",
        ),
    ],
)
async def test_refused_credentials_are_our_error(
    guarded: RedisServer, environ: dict[str, str], keys: dict[str, str], reason: str
) -> None:
    result = await run_probe(make_probe(guarded, environ, **keys), 5.0)
    assert result.status is Status.ERROR
    start, _, end = reason.format(where=f"{guarded.host}:{guarded.port}").partition("*")
    assert result.reason.startswith(start)
    assert result.reason.endswith(end)
    assert "pw" not in f"{result.reason} {result.evidence}"


async def test_unset_password_variable_is_our_error(redis_server: RedisServer) -> None:
    result = await run(redis_server, password_env="CACHE_PASSWORD")
    assert result.status is Status.ERROR
    assert result.reason == "CACHE_PASSWORD is not set"


def stop_by_pid(server: RedisServer) -> None:
    """SIGTERM, then wait until the port is closed."""
    os.kill(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while port_accepts(server.host, server.port) and time.monotonic() < deadline:
        time.sleep(0.05)


async def test_stopped_server_fails(tmp_path: Path) -> None:
    with running_redis(tmp_path) as server:
        probe = make_probe(server)
        assert (await run_probe(probe, 5.0)).status is Status.OK
        stop_by_pid(server)
        result = await run_probe(probe, 5.0)
    assert result.status is Status.FAIL
    assert result.reason == f"connection refused by {server.host}:{server.port}"


async def test_refused_port_fails(redis_server: RedisServer) -> None:
    port = free_port()
    result = await run(redis_server, port=port)
    assert result.status is Status.FAIL
    assert result.reason == f"connection refused by {LOOPBACK}:{port}"


async def test_silent_port_fails_at_the_timeout(redis_server: RedisServer) -> None:
    with blackhole() as port:
        began = time.monotonic()
        result = await run(redis_server, seconds=1.0, port=port)
        elapsed = time.monotonic() - began
    assert elapsed < 1.2
    assert result.status is Status.FAIL
    assert result.reason == f"no answer from {LOOPBACK}:{port} within 0.9s"


async def test_unresolvable_host_is_our_error(redis_server: RedisServer) -> None:
    result = await run(redis_server, host="no-such-host.invalid")
    assert result.status is Status.ERROR
    assert result.reason.startswith("cannot resolve no-such-host.invalid")


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        ({"check": "info"}, "check: info needs `info_field:`"),
        ({"info_field": "used_memory"}, "info_field is read by `check: info`"),
        ({"expect": {"hit_rate_percent": {"above": 70}}}, "needs `check: hit_rate`"),
        ({"check": "hit_rate", "expect": {"equals": "up"}}, "compare an `info_field`"),
        (
            {
                "check": "info",
                "info_field": "role",
                "expect": {"equals": "x", "value": {"above": 1}},
            },
            "not both",
        ),
    ],
)
def test_contradicting_settings_say_the_fix(keys: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as raised:
        RedisSettings.model_validate({"host": "cache", **keys})
    assert words in str(raised.value)
