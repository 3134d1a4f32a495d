"""Outage: Slack down for a minute in the middle of a storm; does the outbox drain?

The storm of slack_storm.py (500 http probes in 20 services fail within --spread seconds,
tocsin as a child process, the Slack fake's per-channel rate limit on). Once --outage-after
cards are in the channel, the fake answers every Web API call 503 for --outage seconds:
posts, edits and the searches for unconfirmed posts all fail. Halfway through, every other
service recovers, so incidents queue resolutions and card updates behind posts whose outcome
tocsin does not know. Then Slack is back. Figures: what was owed when it came back, how long
until the outbox was empty, and the channel compared with the outbox (every owed post
exactly once, none failed).

    .venv/bin/python bench/slack_outage.py
    .venv/bin/python bench/slack_outage.py --outage 60 --channels 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from slack_bench_setup import (
    delivery_check,
    print_table,
    query,
    unsent,
    wait_drained,
)
from slack_storm import (
    all_probes_ok,
    break_services,
    card_figures,
    once_figures,
    storm_setup,
    wait_until,
)

from tests.servers.nginx import NginxServer, running_nginx


async def outage(args: argparse.Namespace, nginx: NginxServer, tmp: Path) -> None:
    fake, flags, child = await storm_setup(args, nginx, tmp)
    db = tmp / "tocsin.db"
    try:
        await child.start()
        await all_probes_ok(child, args.probes, args.timeout)
        breaking = asyncio.create_task(break_services(flags, args.services, args.spread))
        await wait_until(
            lambda: sum(post.top_level for post in fake.posted) >= args.outage_after,
            args.timeout,
            f"{args.outage_after} cards",
        )
        fake.unavailable = True
        down = time.monotonic()
        await breaking
        await asyncio.sleep(args.outage / 2 - (time.monotonic() - down))
        for n in range(0, args.services, 2):
            (flags / f"svc-{n:02d}").write_text("up\n")
        await asyncio.sleep(args.outage - (time.monotonic() - down))
        fake.unavailable = False
        back = time.monotonic()
        owed_when_back = unsent(db)

        def all_threads() -> bool:
            rows = query(db, "SELECT COUNT(thread_ts) AS n FROM incidents")
            return bool(rows[0]["n"] >= args.services)

        drained = await wait_drained(db, ready=all_threads, quiet=5, timeout=args.timeout)
        health = await child.health()
    finally:
        child.stop()
        await fake.stop()
    check = delivery_check(db, fake)
    resolved = query(db, "SELECT COUNT(*) AS n FROM incidents WHERE status = 'resolved'")[0]["n"]
    refused = sum(1 for call in fake.calls if down <= call.at < back)
    print_table(
        f"Storm with Slack down for {args.outage:.0f} s after {args.outage_after} cards: "
        f"{args.probes} probes in {args.services} services, {args.channels} channel(s)",
        [
            *card_figures(db, fake, args.services),
            ("incidents resolved by the end", str(resolved), "every other service healed"),
            ("rows owed when Slack came back", str(owed_when_back), ""),
            (
                "Slack back -> outbox empty",
                "not within the timeout" if drained is None else f"{drained - back:.1f} s",
                f"bounded (--timeout {args.timeout:.0f} s)",
            ),
            ("calls answered 503 during the outage", str(refused), ""),
            *once_figures(check),
            ("tocsin /healthz slack", "", json.dumps(health["slack"])),
        ],
    )
    for failure in check.failed_any:
        print(f"  failed: {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--probes", type=int, default=500, help="http probes")
    parser.add_argument("--services", type=int, default=20, help="service labels (groups)")
    parser.add_argument("--interval", type=int, default=2, help="probe interval, seconds")
    parser.add_argument("--spread", type=float, default=8.0, help="seconds to break all")
    parser.add_argument("--channels", type=int, default=1, help="channels the services use")
    parser.add_argument("--outage-after", type=int, default=3, help="cards before the outage")
    parser.add_argument("--outage", type=float, default=60.0, help="seconds Slack is down")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait per step")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tocsin-outage-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "nginx").mkdir()
        with running_nginx(tmp / "nginx") as nginx:
            asyncio.run(outage(args, nginx, tmp))


if __name__ == "__main__":
    main()
