"""Who is who in the workspace: mentions for escalation targets, and who may act.

Identity is `team_id` + `user_id`, never a name (DESIGN.md section 6). Guests,
Slack Connect users from another organisation, deactivated users and bots may
read incidents but not act on them. `users.info` answers are cached for a
few minutes, and concurrent lookups of one user share one call, so that 200
clicks do not make 200 lookups. `auth.test` is asked once, and its answer
authorizes every request Bolt receives.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

log = logging.getLogger(__name__)

CACHE_SECONDS = 300.0
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")


@dataclass(frozen=True)
class Person:
    team_id: str
    user_id: str
    name: str
    refusal: str  # why this person may not act; empty when they may

    @property
    def actor_id(self) -> str:
        return f"{self.team_id}:{self.user_id}"


class SlackDirectory:
    def __init__(self, client: AsyncWebClient, team_id: str = "") -> None:
        self._client = client
        self.team_id = team_id
        self._people: dict[str, tuple[float, Person]] = {}
        self._groups: dict[str, str] = {}  # handle without @ -> group id
        self._lookups: dict[str, asyncio.Future[Person]] = {}
        self._identity: asyncio.Future[AsyncSlackResponse] | None = None

    async def connect(self) -> None:
        """Learn our own team (for telling external users apart) and the user groups."""
        await self.identity()
        await self.refresh_groups()

    async def identity(self) -> AsyncSlackResponse:
        """tocsin's own `auth.test` answer: asked once, shared by concurrent callers.

        A failed call is forgotten so that the next request asks again.
        """
        known = self._identity
        if known is None or (known.done() and (known.cancelled() or known.exception())):
            known = self._identity = asyncio.ensure_future(self._client.auth_test())
        answer = await asyncio.shield(known)
        if not self.team_id:
            self.team_id = str(answer.get("team_id") or "")
        return answer

    async def refresh_groups(self) -> None:
        try:
            answer = await self._client.usergroups_list()
        except SlackApiError as error:
            log.warning(
                "cannot list user groups (%s); @handles are shown as text",
                error.response.get("error"),
            )
            return
        self._groups = {
            str(group["handle"]): str(group["id"]) for group in answer.get("usergroups") or []
        }

    def mention(self, target: str) -> str:
        """An escalation target as Slack mention syntax (plain text if it cannot be resolved)."""
        if target in ("!here", "!channel"):
            return f"<{target}>"
        if USER_ID.match(target):
            return f"<@{target}>"
        if GROUP_ID.match(target):
            return f"<!subteam^{target}>"
        handle = target.removeprefix("@")
        group = self._groups.get(handle)
        return f"<!subteam^{group}|@{handle}>" if group else target

    async def group_members(self, target: str) -> list[str]:
        group = target if GROUP_ID.match(target) else self._groups.get(target.removeprefix("@"))
        if group is None:
            return [target] if USER_ID.match(target) else []
        answer = await self._client.usergroups_users_list(usergroup=group)
        return [str(user) for user in answer.get("users") or []]

    async def person(self, team_id: str, user_id: str) -> Person:
        """The clicking user, with the reason they may not act (empty if they may)."""
        cached = self._people.get(user_id)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        lookup = self._lookups.get(user_id)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up(team_id, user_id))
            self._lookups[user_id] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(user_id, None))
        return await asyncio.shield(lookup)

    async def _look_up(self, team_id: str, user_id: str) -> Person:
        answer = await self._client.users_info(user=user_id)
        user = answer.get("user") or {}
        person = Person(
            team_id=team_id,
            user_id=user_id,
            name=str(user.get("real_name") or user.get("name") or user_id),
            refusal=_refusal(user, team_id, self.team_id),
        )
        self._people[user_id] = (time.monotonic(), person)
        return person


def _refusal(user: dict[str, object], team_id: str, home_team: str) -> str:
    if user.get("deleted"):
        return "deactivated accounts cannot act on incidents"
    if user.get("is_bot"):
        return "bots cannot act on incidents"
    if user.get("is_restricted") or user.get("is_ultra_restricted"):
        return "guests can read incidents but not act on them; ask a member of the team"
    user_team = str(user.get("team_id") or team_id)
    if user.get("is_stranger") or (home_team and home_team not in (team_id, user_team)):
        return (
            "people from another organisation (Slack Connect) can read incidents but not act "
            "on them"
        )
    return ""
