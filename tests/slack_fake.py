"""A local Slack Web API fake, so tests run the real slack_sdk and slack_bolt offline.

Slack is unreachable from the test machines, and mocking the client would only test our
guesses about it. This aiohttp server on 127.0.0.1 answers the Web API methods tocsin uses
with the shapes and the errors Slack documents, records every call, and injects the failures
that matter: 429 with ``Retry-After``, 5xx, slow answers, late answers, dropped connections
and a whole outage. A slow answer, or a connection dropped after the action, still performs
the action, as Slack does: a post the client never saw confirmed is in the channel all the
same. A late answer performs it only when it answers, as Slack does when its own processing
is slow: a client that gave up and looked for the post in between does not find it yet.

Wiring a Bolt app, in HTTP or Socket Mode::

    client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url)
    app = AsyncApp(client=client)
    # The Socket Mode client calls apps.connections.open through the web client it is given,
    # by default ``app.client``, so the fake's base_url reaches it without more wiring.
    handler = AsyncSocketModeHandler(app, app_token="xapp-1-test")
    await handler.connect_async()
    await fake.socket_connected.wait()
    ack = await fake.socket_send("interactive", block_actions_payload)
    ...
    await handler.close_async()  # before the fake stops, or the client keeps reconnecting

``respond()`` posts to the payload's ``response_url``, not to ``base_url``: give payloads
``fake.response_url("name")`` and read what arrived in ``fake.responses_to("name")``.

As a pytest plugin (``pytest_plugins = ["tests.slack_fake"]``) this module provides the
function-scoped fixture ``slack_fake``: a started ``SlackFake``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import math
import random
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any, TypeVar

import pytest_asyncio
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from tests.slack_socket_fake import (
    ACK_TIMEOUT_SECONDS,
    EnvelopeType,
    SocketAck,
    SocketModeEndpoint,
)

TEAM_ID = "T0TEAM"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0APP"
INCIDENTS_CHANNEL = "C0INCIDENTS"
WORKSPACE_URL = "https://example.slack.com/"
BOT_TOKEN = "xoxb-test"
APP_TOKEN = "xapp-1-test"

MAX_TEXT = 40_000
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
TRIGGER_TTL_SECONDS = 3.0
JSON_FIELDS = ("blocks", "attachments", "metadata", "view")
USER_TOKEN_PREFIXES = ("xoxb-", "xoxp-")
APP_TOKEN_PREFIX = "xapp-"

Json = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One Web API request as it arrived; JSON strings of form bodies are already decoded."""

    method: str
    args: Json
    at: float
    token: str


@dataclass(frozen=True)
class ResponseUrlPost:
    """One body that Bolt's ``respond()`` posted to a ``response_url``."""

    name: str
    body: Json
    at: float


@dataclass
class _Fault:
    method: str
    channel: str | None
    times: int
    status: int | None = None
    retry_after: int = 1
    delay: float = 0.0
    drop: bool = False
    after_action: bool = True
    late: bool = False


