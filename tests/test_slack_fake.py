"""The Slack fake against the real slack_sdk client and a real Bolt app.

These tests pin both the fake's answers and the client behaviour tocsin relies on: which
failures the client retries by itself, and what a timed-out or dropped post leaves behind.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from tests.slack_fake import APP_TOKEN, BOT_USER_ID, INCIDENTS_CHANNEL, SlackFake

# Redundant once tests/conftest.py lists the plugin, and then pytest's "already imported"
# assertion-rewrite warning for it goes away too.

Json = dict[str, Any]


async def error_of(call: Any) -> SlackApiError:
    """The SlackApiError an awaited client call raises."""
    with pytest.raises(SlackApiError) as raised:
        await call
    return raised.value


def section(text: str) -> Json:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(*, text: str = "Ack", value: str = "v", action_id: str = "ack") -> Json:
    element = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "value": value,
        "action_id": action_id,
    }
    return {"type": "actions", "elements": [element]}


# -- auth and routing --------------------------------------------------------------------


async def test_auth_test_answers_what_bolt_needs(slack_fake: SlackFake) -> None:
    answer = await slack_fake.client().auth_test()

    assert answer["ok"] is True
    assert (answer["team_id"], answer["user_id"], answer["bot_id"]) == ("T0TEAM", "U0BOT", "B0BOT")
    assert slack_fake.calls_to("auth.test")[0].token == "xoxb-test"


async def test_tokens_are_checked_per_method(slack_fake: SlackFake) -> None:
    slack_fake.invalid_tokens.add("xoxb-revoked")

    missing = await error_of(AsyncWebClient(base_url=slack_fake.api_url).auth_test())
    revoked = await error_of(slack_fake.client("xoxb-revoked").auth_test())
    app_token = await error_of(slack_fake.client(APP_TOKEN).auth_test())
    bot_token = await error_of(slack_fake.client().apps_connections_open(app_token="xoxb-test"))
    opened = await slack_fake.client().apps_connections_open(app_token=APP_TOKEN)

    assert missing.response["error"] == "not_authed"
    assert revoked.response["error"] == "invalid_auth"
    assert app_token.response["error"] == "not_allowed_token_type"
    assert bot_token.response["error"] == "not_allowed_token_type"
    assert opened["url"].startswith(slack_fake.url.replace("http://", "ws://") + "socket?ticket=")


async def test_unknown_methods_are_refused_and_recorded(slack_fake: SlackFake) -> None:
    failed = await error_of(slack_fake.client().api_call("chat.scheduleMessage", json={}))

    assert failed.response["error"] == "unknown_method"
    assert [call.method for call in slack_fake.calls] == ["chat.scheduleMessage"]


async def test_form_bodies_carry_the_token_and_blocks_as_strings(slack_fake: SlackFake) -> None:
    form = {
        "token": "xoxb-form",
        "channel": "ops-incidents",
        "text": "form post",
        "blocks": json.dumps([section("*form*")]),
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(slack_fake.api_url + "chat.postMessage", data=form) as answer,
    ):
        body = await answer.json()

    assert body["ok"] is True
    call = slack_fake.calls_to("chat.postMessage")[0]
    assert call.token == "xoxb-form"
    assert call.args["blocks"] == [section("*form*")]
    assert slack_fake.messages[(INCIDENTS_CHANNEL, body["ts"])]["blocks"] == [section("*form*")]


# -- messages ----------------------------------------------------------------------------


async def test_post_reply_and_update_keep_the_latest_state(slack_fake: SlackFake) -> None:
    client = slack_fake.client()

    parent = await client.chat_postMessage(
        channel="#ops-incidents", text="Incident 7 opened", blocks=[section("*open*")]
    )
    reply = await client.chat_postMessage(
        channel=INCIDENTS_CHANNEL, thread_ts=parent["ts"], text="still failing"
    )
    await client.chat_update(channel=parent["channel"], ts=parent["ts"], text="Incident 7 resolved")

    assert parent["channel"] == INCIDENTS_CHANNEL
    assert parent["message"]["user"] == BOT_USER_ID
    assert float(reply["ts"]) > float(parent["ts"])
    stored = slack_fake.messages[(INCIDENTS_CHANNEL, parent["ts"])]
    assert stored["text"] == "Incident 7 resolved"
    assert stored["blocks"] == [section("*open*")], "blocks left out of an update are kept"
    assert slack_fake.edits[(INCIDENTS_CHANNEL, parent["ts"])] == 1
    assert [m["text"] for m in slack_fake.thread(INCIDENTS_CHANNEL, parent["ts"])] == [
        "Incident 7 resolved",
        "still failing",
    ]
    assert [m["ts"] for m in slack_fake.top_level(INCIDENTS_CHANNEL)] == [parent["ts"]]


async def test_thread_ts_must_name_a_top_level_message(slack_fake: SlackFake) -> None:
    client = slack_fake.client()
    parent = await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="parent")
    reply = await client.chat_postMessage(
        channel=INCIDENTS_CHANNEL, thread_ts=parent["ts"], text="reply"
    )

    unknown = await error_of(
        client.chat_postMessage(channel=INCIDENTS_CHANNEL, thread_ts="1.000001", text="x")
    )
    nested = await error_of(
        client.chat_postMessage(channel=INCIDENTS_CHANNEL, thread_ts=reply["ts"], text="x")
    )

    assert unknown.response["error"] == nested.response["error"] == "invalid_thread_ts"


async def test_channel_errors(slack_fake: SlackFake) -> None:
    client = slack_fake.client()
    slack_fake.add_channel("C0PRIVATE", "secret")
    slack_fake.not_in_channel.add("C0PRIVATE")
    parent = await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="x")

    unknown = await error_of(client.chat_postMessage(channel="#nowhere", text="x"))
    outside = await error_of(client.chat_postMessage(channel="#secret", text="x"))
    by_name = await error_of(
        client.chat_update(channel="#ops-incidents", ts=parent["ts"], text="y")
    )
    missing = await error_of(client.chat_update(channel=INCIDENTS_CHANNEL, ts="1.000001", text="y"))

    assert unknown.response["error"] == "channel_not_found"
    assert outside.response["error"] == "not_in_channel"
    assert by_name.response["error"] == "channel_not_found", "chat.update takes ids only"
    assert missing.response["error"] == "message_not_found"


async def test_only_the_bots_own_messages_can_be_updated(slack_fake: SlackFake) -> None:
    human = slack_fake.add_message(INCIDENTS_CHANNEL, "I'm on it", user="U1ALICE")

    refused = await error_of(
        slack_fake.client().chat_update(channel=INCIDENTS_CHANNEL, ts=human["ts"], text="x")
    )

    assert refused.response["error"] == "cant_update_message"


async def test_the_bot_deletes_only_its_own_messages(slack_fake: SlackFake) -> None:
    client = slack_fake.client()
    posted = await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="extra")
    human = slack_fake.add_message(INCIDENTS_CHANNEL, "mine", user="U1ALICE")

    await client.chat_delete(channel=INCIDENTS_CHANNEL, ts=posted["ts"])
    refused = await error_of(client.chat_delete(channel=INCIDENTS_CHANNEL, ts=human["ts"]))
    gone = await error_of(client.chat_delete(channel=INCIDENTS_CHANNEL, ts=posted["ts"]))

    assert refused.response["error"] == "cant_delete_message"
    assert gone.response["error"] == "message_not_found"
    assert [m["text"] for m in slack_fake.top_level(INCIDENTS_CHANNEL)] == ["mine"]
    assert [m["text"] for m in slack_fake.deleted] == ["extra"]


async def test_permalinks_point_into_threads(slack_fake: SlackFake) -> None:
    client = slack_fake.client()
    parent = await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="parent")
    reply = await client.chat_postMessage(
        channel=INCIDENTS_CHANNEL, thread_ts=parent["ts"], text="reply"
    )

    top = await client.chat_getPermalink(channel=INCIDENTS_CHANNEL, message_ts=parent["ts"])
    inner = await client.chat_getPermalink(channel=INCIDENTS_CHANNEL, message_ts=reply["ts"])

    digits = parent["ts"].replace(".", "")
    assert top["permalink"] == f"https://example.slack.com/archives/C0INCIDENTS/p{digits}"
    assert inner["permalink"].endswith(f"?thread_ts={parent['ts']}&cid={INCIDENTS_CHANNEL}")


async def test_ephemeral_messages_are_kept_apart(slack_fake: SlackFake) -> None:
    answer = await slack_fake.client().chat_postEphemeral(
        channel=INCIDENTS_CHANNEL, user="U1ALICE", text="only you can see this"
    )

    assert answer["message_ts"]
    assert slack_fake.ephemerals[0]["user"] == "U1ALICE"
    assert slack_fake.messages == {}


async def test_reactions_are_added_once(slack_fake: SlackFake) -> None:
    client = slack_fake.client()
    posted = await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="x")

    await client.reactions_add(channel=INCIDENTS_CHANNEL, timestamp=posted["ts"], name="eyes")
    again = await error_of(
        client.reactions_add(channel=INCIDENTS_CHANNEL, timestamp=posted["ts"], name="eyes")
    )

    assert again.response["error"] == "already_reacted"
    reactions = slack_fake.messages[(INCIDENTS_CHANNEL, posted["ts"])]["reactions"]
    assert reactions == [{"name": "eyes", "users": [BOT_USER_ID], "count": 1}]


# -- Block Kit limits --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([section("x")] * 51, "no more than 50 items [json-pointer:/blocks]"),
        ([section("x" * 3001)], "less than 3001 characters [json-pointer:/blocks/0/text/text]"),
        (
            [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            "less than 151 characters [json-pointer:/blocks/0/text/text]",
        ),
        (
            [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c" * 3001}]}],
            "[json-pointer:/blocks/0/elements/0/text]",
        ),
        (
            [button(text="b" * 76)],
            "less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
        ),
        ([button(value="v" * 2001)], "[json-pointer:/blocks/0/elements/0/value]"),
        ([button(action_id="a" * 256)], "[json-pointer:/blocks/0/elements/0/action_id]"),
    ],
)
async def test_block_limits(slack_fake: SlackFake, blocks: list[Json], pointer: str) -> None:
    refused = await error_of(
        slack_fake.client().chat_postMessage(channel=INCIDENTS_CHANNEL, text="x", blocks=blocks)
    )

    assert refused.response["error"] == "invalid_blocks"
    assert any(pointer in line for line in refused.response["response_metadata"]["messages"])
    assert slack_fake.messages == {}


async def test_blocks_at_the_limits_are_accepted(slack_fake: SlackFake) -> None:
    blocks = [section("x" * 3000)] * 48 + [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        button(text="b" * 75, value="v" * 2000, action_id="a" * 255),
    ]

    posted = await slack_fake.client().chat_postMessage(
        channel=INCIDENTS_CHANNEL, text="t" * 40_000, blocks=blocks
    )

    assert posted["ok"] is True


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_text_limits(slack_fake: SlackFake) -> None:
    client = slack_fake.client()
    posted = await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="x")

    too_long = await error_of(client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="t" * 40_001))
    empty = await error_of(client.chat_postMessage(channel=INCIDENTS_CHANNEL, text=""))
    update = await error_of(
        client.chat_update(channel=INCIDENTS_CHANNEL, ts=posted["ts"], blocks=[section("y" * 3001)])
    )

    assert too_long.response["error"] == "msg_too_long"
    assert empty.response["error"] == "no_text"
    assert update.response["error"] == "invalid_blocks"


# -- faults ------------------------------------------------------------------------------


async def test_429_carries_retry_after_and_is_not_retried_by_default(slack_fake: SlackFake) -> None:
    slack_fake.fail_next("chat.postMessage", retry_after=7)

    refused = await error_of(
        slack_fake.client().chat_postMessage(channel=INCIDENTS_CHANNEL, text="x")
    )

    assert refused.response.status_code == 429
    assert refused.response["error"] == "ratelimited"
    assert refused.response.headers["Retry-After"] == "7"
    assert len(slack_fake.calls_to("chat.postMessage")) == 1
    assert slack_fake.rate_limited == 1
    assert slack_fake.messages == {}


async def test_rate_limit_handler_waits_retry_after_then_posts(slack_fake: SlackFake) -> None:
    slack_fake.fail_next("chat.postMessage", retry_after=1)
    client = slack_fake.client(retry_handlers=[AsyncRateLimitErrorRetryHandler()])

    posted = await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="x")

    first, second = slack_fake.calls_to("chat.postMessage")
    assert second.at - first.at >= 1.0
    assert posted["ok"] is True
    assert len(slack_fake.messages) == 1


async def test_server_error_handler_retries_a_500(slack_fake: SlackFake) -> None:
    slack_fake.fail_next("chat.postMessage", status=500)
    client = slack_fake.client(retry_handlers=[AsyncServerErrorRetryHandler()])

    posted = await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="x")

    assert posted["ok"] is True
    assert len(slack_fake.calls_to("chat.postMessage")) == 2


async def test_retry_handlers_share_one_budget(slack_fake: SlackFake) -> None:
    """slack_sdk counts attempts once per call: after a 429 retry, a 500 is not retried."""
    slack_fake.fail_next("chat.postMessage", retry_after=0)
    slack_fake.fail_next("chat.postMessage", status=500)
    client = slack_fake.client(
        retry_handlers=[AsyncRateLimitErrorRetryHandler(), AsyncServerErrorRetryHandler()]
    )

    refused = await error_of(client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="x"))

    assert refused.response.status_code == 500
    assert len(slack_fake.calls_to("chat.postMessage")) == 2


async def test_500_without_a_handler_is_an_api_error(slack_fake: SlackFake) -> None:
    slack_fake.fail_next("chat.postMessage", status=503)

    refused = await error_of(
        slack_fake.client().chat_postMessage(channel=INCIDENTS_CHANNEL, text="x")
    )

    assert refused.response.status_code == 503
    assert slack_fake.messages == {}


async def test_faults_can_target_one_channel(slack_fake: SlackFake) -> None:
    slack_fake.add_channel("C0OTHER", "other")
    slack_fake.fail_next("chat.postMessage", channel="#other")
    client = slack_fake.client()

    await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="x")
    refused = await error_of(client.chat_postMessage(channel="C0OTHER", text="x"))
    await client.chat_postMessage(channel="C0OTHER", text="x")

    assert refused.response.status_code == 429
    assert len(slack_fake.messages) == 2


async def test_a_timed_out_post_is_posted_all_the_same(slack_fake: SlackFake) -> None:
    slack_fake.slow_next("chat.postMessage", 3.0)
    client = slack_fake.client(timeout=1)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="unconfirmed")

    assert time.monotonic() - started < 2.5
    assert [m["text"] for m in slack_fake.top_level(INCIDENTS_CHANNEL)] == ["unconfirmed"]
    assert len(slack_fake.calls_to("chat.postMessage")) == 1, "a timeout is not retried"


async def test_a_late_post_lands_only_when_slack_answers(slack_fake: SlackFake) -> None:
    """The client gives up after 1 s and finds nothing; the post lands 2.5 s after it was sent."""
    slack_fake.late_next("chat.postMessage", 2.5)
    client = slack_fake.client(timeout=1)

    with pytest.raises(TimeoutError):
        await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="late")

    assert slack_fake.top_level(INCIDENTS_CHANNEL) == []
    assert slack_fake.late_pending == 1
    await slack_fake.wait_for(lambda: slack_fake.top_level(INCIDENTS_CHANNEL), timeout=3)
    assert slack_fake.late_pending == 0
    assert [m["text"] for m in slack_fake.top_level(INCIDENTS_CHANNEL)] == ["late"]


async def test_an_outage_answers_503_and_does_nothing(slack_fake: SlackFake) -> None:
    slack_fake.unavailable = True
    client = slack_fake.client(retry_handlers=[])

    down = await error_of(client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="x"))
    slack_fake.unavailable = False
    await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="after the outage")

    assert down.response.status_code == 503
    assert [m["text"] for m in slack_fake.top_level(INCIDENTS_CHANNEL)] == ["after the outage"]


async def test_a_dropped_post_raises_a_disconnect_but_is_posted(slack_fake: SlackFake) -> None:
    slack_fake.drop_next("chat.postMessage")
    client = slack_fake.client(retry_handlers=[])

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="unconfirmed")

    assert len(slack_fake.messages) == 1


async def test_a_drop_before_the_action_posts_nothing(slack_fake: SlackFake) -> None:
    slack_fake.drop_next("chat.postMessage", after_action=False)

    with pytest.raises(aiohttp.ClientConnectionError):
        await slack_fake.client(retry_handlers=[]).chat_postMessage(
            channel=INCIDENTS_CHANNEL, text="x"
        )

    assert slack_fake.messages == {}


async def test_default_client_retries_a_dropped_post_and_posts_twice(slack_fake: SlackFake) -> None:
    """slack_sdk's default handlers retry a disconnect once, even for a post Slack performed."""
    slack_fake.drop_next("chat.postMessage")

    await slack_fake.client().chat_postMessage(channel=INCIDENTS_CHANNEL, text="twice")

    assert [m["text"] for m in slack_fake.top_level(INCIDENTS_CHANNEL)] == ["twice", "twice"]


