"""The `tocsin` command line: check, schema, run, and incident commands.

Exit codes: 0 done, 1 refused (unknown incident, illegal transition, store
problem), 2 invalid configuration or usage, or a database directory other users
may write to.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from bot.cli_incidents import add_incident_commands
from bot.cli_options import common_options, config_path
from bot.cli_probe import add_probe_command
from bot.config import ConfigError, load_config
from bot.config.json_schema import config_schema
from bot.config.loader import LoadedConfig
from bot.main import open_tocsin
from bot.runtime import running_engine
from bot.slack_connection import missing_slack_settings, slack_credentials
from bot.terminal import render_check, render_incident_table
from commands.errors import CommandError
from incidents.clock import SystemClock
from incidents.errors import IncidentError, UnsafeDirectoryError
from incidents.model import ACTIVE_STATUSES
from probes.durations import parse_duration
from probes.errors import ProbeConfigError

Handler = Callable[[argparse.Namespace, Console], int]

EXIT_OK, EXIT_REFUSED, EXIT_INVALID = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="tocsin", description="ChatOps incident bot for Slack.", parents=[common]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check", parents=[common], help="validate a configuration file and summarise it"
    )
    check.add_argument("file", nargs="?", type=Path, help="file to check (default: -c)")
    check.set_defaults(handler=run_check)

    schema = commands.add_parser("schema", help="print the JSON Schema of tocsin.yml")
    schema.set_defaults(handler=run_schema)

    run = commands.add_parser("run", parents=[common], help="start tocsin")
    run.add_argument(
        "--for",
        dest="duration",
        type=duration_argument,
        default=None,
        metavar="DURATION",
        help="stop after this long (e.g. 30s); default: until SIGTERM or Ctrl-C",
    )
    run.set_defaults(handler=run_main_job)

    add_probe_command(commands, common)
    add_incident_commands(commands, common)
    return parser


def duration_argument(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(soft_wrap=True)
    errors = Console(stderr=True, soft_wrap=True)
    handler: Handler = args.handler
    try:
        return handler(args, console)
    except ConfigError as error:
        errors.print(f"[red]{config_path(args)}: invalid configuration[/red]", highlight=False)
        for line in error.lines():
            errors.print(f"  {line}", markup=False, highlight=False)
        return EXIT_INVALID
    except UnsafeDirectoryError as error:  # a set-up to fix before anything runs
        errors.print(f"error: {error}", markup=False, highlight=False)
        return EXIT_INVALID
    except (IncidentError, CommandError, ProbeConfigError) as error:
        errors.print(f"error: {error}", markup=False, highlight=False)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130


def run_check(args: argparse.Namespace, console: Console) -> int:
    render_check(console, load_config(config_path(args)))
    return EXIT_OK


def run_schema(args: argparse.Namespace, console: Console) -> int:
    sys.stdout.write(json.dumps(config_schema(), indent=2) + "\n")
    return EXIT_OK


def run_main_job(args: argparse.Namespace, console: Console) -> int:
    """Check the file, open the store, then probe and detect until SIGTERM or Ctrl-C.

    Incidents open in the store and are logged; Slack delivery joins this job
    with the Slack adapter.
    """
    loaded = load_config(config_path(args))
    render_check(console, loaded)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # APScheduler logs every job run at INFO: one line per probe slot and per second.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    duration = None if args.duration is None else args.duration.total_seconds()
    asyncio.run(serve(loaded, console, duration))
    return EXIT_OK


async def serve(loaded: LoadedConfig, console: Console, duration: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with open_tocsin(loaded) as tocsin:
        active = await tocsin.incidents.list_incidents(ACTIVE_STATUSES)
        console.print(f"Store {tocsin.database.path} is ready.")
        render_incident_table(console, active, loaded.config.zone)
        credentials = slack_credentials(os.environ)
        if credentials is None:
            console.print("Slack is not connected; Slack messages wait in the outbox. Set:")
            for line in missing_slack_settings(os.environ):
                console.print(f"  - {line}", markup=False, highlight=False)
        async with running_engine(tocsin, SystemClock(), os.environ, slack=credentials) as engine:
            gc.freeze()  # what start-up built lives as long as the process: shorter collections
            mode = f"Slack in {credentials.mode.value} mode; " if credentials else ""
            console.print(
                f"{mode}probing {len(engine.planned)} probes; heartbeats at "
                f"{engine.listener_url}/heartbeat/<probe-id>. Stop with Ctrl-C or SIGTERM."
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
        console.print(
            "Stopped: in-flight probes finished, results saved, Slack messages sent or queued."
        )


if __name__ == "__main__":
    raise SystemExit(main())
