"""Where the listener meets the network: tocsin accepts its own connections.

aiohttp parses and routes requests; what it leaves unbounded, this module bounds:

- At most `max_connections` are open at once. At the cap tocsin stops accepting, so
  further clients wait in the kernel's listen queue, holding none of tocsin's file
  descriptors, until a connection closes; descriptors stay free for probes and SQLite.
- A request's line and headers must arrive within `header_timeout` of the connection
  opening or of the previous answer, or the connection is closed (so an idle keep-alive
  connection closes then too); its body must arrive within `body_timeout`, or it is
  answered 408.
- What a client causes (a full house, an abandoned or malformed request) is one
  throttled log line, never a traceback, and never the bytes received: a request line
  may carry `?token=`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.log_throttle import LogThrottle

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 1024  # a burst of clicks (one connection each) must not wait in SYN queues
SWEEP_SECONDS = 1.0
ACCEPT_RETRY_SECONDS = 0.5  # after the process ran out of file descriptors
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ListenerLimits:
    max_connections: int
    header_timeout: float
    body_timeout: float


class ListenerServer:
    """Serves `app` on one socket; `start` returns the URL, `stop` closes everything."""

    def __init__(self, app: web.Application, limits: ListenerLimits) -> None:
        self.limits = limits
        self._open: dict[asyncio.BaseTransport, Connection] = {}
        self._accepted = 0  # connections accepted and not yet closed
        self._starting: set[asyncio.Task[None]] = set()
        self._full = LogThrottle(log)
        self._accept_errors = LogThrottle(log)
        self.abandoned = LogThrottle(log)
        app.middlewares.append(self._in_time)
        self._runner = web.AppRunner(app, access_log=None, logger=ClientErrorLog())
        self._socket: socket.socket | None = None
        self._watching = False
        self._sweeping: asyncio.TimerHandle | None = None

    async def start(self, host: str, port: int) -> str:
        await self._runner.setup()
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        self._socket = socket.create_server((host, port), family=family, backlog=LISTEN_BACKLOG)
        self._socket.setblocking(False)
        self._watch()
        self._sweep()
        bound_host, bound_port = self._socket.getsockname()[:2]
        return f"http://{bound_host}:{bound_port}"

    async def stop(self) -> None:
        """Stop accepting, then let aiohttp finish the requests in hand and close."""
        self._unwatch()
        if self._sweeping is not None:
            self._sweeping.cancel()
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._starting:
            await asyncio.gather(*self._starting, return_exceptions=True)
        await self._runner.cleanup()

    def _sweep(self) -> None:
        """Close the connections whose request headers are overdue; again in a moment."""
        now = time.monotonic()
        for connection in [c for c in self._open.values() if c.deadline < now]:
            connection.time_up()
        every = min(SWEEP_SECONDS, self.limits.header_timeout / 4)
        self._sweeping = asyncio.get_running_loop().call_later(every, self._sweep)

    def _watch(self) -> None:
        if not self._watching and self._socket is not None:
            asyncio.get_running_loop().add_reader(self._socket, self._accept_waiting)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching and self._socket is not None:
            asyncio.get_running_loop().remove_reader(self._socket)
        self._watching = False

    def _accept_waiting(self) -> None:
        """Accept every connection waiting while there is room; at the cap stop looking."""
        assert self._socket is not None
        while self._accepted < self.limits.max_connections:
            try:
                client, _ = self._socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # out of file descriptors, or the like: pause, say so once
                self._accept_errors.warning("listener cannot accept connections: %s", error)
                self._unwatch()
                asyncio.get_running_loop().call_later(ACCEPT_RETRY_SECONDS, self._watch)
                return
            self._accepted += 1
            client.setblocking(False)
            task = asyncio.get_running_loop().create_task(self._serve(client))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)
        self._full.warning(
            "listener: %d connections open, the most allowed (listener.max_connections);"
            " new ones wait to be accepted",
            self.limits.max_connections,
        )
        self._unwatch()

    async def _serve(self, client: socket.socket) -> None:
        make_handler = self._runner.server
        assert make_handler is not None
        connection = Connection(cast(asyncio.Protocol, make_handler()), self)
        try:
            await asyncio.get_running_loop().connect_accepted_socket(connection.itself, client)
        except OSError:
            client.close()
            connection.release()

    def opened(self, connection: Connection, transport: asyncio.BaseTransport) -> None:
        self._open[transport] = connection

    def closed(self, transport: asyncio.BaseTransport | None) -> None:
        if transport is not None:
            self._open.pop(transport, None)
        self._accepted -= 1
        self._watch()  # there is room again

    @web.middleware
    async def _in_time(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Headers are in: stop their clock, read the body against its own, then answer."""
        connection = self._open.get(request.transport) if request.transport else None
        if connection is not None:
            connection.request_arrived()
        try:
            try:
                if request.content.is_eof():  # the common case: the body came with the headers
                    await request.read()
                else:
                    async with asyncio.timeout(self.limits.body_timeout):
                        await request.read()
            except TimeoutError:
                self.abandoned.warning(
                    "listener: a request body did not arrive within %g s; answered 408",
                    self.limits.body_timeout,
                )
                return _last(408, "the request body did not arrive in time")
            except (web.RequestPayloadError, ConnectionError):
                self.abandoned.warning("listener: a request body was cut off or malformed")
                return _last(400, "the request body was cut off or malformed")
            return await handler(request)
        finally:
            if connection is not None:
                connection.wait_for_request()