async def test_channel_rate_limit_allows_a_burst_then_429(slack_fake: SlackFake) -> None:
    slack_fake.rate_limit_per_channel = 1.0
    slack_fake.add_channel("C0OTHER", "other")
    client = slack_fake.client()

    for _ in range(slack_fake.rate_limit_burst):
        await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="x")
    refused = await error_of(client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="x"))
    await client.chat_postMessage(channel="C0OTHER", text="another channel has its own budget")

    assert refused.response.status_code == 429
    assert refused.response.headers["Retry-After"] == "1"
    assert slack_fake.rate_limited == 1
    await asyncio.sleep(1.05)
    await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="after a second")


async def test_stop_ends_a_slow_answer_at_once() -> None:
    fake = SlackFake()
    await fake.start()
    fake.slow_next("auth.test", 30.0)
    pending = asyncio.create_task(fake.client().auth_test())
    await fake.wait_for(lambda: fake.calls_to("auth.test"))

    started = time.monotonic()
    await fake.stop()

    assert time.monotonic() - started < 2.0
    await asyncio.gather(pending, return_exceptions=True)


# -- history, DMs, users, groups ---------------------------------------------------------


async def test_history_returns_metadata_only_when_asked(slack_fake: SlackFake) -> None:
    client = slack_fake.client()
    metadata = {"event_type": "incident_opened", "event_payload": {"incident_id": 7}}
    first = await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="a", metadata=metadata)
    await client.chat_postMessage(channel=INCIDENTS_CHANNEL, thread_ts=first["ts"], text="reply")
    second = await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="b")

    with_metadata = await client.conversations_history(
        channel=INCIDENTS_CHANNEL, include_all_metadata=True
    )
    plain = await client.conversations_history(channel=INCIDENTS_CHANNEL)

    assert [m["ts"] for m in with_metadata["messages"]] == [second["ts"], first["ts"]]
    assert with_metadata["messages"][1]["metadata"] == metadata
    assert with_metadata["messages"][1]["reply_count"] == 1
    assert all("metadata" not in m for m in plain["messages"])
    assert plain["has_more"] is False


