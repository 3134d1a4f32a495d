"""What people may write into an incident: titles, notes and reasons, and times they give.

Slack's inputs, the CLI and detection all use these limits, so a title accepted
in one place is accepted everywhere (Slack's modals show the same maximum).
"""

from __future__ import annotations

from datetime import datetime

from incidents.errors import IncidentError

MAX_TITLE = 200
MAX_NOTE = 3000


def checked_text(what: str, text: str, limit: int) -> str:
    """`text` stripped, or an error naming `what` when it is empty or too long."""
    clean = text.strip()
    if not clean:
        raise IncidentError(f"the {what} is empty; write a few words")
    if len(clean) > limit:
        raise IncidentError(f"the {what} is {len(clean)} characters; keep it under {limit}")
    return clean


def not_in_future(moment: datetime, now: datetime) -> datetime:
    """A time someone says something happened: it must carry a zone and be past."""
    if moment.tzinfo is None:
        raise IncidentError(f"{moment.isoformat()} has no time zone; give one, e.g. +00:00")
    if moment > now:
        raise IncidentError(f"{moment.isoformat()} is in the future")
    return moment
