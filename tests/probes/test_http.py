"""The http probe against a real nginx (plain and TLS) on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from probes.errors import ProbeConfigError
from probes.probe import ProbeContext, run_probe
from probes.redaction import Redaction
from probes.registry import build_probe, kind_settings
from probes.result import ProbeResult, Status
from tests.servers.nginx import WRONG_BODY_TEXT, NginxServer
from tests.servers.ports import free_port
from tests.servers.sshd import SSHServer
from tests.servers.tls_fixtures import Listener, TlsServers
from tests.servers.upstream import STREAM_LINE

PHASES = ("dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "total_ms")
COMMON_KEYS = {
    "id", "kind", "interval", "timeout", "severity", "fail_after", "fail_window",
    "recover_after", "depends_on", "remediate", "labels", "severity_ladder",
}  # fmt: skip
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def check(within: float = 5.0, **settings: Any) -> ProbeResult:
    probe = build_probe("web", "http", settings, ProbeContext())
    try:
        return await run_probe(probe, within)
    finally:
        await probe.close()


def open_descriptors() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def evidence(result: ProbeResult) -> dict[str, str]:
    return dict(result.evidence)


def exact_stream(size: int) -> str:
    """A regex matching exactly the upstream's /stream body of `size` bytes."""
    line = STREAM_LINE.decode()
    whole, rest = divmod(size, len(line))
    return rf"\A(?:{line}){{{whole}}}{line[:rest]}\Z"


async def test_healthy_page_is_ok_with_every_phase_measured(nginx_server: NginxServer) -> None:
    result = await check(url=nginx_server.url("/health"))
    assert result.status is Status.OK
    assert result.reason.startswith("HTTP 200 in ")
    assert tuple(m.name for m in result.measurements) == PHASES
    assert all(m.unit == "ms" for m in result.measurements)
    assert result.value_of("dns_ms") == 0  # an IP literal needs no lookup
    assert result.value_of("tls_ms") == 0
    total = result.value_of("total_ms")
    assert total is not None and 0 < total < 1000
    assert evidence(result)["status"] == "HTTP/1.1 200 OK"
    assert evidence(result)["body"] == "ok"


async def test_server_error_fails_with_the_status(nginx_server: NginxServer) -> None:
    result = await check(url=nginx_server.url("/error"))
    assert result.status is Status.FAIL
    assert result.reason == "HTTP 500 (expected 200)"
    assert evidence(result)["status"] == "HTTP/1.1 500 Internal Server Error"


async def test_expected_statuses_as_list_or_single_int(nginx_server: NginxServer) -> None:
    listed = await check(url=nginx_server.url("/error"), expect={"status": [200, 500]})
    single = await check(url=nginx_server.url("/missing"), expect={"status": 404})
    assert (listed.status, single.status) == (Status.OK, Status.OK)
    wrong = await check(url=nginx_server.url("/missing"), expect={"status": [200, 204]})
    assert wrong.reason == "HTTP 404 (expected 200 or 204)"


async def test_wrong_body_fails_and_shows_the_body(nginx_server: NginxServer) -> None:
    result = await check(url=nginx_server.url("/wrong-body"), expect={"body_contains": "ok"})
    assert result.status is Status.FAIL
    assert result.reason == "body does not contain 'ok'"
    assert evidence(result)["body"] == WRONG_BODY_TEXT


async def test_body_regex(nginx_server: NginxServer) -> None:
    good = await check(url=nginx_server.url("/"), expect={"body_regex": r"<h1>tocsin \w+ shop"})
    bad = await check(url=nginx_server.url("/"), expect={"body_regex": r"Status: (OK|GREEN)"})
    assert good.status is Status.OK
    assert (bad.status, bad.reason) == (Status.FAIL, "body does not match /Status: (OK|GREEN)/")
    assert evidence(bad)["body"].startswith("<!doctype html>\\n<html>")


async def test_slow_first_byte_breaks_the_ttfb_threshold(nginx_server: NginxServer) -> None:
    result = await check(url=nginx_server.url("/slow?ms=300"), expect={"ttfb_ms": {"below": 200}})
    ttfb = result.value_of("ttfb_ms")
    assert result.status is Status.FAIL
    assert ttfb is not None and ttfb >= 300
    assert result.reason == f"ttfb_ms {ttfb:.0f} ms (expected below 200)"
    fast = await check(url=nginx_server.url("/slow?ms=10"), expect={"ttfb_ms": {"below": 200}})
    assert fast.status is Status.OK