async def test_history_pages_and_windows(slack_fake: SlackFake) -> None:
    client = slack_fake.client()
    posted = [
        await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text=str(n)) for n in range(5)
    ]

    first_page = await client.conversations_history(channel=INCIDENTS_CHANNEL, limit=2)
    second_page = await client.conversations_history(
        channel=INCIDENTS_CHANNEL, limit=2, cursor=first_page["response_metadata"]["next_cursor"]
    )
    window = await client.conversations_history(
        channel=INCIDENTS_CHANNEL, oldest=posted[1]["ts"], latest=posted[3]["ts"]
    )

    assert [m["text"] for m in first_page["messages"]] == ["4", "3"]
    assert first_page["has_more"] is True
    assert [m["text"] for m in second_page["messages"]] == ["2", "1"]
    assert [m["text"] for m in window["messages"]] == ["2"]


async def test_replies_come_parent_first_in_thread_order(slack_fake: SlackFake) -> None:
    client = slack_fake.client()
    parent = await client.chat_postMessage(
        channel=INCIDENTS_CHANNEL,
        text="parent",
        metadata={"event_type": "incident_opened", "event_payload": {"incident_id": 7}},
    )
    for text in ("one", "two"):
        await client.chat_postMessage(channel=INCIDENTS_CHANNEL, thread_ts=parent["ts"], text=text)
    slack_fake.add_message(INCIDENTS_CHANNEL, "three", user="U1ALICE", thread_ts=parent["ts"])

    replies = await client.conversations_replies(
        channel=INCIDENTS_CHANNEL, ts=parent["ts"], include_all_metadata=True
    )
    missing = await error_of(client.conversations_replies(channel=INCIDENTS_CHANNEL, ts="1.000001"))

    assert [m["text"] for m in replies["messages"]] == ["parent", "one", "two", "three"]
    assert replies["messages"][0]["metadata"]["event_payload"] == {"incident_id": 7}
    assert replies["messages"][0]["reply_users"] == [BOT_USER_ID, "U1ALICE"]
    assert missing.response["error"] == "thread_not_found"


