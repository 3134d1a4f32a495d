"""A tiny HTTP upstream behind the test nginx, for what stock nginx cannot do by itself.

Debian's nginx has no way to delay an answer (no echo module), so ``/slow`` is proxied
here. Paths:
- ``/slow?ms=N``: 200 "slow ok" after N ms (default 400): a late first byte;
- ``/stream?bytes=N``: 200 with no Content-Length (nginx re-sends it chunked; asked
  directly, the body ends when the connection closes);
- ``/echo``: the method, the request body and the ``X-Probe`` header, echoed.

It runs in a daemon thread of the test process and is shut down with the block.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.servers.ports import LOOPBACK

SLOW_DEFAULT_MS = 400
STREAM_LINE = b"tocsin stream line\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        if parts.path == "/slow":
            time.sleep(int(query.get("ms", SLOW_DEFAULT_MS)) / 1000)
            self._reply(b"slow ok")
        elif parts.path == "/stream":
            size = int(query.get("bytes", 4096))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            repeated = STREAM_LINE * (size // len(STREAM_LINE) + 1)
            self.wfile.write(repeated[:size])
        elif parts.path == "/echo":
            self._echo()
        else:
            self._reply(b"not here", status=404)

    def do_POST(self) -> None:
        self._echo()

    do_PUT = do_POST

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        probe_header = self.headers.get("X-Probe", "")
        self._reply(f"{self.command} body={body!r} x-probe={probe_header!r}".encode())

    def _reply(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are not worth a line each in the test output."""


@contextmanager
def running_upstream() -> Iterator[int]:
    """Serve on a free loopback port for the block; yields the port."""
    server = ThreadingHTTPServer((LOOPBACK, 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