async def test_redirect_is_followed_and_shown(nginx_server: NginxServer) -> None:
    result = await check(url=nginx_server.url("/redirect"))
    assert result.status is Status.OK
    assert evidence(result)["url"] == nginx_server.url("/health")
    assert evidence(result)["redirects"] == (
        f"301 {nginx_server.url('/redirect')} -> {nginx_server.url('/health')}"
    )


async def test_redirect_chain_and_absolute_location(nginx_server: NginxServer) -> None:
    chain = await check(url=nginx_server.url("/redirect-chain"))
    assert chain.status is Status.OK
    assert evidence(chain)["redirects"].count(" -> ") == 2
    absolute = await check(url=nginx_server.url("/redirect-absolute"))
    assert absolute.status is Status.OK
    assert evidence(absolute)["url"] == nginx_server.url("/health")


async def test_redirect_not_followed_when_disabled(nginx_server: NginxServer) -> None:
    result = await check(url=nginx_server.url("/redirect"), follow_redirects=False)
    assert result.status is Status.FAIL
    assert result.reason == "HTTP 301 (expected 200)"
    assert evidence(result)["location"] == "/health"


async def test_redirect_loop_fails(nginx_server: NginxServer) -> None:
    result = await check(url=nginx_server.url("/loop-a"))
    assert result.status is Status.FAIL
    assert result.reason == f"redirect loop: {nginx_server.url('/loop-a')} again"
    assert evidence(result)["redirects"].count(" -> ") == 2


async def test_refused_connection_fails() -> None:
    port = free_port()
    result = await check(url=f"http://127.0.0.1:{port}/")
    assert result.status is Status.FAIL
    assert result.reason == f"connection refused by 127.0.0.1:{port}"
    assert result.value_of("connect_ms") is not None


async def test_host_name_is_resolved(nginx_server: NginxServer) -> None:
    result = await check(url=f"http://localhost:{nginx_server.port}/health")
    assert result.status is Status.OK
    dns = result.value_of("dns_ms")
    assert dns is not None and dns > 0


async def test_chunked_body_is_read_whole(nginx_server: NginxServer) -> None:
    size = 200_000
    result = await check(
        url=nginx_server.url(f"/up/stream?bytes={size}"), expect={"body_regex": exact_stream(size)}
    )
    assert result.status is Status.OK, result.reason


async def test_body_until_close_is_read_whole(nginx_server: NginxServer) -> None:
    size = 50_000  # straight from the HTTP/1.0 upstream: no length, the close ends the body
    url = f"{nginx_server.upstream_url}/stream?bytes={size}"
    result = await check(url=url, expect={"body_regex": exact_stream(size)})
    assert result.status is Status.OK, result.reason


async def test_large_bodies_are_checked_whole(nginx_server: NginxServer) -> None:
    size = 3_000_000  # chunked by nginx; every byte must reach the regex
    result = await check(
        url=nginx_server.url(f"/up/stream?bytes={size}"),
        expect={"body_regex": exact_stream(size)},
    )
    assert result.status is Status.OK, result.reason
    assert "body read" not in evidence(result)


async def test_a_large_body_without_checks_is_downloaded_but_not_kept(
    nginx_server: NginxServer,
) -> None:
    result = await check(url=nginx_server.url("/big.bin"))
    assert result.status is Status.OK
    assert evidence(result)["body"].startswith("tocsin")
    assert "body read" not in evidence(result)  # nothing was checked, so nothing was cut


async def test_head_and_no_content_have_no_body(nginx_server: NginxServer) -> None:
    head = await check(url=nginx_server.url("/health"), method="HEAD")
    empty = await check(url=nginx_server.url("/no-content"), expect={"status": [204]})
    assert (head.status, empty.status) == (Status.OK, Status.OK)
    assert "body" not in evidence(head)


