"""How tocsin writes Slack mrkdwn: escaped, capped, in the team's time zone.

Titles, reasons, notes and command output come from people and targets. Slack
reads `<!channel>`, `<@U…>` and links out of any mrkdwn text, so every piece
of such text passes through `escape` (or `escape_capped`, `code_block`) here,
and only `mention_of` / `show_target` may put a real mention on a message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from incidents.model import Actor, Severity, Source
from probes.redaction import clean

MAX_SECTION = 3000  # section text, message text
MAX_FIELD = 2000  # one section field
MAX_HEADER = 150  # header block
MAX_LABEL = 75  # button text, option text
ELLIPSIS = "…"

SEVERITY_EMOJI = {
    Severity.P0: ":red_circle:",
    Severity.P1: ":large_orange_circle:",
    Severity.P2: ":large_yellow_circle:",
    Severity.P3: ":large_blue_circle:",
}

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# What a mention may look like; anything else is shown as text. Broadcasts come only
# from the escalation policy in tocsin.yml, never from a title or a probe.
_MENTION = re.compile(
    r"^(<@[UW][A-Z0-9]{2,30}>|<!subteam\^S[A-Z0-9]{2,30}(\|@?[\w.-]{1,80})?>|<!here>|<!channel>)$"
)
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
_ENTITY_TAIL = re.compile(r"&[a-z]{0,3}$")
_BACKTICK_RUN = re.compile(r"`(?=`)")


def escape(text: str) -> str:
    """Slack's three control characters as entities, so text cannot mention or link, and
    backtick runs broken by a zero-width space, so text cannot open or close a code block."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BACKTICK_RUN.sub("`\u200b", escaped)


def cap(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis where something was cut; an entity
    such as `&amp;` is dropped whole rather than cut into `&am`."""
    if len(text) <= limit:
        return text
    if limit < 1:
        return ""
    return _ENTITY_TAIL.sub("", text[: limit - 1]) + ELLIPSIS


def escape_capped(text: str, limit: int, *, one_line: bool = False) -> str:
    """Redacted, escaped, at most `limit` characters."""
    return cap(escape(clean(text, max(limit, 1) * 2 + 16, one_line=one_line)), limit)


def plain_capped(text: str, limit: int) -> str:
    """For plain_text objects (headers, buttons, options): Slack shows them literally."""
    return cap(clean(text, limit * 2 + 16, one_line=True), limit) or "-"


def code_block(text: str, limit: int) -> str:
    """A ``` block of at most `limit` characters that no backtick run can close early."""
    fence_cost = len("```\n\n```")
    if limit <= fence_cost:
        return ""
    body = escape(clean(text, limit * 2 + 16))
    return f"```\n{cap(body, limit - fence_cost)}\n```"


def local(moment: datetime, zone: ZoneInfo) -> datetime:
    """Stored times are UTC; a naive one is read as UTC rather than as local time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone)


def show_time(moment: datetime, zone: ZoneInfo, now: datetime) -> str:
    """`19:02 CET` today, `Mon 23 Nov 19:02 CET` another day (with the year if not this one)."""
    shown, today = local(moment, zone), local(now, zone)
    clock = f"{shown:%H:%M} {shown.tzname() or zone.key}"
    if shown.date() == today.date():
        return clock
    year = f" {shown.year}" if shown.year != today.year else ""
    day = f"{_DAYS[shown.weekday()]} {shown.day} {_MONTHS[shown.month - 1]}{year}"
    return f"{day} {clock}"


def show_duration(delta: timedelta) -> str:
    """`45s`, `12m`, `1h 05m`, `2d 3h`: precise enough for a glance, never negative."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours == 0:
        return f"{minutes}m"
    if days == 0:
        return f"{hours}h {minutes % 60:02d}m"
    return f"{days}d {hours % 24}h"


def show_actor(actor: Actor) -> str:
    """A Slack user as a mention (Slack shows their current name), anyone else by name."""
    if actor.source is Source.SLACK:
        user = actor.id.rpartition(":")[2]
        if _USER_ID.match(user):
            return f"<@{user}>"
    name = escape_capped(actor.name or actor.id, 80, one_line=True)
    return f"{name} ({actor.source.value})"


def mention_of(user: str) -> str:
    """`T0:U024` or `U024` as a user mention; anything else as text."""
    bare = user.rpartition(":")[2]
    return f"<@{bare}>" if _USER_ID.match(bare) else escape_capped(user, 80, one_line=True)


def show_target(target: str) -> str:
    """An escalation target already formatted for Slack, kept only if it is a real mention."""
    return target if _MENTION.match(target) else escape_capped(target, 80, one_line=True)


def show_targets(targets: Iterable[str]) -> str:
    return " ".join(show_target(target) for target in targets) or "nobody"


def severity_label(severity: Severity, name: str) -> str:
    """`:red_circle: P0 Critical`: emoji first, so a glance at the channel is enough."""
    suffix = f" {escape_capped(name, 40, one_line=True)}" if name else ""
    return f"{SEVERITY_EMOJI[severity]} {severity.value}{suffix}"


def pack_lines(lines: Iterable[str], limit: int = MAX_SECTION) -> list[str]:
    """Lines joined into as few texts of at most `limit` characters as possible."""
    texts: list[str] = []
    current = ""
    for line in lines:
        line = cap(line, limit)
        if current and len(current) + 1 + len(line) > limit:
            texts.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        texts.append(current)
    return texts
