"""Undo a response's Content-Encoding (gzip, deflate, br) so body checks see the text.

tocsin asks for `Accept-Encoding: identity`, but some servers and CDNs compress anyway;
matching `body_contains` against compressed bytes would be a false "does not contain".
Output is bounded: a decoder never produces more than the bytes the caller keeps, so a
small compressed bomb cannot grow into gigabytes.
"""

from __future__ import annotations

import zlib
from typing import Protocol

import brotli

MAX_CODINGS = 8  # read at most this many names of a Content-Encoding list


class CodingError(Exception):
    """The body is not valid in the encoding the response claims."""


class _Stage(Protocol):
    def feed(self, data: bytes, room: int) -> bytes: ...


class _Zlib:
    """gzip (RFC 1952) or deflate, which servers send both zlib-wrapped and raw."""

    def __init__(self, gzip: bool) -> None:
        self.gzip = gzip
        self.inflate = zlib.decompressobj(wbits=31 if gzip else 15)
        self.started = False

    def feed(self, data: bytes, room: int) -> bytes:
        data = self.inflate.unconsumed_tail + data  # left over when `room` cut the last call
        try:
            out = self.inflate.decompress(data, room)
        except zlib.error as error:
            if self.gzip or self.started:
                raise CodingError(str(error)) from None
            self.inflate = zlib.decompressobj(wbits=-15)  # raw deflate, no zlib header
            try:
                out = self.inflate.decompress(data, room)
            except zlib.error as raw_error:
                raise CodingError(str(raw_error)) from None
        self.started = True
        return out


class _Brotli:
    def __init__(self) -> None:
        self.decompressor = brotli.Decompressor()

    def feed(self, data: bytes, room: int) -> bytes:
        out = bytearray()
        try:
            # Output held back by an earlier limit comes first, then the new input.
            for _ in range(64):
                if self.decompressor.can_accept_more_data() or len(out) >= room:
                    break
                out += self.decompressor.process(b"", output_buffer_limit=room - len(out))
            if len(out) < room and self.decompressor.can_accept_more_data():
                out += self.decompressor.process(data, output_buffer_limit=room - len(out))
        except brotli.error as error:
            raise CodingError(str(error) or "invalid brotli data") from None
        return bytes(out[:room])


def _stage(name: str) -> _Stage | None:
    if name in ("gzip", "x-gzip"):
        return _Zlib(gzip=True)
    if name == "deflate":
        return _Zlib(gzip=False)
    if name == "br":
        return _Brotli()
    return None


class BodyDecoder:
    """Decodes a body as it arrives, one `feed` per piece, bounded by the room left.

    One coding is undone (`gzip`, `deflate`, `br`); `unsupported` names anything else
    (`zstd`, or a chain such as `gzip, br`, which no server in practice sends), and then the
    body checks say why they cannot judge instead of matching compressed bytes.
    """

    def __init__(self, content_encoding: str) -> None:
        names = [n.strip().lower() for n in content_encoding.split(",")[:MAX_CODINGS]]
        names = [n for n in names if n and n != "identity"]
        self.label = ", ".join(names)
        self.unsupported: str | None = None
        self.error: str | None = None
        self.stage = _stage(names[0]) if len(names) == 1 else None
        if names and self.stage is None:
            self.unsupported = self.label

    @property
    def active(self) -> bool:
        return self.stage is not None

    def feed(self, data: bytes, room: int) -> bytes:
        """At most `room` decoded bytes of `data` (empty after an error)."""
        if self.stage is None or self.error is not None or room <= 0:
            return b""
        try:
            return self.stage.feed(data, room)
        except CodingError as error:
            self.error = f"the body is not valid {self.label}: {error}"
            return b""
