"""The incident card as people read it on Slack, and as Slack's limits allow it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.models.blocks import Block

from bot import slack_ids
from bot.card_actions import split_select_value
from bot.cards import CardView, NextStep, ProbeEvidence, Remediation, card_blocks, card_text
from bot.mrkdwn import cap, escape_capped, show_duration, show_target, show_time
from incidents.model import Actor, ClosureReason, Incident, Milestone, Severity, Source, Status
from probes.result import Measurement, ProbeResult
from probes.result import Status as ResultStatus

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 23, 18, 20, tzinfo=UTC)  # 19:20 CET
NAMES = {Severity.P0: "Critical", Severity.P1: "High", Severity.P2: "Medium", Severity.P3: "Low"}
ALICE = Actor(Source.SLACK, "T0TEAM:U024BE7LH", "alice")
DETECTION = Actor(Source.PROBE, "detection", "tocsin detection")


def http_result(**changes: Any) -> ProbeResult:
    result = ProbeResult(
        probe_id="shop-home",
        status=ResultStatus.FAIL,
        reason="ttfb_ms 1250 ms (expected below 800)",
        started_at=NOW - timedelta(seconds=30),
        duration=1.31,
        measurements=(
            Measurement("status", 200),
            Measurement("dns_ms", 12.3, "ms"),
            Measurement("connect_ms", 31, "ms"),
            Measurement("tls_ms", 44, "ms"),
            Measurement("ttfb_ms", 1250, "ms", "below 800", False),
            Measurement("total_ms", 1302, "ms"),
        ),
        evidence=(("status", "HTTP/1.1 200 OK"), ("body", "<html><title>Shop</title>")),
    )
    return replace(result, **changes)


def incident(status: Status = Status.OPEN, **changes: Any) -> Incident:
    milestones = {
        Milestone.STARTED: NOW - timedelta(minutes=12),
        Milestone.DETECTED: NOW - timedelta(minutes=11),
        Milestone.DECLARED: NOW - timedelta(minutes=11),
    }
    base = Incident(
        number=7,
        title="Shop home page slow",
        severity=Severity.P1,
        status=status,
        service="shop",
        dedup_key="shop",
        channel="C0123",
        thread_ts="1700000000.000100",
        milestones=milestones,
        closure_reason=None,
    )
    return replace(base, **changes)


def view(**changes: Any) -> CardView:
    base = CardView(
        incident=incident(),
        severity_names=NAMES,
        zone=BERLIN,
        now=NOW,
        evidence=(ProbeEvidence("shop-home", "member", False, http_result()),),
        next_step=NextStep(NOW + timedelta(minutes=15), ("<!subteam^S0614TZR7>",), 2, False),
        remediations=(Remediation("restart-nginx", "Restart nginx on web-1"),),
    )
    return replace(base, **changes)


# -- helpers that read blocks the way Slack does -------------------------------------------


def serialised(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    """Every block through slack_sdk's own validation, which raises on a violated limit."""
    return [block.to_dict() for block in blocks]


def walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def mrkdwn_texts(blocks: Sequence[Block]) -> list[str]:
    return [d["text"] for d in walk(serialised(blocks)) if d.get("type") == "mrkdwn"]


def all_text(blocks: Sequence[Block]) -> str:
    return "\n".join(
        d["text"] for d in walk(serialised(blocks)) if d.get("type") in ("mrkdwn", "plain_text")
    )


