"""`/incident` end to end, through the real Bolt app in HTTP mode with signed requests.

Covers the declare modal (opened with the command's trigger, submitted, validated),
declaring directly, and list, show, ack, sev, resolve, escalation preview and help
answered on the response_url with the store changed to match; bad input gets an
ephemeral explanation and changes nothing. `/probe` and `/maint` are in
test_slack_maint_probe.py, which reuses the setup below.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot import slack_ids
from bot.runtime import Engine
from incidents.model import ACTIVE_STATUSES, Severity, Status
from incidents.service import IncidentService
from tests.conftest import ALICE as ALICE_ACTOR
from tests.slack_engine import http_engine
from tests.slack_fake import INCIDENTS_CHANNEL, SlackFake
from tests.slack_requests import signed_headers, slash_command, view_submission

ALICE = "U0ALICE"
LEAD = "U0LEAD"
ESCALATION = f"""escalation:
  P1:
    levels:
      - {{notify: ["@oncall"], after: 0m}}
      - {{notify: [{LEAD}], after: 15m}}
"""


@asynccontextmanager
async def tocsin_over_http(
    fake: SlackFake, tmp_path: Path, extra: str = ""
) -> AsyncIterator[Engine]:
    """`http_engine` with Alice, the lead and the @oncall group in the workspace."""
    fake.add_user(ALICE, "alice")
    fake.add_user(LEAD, "lead")
    fake.add_usergroup("S0ONCALL", "oncall", [ALICE])
    async with http_engine(fake, tmp_path, extra) as running:
        yield running


@pytest.fixture
async def engine(slack_fake: SlackFake, tmp_path: Path) -> AsyncIterator[Engine]:
    async with tocsin_over_http(slack_fake, tmp_path, ESCALATION) as running:
        # INC-1 is P2, which no policy pages: nothing but the commands touches its timeline.
        await incidents_of(running).declare("checkout down", Severity.P2, ALICE_ACTOR)
        yield running


def incidents_of(engine: Engine) -> IncidentService:
    assert engine.slack is not None
    return engine.slack.context.incidents


async def deliver(engine: Engine, body: str) -> tuple[int, str]:
    """POST a signed request to /slack/events as Slack would; the HTTP status and body."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{engine.listener_url}/slack/events", data=body, headers=signed_headers(body)
        ) as answer,
    ):
        return answer.status, await answer.text()


async def command(
    engine: Engine, fake: SlackFake, name: str, text: str, answer: str = "answer"
) -> dict[str, Any]:
    """Run `name text` as Alice; the first thing tocsin posted to its response_url."""
    body = slash_command(
        name, text, user=ALICE, channel=INCIDENTS_CHANNEL, response_url=fake.response_url(answer)
    )
    assert await deliver(engine, body) == (200, "")
    responses = await fake.wait_for(lambda: fake.responses_to(answer), timeout=10)
    return responses[0]


def shown(response: dict[str, Any]) -> str:
    """Everything a person reads in an answer: its text and the texts of its blocks."""
    found: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    found.append(value)
                else:
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(response)
    return "\n".join(found)


def card_for(fake: SlackFake, incident_id: str) -> dict[str, Any]:
    """The incident's card in the channel, or {} while it is not posted."""
    return next((m for m in fake.top_level(INCIDENTS_CHANNEL) if incident_id in m["text"]), {})


def declare_form(title: str, severity: str, service: str) -> dict[str, dict[str, dict[str, Any]]]:
    option = {"text": {"type": "plain_text", "text": severity}, "value": severity}
    return {
        slack_ids.TITLE_BLOCK: {
            slack_ids.TITLE_INPUT: {"type": "plain_text_input", "value": title}
        },
        slack_ids.SEVERITY_BLOCK: {
            slack_ids.SEVERITY_INPUT: {"type": "static_select", "selected_option": option}
        },
        slack_ids.SERVICE_BLOCK: {
            slack_ids.SERVICE_INPUT: {"type": "plain_text_input", "value": service}
        },
    }


