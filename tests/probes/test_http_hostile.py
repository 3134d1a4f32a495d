"""The http probe against targets that misbehave, each answer scripted byte for byte.

Every run happens on a watched event loop: a probe must give its verdict within its
timeout (plus 1 s) and never hold the loop for more than 100 ms, whatever the target sends.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import zlib
from typing import Any

import brotli
import pytest

from probes.http_url import parse_url
from probes.probe import ProbeContext, run_probe
from probes.registry import build_probe
from probes.result import ProbeResult, Status
from tests.loop_watch import WatchedLoop
from tests.servers.canned_http import HOLD, CannedHttp
from tests.servers.tls_fixtures import Listener, TlsServers

TIMEOUT = 2.0
LONGEST_BLOCK = 0.1
MIB = 1024 * 1024


def probe_on(
    watched: WatchedLoop, context: ProbeContext | None = None, **settings: Any
) -> ProbeResult:
    """Run one http probe on the watched loop; it must answer in time and never block."""

    async def run() -> ProbeResult:
        probe = build_probe("web", "http", settings, context or ProbeContext())
        try:
            return await run_probe(probe, TIMEOUT)
        finally:
            await probe.close()

    watched.reset()
    result = watched.run(run(), TIMEOUT + 1)
    assert watched.longest_block < LONGEST_BLOCK, f"loop blocked {watched.longest_block:.3f}s"
    return result


def response(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body


def evidence(result: ProbeResult) -> dict[str, str]:
    return dict(result.evidence)


@pytest.mark.parametrize(
    "chunks",
    [
        b"5\r\nhello\r\n-6\r\n",  # a negative size once sent the reader back onto its own line
        b"-6\r\nhello\r\n0\r\n\r\n",
        b"+13\r\nhello world tocsin!\r\n0\r\n\r\n",  # 0x13 bytes: ok on garbage before
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"fffffffffffffffffffff\r\nhello\r\n",
    ],
)
def test_invalid_chunk_sizes_fail_without_freezing(
    canned: CannedHttp, watched: WatchedLoop, chunks: bytes
) -> None:
    head = response("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n")
    url = canned.serve("/chunks", head + chunks)
    result = probe_on(watched, url=url, expect={"body_contains": "hello"})
    assert result.status is Status.FAIL
    assert "chunk" in result.reason.lower()


def test_a_response_that_never_ends_is_cut_at_the_timeout(
    canned: CannedHttp, watched: WatchedLoop
) -> None:
    endless = [response("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n")]
    endless += [b"4000\r\n" + b"x" * 0x4000 + b"\r\n"] * 4000  # 64 MiB, fast as loopback goes
    url = canned.serve("/endless", *endless, HOLD)
    result = probe_on(watched, url=url)
    assert result.status is Status.FAIL
    assert "waiting for the rest of the response" in result.reason


@pytest.mark.parametrize("piece", [None, 1400])
def test_the_header_limit_holds_however_the_headers_arrive(
    canned: CannedHttp, watched: WatchedLoop, piece: int | None
) -> None:
    def split(data: bytes) -> list[bytes | float]:
        if piece is None:
            return [data]
        return [step for i in range(0, len(data), piece) for step in (data[i : i + piece], 0.0)]

    big = response(f"HTTP/1.1 200 OK\nX-Big: {'a' * 100_000}\nContent-Length: 2\n", b"ok")
    fair = response(f"HTTP/1.1 200 OK\nX-Fair: {'a' * 60_000}\nContent-Length: 2\n", b"ok")
    too_long = probe_on(watched, url=canned.serve("/big-head", *split(big)))
    fits = probe_on(watched, url=canned.serve("/fair-head", *split(fair)))
    assert (too_long.status, too_long.reason) == (
        Status.FAIL,
        "response headers longer than 64 KiB",
    )
    assert fits.status is Status.OK, fits.reason


def test_a_body_is_read_to_its_end_and_timed_whole(
    canned: CannedHttp, watched: WatchedLoop
) -> None:
    size = 3 * MIB
    body = b"a" * (size - 6) + b"tocsin"
    head = response(f"HTTP/1.1 200 OK\nContent-Length: {size}\n")
    url = canned.serve("/large", head + body[: 2 * MIB], 0.3, body[2 * MIB :])
    result = probe_on(watched, url=url, expect={"body_contains": "tocsin"})
    assert result.status is Status.OK, result.reason
    assert (result.value_of("total_ms") or 0) >= 300  # the pause after 2 MiB is downloading too


def test_checks_past_max_body_say_how_much_they_saw(
    canned: CannedHttp, watched: WatchedLoop
) -> None:
    size = 3 * MIB
    body = b"a" * (size - 6) + b"tocsin"
    url = canned.serve("/capped", response(f"HTTP/1.1 200 OK\nContent-Length: {size}\n", body))
    result = probe_on(watched, url=url, max_body="1MiB", expect={"body_contains": "tocsin"})
    assert result.status is Status.FAIL
    assert result.reason == "body does not contain 'tocsin' in its first 1 MiB (max_body)"
    seen = f"{size} bytes; the checks saw the first 1 MiB (max_body)"
    assert evidence(result)["body read"] == seen


def test_bare_lf_line_endings_are_accepted(canned: CannedHttp, watched: WatchedLoop) -> None:
    url = canned.serve("/lf", b"HTTP/1.0 200 OK\nContent-Type: text/plain\n\nall good\n")
    result = probe_on(watched, url=url, expect={"body_contains": "all good"})
    assert result.status is Status.OK, result.reason


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as IIS sends it
        ("br", brotli.compress),
    ],
)
def test_a_compressed_body_is_decoded_for_the_checks(
    canned: CannedHttp, watched: WatchedLoop, coding: str, encode: Any
) -> None:
    body = encode(b"<html>" + b"filler " * 20_000 + b"order #42 paid</html>")
    head = response(f"HTTP/1.1 200 OK\nContent-Encoding: {coding}\nContent-Length: {len(body)}\n")
    url = canned.serve(f"/{coding}", head + body)
    result = probe_on(watched, url=url, expect={"body_contains": "order #42 paid"})
    assert result.status is Status.OK, result.reason
    assert evidence(result)["content-encoding"] == coding
    assert evidence(result)["body"].startswith("<html>filler")


@pytest.mark.parametrize(
    ("coding", "body", "reason"),
    [
        ("zstd", b"\x28\xb5\x2f\xfd", "the body is zstd-encoded, which tocsin cannot decode"),
        ("gzip", b"not gzip at all", "the body is not valid gzip"),
    ],
)
def test_a_body_that_cannot_be_decoded_says_so(
    canned: CannedHttp, watched: WatchedLoop, coding: str, body: bytes, reason: str
) -> None:
    head = response(f"HTTP/1.1 200 OK\nContent-Encoding: {coding}\nContent-Length: {len(body)}\n")
    url = canned.serve(f"/bad-{coding}", head + body)
    result = probe_on(watched, url=url, expect={"body_contains": "ok"})
    assert result.status is Status.FAIL
    assert result.reason.startswith(f"cannot check the body: {reason}")


@pytest.mark.parametrize(
    "head",
    [
        "HTTP/1.1 2\u00b20 OK\nContent-Length: 2\n",  # superscript two: a digit to str.isdigit
        "HTTP/1.1 200 OK\nContent-Length: \u00b2\n",
        "HTTP/1.1 200 OK\nContent-Length: -2\n",
    ],
)
def test_numbers_that_are_not_ascii_digits_are_a_broken_response(
    canned: CannedHttp, watched: WatchedLoop, head: str
) -> None:
    url = canned.serve("/digits", response(head, b"ok"))
    result = probe_on(watched, url=url)
    assert result.status is Status.FAIL
    assert result.reason.startswith("invalid HTTP response")


def test_the_first_of_two_location_headers_is_followed(
    canned: CannedHttp, watched: WatchedLoop
) -> None:
    canned.serve("/one", response("HTTP/1.1 200 OK\nContent-Length: 3\n", b"one"))
    head = "HTTP/1.1 302 Found\nLocation: /one\nLocation: /two\nContent-Length: 0\n"
    result = probe_on(watched, url=canned.serve("/moved", response(head)))
    assert result.status is Status.OK, result.reason
    assert evidence(result)["url"] == canned.url("/one")


def test_the_charset_of_the_first_content_type_is_used(
    canned: CannedHttp, watched: WatchedLoop
) -> None:
    head = "HTTP/1.1 200 OK\nContent-Type: text/html; charset=iso-8859-1\nContent-Type: text/html\n"
    url = canned.serve("/latin", response(head + "Content-Length: 4\n", "café".encode("latin-1")))
    result = probe_on(watched, url=url, expect={"body_contains": "café"})
    assert result.status is Status.OK, result.reason


def test_port_zero_is_refused_not_port_80() -> None:
    with pytest.raises(ValueError, match="invalid port"):
        parse_url("http://127.0.0.1:0/")


def test_international_names_use_idna_2008() -> None:
    assert parse_url("https://faß.de/").host == "xn--fa-hia.de"  # IDNA 2003 says fass.de
    assert parse_url("http://Bücher.example./").host == "xn--bcher-kva.example."


class NamedLoop(asyncio.SelectorEventLoop):
    """A loop whose resolver knows a few test names (in the order given, as a dual-stack
    name answers ::1 first); every other name goes to the system resolver."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        super().__init__()
        self.names = names

    async def getaddrinfo(self, host: Any, port: Any, **kwargs: Any) -> Any:
        if host not in self.names:
            return await super().getaddrinfo(host, port, **kwargs)
        stream, tcp = socket.SOCK_STREAM, socket.IPPROTO_TCP
        return [
            (socket.AF_INET6, stream, tcp, "", (address, port, 0, 0))
            if ":" in address
            else (socket.AF_INET, stream, tcp, "", (address, port))
            for address in self.names[host]
        ]


