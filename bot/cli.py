"""The `tocsin` command line: check, schema, run, and incident commands.

Exit codes: 0 done, 1 refused (unknown incident, illegal transition, store
problem), 2 invalid configuration or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from bot.cli_incidents import add_incident_commands
from bot.cli_options import common_options, config_path
from bot.config import ConfigError, TocsinConfig, load_config
from bot.main import open_tocsin
from bot.terminal import render_check, render_incident_table
from commands.errors import CommandError
from incidents.errors import IncidentError
from incidents.model import ACTIVE_STATUSES
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
    run.set_defaults(handler=run_main_job)

    add_incident_commands(commands, common)
    return parser


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
    except (IncidentError, CommandError, ProbeConfigError) as error:
        errors.print(f"error: {error}", markup=False, highlight=False)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130


def run_check(args: argparse.Namespace, console: Console) -> int:
    render_check(console, load_config(config_path(args)))
    return EXIT_OK


def run_schema(args: argparse.Namespace, console: Console) -> int:
    schema = TocsinConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tocsin.yml"
    sys.stdout.write(json.dumps(schema, indent=2) + "\n")
    return EXIT_OK


def run_main_job(args: argparse.Namespace, console: Console) -> int:
    """Validate, open (and migrate) the store, and report what is active.

    Probing, Slack and escalation join this job as they land; until then it
    is the start-up check an operator runs before going live.
    """
    loaded = load_config(config_path(args))
    render_check(console, loaded)

    async def report() -> None:
        async with open_tocsin(loaded) as tocsin:
            active = await tocsin.incidents.list_incidents(ACTIVE_STATUSES)
            console.print(f"Store {tocsin.database.path} is ready.")
            render_incident_table(console, active, loaded.config.zone)

    asyncio.run(report())
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