async def test_dms_have_stable_ids_and_hold_messages(slack_fake: SlackFake) -> None:
    client = slack_fake.client()
    slack_fake.add_user("U1ALICE", "alice")
    slack_fake.add_user("U2BOB", "bob")

    alice = await client.conversations_open(users="U1ALICE")
    again = await client.conversations_open(users=["U1ALICE"])
    both = await client.conversations_open(users="U2BOB,U1ALICE")
    unknown = await error_of(client.conversations_open(users="U9NOBODY"))
    await client.chat_postMessage(channel=alice["channel"]["id"], text="you are on call")

    assert alice["channel"]["id"].startswith("D")
    assert again["channel"]["id"] == alice["channel"]["id"]
    assert again["already_open"] is True
    assert both["channel"]["id"] != alice["channel"]["id"]
    assert unknown.response["error"] == "user_not_found"
    assert slack_fake.top_level(alice["channel"]["id"])[0]["text"] == "you are on call"


async def test_users_info_shows_who_may_not_approve(slack_fake: SlackFake) -> None:
    client = slack_fake.client()
    slack_fake.add_user("U1ALICE", "alice")
    slack_fake.add_user("U3GUEST", "guest", ultra_guest=True)
    slack_fake.add_user("U4GONE", "gone", deleted=True)
    slack_fake.add_user("U5EXT", "ext", team_id="T0OTHER", stranger=True)

    alice = (await client.users_info(user="U1ALICE"))["user"]
    guest = (await client.users_info(user="U3GUEST"))["user"]
    gone = (await client.users_info(user="U4GONE"))["user"]
    ext = (await client.users_info(user="U5EXT"))["user"]
    bot = (await client.users_info(user=BOT_USER_ID))["user"]
    unknown = await error_of(client.users_info(user="U9NOBODY"))

    assert (alice["team_id"], alice["is_restricted"], alice["deleted"]) == ("T0TEAM", False, False)
    assert (guest["is_restricted"], guest["is_ultra_restricted"]) == (True, True)
    assert gone["deleted"] is True
    assert (ext["team_id"], ext["is_stranger"]) == ("T0OTHER", True)
    assert bot["is_bot"] is True
    assert alice["profile"]["display_name"] == "alice"
    assert unknown.response["error"] == "user_not_found"