async def test_post_sends_body_and_headers(nginx_server: NginxServer) -> None:
    result = await check(
        url=nginx_server.url("/up/echo"),
        method="post",
        headers={"X-Probe": "tocsin"},
        body="hello",
        expect={"body_contains": "POST body='hello' x-probe='tocsin'"},
    )
    assert result.status is Status.OK, evidence(result)


async def test_https_with_private_ca_is_ok(tls_servers: TlsServers) -> None:
    for host in ("127.0.0.1", "localhost"):
        result = await check(url=tls_servers.url("valid", host=host), ca_file=tls_servers.ca_file)
        assert result.status is Status.OK, result.reason
        tls = result.value_of("tls_ms")
        assert tls is not None and tls > 0


@pytest.mark.parametrize(
    ("certificate", "message"),
    [
        ("self_signed", "self-signed certificate"),
        ("expired", "certificate has expired"),
        ("wrong_name", "IP address mismatch, certificate is not valid for '127.0.0.1'."),
    ],
)
async def test_invalid_certificate_fails_with_the_reason(
    tls_servers: TlsServers, certificate: str, message: str
) -> None:
    result = await check(url=tls_servers.url(certificate), ca_file=tls_servers.ca_file)
    assert result.status is Status.FAIL
    assert result.reason == f"TLS certificate of 127.0.0.1 not valid: {message}"


async def test_private_ca_is_unknown_to_the_system_store(tls_servers: TlsServers) -> None:
    result = await check(url=tls_servers.url("valid"))
    assert result.status is Status.FAIL
    assert "unable to get local issuer certificate" in result.reason


async def test_verify_tls_off_accepts_a_self_signed_certificate(tls_servers: TlsServers) -> None:
    result = await check(url=tls_servers.url("self_signed"), verify_tls=False)
    assert result.status is Status.OK


async def test_unreadable_ca_file_is_an_error(tls_servers: TlsServers, tmp_path: Path) -> None:
    result = await check(url=tls_servers.url("valid"), ca_file=tmp_path / "missing.pem")
    assert result.status is Status.ERROR
    assert result.reason.startswith(f"cannot load ca_file {tmp_path / 'missing.pem'}")


async def test_redirect_from_http_to_https(tls_servers: TlsServers) -> None:
    result = await check(url=tls_servers.nginx.url("/to-https"), ca_file=tls_servers.ca_file)
    assert result.status is Status.OK, result.reason
    assert evidence(result)["url"] == tls_servers.url("valid")
    tls = result.value_of("tls_ms")
    assert tls is not None and tls > 0


async def test_tls_to_a_plain_port_fails(nginx_server: NginxServer) -> None:
    result = await check(url=f"https://127.0.0.1:{nginx_server.port}/")
    assert result.status is Status.FAIL
    assert result.reason.startswith(f"TLS handshake with 127.0.0.1:{nginx_server.port} failed")


async def test_silent_server_fails_at_the_timeout(silent_listener: Listener) -> None:
    url = f"http://{silent_listener.host}:{silent_listener.port}/"
    result = await check(within=0.5, url=url)
    assert result.status is Status.FAIL
    assert result.reason == "no answer within 0.45s: waiting for the first byte of the response"
    assert result.duration < 1.0
    assert result.value_of("connect_ms") is not None


