"""The http probe through a real egress proxy (tinyproxy) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_config_text
from bot.probe_plan import plan_probes, probe_context
from probes.errors import ProbeConfigError
from probes.probe import ProbeContext, run_probe
from probes.registry import build_probe
from probes.result import ProbeResult, Status
from tests.servers.fixtures import missing_binary
from tests.servers.nginx import NginxServer
from tests.servers.ports import free_port
from tests.servers.process import MissingBinaryError
from tests.servers.tinyproxy import ProxyServer, running_tinyproxy
from tests.servers.tls_fixtures import TlsServers


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    try:
        with running_tinyproxy(tmp_path_factory.mktemp("proxy")) as server:
            yield server
    except MissingBinaryError as error:
        missing_binary(error)


@pytest.fixture(scope="module")
def guarded_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    try:
        with running_tinyproxy(tmp_path_factory.mktemp("guarded"), "probe", "s3cret") as server:
            yield server
    except MissingBinaryError as error:
        missing_binary(error)


async def check(environ: dict[str, str] | None = None, **settings: Any) -> ProbeResult:
    probe = build_probe("web", "http", settings, ProbeContext(environ=environ or {}))
    try:
        return await run_probe(probe, 5.0)
    finally:
        await probe.close()


def proxied(proxy: ProxyServer) -> str:
    return Path(proxy.log_path).read_text(errors="replace")


async def test_plain_http_goes_through_the_proxy(
    proxy: ProxyServer, nginx_server: NginxServer
) -> None:
    url = nginx_server.url("/health?via=proxy")
    result = await check(url=url, proxy=proxy.url)
    assert result.status is Status.OK, result.reason
    assert f"GET {url} HTTP/1.1" in proxied(proxy)


async def test_https_is_tunnelled_and_the_certificate_still_checked(
    proxy: ProxyServer, tls_servers: TlsServers
) -> None:
    ca = str(tls_servers.ca_file)
    good = await check(url=tls_servers.url("valid"), proxy=proxy.url, ca_file=ca)
    wrong = await check(url=tls_servers.url("wrong_name"), proxy=proxy.url, ca_file=ca)
    assert good.status is Status.OK, good.reason
    assert (good.value_of("tls_ms") or 0) > 0
    assert f"CONNECT {tls_servers.host}:{tls_servers.ports['valid']}" in proxied(proxy)
    assert wrong.status is Status.FAIL
    assert "not valid" in wrong.reason


async def test_the_environment_proxy_and_no_proxy(
    proxy: ProxyServer, nginx_server: NginxServer
) -> None:
    through = nginx_server.url("/health?via=environment")
    direct = nginx_server.url("/health?via=no-proxy")
    environ = {"HTTP_PROXY": proxy.url}
    sent = await check(environ, url=through, proxy="environment")
    kept = await check(
        {**environ, "NO_PROXY": "localhost,127.0.0.0/8"}, url=direct, proxy="environment"
    )
    assert (sent.status, kept.status) == (Status.OK, Status.OK)
    assert through in proxied(proxy)
    assert direct not in proxied(proxy)


async def test_credentials_come_from_the_environment(
    guarded_proxy: ProxyServer, nginx_server: NginxServer
) -> None:
    url = nginx_server.url("/health")
    host = f"{guarded_proxy.host}:{guarded_proxy.port}"
    allowed = await check(
        {"HTTP_PROXY": f"http://probe:s3cret@{host}"}, url=url, proxy="environment"
    )
    assert allowed.status is Status.OK, allowed.reason
    refused = await check(
        {"HTTPS_PROXY": f"http://{host}"}, url="https://127.0.0.1:1/", proxy="environment"
    )
    assert refused.status is Status.ERROR  # our proxy setup is incomplete, not the target
    assert "407" in refused.reason
    assert "credentials in HTTPS_PROXY" in refused.reason


async def test_a_target_the_proxy_cannot_reach_fails(proxy: ProxyServer) -> None:
    result = await check(url=f"https://127.0.0.1:{free_port()}/", proxy=proxy.url)
    assert result.status is Status.FAIL
    assert result.reason.startswith(f"proxy {proxy.host}:{proxy.port} answered 'HTTP/1.")


async def test_a_proxy_that_is_down_is_our_error(nginx_server: NginxServer) -> None:
    result = await check(url=nginx_server.url("/health"), proxy=f"http://127.0.0.1:{free_port()}")
    assert result.status is Status.ERROR
    assert result.reason.startswith("proxy: connection refused by 127.0.0.1:")


@pytest.mark.parametrize(
    ("proxy", "message"),
    [
        ("http://user:pw@proxy.internal:3128", "remove the credentials from the proxy URL"),
        ("https://proxy.internal:3128", "only http:// proxies are supported"),
        ("socks5://proxy.internal:1080", "only http:// proxies are supported"),
    ],
)
def test_proxy_settings_errors_say_the_fix(proxy: str, message: str) -> None:
    with pytest.raises(ProbeConfigError) as raised:
        build_probe("web", "http", {"url": "http://127.0.0.1/", "proxy": proxy}, ProbeContext())
    assert "probe web: proxy" in str(raised.value)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": "http://127.0.0.1:0/"}, "invalid port"),
        ({"url": "http://127.0.0.1/", "max_body": "512"}, "from 1KiB to 256MiB"),
        ({"url": "http://127.0.0.1/", "max_body": "1GiB"}, "is not a size"),
    ],
)
def test_url_and_max_body_errors_say_the_fix(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ProbeConfigError, match=message):
        build_probe("web", "http", settings, ProbeContext())


async def test_tocsin_passes_the_proxy_variables_to_a_probe_that_asks(
    proxy: ProxyServer, nginx_server: NginxServer, tmp_path: Path
) -> None:
    """The environment reaches probes through `probe_context`, which passes only the
    variables the configuration names: `proxy: environment` names the proxy ones."""
    url = nginx_server.url("/health?via=planned")
    text = (
        "slack: {channel: '#ops'}\n"
        f"storage: {{path: {tmp_path / 'tocsin.db'}}}\n"
        f"probes:\n  - {{id: web, kind: http, url: '{url}', proxy: environment, interval: 30s}}\n"
    )
    config = load_config_text(text).config
    environ = {"HTTP_PROXY": proxy.url, "UNRELATED": "x"}
    [planned] = plan_probes(config, probe_context(config, environ=environ))
    result = await run_probe(planned.probe, 5.0)
    assert result.status is Status.OK, result.reason
    assert f"GET {url} HTTP/1.1" in proxied(proxy)