class Connection(asyncio.Protocol):
    """One accepted connection: aiohttp's handler inside, the deadline for its headers around
    it (a sweep every second closes connections past theirs: no timer per request)."""

    def __init__(self, handler: asyncio.Protocol, server: ListenerServer) -> None:
        self._handler = handler
        self._server = server
        self._transport: asyncio.BaseTransport | None = None
        self.deadline = math.inf
        self._requests = 0
        self._bytes_waiting = False
        self._released = False

    def itself(self) -> Connection:
        """The protocol factory of a connection accepted already."""
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._server.opened(self, transport)
        self._handler.connection_made(transport)
        self.wait_for_request()

    def data_received(self, data: bytes) -> None:
        self._bytes_waiting = True
        self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self._handler.eof_received()

    def pause_writing(self) -> None:
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._handler.connection_lost(exc)
        self.release()

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._server.closed(self._transport)

    def wait_for_request(self) -> None:
        """The next request's line and headers are due within the header timeout."""
        self._bytes_waiting = False
        self.deadline = time.monotonic() + self._server.limits.header_timeout

    def request_arrived(self) -> None:
        self.deadline = math.inf
        self._requests += 1

    def time_up(self) -> None:
        if self._bytes_waiting or not self._requests:  # an idle keep-alive closes quietly
            self._server.abandoned.warning(
                "listener: closed a connection whose request headers did not arrive within %g s",
                self._server.limits.header_timeout,
            )
        self.deadline = math.inf
        if self._transport is not None:
            self._transport.close()


class ClientErrorLog(logging.Logger):
    """aiohttp's server logger as tocsin wants it.

    A request aiohttp could not parse is one throttled line naming the kind of error:
    aiohttp's own message quotes the start of the offending line, which may hold a
    token. Any other error is a fault in tocsin and keeps its traceback, throttled too.
    """

    def __init__(self) -> None:
        super().__init__(f"{__name__}.aiohttp")
        self.parent = log  # records go wherever this module's go
        self._malformed = LogThrottle(log)
        self._faults = LogThrottle(log)

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(error, HttpProcessingError):
            self._malformed.warning(
                "listener: refused a malformed request (%s, answered %s)",
                type(error).__name__,
                error.code,
            )
        else:
            self._faults.log(logging.ERROR, "listener: a request failed", exc_info=error)


def _last(status: int, error: str) -> web.Response:
    """An answer after which the connection closes (its request was not read in full)."""
    response = web.json_response({"ok": False, "error": error}, status=status)
    response.force_close()
    return response
