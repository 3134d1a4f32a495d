"""Thread replies, DMs, modals and slash-command answers, as Slack would receive them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot import slack_ids
from bot.slack_views import (
    PreviewStep,
    declare_modal,
    error_text,
    escalation_preview_blocks,
    help_blocks,
    incident_detail_blocks,
    incident_list_blocks,
    note_modal,
    probe_result_blocks,
)
from bot.thread_replies import dm_text, reply_text
from incidents.model import Actor, Milestone, Severity, Source, Status, TimelineEvent
from tests.test_cards import (
    ALICE,
    BERLIN,
    DETECTION,
    NAMES,
    NOW,
    all_text,
    assert_within_slack_limits,
    http_result,
    incident,
    mrkdwn_texts,
)

CLI_BOB = Actor(Source.CLI, "bob", "bob")


def mention(target: str) -> str:
    """What the bot's resolver does: user ids and user groups become mentions."""
    if target.startswith("U"):
        return f"<@{target}>"
    if target.startswith("S"):
        return f"<!subteam^{target}>"
    return target


def event(
    kind: str,
    actor: Actor = ALICE,
    *,
    text: str = "",
    field: str | None = None,
    old: str | None = None,
    new: str | None = None,
) -> TimelineEvent:
    return TimelineEvent(7, NOW, actor, kind, text=text, field=field, old=old, new=new)


def reply(
    kind: str,
    actor: Actor = ALICE,
    *,
    text: str = "",
    field: str | None = None,
    old: str | None = None,
    new: str | None = None,
) -> str | None:
    happened = event(kind, actor, text=text, field=field, old=old, new=new)
    return reply_text(happened, BERLIN, mention)


# -- thread replies ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["opened", "declared"])
def test_the_card_itself_announces_a_new_incident(kind: str) -> None:
    assert reply(kind, text="shop-home failing") is None


@pytest.mark.parametrize(
    ("kind", "actor", "fields", "expected"),
    [
        ("acknowledged", ALICE, {}, ":eyes: Acknowledged by <@U024BE7LH>"),
        (
            "mitigated",
            CLI_BOB,
            {"text": "failover"},
            ":adhesive_bandage: Mitigated by bob (cli): failover",
        ),
        (
            "resolved",
            DETECTION,
            {"text": "all probes recovered"},
            ":white_check_mark: Resolved by tocsin detection (probe): all probes recovered",
        ),
        (
            "reopened",
            ALICE,
            {"text": "still slow"},
            ":rotating_light: Reopened by <@U024BE7LH>: still slow",
        ),
        (
            "closed",
            ALICE,
            {"text": "false_positive"},
            ":lock: Closed by <@U024BE7LH>: false_positive",
        ),
        (
            "severity_changed",
            DETECTION,
            {"old": "P2", "new": "P1", "text": "shop-home is P1"},
            ":arrow_up: Severity P2 → P1 by tocsin detection (probe): shop-home is P1",
        ),
        (
            "severity_changed",
            ALICE,
            {"old": "P0", "new": "P3", "text": ""},
            ":arrow_down: Severity P0 → P3 by <@U024BE7LH>",
        ),
        (
            "started_edited",
            ALICE,
            {"old": "2026-11-23T18:00:00+00:00", "new": "2026-11-22T17:45:00+00:00"},
            ":pencil2: Start time changed by <@U024BE7LH>: 19:00 CET → Sun 22 Nov 18:45 CET",
        ),
        (
            "note",
            ALICE,
            {"text": "looking at nginx\nlogs"},
            ":memo: Note from <@U024BE7LH>:\n>looking at nginx\n>logs",
        ),
        (
            "joined",
            DETECTION,
            {"text": "shop-db failing: connection refused"},
            ":heavy_plus_sign: *Joined the incident*: shop-db failing: connection refused",
        ),
        (
            "symptom",
            DETECTION,
            {"text": "shop-home failing: 502"},
            ":link: *Symptom*: shop-home failing: 502",
        ),
        (
            "recovered",
            DETECTION,
            {"text": "shop-db recovered: ok"},
            ":large_green_circle: *Recovered*: shop-db recovered: ok",
        ),
        (
            "symptom_recovered",
            DETECTION,
            {"text": "shop-home recovered: ok"},
            ":large_green_circle: *Symptom recovered*: shop-home recovered: ok",
        ),
        (
            "flapping",
            DETECTION,
            {"text": "shop-home started flapping (40% state changes)"},
            ":ocean: *Flapping*: shop-home started flapping (40% state changes)",
        ),
        (
            "unacknowledged",
            DETECTION,
            {"text": "nobody answered the reminders; escalating again"},
            ":sos: *Unacknowledged*: nobody answered the reminders; escalating again",
        ),
        (
            "escalation_skipped",
            DETECTION,
            {"text": "level 2 skipped: quiet hours 22:00-07:00"},
            ":zzz: *Escalation skipped*: level 2 skipped: quiet hours 22:00-07:00",
        ),
        (
            "suppressed",
            DETECTION,
            {"text": "weekly backup"},
            ":construction: *Suppressed by a maintenance window*: weekly backup",
        ),
        (
            "remediation_proposed",
            ALICE,
            {"text": "restart-nginx on web-1"},
            ":wrench: Remediation proposed by <@U024BE7LH>: restart-nginx on web-1",
        ),
        (
            "escalate_requested",
            ALICE,
            {"text": "escalate now"},
            ":mega: Escalation requested by <@U024BE7LH>: escalate now",
        ),
        (
            "pinned",
            ALICE,
            {"text": "nginx error log shows upstream timeouts", "new": "T0TEAM:U0BOB"},
            ":pushpin: <@U0BOB> pinned a message from <@U024BE7LH> to the timeline: "
            "“nginx error log shows upstream timeouts”",
        ),
    ],
)
def test_each_kind_reads_as_a_sentence(
    kind: str, actor: Actor, fields: dict[str, str], expected: str
) -> None:
    assert reply(kind, actor, **fields) == expected


