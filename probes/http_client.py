"""A small HTTP/1.1 client for one request per connection, as a monitoring probe needs.

One request, `Connection: close`, `Accept-Encoding: identity`; the body is framed by
Content-Length, chunked encoding or the close of the connection, and at most `MAX_BODY`
bytes of it are kept (enough to match against; the rest is not downloaded).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import quote, urlsplit

from probes.net import (
    Channel,
    ProbeProblem,
    Timings,
    connect,
    display,
    excerpt,
    io_problem,
)
from probes.result import Status
from probes.tls_client import TlsChannel, tls_problem, tls_reason

MAX_BODY = 1024 * 1024
MAX_HEAD = 64 * 1024
USER_AGENT = "tocsin-probe/0.1"
NO_BODY_STATUSES = frozenset({204, 304})
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"  # kept as they are; letters, digits and _.-~ always are


@dataclass(frozen=True)
class Url:
    """An http(s) URL split the way a request needs it."""

    scheme: str
    host: str
    port: int
    target: str
    text: str

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


def parse_url(text: str) -> Url:
    """Raises ValueError with the fix when `text` is not an absolute http(s) URL.

    Spaces and non-ASCII characters in the path are percent-encoded (UTF-8; bytes that are
    not UTF-8 pass through unchanged when they came from a Location header).
    """
    parts = urlsplit(text.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"'{text}' is not an http(s) URL; write e.g. https://shop.example.com/")
    if parts.username is not None or parts.password is not None:
        raise ValueError("remove the user name and password from the URL: cards show the URL")
    try:
        host = (parts.hostname or "").encode("idna").decode("ascii")
        port = parts.port or (443 if scheme == "https" else 80)
    except (UnicodeError, ValueError):
        raise ValueError(
            f"'{text}' has an invalid host or port; write e.g. https://host:8443/"
        ) from None
    if not host:
        raise ValueError(f"'{text}' has no host; write e.g. https://shop.example.com/")
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    target = quote(target, safe=_URL_SAFE, errors="surrogateescape")
    url = Url(scheme, host, port, target, "")
    return replace(url, text=f"{scheme}://{url.host_header}{target}")


def build_request(method: str, url: Url, headers: Mapping[str, str], body: bytes | None) -> bytes:
    """Request bytes; `headers` replace the defaults of the same name (case-insensitive)."""
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
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.values())
    return f"{method} {url.target} HTTP/1.1\r\n{head}\r\n".encode("latin-1") + (body or b"")


@dataclass(frozen=True)
class Response:
    status: int
    status_line: str
    headers: dict[str, str]
    body: bytes
    truncated: bool


@dataclass
class HttpTimings(Timings):
    """The connection phases plus the wait for the first byte and the whole exchange."""

    ttfb: float = 0.0
    total: float = 0.0


async def exchange(
    url: Url,
    request: bytes,
    method: str,
    timings: HttpTimings,
    context: ssl.SSLContext | None,
) -> Response:
    """Connect (TLS for https with `context`), send `request`, read one response."""
    sock = await connect(url.host, url.port, timings)
    channel: Channel
    try:
        if url.scheme == "https":
            assert context is not None
            timings.enter("tls", url.host, url.port)
            channel = TlsChannel(sock, context, url.host)
            began = time.perf_counter()
            try:
                await channel.handshake()
            except ssl.SSLError as error:
                raise tls_problem(error, url.host, display(url.host, url.port)) from None
            except OSError as error:
                raise io_problem(error, url.host, url.port) from None
            finally:
                timings.tls += time.perf_counter() - began
        else:
            channel = Channel(sock)
        try:
            return await _request(channel, request, method, timings)
        except ssl.SSLError as error:
            reason = f"TLS error from {display(url.host, url.port)}: {tls_reason(error)}"
            raise ProbeProblem(Status.FAIL, reason) from None
        except OSError as error:
            raise io_problem(error, url.host, url.port) from None
    finally:
        sock.close()


async def _request(channel: Channel, request: bytes, method: str, timings: HttpTimings) -> Response:
    timings.phase = "ttfb"
    await channel.send(request)
    sent = time.perf_counter()
    data = await channel.recv()
    timings.ttfb += time.perf_counter() - sent
    timings.phase = "body"
    buffer = bytearray(data)
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) >= 5 and not buffer.startswith(b"HTTP/"):
                line = bytes(buffer[:80]).split(b"\r\n")[0]
                raise ProbeProblem(Status.FAIL, f"not an HTTP response: '{excerpt(line, 80)}'")
            if not data:
                raise _closed_early(buffer)
            if len(buffer) > MAX_HEAD:
                raise ProbeProblem(Status.FAIL, "response headers longer than 64 KiB")
            data = await channel.recv()
            buffer += data
            continue
        status, status_line, headers = _parse_head(bytes(buffer[:end]))
        del buffer[: end + 4]
        if 100 <= status < 200 and status != 101:
            continue  # interim answer (100 Continue, 103 Early Hints): the real one follows
        break
    if method == "HEAD" or status in NO_BODY_STATUSES or 100 <= status < 200:
        return Response(status, status_line, headers, b"", False)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, truncated = await _chunked(channel, buffer)
    elif "content-length" in headers:
        body, truncated = await _sized(channel, buffer, _length(headers["content-length"]))
    else:
        body, truncated = await _until_close(channel, buffer)
    return Response(status, status_line, headers, body, truncated)


def _closed_early(buffer: bytearray) -> ProbeProblem:
    if not buffer:
        return ProbeProblem(Status.FAIL, "connection closed without a response")
    return ProbeProblem(Status.FAIL, "connection closed in the middle of the response headers")


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0]
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProbeProblem(Status.FAIL, f"not an HTTP response: '{excerpt(status_line, 80)}'")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return int(parts[1]), status_line, headers


def _length(text: str) -> int:
    value = text.split(",")[0].strip()
    if not value.isdigit():
        raise ProbeProblem(Status.FAIL, f"invalid Content-Length '{text}'")
    return int(value)


async def _sized(channel: Channel, buffer: bytearray, length: int) -> tuple[bytes, bool]:
    wanted = min(length, MAX_BODY)
    while len(buffer) < wanted:
        data = await channel.recv()
        if not data:
            raise ProbeProblem(
                Status.FAIL, f"connection closed after {len(buffer)} of {length} body bytes"
            )
        buffer += data
    return bytes(buffer[:wanted]), length > MAX_BODY


async def _until_close(channel: Channel, buffer: bytearray) -> tuple[bytes, bool]:
    while len(buffer) <= MAX_BODY:
        data = await channel.recv()
        if not data:
            return bytes(buffer), False
        buffer += data
    return bytes(buffer[:MAX_BODY]), True


async def _chunked(channel: Channel, buffer: bytearray) -> tuple[bytes, bool]:
    body = bytearray()
    pos = 0
    while True:
        line_end = buffer.find(b"\r\n", pos)
        while line_end < 0:
            if len(buffer) - pos > 4096:
                raise ProbeProblem(Status.FAIL, "invalid chunked encoding in the body")
            await _more(channel, buffer)
            line_end = buffer.find(b"\r\n", pos)
        size_text = bytes(buffer[pos:line_end]).split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProbeProblem(Status.FAIL, "invalid chunked encoding in the body") from None
        pos = line_end + 2
        if size == 0:
            return bytes(body), False
        room = MAX_BODY - len(body)
        while len(buffer) < pos + size + 2 and len(buffer) - pos < room:
            await _more(channel, buffer)
        if size >= room and len(buffer) - pos >= room:
            body += buffer[pos : pos + room]
            return bytes(body), True
        body += buffer[pos : pos + size]
        pos += size + 2


async def _more(channel: Channel, buffer: bytearray) -> None:
    data = await channel.recv()
    if not data:
        raise ProbeProblem(Status.FAIL, "connection closed in the middle of a chunked body")
    buffer += data
