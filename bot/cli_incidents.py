"""`tocsin incidents ...`: list, show and drive incidents from a terminal.

Every change is made as the local user (source `cli`) through the incident
service, so it lands in the timeline exactly as a Slack action would.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from rich.console import Console

from bot.cli_options import config_path
from bot.config import LoadedConfig, load_config
from bot.main import open_tocsin
from bot.terminal import render_incident, render_incident_table
from incidents.documents import event_document, incident_document
from incidents.model import (
    ACTIVE_STATUSES,
    Actor,
    ClosureReason,
    Incident,
    Severity,
    Source,
    Status,
    TimelineEvent,
)
from incidents.service import IncidentService

T = TypeVar("T")
if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]
Change = Callable[[IncidentService, argparse.Namespace, Actor], Awaitable[Incident]]

SEVERITIES = [severity.value for severity in Severity]


def add_incident_commands(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    output = argparse.ArgumentParser(add_help=False, parents=[common])
    output.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser = commands.add_parser("incidents", help="list, show and change incidents")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    listing = verbs.add_parser("list", parents=[output], help="recent incidents, newest first")
    listing.add_argument(
        "--status",
        action="append",
        choices=[status.value for status in Status] + ["active"],
        help="only these statuses (repeatable; 'active' = open, acknowledged, mitigated)",
    )
    listing.add_argument(
        "--limit", type=_positive, default=50, help="at most this many (default 50)"
    )
    listing.set_defaults(handler=list_incidents)

    show = verbs.add_parser("show", parents=[output], help="one incident with its timeline")
    show.add_argument("incident", metavar="INC-n")
    show.set_defaults(handler=show_incident)

    declare = verbs.add_parser("declare", parents=[output], help="declare a new incident")
    declare.add_argument("title")
    declare.add_argument("--severity", required=True, choices=SEVERITIES)
    declare.add_argument("--service", default="")
    declare.add_argument("--started", type=_timestamp, help="when impact began (ISO 8601)")
    declare.set_defaults(
        handler=changer(
            lambda s, a, who: s.declare(
                a.title, Severity(a.severity), who, service=a.service, started_at=a.started
            )
        )
    )

    def verb(name: str, change: Change, help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, parents=[output], help=help_text)
        sub.add_argument("incident", metavar="INC-n")
        sub.set_defaults(handler=changer(change))
        return sub

    verb("ack", lambda s, a, who: s.acknowledge(a.incident, who), "acknowledge")
    verb(
        "mitigate", lambda s, a, who: s.mitigate(a.incident, who, a.note), "impact has stopped"
    ).add_argument("--note", default="")
    verb("resolve", lambda s, a, who: s.resolve(a.incident, who, a.reason), "resolve").add_argument(
        "--reason", default=""
    )
    verb(
        "reopen", lambda s, a, who: s.reopen(a.incident, who, a.reason), "reopen a resolved one"
    ).add_argument("--reason", required=True)
    close = verb(
        "close",
        lambda s, a, who: s.close(a.incident, who, ClosureReason(a.reason), a.note),
        "close with a closure reason",
    )
    close.add_argument("--reason", default="resolved", choices=[r.value for r in ClosureReason])
    close.add_argument("--note", default="")
    severity = verb(
        "sev",
        lambda s, a, who: s.change_severity(a.incident, Severity(a.severity), who, a.reason),
        "change severity",
    )
    severity.add_argument("severity", choices=SEVERITIES)
    severity.add_argument("--reason", default="")
    verb("note", lambda s, a, who: s.add_note(a.incident, who, a.text), "add a note").add_argument(
        "text"
    )
    verb(
        "started", lambda s, a, who: s.set_started(a.incident, a.at, who), "correct start time"
    ).add_argument("at", type=_timestamp, help="ISO 8601, e.g. 2026-11-23T09:00+01:00")


def list_incidents(args: argparse.Namespace, console: Console) -> int:
    statuses: set[Status] | None = None
    if args.status:
        statuses = set()
        for name in args.status:
            statuses |= set(ACTIVE_STATUSES) if name == "active" else {Status(name)}
    loaded = load_config(config_path(args))
    found = _run(loaded, lambda service: service.list_incidents(statuses, args.limit))
    if args.json:
        _print_json(console, [incident_document(incident) for incident in found])
    else:
        render_incident_table(console, found, loaded.config.zone)
    return 0


def show_incident(args: argparse.Namespace, console: Console) -> int:
    async def fetch(service: IncidentService) -> tuple[Incident, list[TimelineEvent]]:
        return await service.get(args.incident), await service.timeline(args.incident)

    loaded = load_config(config_path(args))
    incident, timeline = _run(loaded, fetch)
    if args.json:
        document = incident_document(incident)
        document["timeline"] = [event_document(event) for event in timeline]
        _print_json(console, document)
    else:
        render_incident(console, incident, timeline, loaded.config.zone)
    return 0


def changer(change: Change) -> Callable[[argparse.Namespace, Console], int]:
    """A handler that makes one change as the local user and reports the result."""

    def handler(args: argparse.Namespace, console: Console) -> int:
        loaded = load_config(config_path(args))
        user = getpass.getuser()
        incident = _run(
            loaded, lambda service: change(service, args, Actor(Source.CLI, user, user))
        )
        if args.json:
            _print_json(console, incident_document(incident))
        else:
            console.print(
                f"{incident.id} [{incident.severity.value}] {incident.status.value}: "
                f"{incident.title}",
                markup=False,
                highlight=False,
            )
        return 0

    return handler


def _run(loaded: LoadedConfig, work: Callable[[IncidentService], Awaitable[T]]) -> T:
    async def go() -> T:
        async with open_tocsin(loaded) as tocsin:
            return await work(tocsin.incidents)

    return asyncio.run(go())


def _print_json(console: Console, document: object) -> None:
    console.print_json(json.dumps(document))


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive whole number")
    return int(text)


def _timestamp(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not an ISO 8601 time; write e.g. 2026-11-23T09:00+01:00"
        ) from None