class SlackApiFailure(Exception):
    """Slack's ``{"ok": false, "error": ...}`` answer, with its HTTP status 200."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.body: Json = {"ok": False, "error": error, **extra}


class _RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class SlackFake:
    """A Slack workspace on loopback: channels, messages, users, user groups, views."""

    def __init__(self, *, first_ts: str = "1700000000.000100") -> None:
        self.team_id = TEAM_ID
        self.bot_user_id = BOT_USER_ID
        self.bot_id = BOT_ID
        self.calls: list[Call] = []
        self.channels: dict[str, str] = {INCIDENTS_CHANNEL: "ops-incidents"}
        self.dms: dict[str, tuple[str, ...]] = {}
        self.not_in_channel: set[str] = set()
        self.invalid_tokens: set[str] = set()
        self.messages: dict[tuple[str, str], Json] = {}
        self.deleted: list[Json] = []
        self.unavailable = False  # an outage: every Web API call is answered 503, nothing done
        self.edits: dict[tuple[str, str], int] = {}
        self.ephemerals: list[Json] = []
        self.users: dict[str, Json] = {}
        self.usergroups: dict[str, Json] = {}
        self.views: dict[str, Json] = {}
        self.responses: list[ResponseUrlPost] = []
        self.rate_limit_per_channel: float | None = None
        self.rate_limit_burst = 3
        self.rate_limited = 0
        self.trigger_ttl = TRIGGER_TTL_SECONDS
        self.socket = SocketModeEndpoint(APP_ID)
        self._next_micros = _micros(first_ts)
        self._view_ids = itertools.count(1)
        self._trigger_ids = itertools.count(100001)
        self._faults: list[_Fault] = []
        self._landing: set[asyncio.Future[Json]] = set()
        self._mixed: tuple[random.Random, float, frozenset[str], float] | None = None
        self._buckets: dict[str, tuple[float, float]] = {}
        self._issued_triggers: dict[str, float] = {}
        self._used_triggers: set[str] = set()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._url = ""
        self._methods: dict[str, Callable[[Call], Json]] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.list": self._conversations_list,
            "conversations.replies": self._conversations_replies,
            "users.info": self._users_info,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.push": self._views_push,
            "reactions.add": self._reactions_add,
        }
        self.add_user(BOT_USER_ID, "tocsin", is_bot=True)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._serve_api)
        app.router.add_post("/response/{name}", self._serve_response_url)
        self.socket.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self._url = f"http://127.0.0.1:{port}/"
        self.socket.bind(self._url)

    async def stop(self) -> None:
        self._stopping.set()
        await self.socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackFake:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if not self._url:
            raise RuntimeError("SlackFake is not started")
        return self._url

    @property
    def api_url(self) -> str:
        return self.url + "api/"

    def client(self, token: str = BOT_TOKEN, **options: Any) -> AsyncWebClient:
        """A real slack_sdk client aimed at this fake."""
        return AsyncWebClient(token=token, base_url=self.api_url, **options)

    # -- what tests read -------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def clear(self) -> None:
        """Forget calls, answers and pending faults; the workspace content stays."""
        self.calls.clear()
        self.responses.clear()
        self.socket.acks.clear()
        self._faults.clear()
        self.rate_limited = 0

    def top_level(self, channel: str) -> list[Json]:
        """Messages not posted as thread replies, oldest first."""
        found = [
            message
            for (where, ts), message in self.messages.items()
            if where == channel and message.get("thread_ts", ts) == ts
        ]
        return sorted(found, key=_ts_key)

    def thread(self, channel: str, ts: str) -> list[Json]:
        """The parent message, then its replies in the order they were posted."""
        parent = self.messages.get((channel, ts))
        if parent is None:
            return []
        replies = [
            message
            for (where, reply_ts), message in self.messages.items()
            if where == channel and reply_ts != ts and message.get("thread_ts") == ts
        ]
        return [parent, *sorted(replies, key=_ts_key)]

    def responses_to(self, name: str) -> list[Json]:
        return [post.body for post in self.responses if post.name == name]

    def response_url(self, name: str) -> str:
        return f"{self.url}response/{name}"

    async def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 5.0,  # noqa: ASYNC109 - a poll: no awaitable to wrap in asyncio.timeout
    ) -> T:
        """Poll until ``predicate()`` is truthy and return its value; for work done after ack."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(0.01)

    # -- workspace setup -------------------------------------------------------------------

    def add_channel(self, channel_id: str, name: str) -> None:
        self.channels[channel_id] = name

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        team_id: str = TEAM_ID,
        guest: bool = False,
        ultra_guest: bool = False,
        deleted: bool = False,
        is_bot: bool = False,
        stranger: bool = False,
        real_name: str | None = None,
    ) -> Json:
        """A user as ``users.info`` shows it; ultra_guest is a single-channel guest."""
        shown_name = real_name or name.title()
        user: Json = {
            "id": user_id,
            "team_id": team_id,
            "name": name,
            "deleted": deleted,
            "real_name": shown_name,
            "tz": "Europe/Berlin",
            "tz_label": "Central European Time",
            "tz_offset": 3600,
            "is_admin": False,
            "is_owner": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "is_restricted": guest or ultra_guest,
            "is_ultra_restricted": ultra_guest,
            "updated": 1700000000,
            "profile": {
                "real_name": shown_name,
                "display_name": name,
                "team": team_id,
                "email": f"{name}@example.com",
            },
        }
        if stranger:
            user["is_stranger"] = True
        self.users[user_id] = user
        return user

    def add_usergroup(
        self, group_id: str, handle: str, users: list[str], *, name: str | None = None
    ) -> Json:
        group: Json = {
            "id": group_id,
            "team_id": TEAM_ID,
            "is_usergroup": True,
            "name": name or handle,
            "handle": handle,
            "description": "",
            "date_delete": 0,
            "user_count": len(users),
            "users": list(users),
        }
        self.usergroups[group_id] = group
        return group

    def add_message(
        self, channel: str, text: str, *, user: str, thread_ts: str | None = None
    ) -> Json:
        """A message somebody else posted, e.g. a person's reply in an incident thread."""
        message = self._new_message(channel, user=user, text=text, thread_ts=thread_ts)
        message.pop("bot_id")
        message.pop("app_id")
        return message

    def new_trigger_id(self) -> str:
        """A trigger that expires like Slack's (3 s); other trigger ids never expire here."""
        trigger_id = f"{next(self._trigger_ids)}.{int(time.time())}.{secrets.token_hex(16)}"
        self._issued_triggers[trigger_id] = time.monotonic()
        return trigger_id

    # -- fault injection -------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        times: int = 1,
        status: int = 429,
        retry_after: int = 1,
        channel: str | None = None,
    ) -> None:
        """Answer the next calls with this HTTP status and do nothing (429: ratelimited)."""
        self._faults.append(_Fault(method, channel, times, status=status, retry_after=retry_after))

    def slow_next(
        self, method: str, seconds: float, *, times: int = 1, channel: str | None = None
    ) -> None:
        """Perform the next calls at once but answer only after ``seconds``."""
        self._faults.append(_Fault(method, channel, times, delay=seconds))

    def late_next(
        self, method: str, seconds: float, *, times: int = 1, channel: str | None = None
    ) -> None:
        """Hold the next calls for ``seconds``, then perform them and answer.

        The action lands when Slack answers, even if the client gave up long before.
        """
        self._faults.append(_Fault(method, channel, times, delay=seconds, late=True))

    @property
    def late_pending(self) -> int:
        """Calls held by ``late_next`` that have not been performed yet."""
        return len(self._landing)

    def mixed_faults(
        self, rate: float, methods: Iterable[str], *, seed: int, longest: float = 0.0
    ) -> None:
        """From now on a call to one of `methods` meets a fault with probability `rate`: 429,
        500, a slow or a late answer (up to `longest` s), or a connection dropped before or
        after the action, chosen by a generator seeded with `seed`. A rate of 0 ends this."""
        self._mixed = (random.Random(seed), rate, frozenset(methods), longest) if rate else None

    def drop_next(
        self,
        method: str,
        *,
        times: int = 1,
        after_action: bool = True,
        channel: str | None = None,
    ) -> None:
        """Close the connection without an answer, after performing the call or instead of it."""
        self._faults.append(_Fault(method, channel, times, drop=True, after_action=after_action))

    # -- Socket Mode -----------------------------------------------------------------------

    @property
    def socket_connected(self) -> asyncio.Event:
        return self.socket.connected

    @property
    def socket_acks(self) -> list[SocketAck]:
        return self.socket.acks

    @asynccontextmanager
    async def socket_mode(
        self, app: AsyncApp, *, app_token: str = APP_TOKEN
    ) -> AsyncIterator[AsyncSocketModeHandler]:
        """Bolt's Socket Mode handler, connected to this fake for the block and closed after.

        Closing comes before the fake stops: a client that loses its socket reconnects for ever.
        """
        handler = AsyncSocketModeHandler(app, app_token=app_token)
        await handler.connect_async()  # type: ignore[no-untyped-call]  # untyped in slack_bolt
        try:
            await asyncio.wait_for(self.socket_connected.wait(), ACK_TIMEOUT_SECONDS)
            yield handler
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]

    async def socket_send(
        self,
        envelope_type: EnvelopeType,
        payload: Json,
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> Json:
        """Push an envelope to the connected client; return its ack (timing in socket_acks)."""
        return await self.socket.send(
            envelope_type,
            payload,
            accepts_response_payload=accepts_response_payload,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
        )

    # -- HTTP ------------------------------------------------------------------------------

    async def _serve_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            args, token = await _read_args(request)
        except ValueError:
            self.calls.append(Call(method, {}, time.monotonic(), ""))
            return web.json_response({"ok": False, "error": "invalid_json"})
        call = Call(method, args, time.monotonic(), token)
        self.calls.append(call)
        if self.unavailable:
            return self._answer_status(503, 1)
        fault = self._take_fault(call)
        if fault is not None and fault.status is not None:
            return self._answer_status(fault.status, fault.retry_after)
        if fault is not None and fault.drop and not fault.after_action:
            return _drop_connection(request)
        try:
            if fault is not None and fault.late:
                body = await self._perform_late(call, fault.delay)
            else:
                body = self._perform(call)
        except _RateLimited as limited:
            return self._answer_status(429, limited.retry_after)
        if fault is not None and fault.delay and not fault.late:
            await self._sleep(fault.delay)
        if fault is not None and fault.drop:
            return _drop_connection(request)
        return web.json_response(body)

    async def _serve_response_url(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        self.responses.append(ResponseUrlPost(request.match_info["name"], body, time.monotonic()))
        return web.Response(text="ok")

    def _perform(self, call: Call) -> Json:
        handler = self._methods.get(call.method)
        try:
            if handler is None:
                raise SlackApiFailure("unknown_method")
            self._check_token(call)
            return handler(call)
        except SlackApiFailure as failure:
            return failure.body

    async def _perform_late(self, call: Call, seconds: float) -> Json:
        """Perform `call` after `seconds`, whether or not its client is still waiting."""

        async def land() -> Json:
            await self._sleep(seconds)
            return self._perform(call)

        landing = asyncio.ensure_future(land())
        self._landing.add(landing)
        landing.add_done_callback(self._landing.discard)
        return await asyncio.shield(landing)

    def _answer_status(self, status: int, retry_after: int) -> web.Response:
        if status == 429:
            self.rate_limited += 1
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(retry_after)},
            )
        return web.Response(status=status, text=f"fake Slack answered {status}")

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but end early when the fake stops, so no slow answer holds up teardown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _take_fault(self, call: Call) -> _Fault | None:
        for fault in self._faults:
            if fault.method != call.method:
                continue
            if fault.channel is not None and not self._same_channel(
                fault.channel, call.args.get("channel")
            ):
                continue
            fault.times -= 1
            if fault.times <= 0:
                self._faults.remove(fault)
            return fault
        if self._mixed is not None:
            rng, rate, methods, longest = self._mixed
            if call.method in methods and rng.random() < rate:
                return _mixed_fault(rng, call.method, longest)
        return None

    def _check_token(self, call: Call) -> None:
        if not call.token:
            raise SlackApiFailure("not_authed")
        is_app_token = call.token.startswith(APP_TOKEN_PREFIX)
        known_kind = is_app_token or call.token.startswith(USER_TOKEN_PREFIXES)
        if call.token in self.invalid_tokens or not known_kind:
            raise SlackApiFailure("invalid_auth")
        if is_app_token != (call.method == "apps.connections.open"):
            raise SlackApiFailure("not_allowed_token_type")

    def _take_post_allowance(self, channel: str) -> None:
        """A token bucket per channel: ``rate_limit_burst`` posts at once, then the rate."""
        rate = self.rate_limit_per_channel
        if rate is None:
            return
        now = time.monotonic()
        tokens, updated = self._buckets.get(channel, (float(self.rate_limit_burst), now))
        tokens = min(float(self.rate_limit_burst), tokens + (now - updated) * rate)
        if tokens < 1:
            self._buckets[channel] = (tokens, now)
            raise _RateLimited(max(1, math.ceil((1 - tokens) / rate)))
        self._buckets[channel] = (tokens - 1, now)

    # -- channels and messages -------------------------------------------------------------

    def _channel_or_none(self, value: Any) -> str | None:
        name = str(value or "")
        if name in self.channels or name in self.dms:
            return name
        if name in self.users:
            return self._open_dm((name,))
        bare = name.removeprefix("#")
        return next((cid for cid, cname in self.channels.items() if cname == bare), None)

    def _same_channel(self, one: Any, other: Any) -> bool:
        return self._channel_or_none(one) == self._channel_or_none(other)

    def _resolve_channel(self, value: Any, *, names: bool = True) -> str:
        """A channel id from an id, or from a name or a user id where Slack accepts those."""
        channel = self._channel_or_none(value) if names else str(value or "")
        if channel is None or (channel not in self.channels and channel not in self.dms):
            raise SlackApiFailure("channel_not_found")
        if channel in self.not_in_channel:
            raise SlackApiFailure("not_in_channel")
        return channel

    def _next_ts(self) -> str:
        """Wall-clock time, as Slack's own ts, strictly increasing (history windows rely on it)."""
        micros = max(self._next_micros, int(time.time() * 1_000_000))
        self._next_micros = micros + 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _new_message(
        self, channel: str, *, user: str, text: str, thread_ts: str | None, **content: Any
    ) -> Json:
        ts = self._next_ts()
        message: Json = {
            "type": "message",
            "user": user,
            "bot_id": self.bot_id,
            "app_id": APP_ID,
            "team": self.team_id,
            "text": text,
            "ts": ts,
            "channel": channel,
        }
        message.update({key: value for key, value in content.items() if value is not None})
        if thread_ts is not None:
            message["thread_ts"] = thread_ts
        self.messages[(channel, ts)] = message
        return message

    def _find_message(self, channel: str, ts: Any) -> Json:
        message = self.messages.get((channel, str(ts or "")))
        if message is None:
            raise SlackApiFailure("message_not_found")
        return message

    def _public(self, message: Json, *, metadata: bool = True) -> Json:
        """A stored message as the API shows it, with the thread summary on a parent."""
        shown = {key: value for key, value in message.items() if key != "channel"}
        if not metadata:
            shown.pop("metadata", None)
        replies = self.thread(message["channel"], message["ts"])[1:]
        if replies and message.get("thread_ts", message["ts"]) == message["ts"]:
            shown["thread_ts"] = message["ts"]
            shown["reply_count"] = len(replies)
            shown["reply_users"] = sorted({reply["user"] for reply in replies})
            shown["latest_reply"] = replies[-1]["ts"]
        return shown

    # -- methods ---------------------------------------------------------------------------

    def _auth_test(self, call: Call) -> Json:
        return {
            "ok": True,
            "url": WORKSPACE_URL,
            "team": "Example",
            "user": "tocsin",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, call: Call) -> Json:
        return {"ok": True, "url": self.socket.issue_url()}

    def _chat_post_message(self, call: Call) -> Json:
        args = call.args
        channel = self._resolve_channel(args.get("channel"))
        _check_content(args, required=True)
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        if thread_ts is not None:
            parent = self.messages.get((channel, thread_ts))
            if parent is None or parent.get("thread_ts", thread_ts) != thread_ts:
                raise SlackApiFailure("invalid_thread_ts")
        self._take_post_allowance(channel)
        message = self._new_message(
            channel,
            user=self.bot_user_id,
            text=str(args.get("text") or ""),
            thread_ts=thread_ts,
            blocks=args.get("blocks"),
            attachments=args.get("attachments"),
            metadata=args.get("metadata"),
            reply_broadcast=_truthy(args.get("reply_broadcast")) or None,
        )
        return {
            "ok": True,
            "channel": channel,
            "ts": message["ts"],
            "message": self._public(message),
        }

    def _chat_update(self, call: Call) -> Json:
        args = call.args
        channel = self._resolve_channel(args.get("channel"), names=False)
        message = self._find_message(channel, args.get("ts"))
        if message["user"] != self.bot_user_id:
            raise SlackApiFailure("cant_update_message")
        _check_content(args, required=True)
        # As in Slack, fields left out keep their value; an empty list of blocks removes them.
        for field in ("text", "blocks", "attachments", "metadata"):
            if field in args:
                message[field] = args[field]
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        key = (channel, message["ts"])
        self.edits[key] = self.edits.get(key, 0) + 1
        return {
            "ok": True,
            "channel": channel,
            "ts": message["ts"],
            "text": message["text"],
            "message": self._public(message),
        }

    def _chat_delete(self, call: Call) -> Json:
        args = call.args
        channel = self._resolve_channel(args.get("channel"), names=False)
        message = self._find_message(channel, args.get("ts"))
        if message["user"] != self.bot_user_id:
            raise SlackApiFailure("cant_delete_message")
        self.deleted.append(self.messages.pop((channel, message["ts"])))
        return {"ok": True, "channel": channel, "ts": message["ts"]}

    def _chat_post_ephemeral(self, call: Call) -> Json:
        args = call.args
        channel = self._resolve_channel(args.get("channel"))
        if not args.get("user"):
            raise SlackApiFailure("user_not_found")
        _check_content(args, required=True)
        ts = self._next_ts()
        self.ephemerals.append(
            {
                "channel": channel,
                "user": str(args["user"]),
                "text": args.get("text", ""),
                "blocks": args.get("blocks"),
                "thread_ts": args.get("thread_ts"),
                "ts": ts,
            }
        )
        return {"ok": True, "message_ts": ts}

    def _chat_get_permalink(self, call: Call) -> Json:
        channel = self._resolve_channel(call.args.get("channel"), names=False)
        message = self._find_message(channel, call.args.get("message_ts"))
        link = f"{WORKSPACE_URL}archives/{channel}/p{message['ts'].replace('.', '')}"
        thread_ts = message.get("thread_ts", message["ts"])
        if thread_ts != message["ts"]:
            link += f"?thread_ts={thread_ts}&cid={channel}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _open_dm(self, users: tuple[str, ...]) -> str:
        """The DM's id, the same for the same people in any order."""
        members = tuple(sorted(set(users)))
        channel = "D" + hashlib.sha256(",".join(members).encode()).hexdigest()[:10].upper()
        self.dms[channel] = members
        return channel

    def _conversations_open(self, call: Call) -> Json:
        if call.args.get("channel"):
            channel = self._resolve_channel(call.args["channel"], names=False)
            return {"ok": True, "channel": {"id": channel}}
        raw = call.args.get("users") or ""
        users = tuple(raw) if isinstance(raw, list) else tuple(u for u in str(raw).split(",") if u)
        if not users:
            raise SlackApiFailure("users_list_not_supplied")
        if len(users) > 8:
            raise SlackApiFailure("too_many_users")
        if any(user not in self.users for user in users):
            raise SlackApiFailure("user_not_found")
        known = set(self.dms)
        channel = self._open_dm(users)
        return {"ok": True, "channel": {"id": channel}, "already_open": channel in known}

    def _conversations_history(self, call: Call) -> Json:
        args = call.args
        channel = self._resolve_channel(args.get("channel"), names=False)
        shown = [
            message
            for message in self.messages.values()
            if message["channel"] == channel
            and (
                message.get("thread_ts", message["ts"]) == message["ts"]
                or message.get("reply_broadcast")
            )
            and _in_window(message["ts"], args)
        ]
        shown.sort(key=_ts_key, reverse=True)
        return self._page(shown, args)

    def _conversations_list(self, call: Call) -> Json:
        """Public and private channels the app can see (one page; the fake has few)."""
        channels = [
            {"id": cid, "name": name, "is_channel": True, "is_archived": False}
            for cid, name in self.channels.items()
        ]
        return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}}

    def _conversations_replies(self, call: Call) -> Json:
        args = call.args
        channel = self._resolve_channel(args.get("channel"), names=False)
        message = self.messages.get((channel, str(args.get("ts") or "")))
        if message is None:
            raise SlackApiFailure("thread_not_found")
        parent, *replies = self.thread(channel, str(message.get("thread_ts", message["ts"])))
        return self._page([parent, *(r for r in replies if _in_window(r["ts"], args))], args)

    def _page(self, messages: list[Json], args: Json) -> Json:
        """One page of messages, with Slack's opaque cursor to the next one."""
        start = _cursor_offset(args.get("cursor"))
        limit = int(args.get("limit") or 100)
        page = messages[start : start + limit]
        has_more = start + limit < len(messages)
        next_cursor = _cursor(start + limit) if has_more else ""
        metadata = _truthy(args.get("include_all_metadata"))
        return {
            "ok": True,
            "messages": [self._public(message, metadata=metadata) for message in page],
            "has_more": has_more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _users_info(self, call: Call) -> Json:
        user = self.users.get(str(call.args.get("user") or ""))
        if user is None:
            raise SlackApiFailure("user_not_found")
        return {"ok": True, "user": json.loads(json.dumps(user))}

    def _usergroups_list(self, call: Call) -> Json:
        # As in Slack, members are listed only when asked for with include_users.
        with_users = _truthy(call.args.get("include_users"))
        groups = [
            {key: value for key, value in group.items() if with_users or key != "users"}
            for group in self.usergroups.values()
        ]
        return {"ok": True, "usergroups": groups}

    def _usergroups_users_list(self, call: Call) -> Json:
        group = self.usergroups.get(str(call.args.get("usergroup") or ""))
        if group is None:
            raise SlackApiFailure("no_such_subteam")
        return {"ok": True, "users": list(group["users"])}

    def _use_trigger(self, trigger_id: Any) -> str:
        if not trigger_id:
            raise _invalid_arguments(["missing required field: trigger_id"])
        trigger = str(trigger_id)
        issued = self._issued_triggers.get(trigger)
        expired = issued is not None and time.monotonic() - issued > self.trigger_ttl
        if trigger in self._used_triggers or expired:
            raise SlackApiFailure("expired_trigger_id")
        return trigger

    def _save_view(self, view: Json, view_id: str | None = None) -> Json:
        view_id = view_id or f"V{next(self._view_ids):08d}"
        stored: Json = {
            "id": view_id,
            "team_id": self.team_id,
            "app_id": APP_ID,
            "bot_id": self.bot_id,
            "callback_id": "",
            "private_metadata": "",
            "external_id": "",
            "state": {"values": {}},
            **view,
            "hash": f"{time.time():.6f}.{view_id}",
            "root_view_id": view_id,
        }
        self.views[view_id] = stored
        return {"ok": True, "view": json.loads(json.dumps(stored))}

    def _views_open(self, call: Call) -> Json:
        trigger = self._use_trigger(call.args.get("trigger_id"))
        view = _checked_view(call.args.get("view"))
        self._used_triggers.add(trigger)
        return self._save_view(view)

    # views.push takes the same arguments as views.open and spends its trigger the same way.
    _views_push = _views_open

    def _views_update(self, call: Call) -> Json:
        args = call.args
        view_id = str(args.get("view_id") or "")
        if not view_id and args.get("external_id"):
            external = args["external_id"]
            view_id = next((v for v, s in self.views.items() if s["external_id"] == external), "")
        current = self.views.get(view_id)
        if current is None:
            raise SlackApiFailure("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise SlackApiFailure("hash_conflict")
        return self._save_view(_checked_view(args.get("view")), view_id)

    def _reactions_add(self, call: Call) -> Json:
        args = call.args
        channel = self._resolve_channel(args.get("channel"), names=False)
        message = self._find_message(channel, args.get("timestamp"))
        name = str(args.get("name") or "")
        if not name:
            raise SlackApiFailure("invalid_name")
        reactions: list[Json] = message.setdefault("reactions", [])
        reaction = next((r for r in reactions if r["name"] == name), None)
        if reaction is None:
            reaction = {"name": name, "users": [], "count": 0}
            reactions.append(reaction)
        if self.bot_user_id in reaction["users"]:
            raise SlackApiFailure("already_reacted")
        reaction["users"].append(self.bot_user_id)
        reaction["count"] += 1
        return {"ok": True}


@pytest_asyncio.fixture
async def slack_fake() -> AsyncIterator[SlackFake]:
    """A started Slack fake, stopped after the test."""
    async with SlackFake() as fake:
        yield fake


# -- request parsing ---------------------------------------------------------------------


async def _read_args(request: web.Request) -> tuple[Json, str]:
    """Query, form or JSON arguments and the token, wherever the client put them."""
    args: Json = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the JSON body is not an object")
            args.update(body)
        else:
            form = await request.post()
            args.update({key: value for key, value in form.items() if isinstance(value, str)})
    token = str(args.pop("token", "") or "")
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        token = header.removeprefix("Bearer ").strip()
    for field in JSON_FIELDS:
        if isinstance(args.get(field), str):
            with contextlib.suppress(ValueError):
                args[field] = json.loads(args[field])
    return args, token


def _mixed_fault(rng: random.Random, method: str, longest: float) -> _Fault:
    kind = rng.choice(("429", "500", "slow", "late", "drop", "drop before"))
    if kind in ("429", "500"):
        return _Fault(method, None, 1, status=int(kind))
    if kind in ("slow", "late"):
        return _Fault(method, None, 1, delay=rng.uniform(0, longest), late=kind == "late")
    return _Fault(method, None, 1, drop=True, after_action=kind == "drop")


def _drop_connection(request: web.Request) -> web.Response:
    """Close the socket: the client sees the server disconnect, with no HTTP answer at all."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=204)


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _micros(ts: str) -> int:
    seconds, _, fraction = ts.partition(".")
    return int(seconds) * 1_000_000 + int(fraction.ljust(6, "0")[:6])


def _ts_key(message: Json) -> Decimal:
    return Decimal(message["ts"])


def _in_window(ts: str, args: Json) -> bool:
    """Slack's ``oldest``/``latest`` bounds, exclusive unless ``inclusive`` is set."""
    value = Decimal(ts)
    try:
        oldest = Decimal(str(args.get("oldest") or "0"))
        latest = Decimal(str(args["latest"])) if args.get("latest") else None
    except InvalidOperation:
        raise SlackApiFailure("invalid_ts_oldest") from None
    if _truthy(args.get("inclusive")):
        return oldest <= value and (latest is None or value <= latest)
    return oldest < value and (latest is None or value < latest)


def _cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _cursor_offset(cursor: Any) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.b64decode(str(cursor)).decode().removeprefix("offset:"))
    except ValueError:
        raise SlackApiFailure("invalid_cursor") from None


# -- Block Kit checks --------------------------------------------------------------------


def _check_content(args: Json, *, required: bool) -> None:
    """The checks Slack makes on a message's text, blocks and attachments."""
    text = args.get("text")
    if isinstance(text, str) and len(text) > MAX_TEXT:
        raise SlackApiFailure("msg_too_long")
    blocks = args.get("blocks")
    if blocks is not None:
        if not isinstance(blocks, list):
            raise SlackApiFailure("invalid_blocks_format")
        errors = find_block_errors(blocks, max_blocks=MAX_MESSAGE_BLOCKS, at="/blocks")
        if errors:
            raise SlackApiFailure(
                "invalid_blocks",
                errors=errors,
                response_metadata={"messages": [f"[ERROR] {error}" for error in errors]},
            )
    if required and not text and not blocks and not args.get("attachments"):
        raise SlackApiFailure("no_text")


def find_block_errors(blocks: list[Any], *, max_blocks: int, at: str) -> list[str]:
    """Slack's block limits, reported as Slack words them (with a JSON pointer)."""
    errors: list[str] = []
    if len(blocks) > max_blocks:
        errors.append(
            f"must provide an array of no more than {max_blocks} items [json-pointer:{at}]"
        )
    for index, block in enumerate(blocks):
        errors.extend(_block_errors(block, f"{at}/{index}"))
    return errors


def _block_errors(block: Any, at: str) -> list[str]:
    if not isinstance(block, dict) or "type" not in block:
        return [f"missing required field: type [json-pointer:{at}]"]
    errors = _too_long(block.get("block_id"), 255, f"{at}/block_id")
    kind = block["type"]
    if kind == "section":
        fields = block.get("fields") or []
        if "text" not in block and not fields:
            errors.append(f"must provide either text or fields [json-pointer:{at}]")
        errors += _text_errors(block.get("text"), 3000, f"{at}/text")
        errors += _items_errors(fields, 10, f"{at}/fields")
        for index, field in enumerate(fields):
            errors += _text_errors(field, 2000, f"{at}/fields/{index}")
        if "accessory" in block:
            errors += _element_errors(block["accessory"], f"{at}/accessory")
    elif kind == "header":
        errors += _text_errors(block.get("text"), 150, f"{at}/text")
    elif kind == "context":
        elements = block.get("elements") or []
        errors += _items_errors(elements, 10, f"{at}/elements")
        for index, element in enumerate(elements):
            if isinstance(element, dict) and element.get("type") in ("mrkdwn", "plain_text"):
                errors += _text_errors(element, 3000, f"{at}/elements/{index}")
    elif kind == "actions":
        elements = block.get("elements") or []
        errors += _items_errors(elements, 25, f"{at}/elements")
        for index, element in enumerate(elements):
            errors += _element_errors(element, f"{at}/elements/{index}")
    return errors


def _element_errors(element: Any, at: str) -> list[str]:
    if not isinstance(element, dict):
        return [f"must be an object [json-pointer:{at}]"]
    errors = _too_long(element.get("action_id"), 255, f"{at}/action_id")
    if element.get("type") == "button":
        errors += _text_errors(element.get("text"), 75, f"{at}/text")
        errors += _too_long(element.get("value"), 2000, f"{at}/value")
        errors += _too_long(element.get("url"), 3000, f"{at}/url")
    return errors


def _text_errors(text: Any, limit: int, at: str) -> list[str]:
    if text is None:
        return []
    if not isinstance(text, dict):
        return [f"must be an object [json-pointer:{at}]"]
    return _too_long(text.get("text"), limit, f"{at}/text")


def _items_errors(items: list[Any], limit: int, at: str) -> list[str]:
    if len(items) > limit:
        return [f"must provide an array of no more than {limit} items [json-pointer:{at}]"]
    return []


def _too_long(value: Any, limit: int, at: str) -> list[str]:
    if isinstance(value, str) and len(value) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{at}]"]
    return []