def elements(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    actions = [b for b in serialised(blocks) if b.get("block_id") == slack_ids.CARD_ACTIONS_BLOCK]
    return actions[0]["elements"] if actions else []


def assert_within_slack_limits(blocks: Sequence[Block]) -> None:
    """The limits slack_sdk does not check itself, and the ones it does, once more."""
    dicts = serialised(blocks)
    assert 1 <= len(dicts) <= 50
    ids = [d["block_id"] for d in dicts if "block_id" in d]
    assert len(ids) == len(set(ids)), "block ids must be unique in a message"
    for block in dicts:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert "text" not in block or 1 <= len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
    for item in walk(dicts):
        if item.get("type") == "button":
            assert len(item["text"]["text"]) <= 75
            assert len(item.get("value", "")) <= 2000
        if item.get("type") == "static_select":
            assert len(item["options"]) <= 100
            assert all(len(o["text"]["text"]) <= 75 for o in item["options"])
            assert all(len(o["value"]) <= 150 for o in item["options"])


# -- the open card ----------------------------------------------------------------------------


def test_open_card_shows_what_is_wrong_and_who_is_next() -> None:
    blocks = card_blocks(view())
    text = all_text(blocks)
    assert_within_slack_limits(blocks)

    header = serialised(blocks)[0]
    assert header["block_id"] == slack_ids.CARD_HEADER
    assert header["text"]["text"] == "INC-7 · Shop home page slow"
    assert ":large_orange_circle: P1 High" in text
    assert "*Open*" in text
    assert "*Service*\nshop" in text
    assert "*Started*\n19:08 CET" in text
    assert "*Detected*\n19:09 CET" in text
    assert "*Open for*\n12m" in text
    assert ":x: ttfb_ms 1250 ms (expected below 800)" in text
    assert (
        "Phases: dns 12.3 ms · connect 31 ms · tls 44 ms · *ttfb 1250 ms* · total 1302 ms" in text
    )
    assert "*shop-home* fail · member" in text
    assert (
        "```\nstatus: HTTP/1.1 200 OK\nbody: &lt;html&gt;&lt;title&gt;Shop&lt;/title&gt;\n```"
        in text
    )
    assert "*Next:* level 2 → <!subteam^S0614TZR7> at 19:35 CET (in 15m)" in text
    assert "Times in Europe/Berlin" in text


def test_open_card_offers_every_action_naming_the_incident() -> None:
    controls = elements(card_blocks(view()))
    assert [c["action_id"] for c in controls] == list(slack_ids.CARD_ACTIONS)
    buttons = [c for c in controls if c["type"] == "button"]
    assert {b["value"] for b in buttons} == {"INC-7"}
    acknowledge = controls[0]
    assert (acknowledge["text"]["text"], acknowledge["style"]) == ("Acknowledge", "primary")

    severity = controls[1]
    assert [split_select_value(o["value"]) for o in severity["options"]] == [
        ("INC-7", "P0"),
        ("INC-7", "P1"),
        ("INC-7", "P2"),
        ("INC-7", "P3"),
    ]
    assert severity["initial_option"]["value"] == "INC-7|P1"
    assert severity["options"][0]["text"]["text"] == ":red_circle: P0 Critical"

    resolve = next(c for c in controls if c["action_id"] == slack_ids.RESOLVE)
    assert resolve["style"] == "danger"
    assert resolve["confirm"]["title"]["text"] == "Resolve INC-7?"

    remediation = controls[-1]
    assert remediation["options"] == [
        {
            "text": {"type": "plain_text", "text": "restart-nginx: Restart nginx on web-1"},
            "value": "INC-7|restart-nginx",
        }
    ]


def test_remediation_select_is_left_out_when_nothing_is_suggested() -> None:
    controls = elements(card_blocks(view(remediations=())))
    assert slack_ids.PROPOSE_REMEDIATION not in [c["action_id"] for c in controls]


def test_a_command_id_too_long_for_an_option_value_is_left_out() -> None:
    long = Remediation("x" * 200, "too long to select")
    controls = elements(card_blocks(view(remediations=(long, Remediation("ok", "")))))
    assert [o["value"] for o in controls[-1]["options"]] == ["INC-7|ok"]


def test_reminder_step_and_a_step_already_due() -> None:
    step = NextStep(NOW - timedelta(minutes=1), ("<@U024BE7LH>", "@oncall"), 1, True)
    text = all_text(card_blocks(view(next_step=step)))
    assert "*Next:* reminder → <@U024BE7LH> @oncall at 19:19 CET (due now)" in text


def test_acknowledged_card_says_who_and_drops_the_acknowledge_button() -> None:
    acknowledged = incident(Status.ACKNOWLEDGED)
    acknowledged.milestones[Milestone.ACKNOWLEDGED] = NOW - timedelta(minutes=5)
    blocks = card_blocks(view(incident=acknowledged, acknowledged_by=ALICE))
    text = all_text(blocks)
    assert "*Acknowledged*\n19:15 CET by <@U024BE7LH>" in text
    assert ":eyes: *Acknowledged*" in text
    actions = [c["action_id"] for c in elements(blocks)]
    assert slack_ids.ACKNOWLEDGE not in actions
    assert slack_ids.RESOLVE in actions


def test_resolved_card_shows_duration_resolver_and_no_buttons() -> None:
    resolved = incident(Status.RESOLVED)
    resolved.milestones[Milestone.RESOLVED] = NOW - timedelta(minutes=2) + timedelta(hours=1)
    later = NOW + timedelta(hours=2)
    blocks = card_blocks(
        view(
            incident=resolved,
            now=later,
            resolved_by=ALICE,
            resolution="rolled back the release",
            next_step=None,
        )
    )
    text = all_text(blocks)
    assert_within_slack_limits(blocks)
    assert "*Duration*\n1h 10m" in text
    assert ":white_check_mark: *Resolved* after 1h 10m by <@U024BE7LH>:\n>rolled back" in text
    assert elements(blocks) == []
    assert "*Next:*" not in text


def test_resolved_by_detection_names_the_probes_that_recovered() -> None:
    resolved = incident(Status.RESOLVED)
    resolved.milestones[Milestone.RESOLVED] = NOW
    ok = http_result(status=ResultStatus.OK, reason="all expectations met")
    blocks = card_blocks(
        view(
            incident=resolved,
            resolved_by=DETECTION,
            resolution="all probes recovered",
            evidence=(ProbeEvidence("shop-home", "member", True, ok),),
        )
    )
    text = all_text(blocks)
    assert "by recovery of probe shop-home:\n>all probes recovered" in text
    assert ":white_check_mark: *shop-home* recovered · member" in text
    assert "```" not in text, "a recovered probe needs no output excerpt"


def test_closed_card_says_how_it_was_closed() -> None:
    closed = incident(Status.CLOSED, closure_reason=ClosureReason.FALSE_POSITIVE)
    closed.milestones[Milestone.CLOSED] = NOW
    blocks = card_blocks(view(incident=closed))
    text = all_text(blocks)
    assert "*Closed*\n19:20 CET as false positive" in text
    assert ":lock: *Closed* after 12m" in text
    assert elements(blocks) == []


def test_times_on_another_day_carry_the_date() -> None:
    old = incident()
    old.milestones[Milestone.STARTED] = datetime(2026, 11, 21, 22, 5, tzinfo=UTC)
    text = all_text(card_blocks(view(incident=old)))
    assert "*Started*\nSat 21 Nov 23:05 CET" in text
    assert "*Open for*\n1d 20h" in text


def test_probe_without_result_and_symptoms_come_after_members() -> None:
    evidence = (
        ProbeEvidence("shop-db", "symptom", False, None),
        ProbeEvidence("shop-home", "member", False, http_result()),
    )
    blocks = card_blocks(view(evidence=evidence))
    sections = [
        b["text"]["text"]
        for b in serialised(blocks)
        if b.get("block_id", "").startswith(f"{slack_ids.CARD_EVIDENCE}_")
    ]
    assert sections[0].startswith(":x: *shop-home* fail · member")
    assert sections[1] == ":grey_question: *shop-db* no result · symptom\n_No result stored yet._"


def test_secrets_in_probe_output_are_redacted_before_slack() -> None:
    leaky = http_result(evidence=(("body", "db error: password=hunter2 on mysql://app:s3cret@db"),))
    text = all_text(
        card_blocks(view(evidence=(ProbeEvidence("shop-home", "member", False, leaky),)))
    )
    assert "hunter2" not in text
    assert "s3cret" not in text


def test_card_text_is_the_plain_summary() -> None:
    assert card_text(view()) == ":large_orange_circle: P1 INC-7 open: Shop home page slow (shop)"
    hostile = view(incident=incident(title="<!channel> & <@U1>", service=""))
    assert (
        card_text(hostile)
        == ":large_orange_circle: P1 INC-7 open: &lt;!channel&gt; &amp; &lt;@U1&gt;"
    )


# -- hostile and huge input ----------------------------------------------------------------


def adversarial_view(status: Status) -> CardView:
    fence = "```"
    reason = f"<!channel> {fence} " + "x" * 10_000
    result = http_result(
        reason=reason,
        measurements=tuple(
            Measurement(f"m{i}<!here>", i * 1000.5, "ms", "below 1", False) for i in range(40)
        ),
        evidence=tuple((f"out{i}", f"{fence}\n<!channel>\n" + "y" * 10_000) for i in range(5)),
    )
    probes = tuple(
        ProbeEvidence(
            f"probe-{i}-<!everyone>", "member" if i % 3 else "symptom", i % 7 == 0, result
        )
        for i in range(300)
    )
    big = incident(status, title="<!channel> " + "T" * 5000, service="<@U999> " + "s" * 5000)
    big.milestones[Milestone.RESOLVED] = NOW
    return CardView(
        incident=big,
        severity_names={s: "<!here>" + "n" * 500 for s in Severity},
        zone=BERLIN,
        now=NOW,
        evidence=probes,
        next_step=NextStep(NOW, tuple(f"<@U{i:08d}>" for i in range(500)), 9, False),
        acknowledged_by=Actor(Source.CLI, "<!channel>" * 100, ""),
        resolved_by=Actor(Source.SLACK, "T1:<!channel>", "<!channel>"),
        resolution="<!channel> " * 1000,
        remediations=tuple(Remediation(f"cmd-{i}", "<!here> " * 50) for i in range(300)),
    )


@pytest.mark.parametrize("status", list(Status))
def test_hostile_input_stays_within_limits_and_mentions_nobody(status: Status) -> None:
    blocks = card_blocks(adversarial_view(status))
    assert_within_slack_limits(blocks)
    texts = mrkdwn_texts(blocks)
    joined = "\n".join(texts)
    for injected in ("<!channel>", "<!here>", "<!everyone>", "<@U999>"):
        assert injected not in joined
    assert "&lt;!channel&gt;" in joined
    for text in texts:
        assert text.count("```") % 2 == 0, "a code excerpt must not leave a fence open"
    assert "…and 290 more probes" in joined
    assert len(card_text(adversarial_view(status))) <= 3000
    assert "<!channel>" not in card_text(adversarial_view(status))


def test_hostile_card_keeps_only_real_mentions_of_targets() -> None:
    step = NextStep(NOW, ("<!channel|x>", "<@U024BE7LH>", "<https://evil|click>"), 1, False)
    text = all_text(card_blocks(view(next_step=step)))
    assert "<@U024BE7LH>" in text
    assert "&lt;!channel|x&gt;" in text
    assert "&lt;https://evil|click&gt;" in text


# -- text helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(-5, "0s"), (45, "45s"), (720, "12m"), (3900, "1h 05m"), (2 * 86400 + 3 * 3600 + 59, "2d 3h")],
)
def test_durations_read_at_a_glance(seconds: int, shown: str) -> None:
    assert show_duration(timedelta(seconds=seconds)) == shown


def test_times_today_other_days_and_other_years() -> None:
    assert show_time(NOW, BERLIN, NOW) == "19:20 CET"
    assert show_time(NOW - timedelta(days=1), BERLIN, NOW) == "Sun 22 Nov 19:20 CET"
    assert show_time(datetime(2025, 7, 1, 12, 0), BERLIN, NOW) == "Tue 1 Jul 2025 14:00 CEST"


def test_cutting_never_splits_an_entity() -> None:
    assert escape_capped("a&b", 4) == "a…"
    assert cap("ab&lt;", 5) == "ab…"
    assert escape_capped("<!channel>", 100) == "&lt;!channel&gt;"


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        ("<@U024BE7LH>", "<@U024BE7LH>"),
        ("<!subteam^S0614TZR7>", "<!subteam^S0614TZR7>"),
        ("<!subteam^S0614TZR7|@sysadmins>", "<!subteam^S0614TZR7|@sysadmins>"),
        ("@oncall", "@oncall"),
        ("<@U024BE7LH> <!channel>", "&lt;@U024BE7LH&gt; &lt;!channel&gt;"),
    ],
)
def test_only_well_formed_mentions_pass(target: str, shown: str) -> None:
    assert show_target(target) == shown
