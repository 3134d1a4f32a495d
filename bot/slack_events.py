"""The `/slack/events` route of HTTP mode: check, acknowledge, then hand the work to Bolt.

Slack waits at most 3 seconds for the HTTP 200, and a burst of clicks arrives at
once on one event loop. Button clicks, slash commands and events are always
acknowledged with an empty 200 by tocsin's listeners, so that answer is sent as soon
as the request has passed the replay guard, and Bolt's dispatch (authorization,
matching, the listener's work) runs after it. Only requests whose answer carries
content (a modal submission's validation errors, the URL verification challenge)
wait for Bolt. The work waits until requests have stopped arriving for a moment (at
most a second) and then runs a few dispatches at a time, so that a burst's work does
not hold back the acknowledgement of requests still arriving.

A signed body that is not a Slack request tocsin handles (not UTF-8, not JSON, a
field missing: see slack_envelope) is answered 400 with one log line. A click is
only checked to be whole before its ack; should its JSON still turn out wrong when
it is parsed after the ack, it is dropped with one line.
"""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.log_throttle import LogThrottle
from bot.replay_guard import ReplayGuard
from bot.slack_envelope import envelope_problem

log = logging.getLogger(__name__)
T = TypeVar("T")

CONCURRENT_DISPATCHES = 8
QUIET_SECONDS = 0.02  # work starts once no request arrived for this long ...
LONGEST_DEFERRAL = 1.0  # ... or this long after its own ack, whichever comes first
CLICK_HEAD = re.compile(r'\s*\{\s*"type"\s*:\s*"block_actions"')
EMPTY_ACK_PAYLOADS = frozenset({"block_actions"})  # view_submission may carry errors


@dataclass(frozen=True)
class Raw:
    """A verified request as received, parsed by Bolt only when it is dispatched."""

    body: bytes
    query: str
    headers: dict[str, str | Sequence[str]]

    def parse(self) -> AsyncBoltRequest:
        """Bolt's request, or MalformedBody saying (in tocsin's words) why there is none."""
        try:
            text = self.body.decode()
        except UnicodeDecodeError:
            raise MalformedBody("the body is not UTF-8") from None
        try:
            request = AsyncBoltRequest(body=text, query=self.query, headers=self.headers)
        except Exception:  # whatever Bolt's parser trips on, the bytes were not Slack's shape
            raise MalformedBody("the body is not a JSON object or form") from None
        problem = envelope_problem(request.body)
        if problem:
            raise MalformedBody(problem)
        return request


class MalformedBody(ValueError):
    """A signed body that is not a Slack request tocsin handles."""


class SlackEvents:
    """Serves `/slack/events`; `drain` waits for the work of requests already answered."""

    def __init__(self, app: AsyncApp, guard: ReplayGuard) -> None:
        self._app = app
        self.guard = guard
        self._slots = asyncio.Semaphore(CONCURRENT_DISPATCHES)
        self._work: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._last_arrival = 0.0
        self._refusals = LogThrottle(log)  # unsigned requests: anyone can send them

    def handler(self) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        return self._handle

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self._closing:  # Slack retries events; a clicker is told to try again
            return web.json_response({"error": "tocsin is restarting"}, status=503)
        body = await request.read()
        refusal = self.guard.check(
            body,
            request.headers.get("X-Slack-Request-Timestamp", ""),
            request.headers.get("X-Slack-Signature", ""),
        )
        if refusal:
            self.guard.refused += 1
            self._refusals.warning("refused a Slack request: %s", refusal)
            return web.json_response({"error": refusal}, status=401)
        self._last_arrival = asyncio.get_running_loop().time()  # signed traffic only
        raw = Raw(body, request.query_string, {**request.headers})
        if is_click(body):  # the common burst: parsed after its ack, not before
            if not looks_whole(body):
                return refused("a click whose payload is cut short or not UTF-8")
            self._track(self._dispatch_later(raw.parse))
        else:
            try:
                bolt_request = raw.parse()
            except MalformedBody as problem:
                return refused(str(problem))
            if not self._first_delivery(bolt_request.body):
                return web.Response(status=200)  # a retry of an event already handled
            if not acknowledged_empty(bolt_request.body):  # its answer carries content
                answered = self._track(self._app.async_dispatch(bolt_request))
                return await to_aiohttp_response(await answered)
            self._track(self._dispatch_later(lambda: bolt_request))
        return web.Response(status=200)

    def _first_delivery(self, body: dict[str, Any]) -> bool:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not self.guard.first_time(f"event:{event_id}"):
            log.info("Slack re-sent event %s, already handled", event_id)
            return False
        return True

    def _track(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `work` as a task `drain` waits for."""
        task = asyncio.create_task(work)
        self._work.add(task)
        task.add_done_callback(self._work.discard)
        return task

    async def _dispatch_later(self, parsed: Callable[[], AsyncBoltRequest]) -> None:
        await self._burst_settled()
        try:
            request = parsed()
        except MalformedBody as problem:
            log.warning("dropped a signed Slack request after its ack: %s", problem)
            return
        async with self._slots:
            try:
                response = await self._app.async_dispatch(request)
            except Exception:
                log.exception("a Slack request failed after it was acknowledged")
                return
        if response.status >= 400:
            log.warning(
                "Slack request answered %s after its ack: %s", response.status, response.body
            )

    async def _burst_settled(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LONGEST_DEFERRAL
        while (now := loop.time()) < deadline:
            quiet = now - self._last_arrival
            if quiet >= QUIET_SECONDS:
                return
            await asyncio.sleep(QUIET_SECONDS - quiet)

    async def drain(self) -> None:
        """Refuse new requests; let acknowledged ones finish (nothing accepted is dropped)."""
        self._closing = True
        if self._work:
            await asyncio.gather(*self._work, return_exceptions=True)
        await asyncio.sleep(0)  # listener tasks Bolt started after an event's ack begin now


def is_click(body: bytes) -> bool:
    """A block_actions payload, told from the first bytes without parsing the whole body.

    Slack puts `type` first in interaction payloads; anything else takes the full parse.
    """
    if not body.startswith(b"payload="):
        return False
    head = urllib.parse.unquote_plus(body[8:120].decode("ascii", "replace"))
    return CLICK_HEAD.match(head) is not None


def looks_whole(click: bytes) -> bool:
    """A click's form body is UTF-8 and ends its JSON, told without parsing it (see is_click)."""
    try:
        click.decode()
    except UnicodeDecodeError:
        return False
    return click.rstrip().lower().endswith((b"%7d", b"}"))


def refused(problem: str) -> web.Response:
    """400 for a signed body that is not a Slack request: one line, never a traceback."""
    log.warning("refused a signed Slack request: %s", problem)
    return web.json_response({"error": problem}, status=400)


def acknowledged_empty(body: dict[str, Any]) -> bool:
    """Whether tocsin's answer to this request is an empty 200 whatever its listener does."""
    if "command" in body:  # a slash command: listeners ack() and answer via response_url
        return True
    kind = body.get("type")
    if kind == "event_callback":  # Events API; url_verification must echo its challenge
        return True
    return kind in EMPTY_ACK_PAYLOADS
