"""Who may act, and what it costs to find out: against the Slack fake.

A burst of clicks by one person makes one `users.info` call, and every request
Bolt receives is authorized from one `auth.test`. Guests, people from another
organisation, deactivated accounts and bots are told why they may not act.
"""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_people import SlackDirectory
from tests.slack_fake import BOT_TOKEN, TEAM_ID, SlackFake


def directory(fake: SlackFake) -> SlackDirectory:
    return SlackDirectory(AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url))


async def test_a_burst_of_lookups_of_one_person_makes_one_call(slack_fake: SlackFake) -> None:
    slack_fake.add_user("U0ALICE", "alice")
    slack_fake.slow_next("users.info", 0.3)  # all twenty ask while the first is in flight
    people = directory(slack_fake)
    found = await asyncio.gather(*(people.person(TEAM_ID, "U0ALICE") for _ in range(20)))
    assert {person.name for person in found} == {"Alice"}
    assert all(person.refusal == "" for person in found)
    assert len(slack_fake.calls_to("users.info")) == 1
    await people.person(TEAM_ID, "U0ALICE")  # cached afterwards too
    assert len(slack_fake.calls_to("users.info")) == 1


async def test_identity_is_asked_once_and_again_after_a_failure(slack_fake: SlackFake) -> None:
    people = directory(slack_fake)
    slack_fake.fail_next("auth.test", status=500)
    with pytest.raises(SlackApiError):
        await people.identity()
    answers = await asyncio.gather(*(people.identity() for _ in range(10)))
    assert {answer["team_id"] for answer in answers} == {TEAM_ID}
    assert people.team_id == TEAM_ID
    assert len(slack_fake.calls_to("auth.test")) == 2


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        ({"guest": True}, "guests can read incidents but not act on them"),
        ({"ultra_guest": True}, "guests can read incidents but not act on them"),
        ({"stranger": True}, "another organisation (Slack Connect)"),
        ({"team_id": "T0ELSEWHERE"}, "another organisation (Slack Connect)"),
        ({"deleted": True}, "deactivated accounts cannot act"),
        ({"is_bot": True}, "bots cannot act"),
    ],
)
async def test_people_who_may_only_read_are_told_why(
    slack_fake: SlackFake, flags: dict[str, object], reason: str
) -> None:
    slack_fake.add_user("U0OTHER", "other", **flags)  # type: ignore[arg-type]
    people = directory(slack_fake)
    await people.connect()
    team = str(flags.get("team_id", TEAM_ID))
    assert reason in (await people.person(team, "U0OTHER")).refusal
