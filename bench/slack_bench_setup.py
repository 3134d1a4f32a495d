"""Shared parts of the Slack benchmarks: a recording Slack fake, a tocsin child process,
the outbox read back from SQLite, and the printed table.

tocsin always runs as a child process (`python -m bot.cli run`, i.e. `tocsin run`) with
SLACK_API_URL aimed at the fake, which runs in the benchmark's own event loop; the fake's
answers therefore share that loop with the load generator, not with tocsin.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiohttp import web

from tests.slack_fake import BOT_TOKEN, Call, SlackFake
from tests.slack_requests import SIGNING_SECRET

ROOT = Path(__file__).resolve().parent.parent
Row = dict[str, Any]


@dataclass(frozen=True)
class Posted:
    """One chat.postMessage that created a message, as the fake saw it."""

    channel: str
    ts: str
    at: float  # time.monotonic() in this process
    top_level: bool


class RecordingFake(SlackFake):
    """The Slack fake, also noting when each post landed; can hold back post answers.

    While `holding` is set, a successful chat.postMessage is performed at once but its
    answer waits until `release` is set: the client never learns the post's ts, as after
    a timeout or a crash between the post and its record.
    """

    def __init__(self) -> None:
        super().__init__()
        self.posted: list[Posted] = []
        self.holding = False
        self.held: list[str] = []  # ts of the posts whose answers were held back
        self.release = asyncio.Event()

    def _chat_post_message(self, call: Call) -> dict[str, Any]:
        answer = super()._chat_post_message(call)
        top = not call.args.get("thread_ts")
        self.posted.append(Posted(answer["channel"], answer["ts"], time.monotonic(), top))
        return answer

    async def _serve_api(self, request: web.Request) -> web.StreamResponse:
        response = await super()._serve_api(request)
        if (
            self.holding
            and request.match_info["method"] == "chat.postMessage"
            and isinstance(response, web.Response)
            and isinstance(response.body, bytes)
            and json.loads(response.body).get("ok")
        ):
            self.held.append(json.loads(response.body)["ts"])
            await self.release.wait()
        return response

    def bot_messages(self) -> list[Row]:
        return [m for m in self.messages.values() if m.get("bot_id") and "metadata" in m]


def slack_environ(fake: SlackFake) -> dict[str, str]:
    """HTTP mode: a bot token, a signing secret, and the Web API at the fake."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    environ.update(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake.api_url,
        }
    )
    return environ


@dataclass
class TocsinChild:
    """`tocsin run -c CONFIG --for SECONDS` in its own process, logging to a file."""

    config: Path
    port: int
    environ: dict[str, str]
    log_path: Path
    seconds: int = 900
    process: subprocess.Popen[bytes] | None = None
    _log: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> subprocess.Popen[bytes]:
        self._log = self.log_path.open("ab")
        argv = [sys.executable, "-m", "bot.cli", "run", "-c", str(self.config)]
        return subprocess.Popen(
            [*argv, "--for", f"{self.seconds}s"],
            cwd=ROOT,
            env=self.environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    async def start(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Start tocsin and wait until its listener answers /healthz."""
        self.process = self.launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"tocsin exited early:\n{self.log_tail()}")
            try:
                await self.health()
                return
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.1)
        raise SystemExit(f"tocsin did not answer /healthz:\n{self.log_tail()}")

    async def health(self) -> Row:
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{self.url}/healthz") as answer,
        ):
            body: Row = await answer.json()
            return body

    def cpu_seconds(self) -> float:
        """utime + stime of the child so far, from /proc."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a crash or the OOM killer."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._close_log()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._close_log()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def query(db: Path, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    """Rows from tocsin's SQLite file, read-only, while tocsin may be writing it."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(sql, params)]


def unsent(db: Path) -> int:
    """Outbox rows still owed to Slack (pending, or sending and not yet confirmed)."""
    rows = query(db, "SELECT COUNT(*) AS n FROM outbox WHERE state IN ('pending', 'sending')")
    return int(rows[0]["n"])


@dataclass(frozen=True)
class DeliveryCheck:
    owed: int  # outbox rows that are posts (cards' first post, replies, DMs), not skipped
    delivered_once: int
    duplicates: int  # keys found in more than one posted message
    sent_not_found: int  # recorded sent, but in no message's metadata
    undelivered: int  # still pending or sending
    failed: int
    stray: int  # keys in messages that the outbox does not know
    wrong_ts: int  # recorded ts differs from the message carrying the key
    failed_any: list[str]  # every failed row, card edits included: "key: error"


def delivery_check(db: Path, fake: SlackFake) -> DeliveryCheck:
    """Compare the outbox with what the channel holds: every owed post exactly once.

    A card row is a post the first time (no thread yet) and an edit afterwards: only the
    first card row of each incident, and every reply and DM row, must be in a message;
    rows the sender skipped (events that make no reply) owe nothing.
    """
    rows = query(db, "SELECT id, incident_number, kind, key, state, ts, error FROM outbox")
    first_card: dict[int, int] = {}
    for row in rows:
        if row["kind"] == "card":
            first_card.setdefault(row["incident_number"], row["id"])
    owed = [
        r
        for r in rows
        if r["state"] != "skipped"
        and (r["kind"] != "card" or first_card[r["incident_number"]] == r["id"])
    ]
    carried: Counter[str] = Counter()
    ts_of: dict[str, str] = {}
    for message in fake.messages.values():
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        for key in payload.get("keys", []):
            carried[key] += 1
            ts_of[key] = message["ts"]
    known = {r["key"] for r in rows}
    sent = [r for r in owed if r["state"] == "sent"]
    return DeliveryCheck(
        owed=len(owed),
        delivered_once=sum(1 for r in owed if carried[r["key"]] == 1),
        duplicates=sum(1 for count in carried.values() if count > 1),
        sent_not_found=sum(1 for r in sent if carried[r["key"]] == 0),
        undelivered=sum(1 for r in owed if r["state"] in ("pending", "sending")),
        failed=sum(1 for r in owed if r["state"] == "failed"),
        stray=sum(1 for key in carried if key not in known),
        wrong_ts=sum(1 for r in sent if r["key"] in ts_of and ts_of[r["key"]] != r["ts"]),
        failed_any=[f"{r['key']}: {r['error']}" for r in rows if r["state"] == "failed"],
    )


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[min(len(ordered), int(rank)) - 1]


def print_table(title: str, rows: Sequence[tuple[str, str, str]]) -> None:
    """Three columns: figure, measured value, target (blank when there is none)."""
    width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    print(f"\n{title}")
    print("-" * len(title))
    for name, value, target in rows:
        line = f"  {name:<{width}}  {value:>{value_width}}"
        print(f"{line}  {target}".rstrip())


async def wait_drained(
    db: Path,
    *,
    ready: Callable[[], bool] = lambda: True,
    quiet: float = 3.0,
    timeout: float = 180.0,  # noqa: ASYNC109 - a poll of a file another process writes
) -> float | None:
    """When the outbox last became empty (monotonic), once `ready()` holds and the outbox
    has stayed empty for `quiet` seconds; None if that did not happen within `timeout`."""
    deadline = time.monotonic() + timeout
    empty_since: float | None = None
    while time.monotonic() < deadline:
        now = time.monotonic()
        if ready() and unsent(db) == 0:
            empty_since = empty_since or now
            if now - empty_since >= quiet:
                return empty_since
        else:
            empty_since = None
        await asyncio.sleep(0.1)
    return None
