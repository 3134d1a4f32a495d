"""The Socket Mode side of the Slack fake: the websocket that ``apps.connections.open`` hands out.

In Socket Mode Slack pushes interactive payloads, slash commands and events over a websocket
and waits for an ack that carries the same ``envelope_id``; an envelope left unacked is
retried and, for interactions, shown to the user as an error. This endpoint lets a test push an
envelope to a real slack_sdk ``SocketModeClient`` (through Bolt's ``AsyncSocketModeHandler``)
and see the ack, and how long it took, exactly as Slack would.

``SlackFake`` in ``tests/slack_fake.py`` serves this endpoint on its own port; tests use it
through ``fake.socket_send``, ``fake.socket_connected`` and ``fake.socket_acks``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import WSMsgType, web

EnvelopeType = Literal["interactive", "slash_commands", "events_api"]

ACK_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class SocketAck:
    """One acknowledged envelope: what the client answered, and how fast."""

    envelope_id: str
    envelope_type: str
    ack: dict[str, Any]
    seconds: float


class SocketModeEndpoint:
    """Hands out websocket URLs, greets clients with ``hello`` and matches acks to envelopes."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self.connected = asyncio.Event()
        self.acks: list[SocketAck] = []
        self.connections = 0
        self._ws_base_url = ""
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/socket", self._serve)

    def bind(self, http_url: str) -> None:
        """Learn the server's address, known only once it listens on its free port."""
        self._ws_base_url = "ws://" + http_url.removeprefix("http://")

    def issue_url(self) -> str:
        """A fresh websocket URL, as ``apps.connections.open`` answers it."""
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return f"{self._ws_base_url}socket?ticket={ticket}"

    async def send(
        self,
        envelope_type: EnvelopeType,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int = 0,
        retry_reason: str = "",
        ack_within: float = ACK_TIMEOUT_SECONDS,
    ) -> dict[str, Any]:
        """Push one envelope to the newest client and wait for its ack; raise if none comes."""
        if not self._sockets:
            raise RuntimeError("no Socket Mode client is connected")
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        answered: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[envelope_id] = answered
        started = time.monotonic()
        try:
            await self._sockets[-1].send_json(envelope)
            ack = await asyncio.wait_for(answered, ack_within)
        except TimeoutError:
            raise TimeoutError(
                f"no ack for {envelope_type} envelope within {ack_within} s"
            ) from None
        finally:
            self._pending.pop(envelope_id, None)
        self.acks.append(SocketAck(envelope_id, envelope_type, ack, time.monotonic() - started))
        return ack

    async def request_refresh(self, reason: str = "refresh_requested") -> None:
        """Ask every client to reconnect, as Slack does every few hours."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake"}}
        for socket in list(self._sockets):
            await socket.send_json(message)

    async def close(self) -> None:
        for answered in self._pending.values():
            answered.cancel()
        for socket in list(self._sockets):
            await socket.close(code=1001, message=b"server going away")

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") not in self._tickets:
            raise web.HTTPUnauthorized(text="invalid ticket")
        # autoping answers the client's own "sdk-ping-pong" pings, which it uses to spot
        # stale connections.
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self._sockets.append(socket)
        self.connections += 1
        try:
            await socket.send_json(self._hello())
            self.connected.set()
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    self._receive_ack(message.data)
        finally:
            self._sockets.remove(socket)
            if not self._sockets:
                self.connected.clear()
        return socket

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": len(self._sockets),
            "debug_info": {
                "host": "applink-fake",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }

    def _receive_ack(self, data: str) -> None:
        try:
            ack = json.loads(data)
        except ValueError:
            return
        if not isinstance(ack, dict):
            return
        answered = self._pending.get(str(ack.get("envelope_id")))
        if answered is not None and not answered.done():
            answered.set_result(ack)
