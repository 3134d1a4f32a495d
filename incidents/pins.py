"""Messages people pinned into an incident's timeline, each at most once.

The timeline event keeps the message's own time and author, so a postmortem
reads the thread's story in the order it happened; who pinned it is kept in
the event's `new` field.
"""

from __future__ import annotations

from datetime import datetime

from incidents.clock import Clock
from incidents.database import encode_time
from incidents.incident_text import MAX_NOTE
from incidents.model import Actor, TimelineEvent
from incidents.store import IncidentRecords, IncidentStore


class PinBoard:
    def __init__(self, store: IncidentStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def pin(
        self,
        number: int,
        channel: str,
        message_ts: str,
        author: Actor,
        at: datetime,
        text: str,
        pinned_by: Actor,
    ) -> bool:
        """Add the message to the timeline; False when it was pinned before."""
        now = self._clock.now()

        def work(records: IncidentRecords) -> bool:
            records.get(number)
            cursor = records.db.execute(
                "INSERT OR IGNORE INTO pinned_messages (channel, message_ts, incident_number, "
                "pinned_at) VALUES (?, ?, ?, ?)",
                [channel, message_ts, number, encode_time(now)],
            )
            if cursor.rowcount != 1:
                return False
            records.append(
                TimelineEvent(number, at, author, "pinned", text=text[:MAX_NOTE], new=pinned_by.id)
            )
            return True

        return await self._store.write(work)
