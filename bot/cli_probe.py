"""`tocsin probe`: run probes once, now, and show what they see; `--history` shows the past."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from bot.cli_options import config_path
from bot.config import ConfigError, load_config
from bot.config.problems import ConfigProblem, known_list
from bot.main import open_tocsin
from bot.probe_plan import PlannedProbe, plan_probes, probe_context
from bot.scheduler import Limits, release
from bot.terminal_probes import render_history, render_results
from incidents.clock import SystemClock
from incidents.heartbeats import HeartbeatBook
from incidents.probe_journal import ProbeJournal
from probes.probe import run_probe
from probes.result import ProbeResult, Status

EXIT_OK, EXIT_FAILING = 0, 1
ONE_OFF_WAIT = 3600.0  # a one-off run waits for its turn under the caps as long as it takes


def add_probe_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    probe = commands.add_parser(
        "probe", parents=[common], help="run probes once and show their results"
    )
    probe.add_argument("ids", nargs="*", metavar="ID", help="probes to run (default: all)")
    probe.add_argument("--json", action="store_true", help="print results as JSON")
    probe.add_argument(
        "--history", metavar="ID", help="show recent results and state changes of one probe"
    )
    probe.add_argument("--limit", type=int, default=20, help="history rows (default 20)")
    probe.set_defaults(handler=run_probe_command)


def run_probe_command(args: argparse.Namespace, console: Console) -> int:
    loaded = load_config(config_path(args))
    config = loaded.config
    known = {p.id for p in config.probes}
    wanted = [args.history] if args.history else list(args.ids)
    unknown = [probe_id for probe_id in wanted if probe_id not in known]
    if unknown:
        raise ConfigError(
            [
                ConfigProblem((), f"no probe '{u}' in {loaded.path}; {known_list(known)}")
                for u in unknown
            ]
        )
    if args.history:
        return asyncio.run(_history(loaded, args.history, args.limit, console, args.json))
    results = asyncio.run(_run_once(loaded, wanted or None, console, quiet=args.json))
    if args.json:
        console.print_json(json.dumps([_document(kind, r) for kind, r in results]))
    else:
        render_results(console, results)
    return EXIT_OK if all(r.status is Status.OK for _, r in results) else EXIT_FAILING


async def _run_once(
    loaded: Any, only: list[str] | None, console: Console, *, quiet: bool
) -> list[tuple[str, ProbeResult]]:
    async with open_tocsin(loaded) as tocsin:
        heartbeats = HeartbeatBook(tocsin.database, SystemClock())
        await heartbeats.load()
        context = probe_context(loaded.config, heartbeats, os.environ)
        planned = plan_probes(loaded.config, context, only)
        try:
            with Progress(
                TextColumn("probing"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console,
                transient=True,
                disable=quiet,
            ) as progress:
                task = progress.add_task("probes", total=len(planned))

                limits = Limits(loaded.config.scheduler)

                async def one(item: PlannedProbe) -> tuple[str, ProbeResult]:
                    # The same caps as `tocsin run`: no host sees more sessions than it allows.
                    kind, host = item.settings.kind, item.probe.target_host
                    held = await limits.acquire(kind, host, ONE_OFF_WAIT)
                    try:
                        result = await run_probe(item.probe, item.timeout)
                    finally:
                        release(held)
                    progress.advance(task)
                    return item.settings.kind, result

                return list(await asyncio.gather(*(one(item) for item in planned)))
        finally:
            for item in planned:
                await item.probe.close()


async def _history(loaded: Any, probe_id: str, limit: int, console: Console, as_json: bool) -> int:
    async with open_tocsin(loaded) as tocsin:
        history = await ProbeJournal(tocsin.database).history(probe_id, limit)
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "samples": [_document("", s) for s in history.samples],
                    "changes": [
                        {"at": c.at.isoformat(), "from": c.old, "to": c.new, "reason": c.reason}
                        for c in history.changes
                    ],
                }
            )
        )
    else:
        render_history(console, probe_id, history, loaded.config.zone)
    return EXIT_OK


def _document(kind: str, result: ProbeResult) -> dict[str, Any]:
    document: dict[str, Any] = {
        "probe": result.probe_id,
        "status": result.status.value,
        "reason": result.reason,
        "started_at": result.started_at.isoformat(),
        "duration_ms": round(result.duration * 1000, 1),
        "measurements": [
            {"name": m.name, "value": m.value, "unit": m.unit, "expected": m.expected, "met": m.met}
            for m in result.measurements
        ],
        "evidence": dict(result.evidence),
    }
    if kind:
        document["kind"] = kind
    return document