async def test_declare_without_a_title_opens_the_form_and_submitting_it_declares(
    engine: Engine, slack_fake: SlackFake
) -> None:
    body = slash_command(
        "/incident",
        "declare",
        user=ALICE,
        channel=INCIDENTS_CHANNEL,
        response_url=slack_fake.response_url("declare"),
    )
    assert await deliver(engine, body) == (200, "")
    opened = await slack_fake.wait_for(lambda: slack_fake.calls_to("views.open"), timeout=10)
    assert opened[0].args["trigger_id"] == urllib.parse.parse_qs(body)["trigger_id"][0]
    view = opened[0].args["view"]
    assert view["callback_id"] == slack_ids.DECLARE_MODAL
    assert [b["block_id"] for b in view["blocks"]] == [
        slack_ids.TITLE_BLOCK,
        slack_ids.SEVERITY_BLOCK,
        slack_ids.SERVICE_BLOCK,
    ]

    form = declare_form("Payments time out", "P0", "payments")
    assert await deliver(engine, view_submission(slack_ids.DECLARE_MODAL, form, user=ALICE)) == (
        200,
        "",
    )
    card = await slack_fake.wait_for(lambda: card_for(slack_fake, "INC-2"), timeout=10)
    assert "Payments time out" in card["text"] and "P0" in card["text"]
    declared = await incidents_of(engine).get("INC-2")
    assert (declared.title, declared.severity, declared.service) == (
        "Payments time out",
        Severity.P0,
        "payments",
    )
    assert declared.status is Status.OPEN
    assert not slack_fake.responses_to("declare")  # no error came back to the command


async def test_a_form_without_a_title_is_sent_back_with_its_error(
    engine: Engine, slack_fake: SlackFake
) -> None:
    body = view_submission(slack_ids.DECLARE_MODAL, declare_form("  ", "P1", ""), user=ALICE)
    status, text = await deliver(engine, body)
    assert status == 200
    assert json.loads(text) == {
        "response_action": "errors",
        "errors": {slack_ids.TITLE_BLOCK: "Give a title."},
    }
    assert len(await incidents_of(engine).list_incidents(ACTIVE_STATUSES, limit=10)) == 1


async def test_declare_with_a_title_declares_at_once(engine: Engine, slack_fake: SlackFake) -> None:
    answer = await command(engine, slack_fake, "/incident", "declare Checkout is down P1")
    assert answer["response_type"] == "ephemeral"
    assert "Declared INC-2 (P1)" in shown(answer)
    declared = await incidents_of(engine).get("INC-2")
    assert (declared.title, declared.severity) == ("Checkout is down", Severity.P1)
    card = await slack_fake.wait_for(lambda: card_for(slack_fake, "INC-2"), timeout=10)
    assert "Checkout is down" in card["text"]
    assert not slack_fake.calls_to("views.open")


async def test_list_and_show(engine: Engine, slack_fake: SlackFake) -> None:
    await incidents_of(engine).declare("payments fail", Severity.P0, ALICE_ACTOR)
    listed = shown(await command(engine, slack_fake, "/incident", "list", "list"))
    assert "*Active incidents* (2)" in listed
    assert listed.index("*INC-2* P0") < listed.index("*INC-1* P2")  # most severe first
    assert "checkout down" in listed and "payments fail" in listed

    detail = shown(await command(engine, slack_fake, "/incident", "show INC-1", "show"))
    assert "INC-1 · checkout down" in detail
    assert "*Timeline*" in detail and "*declared*" in detail