@pytest.mark.parametrize(
    ("settings", "where", "message"),
    [
        ({"url": "ftp://x/"}, "url", "is not an http(s) URL"),
        ({"url": "https://user:pw@x/"}, "url", "remove the user name and password"),
        ({"url": "http://x/", "method": "FETCH"}, "method", "not an HTTP method"),
        ({"url": "http://x/", "headers": {"Connection": "keep-alive"}}, "headers", "remove"),
        ({"url": "http://x/", "expect": {"status": [700]}}, "expect.status", "100 to 599"),
        ({"url": "http://x/", "expect": {"body_regex": "("}}, "expect.body_regex", "regular"),
        ({"url": "http://x/", "expect": {"ttfb_ms": {}}}, "expect.ttfb_ms", "give `below`"),
        ({"url": "http://x/", "expect": {"stat": [200]}}, "expect.stat", "Extra inputs"),
    ],
)
def test_settings_errors_name_the_key(settings: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(ProbeConfigError) as raised:
        build_probe("web", "http", settings, ProbeContext())
    assert f"probe web: {where}" in str(raised.value)
    assert message in str(raised.value)


def test_example_http_probes_are_valid() -> None:
    seen = 0
    for path in sorted(EXAMPLES.glob("*.yml")):
        for probe in yaml.safe_load(path.read_text()).get("probes", []):
            if probe["kind"] == "http":
                kind_settings("http", {k: v for k, v in probe.items() if k not in COMMON_KEYS})
                seen += 1
    assert seen > 5


async def test_spaces_and_non_ascii_in_the_path_are_encoded(nginx_server: NginxServer) -> None:
    result = await check(url=nginx_server.url("/no such/café"), expect={"status": [404]})
    assert result.status is Status.OK, result.reason
    assert evidence(result)["url"] == nginx_server.url("/no%20such/caf%C3%A9")


async def test_cancelled_probe_leaves_no_socket_open(silent_listener: Listener) -> None:
    """The runner may cancel a probe at any await; its socket must be closed, never reused."""
    probe = build_probe(
        "web", "http", {"url": f"http://127.0.0.1:{silent_listener.port}/"}, ProbeContext()
    )
    before = open_descriptors()
    task = asyncio.create_task(probe.observe(30))
    await asyncio.sleep(0.2)
    assert open_descriptors() == before + 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert open_descriptors() == before


async def test_a_server_that_is_not_http_fails_at_once(sshd_server: SSHServer) -> None:
    # sshd greets with its banner and waits for ours: no need to wait for the timeout.
    result = await check(url=f"http://127.0.0.1:{sshd_server.port}/")
    assert result.status is Status.FAIL
    assert result.reason.startswith("not an HTTP response: 'SSH-2.0-OpenSSH")
    assert result.duration < 1.0


async def test_a_header_value_comes_from_the_environment(nginx_server: NginxServer) -> None:
    """`X-Probe_env: PROBE_TOKEN` sends `X-Probe` with the variable's value, never the name."""
    settings: dict[str, Any] = {
        "url": nginx_server.url("/up/echo"),
        "headers": {"X-Probe_env": "PROBE_TOKEN"},
        "expect": {"body_contains": "x-probe='s3cret'"},
    }
    context = ProbeContext(environ={"PROBE_TOKEN": "s3cret"})
    sent = await run_probe(build_probe("web", "http", settings, context), 5)
    assert (sent.status, sent.reason.split(" in ")[0]) == (Status.OK, "HTTP 200")
    unset = await run_probe(build_probe("web", "http", settings, ProbeContext()), 5)
    assert (unset.status, unset.reason) == (Status.ERROR, "PROBE_TOKEN is not set")


async def test_a_secret_header_the_target_echoes_is_redacted(nginx_server: NginxServer) -> None:
    """`/invalid-key` answers `invalid key $http_x_api_key`: the key is shown as `[redacted]`."""
    key = "k3y-9f2c41d7e0b6"
    settings: dict[str, Any] = {
        "url": nginx_server.url("/invalid-key"),
        "headers": {"X-Api-Key_env": "API_KEY"},
    }
    context = ProbeContext(environ={"API_KEY": key}, redaction=Redaction([key]))
    result = await run_probe(build_probe("web", "http", settings, context), 5)
    assert result.status is Status.FAIL and result.reason.startswith("HTTP 401")
    assert "invalid key [redacted]" in evidence(result)["body"]
    assert key not in repr(result)


@pytest.mark.parametrize(("path", "secret_sent"), [("/here-again", True), ("/elsewhere", False)])
async def test_secret_headers_never_follow_a_redirect_to_another_origin(
    nginx_server: NginxServer, path: str, secret_sent: bool
) -> None:
    """`/elsewhere` redirects to the upstream's own port: another origin gets no secret."""
    settings: dict[str, Any] = {
        "url": nginx_server.url(path),
        "headers": {"X-Probe_env": "PROBE_TOKEN"},
    }
    context = ProbeContext(environ={"PROBE_TOKEN": "s3cret"})
    result = await run_probe(build_probe("web", "http", settings, context), 5)
    assert result.status is Status.OK
    echoed = "x-probe='s3cret'" if secret_sent else "x-probe=''"
    assert echoed in evidence(result)["body"]
