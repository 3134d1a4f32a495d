"""tocsin's HTTP listener: `/healthz` and the heartbeat endpoints for cron jobs.

`POST /heartbeat/<probe-id>` records a good run, `POST /heartbeat/<probe-id>/fail`
a failed one (GET works too, for `curl -fsS URL` in a crontab). The token is
the probe's own (`token_env`), sent as `Authorization: Bearer <token>` or
`?token=`, and compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from incidents.heartbeats import HeartbeatBook

HEARTBEATS: web.AppKey[HeartbeatBook] = web.AppKey("heartbeats", HeartbeatBook)


def listener_app(
    heartbeats: HeartbeatBook,
    tokens: Mapping[str, str | None],
    health: Callable[[], dict[str, Any]],
) -> web.Application:
    """`tokens` maps each heartbeat probe id to its token (None when the variable is unset)."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response(health())

    async def heartbeat(request: web.Request) -> web.Response:
        probe_id = request.match_info["probe_id"]
        if probe_id not in tokens:
            return web.json_response(
                {"ok": False, "error": f"no heartbeat probe '{probe_id}'"}, status=404
            )
        expected = tokens[probe_id]
        if not expected:
            return web.json_response(
                {"ok": False, "error": "this probe's token variable is not set on the server"},
                status=503,
            )
        if not hmac.compare_digest(_token_of(request).encode(), expected.encode()):
            return web.json_response({"ok": False, "error": "wrong or missing token"}, status=401)
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
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    return request.query.get("token", "")
