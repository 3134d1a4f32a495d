"""The incident card: one Slack message per incident, edited in place on every change.

Pure functions from a `CardView` (the incident plus what the bot knows around
it) to Block Kit. Whatever the input, the result stays inside Slack's limits
and no title, reason or output can mention anyone: text is escaped by
`bot.mrkdwn`, and only escalation targets become mentions.

Severity colours: P0 :red_circle:, P1 :large_orange_circle:, P2
:large_yellow_circle:, P3 :large_blue_circle: (`bot.mrkdwn.SEVERITY_EMOJI`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.card_actions import Remediation, actions_block
from bot.card_evidence import evidence_text, status_heading
from bot.mrkdwn import (
    MAX_FIELD,
    MAX_HEADER,
    MAX_SECTION,
    SEVERITY_EMOJI,
    cap,
    escape_capped,
    plain_capped,
    severity_label,
    show_actor,
    show_duration,
    show_targets,
    show_time,
)
from bot.slack_ids import CARD_EVIDENCE, CARD_FIELDS, CARD_HEADER
from incidents.model import Actor, Incident, Milestone, Severity, Source, Status
from probes.result import ProbeResult

__all__ = [
    "CardView",
    "NextStep",
    "ProbeEvidence",
    "Remediation",
    "card_blocks",
    "card_text",
]

# Block ids of the card's other parts (candidates for bot/slack_ids.py).
CARD_NEXT = "card_next"
CARD_RESOLUTION = "card_resolution"
CARD_MORE = "card_more"
CARD_FOOTER = "card_footer"

MAX_PROBES_SHOWN = 10  # a card is read at a glance; `/incident show` has the rest
EVIDENCE_BUDGET = 9000  # characters of evidence on one card, shared by the probes shown
MAX_TARGETS_SHOWN = 20

STATUS_EMOJI = {
    Status.OPEN: ":rotating_light:",
    Status.ACKNOWLEDGED: ":eyes:",
    Status.MITIGATED: ":adhesive_bandage:",
    Status.RESOLVED: ":white_check_mark:",
    Status.CLOSED: ":lock:",
}


@dataclass(frozen=True)
class ProbeEvidence:
    """A probe of the incident: `member` (its failure is the incident) or `symptom`."""

    probe_id: str
    role: str
    recovered: bool
    result: ProbeResult | None


@dataclass(frozen=True)
class NextStep:
    """The next pending escalation step; targets are already Slack mentions or plain text."""

    due_at: datetime
    targets: tuple[str, ...]
    level: int
    reminder: bool


@dataclass(frozen=True)
class CardView:
    """Everything the card shows; `now` makes durations and "today" deterministic."""

    incident: Incident
    severity_names: Mapping[Severity, str]
    zone: ZoneInfo
    now: datetime
    evidence: Sequence[ProbeEvidence] = ()
    next_step: NextStep | None = None
    acknowledged_by: Actor | None = None
    resolved_by: Actor | None = None
    resolution: str = ""
    remediations: Sequence[Remediation] = ()


def card_blocks(view: CardView) -> list[Block]:
    """The card, at most 20 blocks: header, fields, next step or resolution, evidence, buttons."""
    incident = view.incident
    blocks: list[Block] = [
        HeaderBlock(
            block_id=CARD_HEADER,
            text=PlainTextObject(
                text=plain_capped(f"{incident.id} · {incident.title}", MAX_HEADER), emoji=True
            ),
        ),
        fields_block(view),
    ]
    if incident.status.is_active and view.next_step is not None:
        blocks.append(next_step_block(view.next_step, view.zone, view.now))
    if incident.status in (Status.RESOLVED, Status.CLOSED):
        blocks.append(resolution_block(view))
    blocks.extend(evidence_blocks(view))
    if incident.status.is_active:
        blocks.append(
            actions_block(
                incident.id,
                incident.status,
                incident.severity,
                view.severity_names,
                view.remediations,
            )
        )
    zone_name = view.zone.key
    updated = show_time(view.now, view.zone, view.now)
    blocks.append(
        ContextBlock(
            block_id=CARD_FOOTER,
            elements=[MarkdownTextObject(text=f"Times in {zone_name} · updated {updated}")],
        )
    )
    return blocks


def card_text(view: CardView) -> str:
    """The notification and screen-reader text: `:red_circle: P0 INC-7 open: title (shop)`."""
    incident = view.incident
    service = (
        f" ({escape_capped(incident.service, 200, one_line=True)})" if incident.service else ""
    )
    head = f"{SEVERITY_EMOJI[incident.severity]} {incident.severity.value} {incident.id} "
    head += f"{incident.status.value}: "
    room = MAX_SECTION - len(head) - len(service)
    return cap(head + escape_capped(incident.title, room, one_line=True) + service, MAX_SECTION)


def fields_block(view: CardView) -> SectionBlock:
    incident, zone, now = view.incident, view.zone, view.now
    milestones = incident.milestones
    name = view.severity_names.get(incident.severity, "")
    status = f"{STATUS_EMOJI[incident.status]} *{incident.status.value.capitalize()}*"
    fields = [f"*Service*\n{escape_capped(incident.service, 500, one_line=True) or '-'}"]
    for milestone, label in (
        (Milestone.STARTED, "Started"),
        (Milestone.DETECTED, "Detected"),
        (Milestone.ACKNOWLEDGED, "Acknowledged"),
        (Milestone.MITIGATED, "Mitigated"),
        (Milestone.RESOLVED, "Resolved"),
        (Milestone.CLOSED, "Closed"),
    ):
        moment = milestones.get(milestone)
        if moment is None:
            continue
        shown = show_time(moment, zone, now)
        if milestone is Milestone.ACKNOWLEDGED and view.acknowledged_by is not None:
            shown += f" by {show_actor(view.acknowledged_by)}"
        if milestone is Milestone.CLOSED and incident.closure_reason is not None:
            shown += f" as {incident.closure_reason.value.replace('_', ' ')}"
        fields.append(f"*{label}*\n{shown}")
    fields.append(duration_field(incident, now))
    return SectionBlock(
        block_id=CARD_FIELDS,
        text=MarkdownTextObject(text=f"{severity_label(incident.severity, name)} · {status}"),
        fields=[MarkdownTextObject(text=cap(field, MAX_FIELD)) for field in fields[:10]],
    )


def duration_field(incident: Incident, now: datetime) -> str:
    """`Open for 12m` while active; `Duration` (resolved - started) once it is over."""
    milestones = incident.milestones
    start = (
        milestones.get(Milestone.STARTED)
        or milestones.get(Milestone.DETECTED)
        or milestones.get(Milestone.DECLARED)
    )
    if start is None:
        return "*Duration*\n-"
    if incident.status.is_active:
        return f"*Open for*\n{show_duration(now - start)}"
    end = milestones.get(Milestone.RESOLVED) or milestones.get(Milestone.CLOSED) or now
    return f"*Duration*\n{show_duration(end - start)}"


def next_step_block(step: NextStep, zone: ZoneInfo, now: datetime) -> SectionBlock:
    """`Next: level 2 → <!subteam^S1> at 19:17 CET (in 15m)`."""
    shown = list(step.targets[:MAX_TARGETS_SHOWN])
    targets = show_targets(shown)
    if len(step.targets) > len(shown):
        targets += f" and {len(step.targets) - len(shown)} more"
    when = show_time(step.due_at, zone, now)
    left = step.due_at - now
    due = f"in {show_duration(left)}" if left.total_seconds() >= 60 else "due now"
    what = "reminder" if step.reminder else f"level {step.level}"
    emoji = ":alarm_clock:" if step.reminder else ":bell:"
    return SectionBlock(
        block_id=CARD_NEXT,
        text=MarkdownTextObject(
            text=cap(f"{emoji} *Next:* {what} → {targets} at {when} ({due})", MAX_SECTION)
        ),
    )


def resolution_block(view: CardView) -> SectionBlock:
    """How long it lasted, who or which recovery resolved it, and why."""
    incident = view.incident
    duration = duration_field(incident, view.now).partition("\n")[2]
    closed = incident.status is Status.CLOSED and Milestone.RESOLVED not in incident.milestones
    words = "Closed" if closed else "Resolved"
    text = f"{STATUS_EMOJI[incident.status]} *{words}* after {duration}"
    if view.resolved_by is not None:
        text += f" by {resolver(view.resolved_by, view.evidence)}"
    if view.resolution:
        text += f":\n>{escape_capped(view.resolution, 2000, one_line=True)}"
    return SectionBlock(block_id=CARD_RESOLUTION, text=MarkdownTextObject(text=text))


def resolver(actor: Actor, evidence: Sequence[ProbeEvidence]) -> str:
    """A person by mention; detection as the recovery of the probes that recovered."""
    if actor.source not in (Source.PROBE, Source.SYSTEM):
        return show_actor(actor)
    recovered = [e.probe_id for e in evidence if e.recovered and e.role == "member"]
    recovered = recovered or [e.probe_id for e in evidence if e.recovered]
    if not recovered:
        return show_actor(actor)
    names = ", ".join(recovered[:10])
    if len(recovered) > 10:
        names += f" and {len(recovered) - 10} more"
    plural = "s" if len(recovered) > 1 else ""
    return f"recovery of probe{plural} {escape_capped(names, 1000, one_line=True)}"


def evidence_blocks(view: CardView) -> list[Block]:
    """Failing members first, then symptoms, then recovered probes; the rest counted."""
    if not view.evidence:
        return []
    ordered = sorted(view.evidence, key=lambda e: (e.recovered, e.role != "member"))
    shown, hidden = ordered[:MAX_PROBES_SHOWN], ordered[MAX_PROBES_SHOWN:]
    failing = sum(not e.recovered for e in view.evidence)
    probes = f"{len(view.evidence)} probe{'s' if len(view.evidence) > 1 else ''}"
    summary = f"*Evidence* · {probes}, {failing} failing"
    blocks: list[Block] = [
        DividerBlock(),
        ContextBlock(block_id=CARD_EVIDENCE, elements=[MarkdownTextObject(text=summary)]),
    ]
    limit = min(MAX_SECTION, EVIDENCE_BUDGET // len(shown))
    for index, item in enumerate(shown):
        heading = status_heading(item.probe_id, item.result, recovered=item.recovered)
        heading += f" · {escape_capped(item.role, 40, one_line=True)}"
        text = evidence_text(
            heading, item.result, view.zone, view.now, limit, excerpt=not item.recovered
        )
        blocks.append(
            SectionBlock(block_id=f"{CARD_EVIDENCE}_{index}", text=MarkdownTextObject(text=text))
        )
    if hidden:
        listed = ", ".join(e.probe_id for e in hidden[:30]) + (", …" if len(hidden) > 30 else "")
        names = escape_capped(listed, 1500, one_line=True)
        blocks.append(
            ContextBlock(
                block_id=CARD_MORE,
                elements=[MarkdownTextObject(text=f"…and {len(hidden)} more probes: {names}")],
            )
        )
    return blocks
