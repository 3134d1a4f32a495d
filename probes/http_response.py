"""Reading one HTTP/1.x response with llhttp (through `httptools`), the parser of Node.js.

The parser decides framing (Content-Length, chunked, until close), interim 1xx answers and
every syntax error, so the bytes of a misbehaving target never steer tocsin's own loops.
tocsin only feeds it what arrives, bounded by:
- the headers: at most `MAX_HEAD` bytes, however they are split into TCP segments;
- the body: read to its end and timed whole, but only the first `keep` bytes (decoded
  when the server compressed them) are held in memory for the body checks;
- the event loop: a fast sender on loopback completes every receive at once, so the
  reader yields to other tasks after each `YIELD_EVERY` bytes.
Bare-LF line endings, as netcat-style health endpoints send, are accepted (curl, browsers
and aiohttp accept them too); everything else is parsed strictly.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httptools

from probes.content_coding import BodyDecoder
from probes.net import Channel, ProbeProblem, excerpt
from probes.result import Status

MAX_HEAD = 64 * 1024
YIELD_EVERY = 256 * 1024
MAX_HEADERS = 200


@dataclass(frozen=True)
class Response:
    """The final response: status, headers as received (lower-case names), kept body."""

    status: int
    status_line: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    size: int  # body bytes received on the wire, all of them
    complete_body: bool  # the kept body is the whole (decoded) body
    coding: str = ""  # the Content-Encoding that was undone, if any
    coding_problem: str | None = None

    def header(self, name: str) -> str | None:
        """The first header of that name: a second Location or Content-Type is ignored,
        as curl and browsers do, rather than joined into a value nobody sent."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass
class _Message:
    """What the parser reported for the message under way (an interim 1xx or the final)."""

    keep: int
    status: int = 0
    reason: bytes = b""
    version: str = "1.1"
    headers: list[tuple[str, str]] = field(default_factory=list)
    head_bytes: int = 0  # status and header fields as parsed
    head_done: bool = False
    cut: bool = False  # body bytes arrived past `keep` and were dropped
    done: bool = False
    body: bytearray = field(default_factory=bytearray)
    size: int = 0
    decoder: BodyDecoder | None = None


