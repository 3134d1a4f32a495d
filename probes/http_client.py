"""One HTTP/1.1 request per connection, as a monitoring probe needs, each phase timed.

tocsin keeps its own socket and phase-timing layer (`probes.net`, `probes.tls_client`:
honest dns/connect/tls/ttfb/total figures at a fraction of a general client's CPU) and
leaves the reading of the response to llhttp (`probes.http_response`). One request,
`Connection: close`, `Accept-Encoding: identity`; directly or through an http proxy
(absolute-form requests for http, a CONNECT tunnel for https).
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass

from probes.http_proxy import Proxy, connect_request, tunnel_refused
from probes.http_response import Response, read_response
from probes.http_url import Url
from probes.net import Channel, ProbeProblem, Timings, connect, display, io_problem
from probes.result import Status
from probes.tls_client import TlsChannel, tls_problem, tls_reason

USER_AGENT = "tocsin-probe/0.1"


def build_request(
    method: str,
    url: Url,
    headers: Mapping[str, str],
    body: bytes | None,
    proxy: Proxy | None = None,
) -> bytes:
    """Request bytes; `headers` replace the defaults of the same name (case-insensitive).

    Through a proxy, a plain-http request names the whole URL (absolute form) and carries
    the proxy's credentials; an https request goes inside a tunnel and looks direct.
    """
    fields = {
        "host": ("Host", url.host_header),
        "user-agent": ("User-Agent", USER_AGENT),
        "accept": ("Accept", "*/*"),
    }
    for name, value in headers.items():
        fields[name.lower()] = (name, value)
    fields["accept-encoding"] = ("Accept-Encoding", "identity")
    fields["connection"] = ("Connection", "close")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        fields["content-length"] = ("Content-Length", str(len(body or b"")))
    target = url.target
    if proxy is not None and url.scheme == "http":
        target = f"http://{url.host_header}{url.target}"
        if proxy.authorization:
            fields["proxy-authorization"] = ("Proxy-Authorization", proxy.authorization)
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.values())
    return f"{method} {target} HTTP/1.1\r\n{head}\r\n".encode("latin-1") + (body or b"")


@dataclass
class HttpTimings(Timings):
    """The connection phases plus the wait for the first byte and the whole exchange."""

    ttfb: float = 0.0
    total: float = 0.0


@dataclass(frozen=True)
class Exchange:
    """How one request is sent: the bytes, where, and how much of the body to keep."""

    url: Url
    request: bytes
    method: str
    keep: int
    context: ssl.SSLContext | None
    proxy: Proxy | None = None


async def exchange(plan: Exchange, timings: HttpTimings) -> Response:
    """Connect (through the proxy, then TLS for https), send the request, read the answer."""
    url, proxy = plan.url, plan.proxy
    sock = await _connect(url, proxy, timings)
    channel: Channel = Channel(sock)
    try:
        if proxy is not None and url.scheme == "https":
            await _tunnel(channel, url, proxy, timings)
        if url.scheme == "https":
            assert plan.context is not None
            channel = await _handshake(channel, plan.context, url, timings)
        try:
            return await _request(channel, plan, timings)
        except ssl.SSLError as error:
            reason = f"TLS error from {display(url.host, url.port)}: {tls_reason(error)}"
            raise ProbeProblem(Status.FAIL, reason) from None
        except OSError as error:
            raise io_problem(error, url.host, url.port) from None
    finally:
        sock.close()


async def _connect(url: Url, proxy: Proxy | None, timings: HttpTimings) -> socket.socket:
    if proxy is None:
        return await connect(url.host, url.port, timings)
    timings.own_host = proxy.host
    try:
        return await connect(proxy.host, proxy.port, timings)
    except ProbeProblem as problem:  # our own proxy down: we cannot tell how the target is
        raise ProbeProblem(Status.ERROR, f"proxy: {problem.reason}") from None


async def _tunnel(channel: Channel, url: Url, proxy: Proxy, timings: HttpTimings) -> None:
    """CONNECT through the proxy; the round trip counts as connecting."""
    timings.enter("proxy", proxy.host, proxy.port)
    began = time.perf_counter()
    try:
        await channel.send(connect_request(url, proxy))
        answer = await read_response(channel, await channel.recv(), 0, head_only=True)
    except OSError as error:
        broken = io_problem(error, proxy.host, proxy.port)
        raise ProbeProblem(Status.ERROR, f"proxy: {broken.reason}") from None
    except ProbeProblem as problem:
        raise ProbeProblem(Status.ERROR, f"proxy {proxy.where}: {problem.reason}") from None
    finally:
        timings.connect += time.perf_counter() - began
    if not 200 <= answer.status < 300:
        raise tunnel_refused(answer.status, answer.status_line, url, proxy)


async def _handshake(
    channel: Channel, context: ssl.SSLContext, url: Url, timings: HttpTimings
) -> TlsChannel:
    timings.enter("tls", url.host, url.port)
    tls = TlsChannel(channel.sock, context, url.server_name)
    began = time.perf_counter()
    try:
        await tls.handshake()
    except ssl.SSLError as error:
        raise tls_problem(error, url.server_name, display(url.host, url.port)) from None
    except OSError as error:
        raise io_problem(error, url.host, url.port) from None
    finally:
        timings.tls += time.perf_counter() - began
    return tls


async def _request(channel: Channel, plan: Exchange, timings: HttpTimings) -> Response:
    timings.enter("ttfb", plan.url.host, plan.url.port)  # the target's time, even via a proxy
    await channel.send(plan.request)
    sent = time.perf_counter()
    first = await channel.recv()
    timings.ttfb += time.perf_counter() - sent
    timings.phase = "body"
    return await read_response(channel, first, plan.keep, head_only=plan.method == "HEAD")