def probe_with_names(names: dict[str, list[str]], **settings: Any) -> ProbeResult:
    loop = NamedLoop(names)
    try:
        probe = build_probe("web", "http", settings, ProbeContext())
        return loop.run_until_complete(run_probe(probe, TIMEOUT))
    finally:
        loop.close()


def test_a_trailing_dot_name_passes_the_tls_name_check(tls_servers: TlsServers) -> None:
    """`localhost.` is the fully qualified form; the certificate names `localhost`."""
    url = tls_servers.url("valid", host="localhost.")
    names = {"localhost.": ["127.0.0.1"]}
    result = probe_with_names(names, url=url, ca_file=str(tls_servers.ca_file))
    assert result.status is Status.OK, result.reason


def test_happy_eyeballs_reaches_ipv4_when_ipv6_drops_packets(canned: CannedHttp) -> None:
    """::1 on the target's port has a full accept queue, so the kernel drops our SYNs."""
    blackhole = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    blackhole.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    blackhole.bind(("::1", canned.port))
    blackhole.listen(0)
    filler = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    filler.connect(("::1", canned.port))
    canned.serve("/dual", response("HTTP/1.1 200 OK\nContent-Length: 2\n", b"ok"))
    try:
        url = f"http://dual.test:{canned.port}/dual"
        result = probe_with_names({"dual.test": ["::1", "127.0.0.1"]}, url=url)
    finally:
        filler.close()
        blackhole.close()
    assert result.status is Status.OK, result.reason
    assert (result.value_of("connect_ms") or 0) < 1000


def test_a_silent_target_with_a_full_queue_fails_at_the_timeout(
    full_listener: Listener, watched: WatchedLoop
) -> None:
    result = probe_on(watched, url=f"http://{full_listener.host}:{full_listener.port}/")
    assert result.status is Status.FAIL
    assert "waiting for a connection" in result.reason
