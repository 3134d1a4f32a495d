"""The thread under an incident card: one reply per timeline event, and escalation DMs.

The card already shows how an incident began, so `opened` and `declared` get
no reply. Escalation steps are the only replies that mention anyone: their
targets go through the caller's `mention`, everything else is escaped text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.mrkdwn import (
    MAX_SECTION,
    SEVERITY_EMOJI,
    cap,
    escape_capped,
    mention_of,
    show_actor,
    show_target,
    show_time,
)
from incidents.model import Incident, Severity, TimelineEvent, format_incident_id

Mention = Callable[[str], str]

SHOWN_ON_CARD = frozenset({"opened", "declared"})
MAX_TEXT = 2500  # free text in a reply, leaving room for who, what and the mentions
MAX_TARGETS = 50

# Actions people (or detection on their behalf) take: "<emoji> <words> by <actor>: <text>".
ACTIONS = {
    "acknowledged": (":eyes:", "Acknowledged"),
    "mitigated": (":adhesive_bandage:", "Mitigated"),
    "resolved": (":white_check_mark:", "Resolved"),
    "reopened": (":rotating_light:", "Reopened"),
    "closed": (":lock:", "Closed"),
    "remediation_proposed": (":wrench:", "Remediation proposed"),
    "escalate_requested": (":mega:", "Escalation requested"),
}

# What detection and the escalation ticker report: their text names the probe and why.
REPORTS = {
    "joined": (":heavy_plus_sign:", "Joined the incident"),
    "symptom": (":link:", "Symptom"),
    "recovered": (":large_green_circle:", "Recovered"),
    "symptom_recovered": (":large_green_circle:", "Symptom recovered"),
    "flapping": (":ocean:", "Flapping"),
    "suppressed": (":construction:", "Suppressed by a maintenance window"),
    "escalation_skipped": (":zzz:", "Escalation skipped"),
    "unacknowledged": (":sos:", "Unacknowledged"),
}


def reply_text(event: TimelineEvent, zone: ZoneInfo, mention: Mention) -> str | None:
    """The reply for `event`, or None when the card already says it."""
    if event.kind in SHOWN_ON_CARD:
        return None
    if event.kind in ACTIONS:
        emoji, words = ACTIONS[event.kind]
        text = f"{emoji} {words} by {show_actor(event.actor)}{suffix(event.text)}"
    elif event.kind in REPORTS:
        emoji, words = REPORTS[event.kind]
        text = f"{emoji} *{words}*{suffix(event.text)}"
    elif event.kind in ("escalated", "reminder"):
        text = escalation_text(event, mention)
    elif event.kind == "severity_changed":
        text = severity_text(event)
    elif event.kind == "started_edited":
        text = started_text(event, zone)
    elif event.kind == "note":
        text = f":memo: Note from {show_actor(event.actor)}:\n{quoted(event.text)}"
    elif event.kind == "pinned":
        pinner = f"{mention_of(event.new)} pinned" if event.new else "Pinned"
        excerpt = escape_capped(event.text, 100, one_line=True)
        text = f":pushpin: {pinner} a message from {show_actor(event.actor)} to the timeline"
        text += f": “{excerpt}”" if excerpt else "."
    else:
        text = generic_text(event)
    return cap(text, MAX_SECTION)


def dm_text(incident: Incident, step_text: str, permalink: str | None) -> str:
    """What each paged user receives directly: what is wrong, why them, where to go."""
    title = escape_capped(incident.title, MAX_TEXT, one_line=True)
    head = f"{SEVERITY_EMOJI[incident.severity]} *{incident.severity.value} {incident.id}*"
    service = (
        f" ({escape_capped(incident.service, 200, one_line=True)})" if incident.service else ""
    )
    step = escape_capped(step_text, 200, one_line=True) or "escalation"
    text = f"{head}: {title}{service}\nYou are paged ({step})."
    if permalink and is_link(permalink):
        text += f" <{permalink}|Open the incident thread>"
    return cap(text, MAX_SECTION)


def escalation_text(event: TimelineEvent, mention: Mention) -> str:
    """`Paging <@U1> <!subteam^S1> (level 2 of 3, round 1)`; reminders while acknowledged."""
    targets = (event.new or "").split()
    shown = [show_target(mention(target)) for target in targets[:MAX_TARGETS]]
    if len(targets) > MAX_TARGETS:
        shown.append(f"and {len(targets) - MAX_TARGETS} more")
    who = " ".join(shown) or "nobody (no targets)"
    step = f" ({escape_capped(event.text, 500, one_line=True)})" if event.text.strip() else ""
    if event.kind == "reminder":
        incident = format_incident_id(event.incident_number)
        return f":alarm_clock: {who}: {incident} is still not resolved{step}"
    return f":rotating_light: Paging {who}{step}"


def severity_text(event: TimelineEvent) -> str:
    """`Severity P2 → P1 by <@U1>: reason`, with an arrow saying up or down."""
    old, new = event.old or "?", event.new or "?"
    arrow = ":arrow_right:"
    if old in Severity.__members__ and new in Severity.__members__:
        up = Severity(new).rank < Severity(old).rank
        arrow = ":arrow_up:" if up else ":arrow_down:"
    change = escape_capped(f"{old} → {new}", 40, one_line=True)
    return f"{arrow} Severity {change} by {show_actor(event.actor)}{suffix(event.text)}"


def started_text(event: TimelineEvent, zone: ZoneInfo) -> str:
    old, new = show_moment(event.old, zone, event.at), show_moment(event.new, zone, event.at)
    return f":pencil2: Start time changed by {show_actor(event.actor)}: {old} → {new}"


def generic_text(event: TimelineEvent) -> str:
    """Any kind this module does not know yet: still readable, never silent."""
    kind = escape_capped(event.kind.replace("_", " "), 60, one_line=True) or "event"
    change = ""
    if event.field:
        old, new = event.old or "∅", event.new or "∅"
        change = " " + escape_capped(f"({event.field}: {old} → {new})", 300, one_line=True)
    return f":information_source: {kind.capitalize()} by {show_actor(event.actor)}{change}" + (
        suffix(event.text)
    )


def show_moment(iso: str | None, zone: ZoneInfo, now: datetime) -> str:
    """An ISO time from the timeline in the team's zone; unparseable text shown as is."""
    if not iso:
        return "unknown"
    try:
        return show_time(datetime.fromisoformat(iso), zone, now)
    except ValueError:
        return escape_capped(iso, 60, one_line=True)


def suffix(text: str) -> str:
    shown = escape_capped(text, MAX_TEXT, one_line=True)
    return f": {shown}" if shown else ""


def quoted(text: str) -> str:
    """Every line as a Slack quote, so a multi-line note keeps its shape."""
    body = escape_capped(text, MAX_TEXT) or "(empty)"
    return "\n".join(f">{line}" for line in body.splitlines())


def is_link(url: str) -> bool:
    """Only a plain https URL may become a link; anything else could bend the `<…|…>` syntax."""
    return url.startswith("https://") and not any(c in url for c in "<>| \n\t")
