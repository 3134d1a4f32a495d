"""Fuzzing what a target can send the http probe, served from a real socket.

Each example takes a valid response from a small corpus (every framing the reader knows:
Content-Length, chunked with extensions and trailers, until close, interim 1xx, gzip, a
redirect, bare LF), mutates it with byte edits and tokens known to break hand-written
parsers (negative and signed chunk sizes, non-ASCII digits, stray CR/LF, huge lengths),
splits it into TCP segments and serves it. The probe must answer within its timeout plus
1 s, never hold the event loop for more than 100 ms, and never call `ok` a response that
does not carry the expected text. The parsers tocsin writes itself (URLs, NO_PROXY, the
body decoder) get the same treatment without a socket.
"""

from __future__ import annotations

import gzip
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.content_coding import BodyDecoder
from probes.http_proxy import bypasses
from probes.http_url import parse_url
from probes.probe import ProbeContext, run_probe
from probes.redaction import MAX_REASON
from probes.registry import build_probe
from probes.result import Status
from tests.loop_watch import WatchedLoop
from tests.servers.canned_http import CannedHttp

MARKER = b"tocsin-ok"
TIMEOUT = 1.0
LONGEST_BLOCK = 0.1
_GZIPPED = gzip.compress(b"<p>" + MARKER + b"</p>")

# Valid responses with their numbers as slots: {name:right value}. A slot keeps its right
# value or takes a hostile one, then byte edits go over the whole.
CORPUS = [
    b"HTTP/1.1 {status:200} OK\r\nContent-Length: {length:9}\r\n\r\ntocsin-ok",
    b"HTTP/1.1 {status:200} OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"{size:4};ext=1\r\ntocs\r\n{size:5}\r\nin-ok\r\n{size:0}\r\nX-Trailer: 1\r\n\r\n",
    b"HTTP/1.0 {status:200} OK\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ntocsin-ok",
    b"HTTP/1.1 {status:100} Continue\r\n\r\n"
    b"HTTP/1.1 {status:200} OK\r\nContent-Length: {length:9}\r\n\r\ntocsin-ok",
    b"HTTP/1.1 {status:200} OK\r\nContent-Encoding: gzip\r\nContent-Length: {length:"
    + str(len(_GZIPPED)).encode()
    + b"}\r\n\r\n"
    + _GZIPPED.replace(b"{", b"{{"),
    b"HTTP/1.1 {status:302} Found\r\nLocation: /fuzz\r\nContent-Length: {length:0}\r\n\r\n",
    b"HTTP/1.1 {status:200} OK\nContent-Length: {length:9}\n\ntocsin-ok",
    b"HTTP/1.1 {status:204} No Content\r\n\r\n",
]
HOSTILE_NUMBERS = [
    b"-6", b"+13", b"-1", b"0x5", b"\xc2\xb2", b"\xd9\xa5", b"ffffffffffffffffffff",
    b"99999999999999999999", b"", b" 5", b"5 ", b"005", b"1_0", b"5.0", b"5, 5", b"5\r\n5",
]  # fmt: skip
SLOT = re.compile(rb"\{(\w+):([^}]*)\}")
TOKENS = [
    b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\x00", b" ", b"\t", b":", b";", b",", b"HTTP/1.1 ",
    b"Transfer-Encoding: chunked\r\n", b"Content-Length: 5\r\n", b"Content-Encoding: br\r\n",
    b"Content-Encoding: gzip\r\n", b"Location: http://127.0.0.1:1/\r\n", b"0\r\n\r\n",
    *HOSTILE_NUMBERS,
]  # fmt: skip


@st.composite
def mutations(draw: st.DrawFn) -> bytes:
    template = draw(st.sampled_from(CORPUS))

    def fill(slot: re.Match[bytes]) -> bytes:
        hostile = draw(st.integers(0, 3)) == 0
        return draw(st.sampled_from(HOSTILE_NUMBERS)) if hostile else slot.group(2)

    data = bytearray(SLOT.sub(fill, template).replace(b"{{", b"{"))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(("token", "flip", "delete", "repeat", "cut")))
        if kind == "token":
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 64))] * draw(st.integers(1, 50))
        elif kind == "cut":
            del data[at:]
    return bytes(data)


@st.composite
def segments(draw: st.DrawFn, data: bytes) -> list[bytes | float]:
    """The bytes in pieces, sometimes with a short pause between them."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    steps: list[bytes | float] = []
    last = 0
    for cut in [*cuts, len(data)]:
        if cut > last:
            steps.append(data[last:cut])
            if draw(st.booleans()):
                steps.append(0.002)
        last = cut
    return steps


@settings(
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_response_blocks_the_loop_outlives_its_timeout_or_passes_without_the_text(
    canned: CannedHttp, watched: WatchedLoop, data: st.DataObject
) -> None:
    response = data.draw(mutations())
    url = canned.serve("/fuzz", *data.draw(segments(response)))

    async def run() -> tuple[Status, str]:
        probe = build_probe(
            "fuzz", "http", {"url": url, "expect": {"body_contains": "tocsin-ok"}}, ProbeContext()
        )
        try:
            result = await run_probe(probe, TIMEOUT)
        finally:
            await probe.close()
        return result.status, result.reason

    watched.reset()
    status, reason = watched.run(run(), TIMEOUT + 1)
    assert watched.longest_block < LONGEST_BLOCK, f"blocked {watched.longest_block:.3f}s"
    assert reason and len(reason) <= MAX_REASON
    if status is Status.OK:  # the text was there (in chunks, maybe, or compressed)
        whole = b"tocs" in response and b"in-ok" in response
        assert whole or b"Content-Encoding" in response, response


@settings(max_examples=500, deadline=None, database=None)
@given(text=st.text(max_size=80) | st.from_regex(r"\Ahttps?://[^/]{0,30}(/.{0,20})?\Z"))
def test_urls_parse_or_say_why(text: str) -> None:
    try:
        url = parse_url(text)
    except ValueError as error:
        assert str(error)
        return
    assert url.scheme in ("http", "https")
    assert 1 <= url.port <= 65535
    assert url.host and url.host.isascii()
    assert url.text.isascii() or not url.target.isascii()


@settings(max_examples=300, deadline=None, database=None)
@given(host=st.text(max_size=40), no_proxy=st.text(max_size=80))
def test_no_proxy_matching_never_fails(host: str, no_proxy: str) -> None:
    assert bypasses(host, no_proxy) in (True, False)


@settings(max_examples=300, deadline=None, database=None)
@given(
    coding=st.sampled_from(["gzip", "deflate", "br", "x-gzip", "zstd", "gzip, br", ""]),
    pieces=st.lists(st.binary(max_size=2048), max_size=8),
    room=st.integers(0, 4096),
)
def test_the_body_decoder_stays_within_its_room(
    coding: str, pieces: list[bytes], room: int
) -> None:
    decoder = BodyDecoder(coding)
    kept = b""
    for piece in pieces:
        kept += decoder.feed(piece, room - len(kept))
    assert len(kept) <= room


def test_a_compression_bomb_is_cut_at_the_room() -> None:
    bomb = gzip.compress(b"\0" * 64 * 1024 * 1024)  # 64 MiB in about 64 KiB
    decoder = BodyDecoder("gzip")
    kept = b""
    for at in range(0, len(bomb), 1400):
        kept += decoder.feed(bomb[at : at + 1400], 4096 - len(kept))
    assert len(kept) == 4096