async def test_usergroups(slack_fake: SlackFake) -> None:
    client = slack_fake.client()
    slack_fake.add_usergroup("S0ONCALL", "oncall", ["U1ALICE", "U2BOB"], name="On call")

    listed = await client.usergroups_list(include_users=True)
    bare = await client.usergroups_list()
    members = await client.usergroups_users_list(usergroup="S0ONCALL")
    unknown = await error_of(client.usergroups_users_list(usergroup="S0NONE"))

    group = listed["usergroups"][0]
    assert (group["id"], group["handle"], group["name"]) == ("S0ONCALL", "oncall", "On call")
    assert group["users"] == ["U1ALICE", "U2BOB"]
    assert "users" not in bare["usergroups"][0], "members are listed only with include_users"
    assert members["users"] == ["U1ALICE", "U2BOB"]
    assert unknown.response["error"] == "no_such_subteam"


# -- views -------------------------------------------------------------------------------


def modal(title: str = "Approve") -> Json:
    return {"type": "modal", "title": {"type": "plain_text", "text": title}, "blocks": []}


async def test_a_trigger_opens_one_view(slack_fake: SlackFake) -> None:
    client = slack_fake.client()

    opened = await client.views_open(trigger_id="123.456.abc", view=modal())
    reused = await error_of(client.views_open(trigger_id="123.456.abc", view=modal()))
    missing = await error_of(client.views_open(trigger_id="", view=modal()))

    assert opened["view"]["id"] in slack_fake.views
    assert reused.response["error"] == "expired_trigger_id"
    assert missing.response["error"] == "invalid_arguments"


