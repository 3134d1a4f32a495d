"""The tcp probe against redis, nginx, a refused port and a listener that never speaks."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from probes.errors import ProbeConfigError
from probes.probe import ProbeContext, run_probe
from probes.registry import build_probe, kind_settings
from probes.result import ProbeResult, Status
from tests.probes.test_http import COMMON_KEYS, EXAMPLES
from tests.servers.nginx import NginxServer
from tests.servers.ports import free_port
from tests.servers.redis import RedisServer
from tests.servers.tls_fixtures import Listener


async def check(within: float = 5.0, **settings: Any) -> ProbeResult:
    probe = build_probe("port", "tcp", settings, ProbeContext())
    try:
        return await run_probe(probe, within)
    finally:
        await probe.close()


async def test_connect_only_measures_connect_time(nginx_server: NginxServer) -> None:
    result = await check(host=nginx_server.host, port=nginx_server.port)
    assert result.status is Status.OK
    assert result.reason == f"127.0.0.1:{nginx_server.port} accepted the connection"
    assert [m.name for m in result.measurements] == ["connect_ms"]
    connect = result.value_of("connect_ms")
    assert connect is not None and 0 < connect < 1000


async def test_connect_threshold(nginx_server: NginxServer) -> None:
    result = await check(
        host=nginx_server.host, port=nginx_server.port, expect={"connect_ms": {"below": 0.000001}}
    )
    assert result.status is Status.FAIL
    assert result.reason.startswith("connect_ms ")
    assert result.reason.endswith(" ms (expected below 1e-06)")


async def test_redis_answers_ping(redis_server: RedisServer) -> None:
    result = await check(
        host=redis_server.host, port=redis_server.port, send="PING\r\n", banner="+PONG"
    )
    assert result.status is Status.OK, result.reason
    assert result.reason == f"127.0.0.1:{redis_server.port} answered '+PONG'"
    assert dict(result.evidence) == {"first line": "+PONG"}
    assert result.value_of("banner_ms") is not None


async def test_wrong_banner_fails_showing_what_arrived(redis_server: RedisServer) -> None:
    result = await check(
        host=redis_server.host, port=redis_server.port, send="ECHO\r\n", banner="+PONG"
    )
    assert result.status is Status.FAIL
    assert result.reason == (
        f"first line from 127.0.0.1:{redis_server.port} is "
        "'-ERR wrong number of arguments for 'echo' command' (expected '+PONG')"
    )


async def test_server_closing_without_a_banner_fails(nginx_server: NginxServer) -> None:
    # nginx answers a malformed request line with 400 and closes.
    result = await check(
        host=nginx_server.host, port=nginx_server.port, send="HELLO\r\n\r\n", banner="220"
    )
    assert result.status is Status.FAIL
    assert result.reason.startswith(
        f"first line from 127.0.0.1:{nginx_server.port} is 'HTTP/1.1 400"
    )


async def test_refused_port_fails() -> None:
    port = free_port()
    result = await check(host="127.0.0.1", port=port)
    assert result.status is Status.FAIL
    assert result.reason == f"connection refused by 127.0.0.1:{port}"


async def test_silent_listener_fails_waiting_for_the_banner(silent_listener: Listener) -> None:
    result = await check(
        within=0.5, host=silent_listener.host, port=silent_listener.port, banner="220"
    )
    assert result.status is Status.FAIL
    assert result.reason == (
        f"no complete first line from 127.0.0.1:{silent_listener.port} within 0.45s "
        "(nothing arrived)"
    )
    assert result.duration < 1.0
    assert result.value_of("connect_ms") is not None


async def test_silent_listener_is_fine_without_a_banner(silent_listener: Listener) -> None:
    result = await check(host=silent_listener.host, port=silent_listener.port)
    assert result.status is Status.OK


@pytest.mark.parametrize(
    ("settings", "where"),
    [
        ({"host": "x"}, "port"),
        ({"host": "x", "port": 70000}, "port"),
        ({"host": "x y", "port": 25}, "host"),
        ({"host": "x", "port": 25, "banner": ""}, "banner"),
        ({"host": "x", "port": 25, "expect": {"connect": {"below": 5}}}, "expect.connect"),
    ],
)
def test_settings_errors_name_the_key(settings: dict[str, Any], where: str) -> None:
    with pytest.raises(ProbeConfigError, match=rf"^probe port: {where}: "):
        build_probe("port", "tcp", settings, ProbeContext())


def test_example_tcp_probes_are_valid() -> None:
    seen = 0
    for path in sorted(EXAMPLES.glob("*.yml")):
        for probe in yaml.safe_load(path.read_text()).get("probes", []):
            if probe["kind"] == "tcp":
                kind_settings("tcp", {k: v for k, v in probe.items() if k not in COMMON_KEYS})
                seen += 1
    assert seen >= 1


async def test_connect_that_never_completes_fails_at_the_timeout(full_listener: Listener) -> None:
    result = await check(within=0.5, host=full_listener.host, port=full_listener.port)
    assert result.status is Status.FAIL
    assert result.reason == (
        f"no answer within 0.45s: waiting for a connection to 127.0.0.1:{full_listener.port}"
    )
    connect = result.value_of("connect_ms")
    assert connect is not None and connect >= 400
