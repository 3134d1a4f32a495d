"""tocsin's HTTP listener: `/healthz` and the heartbeat endpoints for cron jobs.

`POST /heartbeat/<probe-id>` records a good run, `POST /heartbeat/<probe-id>/fail`
a failed one (GET works too, for `curl -fsS URL` in a crontab). The token is
the probe's own (`token_env`), sent as `Authorization: Bearer <token>` (the scheme
in any case) or `?token=`, and compared in constant time. A wrong token, an
unknown probe and a probe whose token is not set on the server all get the same
401, so the answers do not tell which probe ids exist; a client that keeps
guessing is told to wait (429, see guess_budget). `/healthz` answers 503 when the
health report's status is not ok.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from bot.guess_budget import GuessBudget
from bot.log_throttle import LogThrottle
from incidents.heartbeats import HeartbeatBook

log = logging.getLogger(__name__)

HEARTBEATS: web.AppKey[HeartbeatBook] = web.AppKey("heartbeats", HeartbeatBook)
REFUSED = {"ok": False, "error": "wrong or missing token"}


def listener_app(
    heartbeats: HeartbeatBook,
    tokens: Mapping[str, str | None],
    health: Callable[[], dict[str, Any]],
) -> web.Application:
    """`tokens` maps each heartbeat probe id to its token (None when the variable is unset)."""
    guesses = GuessBudget()
    refusals = LogThrottle(log)
    stand_in = secrets.token_urlsafe(32).encode()  # compared for unknown ids, never matched

    async def healthz(request: web.Request) -> web.Response:
        report = health()
        return web.json_response(report, status=200 if report.get("status") == "ok" else 503)

    async def heartbeat(request: web.Request) -> web.Response:
        client = request.remote
        wait = guesses.wait_for(client)
        if wait:
            refusals.warning("heartbeat client %s sent too many wrong tokens; it must wait", client)
            return web.json_response(
                {"ok": False, "error": "too many wrong tokens; try again later"},
                status=429,
                headers={"Retry-After": str(math.ceil(wait))},
            )
        probe_id = request.match_info["probe_id"]
        expected = tokens.get(probe_id)
        given = _token_of(request).encode(errors="replace")  # headers may carry any bytes
        matches = hmac.compare_digest(given, expected.encode() if expected else stand_in)
        if not (matches and expected):
            guesses.spend(client)
            refusals.warning("refused a heartbeat from %s: wrong token or no such probe", client)
            return web.json_response(REFUSED, status=401)
        if request.match_info.get("outcome") == "fail":
            at = await heartbeats.fail(probe_id)
            return web.json_response({"ok": True, "failed_at": at.isoformat()})
        at = await heartbeats.ping(probe_id)
        return web.json_response({"ok": True, "pinged_at": at.isoformat()})

    app = web.Application(client_max_size=64 * 1024)
    app[HEARTBEATS] = heartbeats
    app.router.add_get("/healthz", healthz)
    for method in ("GET", "POST"):
        app.router.add_route(method, "/heartbeat/{probe_id}", heartbeat)
        app.router.add_route(method, "/heartbeat/{probe_id}/{outcome:fail}", heartbeat)
    return app


def _token_of(request: web.Request) -> str:
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer":  # RFC 7235: the scheme is case-insensitive
        return credentials.strip()
    return request.query.get("token", "")