async def test_ack_sev_and_resolve_change_the_incident(
    engine: Engine, slack_fake: SlackFake
) -> None:
    incidents = incidents_of(engine)
    acked = await command(engine, slack_fake, "/incident", "ack INC-1", "ack")
    assert acked["response_type"] == "ephemeral" and "INC-1 acknowledged." in shown(acked)
    assert (await incidents.get("INC-1")).status is Status.ACKNOWLEDGED

    raised = await command(engine, slack_fake, "/incident", "sev INC-1 P0", "sev")
    assert "INC-1 is now P0." in shown(raised)
    assert (await incidents.get("INC-1")).severity is Severity.P0

    resolved = await command(engine, slack_fake, "/incident", "resolve INC-1 rolled back", "end")
    assert "INC-1 resolved." in shown(resolved)
    assert (await incidents.get("INC-1")).status is Status.RESOLVED
    timeline = await incidents.timeline("INC-1")
    assert any("rolled back" in event.text for event in timeline)
    assert all(ALICE in event.actor.id for event in timeline[1:])


TYPED = r"""cache key is C:\tmp\new and the "checkout" page  loads   slowly"""


@pytest.mark.parametrize(
    "title",
    [TYPED, r"""The "pay" button isn't  working on C:\shop"""],
    ids=["quotes", "apostrophe"],
)
async def test_declare_keeps_the_title_as_typed(
    engine: Engine, slack_fake: SlackFake, title: str
) -> None:
    await command(engine, slack_fake, "/incident", f"declare {title} P1")
    declared = await incidents_of(engine).get("INC-2")
    assert (declared.title, declared.severity) == (title, Severity.P1)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (f"note INC-1 {TYPED}", "note"),
        (f"sev  INC-1\tP1 {TYPED}", "severity_changed"),
        (f"resolve INC-1 {TYPED}", "resolved"),
    ],
    ids=["note", "sev", "resolve"],
)
async def test_free_text_after_the_leading_words_is_kept_as_typed(
    engine: Engine, slack_fake: SlackFake, text: str, kind: str
) -> None:
    """Only the sub-command, the id and a severity are parsed: backslashes, quotes and
    repeated spaces in the rest reach the timeline unchanged."""
    await command(engine, slack_fake, "/incident", text)
    timeline = await incidents_of(engine).timeline("INC-1")
    assert [event.text for event in timeline if event.kind == kind] == [TYPED]


async def test_escalation_preview_names_who_is_paged_and_when(
    engine: Engine, slack_fake: SlackFake
) -> None:
    preview = shown(await command(engine, slack_fake, "/incident", "escalation preview P1"))
    assert "*Escalation preview* for" in preview and "P1" in preview
    assert "`at once` level 1, round 1 → <!subteam^S0ONCALL|@oncall>" in preview
    assert f"`after 15m` level 2, round 1 → <@{LEAD}>" in preview
    unplanned = shown(await command(engine, slack_fake, "/incident", "escalation preview P3", "3"))
    assert "No escalation policy for P3: nobody is paged." in unplanned


async def test_help_lists_every_subcommand(engine: Engine, slack_fake: SlackFake) -> None:
    text = shown(await command(engine, slack_fake, "/incident", "help"))
    for usage in ("declare", "list", "show INC-n", "ack INC-n", "sev INC-n", "resolve INC-n"):
        assert f"`/incident {usage}" in text
    assert "`/incident escalation preview P0-P3`" in text


@pytest.mark.parametrize(
    ("text", "explanation"),
    [
        ("ack INC-99", "no incident INC-99"),
        ("sev INC-1 P9", "write `/incident sev INC-7 P1 [reason]`"),
        ("page-everyone INC-1", "unknown subcommand 'page-everyone'"),
    ],
)
async def test_bad_input_is_explained_and_changes_nothing(
    engine: Engine, slack_fake: SlackFake, text: str, explanation: str
) -> None:
    incidents = incidents_of(engine)
    before = await incidents.timeline("INC-1")
    answer = await command(engine, slack_fake, "/incident", text)
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith("⚠️") and explanation in answer["text"]
    incident = await incidents.get("INC-1")
    assert (incident.status, incident.severity) == (Status.OPEN, Severity.P2)
    assert await incidents.timeline("INC-1") == before
    assert len(await incidents.list_incidents(ACTIVE_STATUSES, limit=10)) == 1
