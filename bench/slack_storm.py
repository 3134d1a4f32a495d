"""Storm: 500 HTTP probes in 20 services fail within 10 s; what reaches Slack, and how.

A real nginx (the test harness's) serves one flag file per service; 500 http probes
(interval 2 s, fail_after 2, labels {service: svc-00..svc-19}) watch them. tocsin runs in a
child process (`tocsin run`) with SLACK_API_URL at the Slack fake in this process, whose
per-channel rate limit is on (1 post/s, bursts of 3; more is answered 429). Storm grouping is
the default (group_by service) with group_wait 10s; a P2 policy pages @oncall at once.
The flag files are removed service by service over --spread seconds.

Run 1 (clean) lets tocsin deliver everything. Run 2 (crash) holds back Slack's answers to
posts once --crash-after cards are in the channel, SIGKILLs tocsin while those posts are
unconfirmed, starts it again on the same database and lets it drain. Each run compares the
outbox table with the channel: every owed key in exactly one posted message's metadata.

    .venv/bin/python bench/slack_storm.py
    .venv/bin/python bench/slack_storm.py --part crash --channels 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

from slack_bench_setup import (
    DeliveryCheck,
    RecordingFake,
    TocsinChild,
    delivery_check,
    print_table,
    query,
    slack_environ,
    wait_drained,
)

from tests.servers.nginx import NginxServer, running_nginx
from tests.servers.ports import free_port

Figures = list[tuple[str, str, str]]


def write_config(tmp: Path, port: int, nginx: NginxServer, args: argparse.Namespace) -> Path:
    services = [f"svc-{n:02d}" for n in range(args.services)]
    routes = ", ".join(f"{s}: '#storm-{n % args.channels}'" for n, s in enumerate(services))
    lines = [
        "slack: {channel: '#ops-incidents'"
        + (f", service_channels: {{{routes}}}}}" if args.channels > 1 else "}"),
        f"storage: {{path: {tmp / 'tocsin.db'}}}",
        f"listener: {{port: {port}}}",
        "scheduler: {max_concurrent: 512}",
        "detection: {group_by: service, group_wait: 10s}",
        "escalation: {P2: {levels: [{notify: ['@oncall'], after: 0s}]}}",
        "probes:",
    ]
    for n in range(args.probes):
        service = services[n % args.services]
        lines.append(
            f"  - {{id: {service}-p{n:03d}, kind: http, url: '{nginx.url(f'flags/{service}')}',"
            f" interval: {args.interval}s, timeout: 1s, fail_after: 2, recover_after: 2,"
            f" severity: P2, labels: {{service: {service}}}}}"
        )
    path = tmp / "tocsin.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def all_probes_ok(child: TocsinChild, probes: int, timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = await child.health()
        if health["runs"] >= 2 * probes and not health["firing"] and not health["error"]:
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"probes not all ok after {timeout:.0f}s:\n{child.log_tail()}")


async def break_services(flags: Path, services: int, spread: float) -> None:
    for n in range(services):
        (flags / f"svc-{n:02d}").unlink()
        await asyncio.sleep(spread / max(1, services - 1))


def closest_posts(fake: RecordingFake) -> float:
    """The shortest time between two posts to one channel, as the fake received them."""
    by_channel: defaultdict[str, list[float]] = defaultdict(list)
    for post in fake.posted:
        by_channel[post.channel].append(post.at)
    gaps = [b - a for times in by_channel.values() for a, b in pairwise(sorted(times))]
    return min(gaps, default=0.0)


def peak_per_channel(fake: RecordingFake, window: float) -> int:
    """Most posts any one channel received within `window` seconds."""
    by_channel: defaultdict[str, list[float]] = defaultdict(list)
    for post in fake.posted:
        by_channel[post.channel].append(post.at)
    best = 0
    for times in by_channel.values():
        times.sort()
        first = 0
        for last, at in enumerate(times):
            while times[first] <= at - window:
                first += 1
            best = max(best, last - first + 1)
    return best


def card_figures(db: Path, fake: RecordingFake, services: int) -> Figures:
    service_of = {
        f"INC-{row['number']}": row["service"]
        for row in query(db, "SELECT number, service FROM incidents")
    }
    cards = Counter(
        service_of.get(message["metadata"]["event_payload"]["incident"], "?")
        for message in fake.bot_messages()
        if "thread_ts" not in message
    )
    opened = Counter(service_of.values())
    return [
        ("incidents opened", str(len(service_of)), f"target {services} (one per service)"),
        ("max incidents per service", str(max(opened.values(), default=0)), "target 1"),
        ("services with a card", str(len(cards)), f"target {services}"),
        ("max cards per service", str(max(cards.values(), default=0)), "target 1"),
    ]


def post_figures(fake: RecordingFake, health: dict[str, Any], crash: bool) -> Figures:
    posts = len(fake.posted)
    replies = sum(1 for post in fake.posted if not post.top_level)
    return [
        ("posts (cards + thread replies)", f"{posts}", f"{posts - replies} + {replies}"),
        ("card edits (chat.update)", str(sum(fake.edits.values())), ""),
        ("chat.postMessage calls", str(len(fake.calls_to("chat.postMessage"))), ""),
        ("closest posts to one channel", f"{closest_posts(fake):.2f} s", "target about 1 s"),
        ("peak posts/channel, any 10 s", str(peak_per_channel(fake, 10.0)), "target <= 10"),
        ("429s answered by the fake", str(fake.rate_limited), "target 0"),
        ("tocsin /healthz slack" + " (restarted)" * crash, "", json.dumps(health["slack"])),
    ]


def once_figures(check: DeliveryCheck) -> Figures:
    return [
        ("owed posts (outbox keys)", str(check.owed), ""),
        ("delivered exactly once", str(check.delivered_once), f"target {check.owed}"),
        ("duplicates (key in >1 message)", str(check.duplicates), "target 0"),
        ("undelivered (pending/sending)", str(check.undelivered), "target 0"),
        ("recorded sent, not in channel", str(check.sent_not_found), "target 0"),
        ("failed", str(check.failed), "target 0"),
        ("keys unknown to the outbox", str(check.stray), "target 0"),
        ("recorded ts differs from message", str(check.wrong_ts), "target 0"),
        ("failed rows, card edits included", str(len(check.failed_any)), "target 0"),
    ]


def _since(start: float, at: float | None) -> str:
    return "not within the timeout" if at is None else f"{at - start:.1f} s"


async def storm_setup(
    args: argparse.Namespace, nginx: NginxServer, tmp: Path
) -> tuple[RecordingFake, Path, TocsinChild]:
    """The Slack fake with the storm's channels and people, every service up (its flag
    file under the returned folder), and tocsin ready to start with its database in `tmp`."""
    fake = RecordingFake()
    await fake.start()
    fake.rate_limit_per_channel = 1.0
    fake.add_user("U0ONCALL", "oncall-person")
    fake.add_usergroup("S0ONCALL", "oncall", ["U0ONCALL"])
    for n in range(args.channels):
        fake.add_channel(f"C0STORM{n:02d}", f"storm-{n}")
    flags = nginx.root / "flags"
    flags.mkdir(exist_ok=True)
    for n in range(args.services):
        (flags / f"svc-{n:02d}").write_text("up\n")
    port = free_port()
    config = write_config(tmp, port, nginx, args)
    child = TocsinChild(config, port, slack_environ(fake), tmp / "tocsin.log")
    return fake, flags, child


async def storm(args: argparse.Namespace, nginx: NginxServer, tmp: Path, crash: bool) -> None:
    fake, flags, child = await storm_setup(args, nginx, tmp)
    db = tmp / "tocsin.db"
    extra: Figures = []
    try:
        await child.start()
        await all_probes_ok(child, args.probes, args.timeout)
        began = time.monotonic()
        breaking = asyncio.create_task(break_services(flags, args.services, args.spread))
        if crash:
            extra = await crash_and_restart(args, fake, child, db)
        await breaking

        def all_threads() -> bool:
            rows = query(db, "SELECT COUNT(thread_ts) AS n FROM incidents")
            return bool(rows[0]["n"] >= args.services)

        drained = await wait_drained(db, ready=all_threads, quiet=5, timeout=args.timeout)
        health = await child.health()
    finally:
        child.stop()
        await fake.stop()
    cards = [post.at for post in fake.posted if post.top_level]
    check = delivery_check(db, fake)
    title = "Storm, with a SIGKILL and restart" if crash else "Storm"
    print_table(
        f"{title}: {args.probes} probes in {args.services} services fail within "
        f"{args.spread:.0f} s; {args.channels} channel(s), fake rate limit 1 post/s/channel",
        [
            *card_figures(db, fake, args.services),
            *post_figures(fake, health, crash),
            *once_figures(check),
            *extra,
            ("first failure -> first card", _since(began, min(cards, default=None)), ""),
            ("first failure -> last card", _since(began, max(cards, default=None)), ""),
            ("first failure -> outbox empty", _since(began, drained), ""),
        ],
    )
    for failure in check.failed_any:
        print(f"  failed: {failure}")


async def crash_and_restart(
    args: argparse.Namespace, fake: RecordingFake, child: TocsinChild, db: Path
) -> Figures:
    """Hold post answers once enough cards are posted, SIGKILL tocsin, start it again."""
    await wait_until(
        lambda: sum(post.top_level for post in fake.posted) >= args.crash_after,
        args.timeout,
        f"{args.crash_after} cards",
    )
    before = await child.health()
    fake.holding = True
    await wait_until(lambda: bool(fake.held), 30, "a post in flight")
    await asyncio.sleep(1.0)  # let other channels' posts get stuck as well
    child.kill()
    killed_at = time.monotonic()
    fake.holding = False
    fake.release.set()
    cards_before = sum(post.top_level for post in fake.posted)
    held = {
        key
        for ts in fake.held
        for message in fake.bot_messages()
        if message["ts"] == ts
        for key in message["metadata"]["event_payload"]["keys"]
    }
    unconfirmed = {
        row["key"] for row in query(db, "SELECT key FROM outbox WHERE state = 'sending'")
    }
    lookups_before = _lookups(fake)
    await child.start()
    # Where each unconfirmed key ended up: a post from before the kill, or a new one.
    await wait_until(lambda: not _still_sending(db, unconfirmed), args.timeout, "the restart")
    posted_at = {post.ts: post.at for post in fake.posted}
    carried = {
        key: posted_at.get(message["ts"], 0.0)
        for message in fake.bot_messages()
        for key in message["metadata"]["event_payload"]["keys"]
    }
    found = sum(1 for key in unconfirmed if key in carried and carried[key] < killed_at)
    return [
        ("cards posted before the SIGKILL", str(cards_before), f"--crash-after {args.crash_after}"),
        ("posts with answers held at the kill", str(len(fake.held)), f"carrying {len(held)} keys"),
        ("unconfirmed outbox rows at the kill", str(len(unconfirmed)), ""),
        ("found in the channel after restart", str(found), f"target {len(held)} (not reposted)"),
        ("channel look-ups after restart", str(_lookups(fake) - lookups_before), ""),
        ("/healthz slack before the kill", "", json.dumps(before.get("slack", {}))),
    ]


def _lookups(fake: RecordingFake) -> int:
    return len(fake.calls_to("conversations.history")) + len(fake.calls_to("conversations.replies"))


def _still_sending(db: Path, keys: set[str]) -> bool:
    rows = query(db, "SELECT key FROM outbox WHERE state IN ('pending', 'sending')")
    return any(row["key"] in keys for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--part", choices=("clean", "crash", "both"), default="both", help="runs")
    parser.add_argument("--probes", type=int, default=500, help="http probes")
    parser.add_argument("--services", type=int, default=20, help="service labels (groups)")
    parser.add_argument("--interval", type=int, default=2, help="probe interval, seconds")
    parser.add_argument("--spread", type=float, default=8.0, help="seconds to break all")
    parser.add_argument("--channels", type=int, default=1, help="channels the services use")
    parser.add_argument("--crash-after", type=int, default=10, help="cards before the SIGKILL")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait per step")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tocsin-storm-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "nginx").mkdir()
        with running_nginx(tmp / "nginx") as nginx:
            for crash in (False, True):
                if args.part in ("both", "crash" if crash else "clean"):
                    run_dir = tmp / ("crash" if crash else "clean")
                    run_dir.mkdir()
                    asyncio.run(storm(args, nginx, run_dir, crash))


if __name__ == "__main__":
    main()