def test_escalation_mentions_every_target() -> None:
    text = reply(
        "escalated",
        DETECTION,
        new="@oncall U024BE7LH S0614TZR7",
        text="level 2 of 3, round 1, late: was due 19:17",
    )
    assert text == (
        ":rotating_light: Paging @oncall <@U024BE7LH> <!subteam^S0614TZR7> "
        "(level 2 of 3, round 1, late: was due 19:17)"
    )


def test_reminder_mentions_the_acknowledger_again() -> None:
    text = reply("reminder", DETECTION, new="U024BE7LH", text="reminder while acknowledged")
    assert text == (
        ":alarm_clock: <@U024BE7LH>: INC-7 is still not resolved (reminder while acknowledged)"
    )


def test_a_mention_resolver_cannot_smuggle_a_broadcast_through_a_bad_target() -> None:
    text = reply_text(event("escalated", DETECTION, new="x"), BERLIN, lambda _: "<!channel> <@U1>")
    assert text is not None
    assert "<!channel>" not in text


def test_free_text_is_shown_literally() -> None:
    text = reply("note", text="<!channel> please & <@U999|boss> ```rm -rf```")
    assert text is not None
    assert "<!channel>" not in text
    assert "<@U999" not in text
    assert "```" not in text
    assert "&lt;!channel&gt; please &amp; &lt;@U999|boss&gt;" in text


def test_unknown_kinds_get_a_generic_reply() -> None:
    text = reply("handover", CLI_BOB, field="owner", old="bob", new="<!here>", text="shift end")
    assert (
        text == ":information_source: Handover by bob (cli) (owner: bob → &lt;!here&gt;): shift end"
    )
    assert reply("", CLI_BOB) == ":information_source: Event by bob (cli)"


def test_a_huge_note_is_capped() -> None:
    text = reply("note", text="<" * 10_000)
    assert text is not None
    assert len(text) <= 3000
    assert not text.rstrip("…").endswith("&lt")


def test_dm_says_what_why_and_where() -> None:
    link = "https://example.slack.com/archives/C0123/p1700000000000100"
    text = dm_text(incident(), "level 2 of 3, round 1", link)
    assert text == (
        ":large_orange_circle: *P1 INC-7*: Shop home page slow (shop)\n"
        f"You are paged (level 2 of 3, round 1). <{link}|Open the incident thread>"
    )
    assert "<" not in dm_text(incident(title="<!channel>"), "level 1", "javascript:alert(1)|x")


# -- modals --------------------------------------------------------------------------------------


def test_note_modal_carries_the_incident() -> None:
    modal = note_modal("INC-7").to_dict()
    assert modal["callback_id"] == slack_ids.NOTE_MODAL
    assert modal["private_metadata"] == "INC-7"
    (block,) = modal["blocks"]
    assert block["block_id"] == slack_ids.NOTE_BLOCK
    assert block["element"]["action_id"] == slack_ids.NOTE_INPUT
    assert block["element"]["multiline"] is True
    assert block["element"]["max_length"] == 3000


def test_declare_modal_preselects_the_default_severity() -> None:
    modal = declare_modal(NAMES, Severity.P1).to_dict()
    assert modal["callback_id"] == slack_ids.DECLARE_MODAL
    title, severity, service = modal["blocks"]
    assert (title["block_id"], title["element"]["action_id"]) == (
        slack_ids.TITLE_BLOCK,
        slack_ids.TITLE_INPUT,
    )
    assert title["element"]["max_length"] == 200
    assert severity["element"]["action_id"] == slack_ids.SEVERITY_INPUT
    assert [o["value"] for o in severity["element"]["options"]] == ["P0", "P1", "P2", "P3"]
    assert severity["element"]["initial_option"]["value"] == "P1"
    assert (service["block_id"], service["optional"]) == (slack_ids.SERVICE_BLOCK, True)