async def test_issued_triggers_expire(slack_fake: SlackFake) -> None:
    slack_fake.trigger_ttl = 0.05
    trigger_id = slack_fake.new_trigger_id()
    await asyncio.sleep(0.1)

    late = await error_of(slack_fake.client().views_open(trigger_id=trigger_id, view=modal()))

    assert late.response["error"] == "expired_trigger_id"


async def test_views_are_checked_updated_and_pushed(slack_fake: SlackFake) -> None:
    client = slack_fake.client()
    opened = await client.views_open(trigger_id="t1", view=modal())
    view_id = opened["view"]["id"]

    long_title = await error_of(client.views_open(trigger_id="t2", view=modal("t" * 25)))
    updated = await client.views_update(
        view_id=view_id, hash=opened["view"]["hash"], view=modal("Approved")
    )
    stale = await error_of(
        client.views_update(view_id=view_id, hash=opened["view"]["hash"], view=modal())
    )
    unknown = await error_of(client.views_update(view_id="V404", view=modal()))
    pushed = await client.views_push(trigger_id="t3", view=modal("Details"))

    assert long_title.response["error"] == "invalid_arguments"
    assert updated["view"]["id"] == view_id
    assert slack_fake.views[view_id]["title"]["text"] == "Approved"
    assert stale.response["error"] == "hash_conflict"
    assert unknown.response["error"] == "not_found"
    assert pushed["view"]["id"] != view_id


