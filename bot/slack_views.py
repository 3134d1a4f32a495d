"""Modals and the ephemeral answers of slash commands: lists, details, previews, help, errors.

Like the card, each function is pure and stays inside Slack's limits (50 blocks
in a message, 3000 characters in a section) whatever it is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.card_evidence import evidence_text, status_heading
from bot.mrkdwn import (
    MAX_FIELD,
    MAX_HEADER,
    MAX_LABEL,
    MAX_SECTION,
    SEVERITY_EMOJI,
    cap,
    escape_capped,
    pack_lines,
    plain_capped,
    severity_label,
    show_actor,
    show_duration,
    show_targets,
    show_time,
)
from bot.slack_ids import (
    DECLARE_MODAL,
    NOTE_BLOCK,
    NOTE_INPUT,
    NOTE_MODAL,
    SERVICE_BLOCK,
    SERVICE_INPUT,
    SEVERITY_BLOCK,
    SEVERITY_INPUT,
    TITLE_BLOCK,
    TITLE_INPUT,
)
from bot.thread_replies import show_moment
from incidents.incident_text import MAX_NOTE, MAX_TITLE
from incidents.model import Incident, Milestone, Severity, TimelineEvent
from probes.result import ProbeResult

MAX_BLOCKS = 50
MAX_SERVICE = 100
TIMELINE_LINES = 15


@dataclass(frozen=True)
class PreviewStep:
    """One step the policy would deliver: when (after opening), which level and round, whom."""

    after: timedelta
    level: int
    round: int
    targets: tuple[str, ...]
    quiet: str  # what quiet hours would do to this step; empty when nothing


def note_modal(incident_id: str) -> View:
    """The `Add note` modal; the incident id travels in `private_metadata`."""
    return View(
        type="modal",
        callback_id=NOTE_MODAL,
        private_metadata=incident_id,
        title=PlainTextObject(text="Add a note"),
        submit=PlainTextObject(text="Add note"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            InputBlock(
                block_id=NOTE_BLOCK,
                label=PlainTextObject(text=plain_capped(f"Note for {incident_id}", MAX_LABEL)),
                element=PlainTextInputElement(
                    action_id=NOTE_INPUT, multiline=True, max_length=MAX_NOTE
                ),
            )
        ],
    )


def declare_modal(severities: Mapping[Severity, str], default: Severity = Severity.P2) -> View:
    """`/incident declare`: a title, a severity (preselected) and an optional service."""
    options = [
        Option(
            value=severity.value,
            text=PlainTextObject(
                text=plain_capped(
                    f"{SEVERITY_EMOJI[severity]} {severity.value} {severities.get(severity, '')}",
                    MAX_LABEL,
                ),
                emoji=True,
            ),
        )
        for severity in Severity
    ]
    return View(
        type="modal",
        callback_id=DECLARE_MODAL,
        title=PlainTextObject(text="Declare an incident"),
        submit=PlainTextObject(text="Declare"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            InputBlock(
                block_id=TITLE_BLOCK,
                label=PlainTextObject(text="Title"),
                hint=PlainTextObject(text="What is broken, as its users see it."),
                element=PlainTextInputElement(action_id=TITLE_INPUT, max_length=MAX_TITLE),
            ),
            InputBlock(
                block_id=SEVERITY_BLOCK,
                label=PlainTextObject(text="Severity"),
                element=StaticSelectElement(
                    action_id=SEVERITY_INPUT,
                    options=options,
                    initial_option=options[list(Severity).index(default)],
                ),
            ),
            InputBlock(
                block_id=SERVICE_BLOCK,
                label=PlainTextObject(text="Service"),
                optional=True,
                element=PlainTextInputElement(action_id=SERVICE_INPUT, max_length=MAX_SERVICE),
            ),
        ],
    )


def incident_list_blocks(
    incidents: Sequence[Incident], zone: ZoneInfo, now: datetime
) -> list[Block]:
    """`/incident list`: one line per active incident, most severe first."""
    if not incidents:
        return [SectionBlock(text=MarkdownTextObject(text="No active incidents."))]
    ordered = sorted(incidents, key=lambda i: (i.severity.rank, i.number))
    heading = SectionBlock(
        text=MarkdownTextObject(text=f"*Active incidents* ({len(incidents)})"),
    )
    shown = ordered[: MAX_BLOCKS - 2]
    blocks: list[Block] = [heading]
    blocks.extend(
        SectionBlock(text=MarkdownTextObject(text=summary_line(i, zone, now))) for i in shown
    )
    if len(ordered) > len(shown):
        more = f"…and {len(ordered) - len(shown)} more; `/incident show INC-n` shows one."
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=more)]))
    return blocks


def summary_line(incident: Incident, zone: ZoneInfo, now: datetime) -> str:
    """`:red_circle: *INC-7* P0 · open · title · shop · since 19:02 CET (12m)`."""
    parts = [
        f"{SEVERITY_EMOJI[incident.severity]} *{incident.id}* {incident.severity.value}",
        incident.status.value,
        escape_capped(incident.title, 300, one_line=True),
    ]
    if incident.service:
        parts.append(escape_capped(incident.service, 100, one_line=True))
    started = incident.milestones.get(Milestone.STARTED) or incident.milestones.get(
        Milestone.DECLARED
    )
    if started is not None:
        parts.append(f"since {show_time(started, zone, now)} ({show_duration(now - started)})")
    return cap(" · ".join(parts), MAX_SECTION)


def incident_detail_blocks(
    incident: Incident, timeline: Sequence[TimelineEvent], zone: ZoneInfo, now: datetime
) -> list[Block]:
    """`/incident show INC-n`: the key fields, then the last lines of the timeline."""
    fields = [f"*Status*\n{incident.status.value}"]
    fields.append(f"*Service*\n{escape_capped(incident.service, 500, one_line=True) or '-'}")
    for milestone in Milestone:
        moment = incident.milestones.get(milestone)
        if moment is not None and len(fields) < 9:
            fields.append(f"*{milestone.value.capitalize()}*\n{show_time(moment, zone, now)}")
    if incident.closure_reason is not None and len(fields) < 10:
        fields.append(f"*Closed as*\n{incident.closure_reason.value.replace('_', ' ')}")
    blocks: list[Block] = [
        HeaderBlock(
            text=PlainTextObject(
                text=plain_capped(f"{incident.id} · {incident.title}", MAX_HEADER), emoji=True
            )
        ),
        SectionBlock(
            text=MarkdownTextObject(text=severity_label(incident.severity, "")),
            fields=[MarkdownTextObject(text=cap(field, MAX_FIELD)) for field in fields[:10]],
        ),
    ]
    if incident.participants:
        people = ", ".join(show_actor(actor) for actor in incident.participants[:20])
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=cap(f"Participants: {people}", 2000))])
        )
    recent = list(timeline)[-TIMELINE_LINES:]
    title = f"*Timeline* (last {len(recent)} of {len(timeline)})" if timeline else "*Timeline*"
    lines = [title, *(timeline_line(event, zone, now) for event in recent)]
    texts = pack_lines(lines)[: MAX_BLOCKS - len(blocks)]
    blocks.extend(SectionBlock(text=MarkdownTextObject(text=text)) for text in texts)
    return blocks


def timeline_line(event: TimelineEvent, zone: ZoneInfo, now: datetime) -> str:
    """`19:05 CET <@U1> *acknowledged* open → acknowledged: text`, on one line, no mentions
    of escalation targets (those are paged in the thread, not here)."""
    what = escape_capped(event.kind.replace("_", " "), 60, one_line=True)
    change = ""
    if event.field == "started":
        change = f" {show_moment(event.old, zone, now)} → {show_moment(event.new, zone, now)}"
    elif event.new:
        old = f"{event.old} → " if event.old else ""
        change = " " + escape_capped(f"{old}{event.new}", 300, one_line=True)
    text = escape_capped(event.text, 300, one_line=True)
    text = f": {text}" if text else ""
    return f"`{show_time(event.at, zone, now)}` {show_actor(event.actor)} *{what}*{change}{text}"


def escalation_preview_blocks(
    severity: Severity, severity_name: str, steps: Sequence[PreviewStep]
) -> list[Block]:
    """`/incident escalation preview P1`: who would be notified when, quiet hours included."""
    heading = f"*Escalation preview* for {severity_label(severity, severity_name)}"
    if not steps:
        lines = [heading, f"No escalation policy for {severity.value}: nobody is paged."]
    else:
        lines = [heading, *(preview_line(step) for step in steps)]
    texts = pack_lines(lines)[:MAX_BLOCKS]
    return [SectionBlock(text=MarkdownTextObject(text=text)) for text in texts]


def preview_line(step: PreviewStep) -> str:
    when = "at once" if step.after <= timedelta(0) else f"after {show_duration(step.after)}"
    targets = show_targets(step.targets[:30])
    if len(step.targets) > 30:
        targets += f" and {len(step.targets) - 30} more"
    quiet = f" · :zzz: {escape_capped(step.quiet, 300, one_line=True)}" if step.quiet else ""
    return f"`{when}` level {step.level}, round {step.round} → {targets}{quiet}"


def probe_result_blocks(result: ProbeResult, zone: ZoneInfo) -> list[Block]:
    """`/probe <id>` run now: status, reason, measurements against thresholds, output."""
    heading = status_heading(result.probe_id, result)
    text = evidence_text(heading, result, zone, result.started_at)
    return [SectionBlock(text=MarkdownTextObject(text=text))]


def help_blocks(entries: Sequence[tuple[str, str]]) -> list[Block]:
    """Usage and description of each command, e.g. (`/incident list`, `Active incidents.`)."""
    lines = ["*tocsin commands*"]
    for usage, description in entries:
        shown = escape_capped(usage.replace("`", "'"), 200, one_line=True)
        lines.append(f"`{shown}` {escape_capped(description, 500, one_line=True)}")
    texts = pack_lines(lines)[:MAX_BLOCKS]
    return [SectionBlock(text=MarkdownTextObject(text=text)) for text in texts]


def error_text(message: str, reference: str | None = None) -> str:
    """`⚠️ message` for errors people can fix; with a reference for errors they cannot."""
    parts = [escape_capped(message, 2000)] if message.strip() else []
    if reference is not None:
        ref = escape_capped(reference.replace("`", ""), 100, one_line=True)
        parts.append(
            f"Something went wrong on our side; reference `{ref}`. The error is in tocsin's log."
        )
    return cap("⚠️ " + (" ".join(parts) or "Something went wrong."), MAX_SECTION)