def _invalid_arguments(errors: list[str]) -> SlackApiFailure:
    return SlackApiFailure(
        "invalid_arguments",
        response_metadata={"messages": [f"[ERROR] {error}" for error in errors]},
    )


def _checked_view(view: Any) -> Json:
    """A modal or Home tab within Slack's limits (100 blocks, 24-character title)."""
    if not isinstance(view, dict):
        raise _invalid_arguments(["must be an object [json-pointer:/view]"])
    errors: list[str] = []
    if view.get("type") not in ("modal", "home"):
        errors.append("must be one of modal, home [json-pointer:/view/type]")
    if view.get("type") == "modal":
        if "title" not in view:
            errors.append("missing required field: title [json-pointer:/view]")
        for field in ("title", "submit", "close"):
            errors += _text_errors(view.get(field), 24, f"/view/{field}")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        errors.append("missing required field: blocks [json-pointer:/view]")
    else:
        errors += find_block_errors(blocks, max_blocks=MAX_VIEW_BLOCKS, at="/view/blocks")
    errors += _too_long(view.get("callback_id"), 255, "/view/callback_id")
    errors += _too_long(view.get("private_metadata"), 3000, "/view/private_metadata")
    errors += _too_long(view.get("external_id"), 255, "/view/external_id")
    if errors:
        raise _invalid_arguments(errors)
    return view