# -- response_url and Socket Mode --------------------------------------------------------


def block_actions(fake: SlackFake, action_id: str, message_ts: str) -> Json:
    """A block_actions payload as Slack sends it when a button is clicked."""
    return {
        "type": "block_actions",
        "team": {"id": "T0TEAM", "domain": "example"},
        "user": {"id": "U1ALICE", "team_id": "T0TEAM", "username": "alice", "name": "alice"},
        "api_app_id": "A0APP",
        "token": "verification-token",
        "trigger_id": fake.new_trigger_id(),
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": INCIDENTS_CHANNEL,
            "is_ephemeral": False,
        },
        "channel": {"id": INCIDENTS_CHANNEL, "name": "ops-incidents"},
        "message": {"type": "message", "ts": message_ts, "text": "Incident 7"},
        "response_url": fake.response_url("incident-7"),
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "incident",
                "value": "7",
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "action_ts": "1700000001.000001",
            }
        ],
    }


async def test_bolt_answers_an_action_over_socket_mode(slack_fake: SlackFake) -> None:
    client = slack_fake.client()
    posted = await client.chat_postMessage(channel=INCIDENTS_CHANNEL, text="Incident 7")
    app = AsyncApp(client=client)

    @app.action("x")
    async def acknowledge(
        ack: AsyncAck, respond: AsyncRespond, client: AsyncWebClient, body: Json
    ) -> None:
        await ack()
        await respond("acknowledged by alice")
        await client.chat_postMessage(
            channel=body["channel"]["id"], thread_ts=body["container"]["message_ts"], text="ack'd"
        )

    async with slack_fake.socket_mode(app):
        ack = await slack_fake.socket_send(
            "interactive",
            block_actions(slack_fake, "x", posted["ts"]),
            accepts_response_payload=True,
        )
        replies = await slack_fake.wait_for(
            lambda: slack_fake.thread(INCIDENTS_CHANNEL, posted["ts"])[1:]
        )

    assert ack["envelope_id"] == slack_fake.socket_acks[0].envelope_id
    assert "payload" not in ack, "an empty ack() sends no payload"
    assert slack_fake.socket_acks[0].seconds < 3.0
    assert [reply["text"] for reply in replies] == ["ack'd"]
    assert slack_fake.responses_to("incident-7")[0]["text"] == "acknowledged by alice"
    assert slack_fake.calls_to("apps.connections.open")[0].token == APP_TOKEN
    assert slack_fake.calls_to("auth.test"), "Bolt checks its token on the first request"