class _Reader:
    """httptools callbacks; a new `_Message` begins with each response on the wire."""

    def __init__(self, keep: int, head_only: bool) -> None:
        self.keep = keep
        self.head_only = head_only  # HEAD and CONNECT: the body, if any, is not ours to read
        self.message = _Message(keep)
        self.final: _Message | None = None
        self.raw_head = 0  # bytes fed while the headers were still incomplete
        self.received = 0
        self.parser = httptools.HttpResponseParser(self)
        self.parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)

    def on_message_begin(self) -> None:
        self.message = _Message(self.keep)

    def on_status(self, reason: bytes) -> None:
        self.message.reason += reason
        self._count(len(reason))

    def on_header(self, name: bytes, value: bytes) -> None:
        message = self.message
        self._count(len(name) + len(value) + 4)
        if len(message.headers) >= MAX_HEADERS:
            raise ProbeProblem(Status.FAIL, f"more than {MAX_HEADERS} response headers")
        message.headers.append((name.decode("latin-1").lower(), value.decode("latin-1").strip()))

    def on_headers_complete(self) -> None:
        message = self.message
        message.head_done = True
        message.status = self.parser.get_status_code()
        message.version = self.parser.get_http_version()
        if self._interim(message):
            return
        coding = next((v for k, v in message.headers if k == "content-encoding"), "")
        message.decoder = BodyDecoder(coding) if coding else None
        if self.head_only:
            self._finish(message)

    def on_body(self, data: bytes) -> None:
        message = self.message
        message.size += len(data)
        room = message.keep - len(message.body)
        decoder = message.decoder
        if room <= 0:
            message.cut = True
        elif decoder is not None and decoder.active:
            message.body += decoder.feed(data, room)
        else:
            message.body += data[:room]
            message.cut = message.cut or len(data) > room

    def on_message_complete(self) -> None:
        if not self._interim(self.message):
            self._finish(self.message)

    def _interim(self, message: _Message) -> bool:
        """100 Continue and 103 Early Hints: the real answer follows."""
        return 100 <= message.status < 200 and message.status != 101

    def _finish(self, message: _Message) -> None:
        message.done = True
        if self.final is None:
            self.final = message

    def _count(self, size: int) -> None:
        self.message.head_bytes += size
        if self.message.head_bytes > MAX_HEAD:
            raise ProbeProblem(Status.FAIL, "response headers longer than 64 KiB")

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._finish(self.message)  # 101 Switching Protocols: no HTTP body follows
        except httptools.HttpParserError as error:
            if isinstance(error.__context__, ProbeProblem):  # raised by one of our callbacks
                raise error.__context__ from None
            if self.final is None:
                raise ProbeProblem(Status.FAIL, _invalid(error, data)) from None
            # Bytes after the final response (a keep-alive server's garbage) are not ours.
        if self.final is None and not self.message.head_done:
            self.raw_head += len(data)
            if self.raw_head > MAX_HEAD:
                raise ProbeProblem(Status.FAIL, "response headers longer than 64 KiB")

    def at_close(self) -> _Message:
        """The peer closed: a body without length ends here; anything else was cut short."""
        message = self.message
        if self.final is not None:
            return self.final
        if not self.received:
            raise ProbeProblem(Status.FAIL, "connection closed without a response")
        if not message.head_done:
            raise ProbeProblem(Status.FAIL, "connection closed in the middle of the headers")
        names = {name for name, _ in message.headers}
        if "transfer-encoding" in names:
            raise ProbeProblem(Status.FAIL, "connection closed in the middle of a chunked body")
        if "content-length" in names:
            length = next(v for k, v in message.headers if k == "content-length")
            raise ProbeProblem(
                Status.FAIL, f"connection closed after {message.size} of {length} body bytes"
            )
        self._finish(message)  # no framing: the body is what came before the close
        return message


def _invalid(error: Exception, data: bytes) -> str:
    text = str(error) or type(error).__name__
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    if text.startswith("Expected HTTP/"):
        return f"not an HTTP response: '{excerpt(line, 80)}'"
    if isinstance(error, httptools.HttpParserInvalidStatusError):
        return f"invalid HTTP response: bad status line '{excerpt(line, 80)}'"
    return f"invalid HTTP response: {text[:120]}"


async def read_response(channel: Channel, first: bytes, keep: int, head_only: bool) -> Response:
    """The response whose first bytes (`first`, already received) began arriving.

    `keep` bounds the body held in memory; the rest is read, timed and dropped.
    """
    reader = _Reader(keep, head_only)
    data = first
    since_yield = 0
    while reader.final is None:
        if not data:
            reader.at_close()
            break
        reader.feed(data)
        if reader.final is not None:
            break
        since_yield += len(data)
        if since_yield >= YIELD_EVERY:
            since_yield = 0
            await asyncio.sleep(0)
        data = await channel.recv()
    final = reader.final
    assert final is not None
    return _response(final)


def _response(message: _Message) -> Response:
    reason = message.reason.decode("latin-1")
    status_line = f"HTTP/{message.version} {message.status} {reason}".rstrip()
    decoder = message.decoder
    problem = None
    coding = ""
    if decoder is not None:
        coding = decoder.label
        if decoder.unsupported:
            problem = f"the body is {decoder.unsupported}-encoded, which tocsin cannot decode"
        problem = decoder.error or problem
    return Response(
        status=message.status,
        status_line=status_line,
        headers=tuple(message.headers),
        body=bytes(message.body),
        size=message.size,
        complete_body=not message.cut,
        coding=coding,
        coding_problem=problem,
    )
