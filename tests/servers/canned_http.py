"""A loopback server that answers each request with exactly the bytes a test scripted.

Real HTTP servers refuse to send malformed responses, so tests of the http probe against
hostile or broken targets use this one: it reads the request head, then plays the script
registered for the request's path (byte strings sent as given, floats as pauses), then
closes the connection, or holds it open until the client leaves when the script ends with
`HOLD`. It runs in its own threads, so a test's event loop can block without stopping it.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.servers.ports import LOOPBACK

HOLD = "hold"
Step = bytes | float | str
MAX_REQUEST_HEAD = 64 * 1024
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


@dataclass
class CannedHttp:
    """Routes and the requests seen; `url(path)` names a route on this server."""

    host: str
    port: int
    routes: dict[str, list[Step]] = field(default_factory=dict)
    requests: list[bytes] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def serve(self, path: str, *steps: Step) -> str:
        """Register `steps` for `path` and return its URL."""
        self.routes[path] = list(steps)
        return self.url(path)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(10)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < MAX_REQUEST_HEAD:
                data = sock.recv(4096)
                if not data:
                    return
                head += data
            canned = self.server.canned
            canned.requests.append(head)
            target = head.split(b" ", 2)[1].decode("latin-1") if head.count(b" ") >= 2 else "/"
            path = target.split("://", 1)[-1]
            path = path[path.find("/") :] if "://" in target else target
            steps = canned.routes.get(path, [NOT_FOUND])
            self._play(sock, steps)
        except OSError:
            return

    def _play(self, sock: socket.socket, steps: list[Step]) -> None:
        for step in steps:
            if isinstance(step, bytes):
                sock.sendall(step)
            elif isinstance(step, float):
                time.sleep(step)
            elif step == HOLD:
                sock.settimeout(30)
                while sock.recv(4096):
                    pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    canned: CannedHttp


@contextmanager
def running_canned_http() -> Iterator[CannedHttp]:
    server = _Server((LOOPBACK, 0), _Handler)
    host, port = server.server_address[:2]
    server.canned = CannedHttp(str(host), int(port))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server.canned
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
