"""`/maint`: start, list and end ad-hoc maintenance windows from Slack.

`run_maint` is plain async code, free of Bolt, so the parsing and the wording
are tested directly; the listener only acknowledges and posts the reply.
Starting or ending a window is answered in the channel, because everyone
there should know why a failing probe stays quiet (or pages again); lists,
usage and mistakes are answered to the person alone. The reason is kept as typed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.command_text import leading_words
from bot.maintenance_calendar import ConfiguredCalendar
from bot.mrkdwn import (
    MAX_HEADER,
    MAX_SECTION,
    cap,
    escape,
    escape_capped,
    mention_of,
    pack_lines,
    plain_capped,
    show_actor,
    show_time,
)
from incidents.errors import IncidentError
from incidents.maintenance_book import MAX_REASON, MaintenanceBook, StoredWindow, show_span
from incidents.model import Actor
from probes.durations import parse_duration

USAGE = "\n".join(
    [
        "*Usage*",
        "• `/maint shop-*,shop-db 2h deploying 4.2`: open no incident for matching probes "
        "for 2h (1m to 7d; e.g. 30m, 1h30m)",
        "• `/maint list`: the maintenance windows active now",
        "• `/maint end 3`: end window #3 early",
    ]
)
WINDOW_ID = re.compile(r"^#?(\d{1,9})$")
MAX_SECTIONS = 45  # a message holds 50 blocks; leave room for the header and the hint


@dataclass(frozen=True)
class MaintReply:
    text: str
    blocks: list[Block] | None
    public: bool


async def run_maint(
    text: str,
    actor: Actor,
    book: MaintenanceBook,
    configured: ConfiguredCalendar,
    probe_ids: Sequence[str],
    zone: ZoneInfo,
    now: datetime,
) -> MaintReply:
    """Answer one `/maint` invocation; a person's mistake becomes a private reply, not an error."""
    words = text.split()
    verb = words[0].lower() if words else "list"
    try:
        if verb == "list":
            return await list_windows(book, configured, zone, now)
        if verb == "help":
            return private(USAGE)
        if verb == "end":
            return await end_window(words[1:], actor, book, zone, now)
        return await start_window(text, actor, book, probe_ids, zone, now)
    except IncidentError as error:
        return private(escape(str(error)))


async def start_window(
    text: str,
    actor: Actor,
    book: MaintenanceBook,
    probe_ids: Sequence[str],
    zone: ZoneInfo,
    now: datetime,
) -> MaintReply:
    words, reason = leading_words(text, 2)
    if len(words) < 2 or not reason.strip():
        return private(f"Give the probes, a duration and a reason.\n{USAGE}")
    globs = [glob.lower() for glob in words[0].split(",")]
    try:
        duration = parse_duration(words[1])
    except ValueError as error:
        return private(f"{escape(str(error))}\n{USAGE}")
    window = await book.add(globs, duration, reason, actor)
    lines = [
        f"{show_actor(actor)} started maintenance *#{window.id}* for {show_globs(window.globs)} "
        f"until {show_time(window.ends_at, zone, now)} ({show_span(duration)}): "
        f"{escape_capped(window.reason, MAX_REASON, one_line=True)}",
        "Failing probes it covers open no incident until then; "
        f"`/maint end {window.id}` ends it early.",
    ]
    lines += [
        f":warning: `{glob}` matches no configured probe; check the spelling."
        for glob in unmatched_globs(window.globs, probe_ids)
    ]
    return public("\n".join(lines))


async def end_window(
    args: list[str], actor: Actor, book: MaintenanceBook, zone: ZoneInfo, now: datetime
) -> MaintReply:
    match = WINDOW_ID.match(args[0]) if len(args) == 1 else None
    if match is None:
        return private(
            "Name the window to end, e.g. `/maint end 3`; `/maint list` shows the numbers."
        )
    window = await book.end(int(match.group(1)), actor)
    planned = show_time(window.ends_at, zone, now)
    return public(
        f"{show_actor(actor)} ended maintenance *#{window.id}* for {show_globs(window.globs)} "
        f"(planned until {planned}: {escape_capped(window.reason, MAX_REASON, one_line=True)}). "
        "Failing probes it covered can open incidents again."
    )


async def list_windows(
    book: MaintenanceBook, configured: ConfiguredCalendar, zone: ZoneInfo, now: datetime
) -> MaintReply:
    adhoc = await book.active()
    lines = [show_stored(window, zone, now) for window in adhoc]
    lines += [
        f"*tocsin.yml* {show_globs(window.patterns)} until {show_time(ends, zone, now)}: "
        f"{escape_capped(window.reason, MAX_REASON, one_line=True)}"
        for window, ends in configured.active_at(now)
    ]
    if not lines:
        return private(
            "No maintenance window is active. Start one with `/maint shop-* 1h deploying`."
        )
    return MaintReply(cap("\n".join(lines), MAX_SECTION), list_blocks(lines), public=False)


def list_blocks(lines: list[str]) -> list[Block]:
    """A header, the windows packed into sections, and how to end one early."""
    sections = pack_lines(lines)
    if len(sections) > MAX_SECTIONS:
        sections = [*sections[: MAX_SECTIONS - 1], "… and more; end some to see the rest."]
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=plain_capped("Maintenance windows", MAX_HEADER)))
    ]
    blocks += [SectionBlock(text=MarkdownTextObject(text=section)) for section in sections]
    blocks.append(
        ContextBlock(
            elements=[MarkdownTextObject(text="`/maint end <number>` ends a window early.")]
        )
    )
    return blocks


def show_stored(window: StoredWindow, zone: ZoneInfo, now: datetime) -> str:
    return (
        f"*#{window.id}* {show_globs(window.globs)} until {show_time(window.ends_at, zone, now)}"
        f" ({show_left(window.ends_at - now)} left), by {mention_of(window.created_by)}: "
        f"{escape_capped(window.reason, MAX_REASON, one_line=True)}"
    )


def show_globs(globs: Sequence[str]) -> str:
    """As code, so `*` is not read as bold; globs cannot hold a backtick, reasons can."""
    return ", ".join(f"`{escape(glob)}`" for glob in globs)


def show_left(delta: timedelta) -> str:
    return show_span(timedelta(minutes=max(round(delta.total_seconds() / 60), 1)))


def unmatched_globs(globs: Sequence[str], probe_ids: Sequence[str]) -> list[str]:
    """Globs that cover no configured probe: most likely a typo, and then a silent no-op."""
    return [glob for glob in globs if not any(fnmatchcase(p, glob) for p in probe_ids)]


def private(text: str) -> MaintReply:
    return MaintReply(text, None, public=False)


def public(text: str) -> MaintReply:
    return MaintReply(text, None, public=True)