# -- slash-command answers -------------------------------------------------------------------


def test_empty_incident_list() -> None:
    assert all_text(incident_list_blocks([], BERLIN, NOW)) == "No active incidents."


def test_incident_list_puts_the_most_severe_first_and_caps_blocks() -> None:
    many = [
        incident(number=n, severity=Severity.P3 if n % 2 else Severity.P0, title=f"<!here> {n}")
        for n in range(1, 121)
    ]
    blocks = incident_list_blocks(many, BERLIN, NOW)
    assert_within_slack_limits(blocks)
    texts = mrkdwn_texts(blocks)
    assert texts[0] == "*Active incidents* (120)"
    assert texts[1] == (
        ":red_circle: *INC-2* P0 · open · &lt;!here&gt; 2 · shop · since 19:08 CET (12m)"
    )
    assert texts[-1].startswith("…and 72 more")


def test_incident_detail_shows_fields_and_the_last_timeline_lines() -> None:
    acknowledged = incident(Status.ACKNOWLEDGED, participants=(ALICE, CLI_BOB))
    acknowledged.milestones[Milestone.ACKNOWLEDGED] = NOW
    timeline = [
        TimelineEvent(
            7, NOW - timedelta(minutes=40 - i), CLI_BOB, "note", text=f"note {i} <!channel>"
        )
        for i in range(30)
    ]
    timeline.append(
        TimelineEvent(7, NOW, ALICE, "acknowledged", field="status", old="open", new="acknowledged")
    )
    blocks = incident_detail_blocks(acknowledged, timeline, BERLIN, NOW)
    assert_within_slack_limits(blocks)
    text = all_text(blocks)
    assert "*Acknowledged*\n19:20 CET" in text
    assert "Participants: <@U024BE7LH>, bob (cli)" in text
    assert "*Timeline* (last 15 of 31)" in text
    assert "note 15 " not in text
    assert "`18:56 CET` bob (cli) *note*: note 16 &lt;!channel&gt;" in text
    assert "`19:20 CET` <@U024BE7LH> *acknowledged* open → acknowledged" in text


def test_escalation_preview_says_who_when() -> None:
    steps = [
        PreviewStep(timedelta(0), 1, 1, ("<@U024BE7LH>",), ""),
        PreviewStep(timedelta(minutes=15), 2, 1, ("<!subteam^S0614TZR7>",), "held until 08:00 CET"),
    ]
    text = all_text(escalation_preview_blocks(Severity.P1, "High", steps))
    assert text == (
        "*Escalation preview* for :large_orange_circle: P1 High\n"
        "`at once` level 1, round 1 → <@U024BE7LH>\n"
        "`after 15m` level 2, round 1 → <!subteam^S0614TZR7> · :zzz: held until 08:00 CET"
    )
    empty = all_text(escalation_preview_blocks(Severity.P3, "Low", []))
    assert "nobody is paged" in empty


def test_probe_result_run_now() -> None:
    blocks = probe_result_blocks(http_result(), BERLIN)
    assert_within_slack_limits(blocks)
    text = all_text(blocks)
    assert text.startswith(":x: *shop-home* fail\n>ttfb_ms 1250 ms (expected below 800)")
    assert ":x: ttfb_ms 1250 ms (expected below 800)" in text
    assert "_Checked 19:19 CET, took 1.31s_" in text
    huge = http_result(evidence=(("body", "<!channel>" * 5000),), reason="r" * 5000)
    assert_within_slack_limits(probe_result_blocks(huge, BERLIN))
    ok = replace(http_result(), status=http_result().status.OK, reason="all expectations met")
    assert all_text(probe_result_blocks(ok, BERLIN)).startswith(":white_check_mark: *shop-home* ok")


def test_help_lists_each_command() -> None:
    entries = [("/incident list", "Active incidents."), ("/probe <id>", "Run a probe now.")]
    text = all_text(help_blocks(entries))
    assert "`/incident list` Active incidents." in text
    assert "`/probe &lt;id&gt;` Run a probe now." in text
    many = help_blocks([(f"/cmd{i}", "d" * 500) for i in range(500)])
    assert_within_slack_limits(many)


def test_error_texts() -> None:
    assert error_text("INC-9 does not exist") == "⚠️ INC-9 does not exist"
    assert error_text("<!channel>") == "⚠️ &lt;!channel&gt;"
    assert error_text("", "ref-1a2b3c") == (
        "⚠️ Something went wrong on our side; reference `ref-1a2b3c`. The error is in tocsin's log."
    )


def test_times_in_views_use_the_zone() -> None:
    summer = incident()
    summer.milestones[Milestone.STARTED] = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    text = all_text(incident_list_blocks([summer], BERLIN, NOW))
    assert "since Wed 1 Jul 12:00 CEST" in text
