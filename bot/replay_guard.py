"""HTTP mode's front door: Slack's signature, a five-minute window, and no replays.

Slack signs each request; a signature within the five-minute window would be
accepted again if someone captured and re-sent the request. Each accepted
signature is remembered for the window (in memory for speed, and written to
SQLite in the background so that a restart inside the window still refuses
it), and a request carrying one seen before is refused before Bolt sees it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections import OrderedDict

import sqlite_utils

from incidents.database import Database, write_transaction

log = logging.getLogger(__name__)

WINDOW_SECONDS = 300


class ReplayGuard:
    def __init__(self, signing_secret: str, database: Database | None = None) -> None:
        if not signing_secret:  # an empty key would accept anyone's signature
            raise ValueError("HTTP mode needs SLACK_SIGNING_SECRET")
        self._secret = signing_secret.encode()
        self._database = database
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._unsaved: list[tuple[str, float]] = []
        self.refused = 0

    async def load(self) -> None:
        """Remember the signatures accepted within the window before a restart."""
        if self._database is None:
            return
        horizon = time.time() - WINDOW_SECONDS

        def work(db: sqlite_utils.Database) -> list[tuple[str, float]]:
            rows = db.execute(
                "SELECT signature, seen_at FROM seen_requests WHERE seen_at > ?", [str(horizon)]
            ).fetchall()
            return [(row[0], float(row[1])) for row in rows]

        for signature, at in sorted(await self._database.run(work), key=lambda r: r[1]):
            self._seen[signature] = at

    def check(self, body: bytes, timestamp: str, signature: str) -> str:
        """Why the request is refused, or "" when it may go on (and is now remembered)."""
        now = time.time()
        try:
            age = abs(now - int(timestamp))
        except ValueError:
            return "missing or malformed timestamp"
        if age > WINDOW_SECONDS:
            return "timestamp outside the five-minute window"
        if not self._signed(body, timestamp, signature):
            return "bad signature"
        self._forget_before(now - WINDOW_SECONDS)
        if signature in self._seen:
            return "replayed request"
        self._seen[signature] = now
        self._unsaved.append((signature, now))
        return ""

    def _signed(self, body: bytes, timestamp: str, signature: str) -> bool:
        """Slack's v0 signature over the exact bytes received.

        slack_sdk's verifier decodes the body as UTF-8 first and raises on bytes that are
        not, which anyone could send; the signature is over bytes, so it is checked on bytes.
        """
        signed = b"v0:" + timestamp.encode() + b":" + body
        expected = "v0=" + hmac.new(self._secret, signed, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode(), signature.encode(errors="replace"))

    def first_time(self, key: str) -> bool:
        """Whether `key` (e.g. an Events API `event_id`) is new within the window; now it is seen.

        Slack re-sends an event it thinks went unanswered with a fresh signature, so the
        signature alone cannot tell the retry of an event already handled.
        """
        if key in self._seen:
            return False
        now = time.time()
        self._seen[key] = now
        self._unsaved.append((key, now))
        return True

    async def save(self) -> None:
        """Write remembered signatures and drop expired ones (called by a ticker)."""
        if self._database is None:
            self._unsaved.clear()
            return
        batch, self._unsaved = self._unsaved, []
        horizon = time.time() - WINDOW_SECONDS

        def work(db: sqlite_utils.Database) -> None:
            with write_transaction(db):
                db.conn.executemany(
                    "INSERT OR IGNORE INTO seen_requests (signature, seen_at) VALUES (?, ?)",
                    [(signature, str(at)) for signature, at in batch],
                )
                db.execute("DELETE FROM seen_requests WHERE seen_at < ?", [str(horizon)])

        await self._database.run(work)

    def _forget_before(self, horizon: float) -> None:
        while self._seen:
            signature, at = next(iter(self._seen.items()))
            if at >= horizon:
                return
            del self._seen[signature]