async def test_a_slash_command_ack_carries_its_text(slack_fake: SlackFake) -> None:
    app = AsyncApp(client=slack_fake.client())

    @app.command("/tocsin")
    async def status(ack: AsyncAck) -> None:
        await ack("all probes green")

    command = {
        "command": "/tocsin",
        "text": "status",
        "team_id": "T0TEAM",
        "user_id": "U1ALICE",
        "channel_id": INCIDENTS_CHANNEL,
        "response_url": slack_fake.response_url("status"),
        "trigger_id": slack_fake.new_trigger_id(),
    }
    async with slack_fake.socket_mode(app):
        ack = await slack_fake.socket_send("slash_commands", command, accepts_response_payload=True)

    assert ack["payload"] == {"text": "all probes green"}


async def test_unacked_envelopes_time_out(slack_fake: SlackFake) -> None:
    async with slack_fake.socket_mode(AsyncApp(client=slack_fake.client())):
        with pytest.raises(TimeoutError):
            # Bolt sends no ack at all when no listener matches (it answers 404 inside).
            await slack_fake.socket.send(
                "interactive", block_actions(slack_fake, "nobody", "1.1"), ack_within=0.5
            )


async def test_clients_reconnect_when_slack_asks(slack_fake: SlackFake) -> None:
    async with slack_fake.socket_mode(AsyncApp(client=slack_fake.client())):
        await slack_fake.socket.request_refresh()
        await slack_fake.wait_for(lambda: slack_fake.socket.connections == 2)
        await asyncio.wait_for(slack_fake.socket_connected.wait(), 5)

    assert len(slack_fake.calls_to("apps.connections.open")) == 2


async def test_wait_for_gives_up(slack_fake: SlackFake) -> None:
    with pytest.raises(TimeoutError):
        await slack_fake.wait_for(lambda: slack_fake.calls_to("chat.postMessage"), timeout=0.05)
