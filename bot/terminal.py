"""What tocsin prints for people at a terminal: rich tables, times in the team's zone."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.config import LoadedConfig
from bot.terminal_probes import render_budgets
from commands.catalogue import RiskTier
from incidents.model import Incident, Milestone, Severity, TimelineEvent
from probes.durations import format_duration

SEVERITY_STYLE = {
    Severity.P0: "bold white on red",
    Severity.P1: "bold red",
    Severity.P2: "yellow",
    Severity.P3: "cyan",
}


def show_time(moment: datetime | None, zone: ZoneInfo) -> str:
    return "" if moment is None else moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def render_check(console: Console, loaded: LoadedConfig) -> None:
    """The summary `tocsin check` prints for a valid file."""
    config = loaded.config
    console.print(f"[green]✓[/green] {loaded.path} is valid")

    probes = Table(title=f"Probes ({len(config.probes)})", title_justify="left")
    probes.add_column("kind")
    for severity in Severity:
        probes.add_column(severity.value, justify="right")
    by_kind: dict[str, Counter[Severity]] = {}
    for probe in config.probes:
        by_kind.setdefault(probe.kind, Counter())[probe.severity] += 1
    for kind, counts in sorted(by_kind.items()):
        probes.add_row(kind, *(str(counts[severity] or "") for severity in Severity))
    console.print(probes)

    commands = Table(title=f"Commands ({len(config.commands)})", title_justify="left")
    commands.add_column("risk")
    commands.add_column("commands")
    commands.add_column("approval")
    for tier in RiskTier:
        names = sorted(name for name, c in config.commands.items() if c.risk is tier)
        policy = config.approvals.get(tier)
        approval = (
            f"{policy.count} of {', '.join(policy.approvers)}"
            + (", not the requester" if policy.not_requester else "")
            if policy
            else "nobody may approve"
        )
        commands.add_row(tier.value, ", ".join(names) or "-", approval)
    console.print(commands)

    hosts = Table(title=f"Hosts ({len(config.hosts)})", title_justify="left")
    for column in ("host", "address", "user", "known_hosts"):
        hosts.add_column(column)
    for name, host in sorted(config.hosts.items()):
        hosts.add_row(name, f"{host.address}:{host.port}", host.user, str(host.known_hosts))
    console.print(hosts)

    severities = Table(title="Severities and escalation", title_justify="left")
    for column in ("severity", "name", "respond within", "escalation"):
        severities.add_column(column)
    for severity, settings in sorted(config.severities.items()):
        policy_text = "-"
        if (escalation := config.escalation.get(severity)) is not None:
            policy_text = " → ".join(
                f"{format_duration(level.after)}: {', '.join(level.notify)}"
                for level in escalation.levels
            ) + (f" (repeat {escalation.repeat} times)" if escalation.repeat else "")
        severities.add_row(
            severity.value, settings.name, format_duration(settings.response_time), policy_text
        )
    console.print(severities)
    render_budgets(console, config)
    console.print(f"Maintenance windows: {len(config.maintenance)}")
    for warning in loaded.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


def render_incident_table(console: Console, incidents: list[Incident], zone: ZoneInfo) -> None:
    if not incidents:
        console.print("No incidents.")
        return
    table = Table(title=f"Incidents ({len(incidents)})", title_justify="left")
    for column in ("id", "sev", "status", "title", "service", "started", "acknowledged"):
        table.add_column(column)
    for incident in incidents:
        table.add_row(
            incident.id,
            f"[{SEVERITY_STYLE[incident.severity]}]{incident.severity.value}[/]",
            incident.status.value,
            escape(incident.title),
            escape(incident.service or "-"),
            show_time(incident.milestones.get(Milestone.STARTED), zone),
            show_time(incident.milestones.get(Milestone.ACKNOWLEDGED), zone),
        )
    console.print(table)


def render_incident(
    console: Console, incident: Incident, timeline: list[TimelineEvent], zone: ZoneInfo
) -> None:
    style = SEVERITY_STYLE[incident.severity]
    console.print(
        f"[bold]{incident.id}[/bold] [{style}]{incident.severity.value}[/] "
        f"[bold]{incident.status.value}[/bold]  {escape(incident.title)}"
    )
    details = Table.grid(padding=(0, 2))
    details.add_column(style="dim")
    details.add_column()
    details.add_row("service", escape(incident.service or "-"))
    details.add_row("dedup key", escape(incident.dedup_key or "-"))
    if incident.closure_reason:
        details.add_row("closed as", incident.closure_reason.value)
    for milestone in Milestone:
        details.add_row(milestone.value, show_time(incident.milestones.get(milestone), zone) or "-")
    details.add_row("participants", escape(", ".join(str(a) for a in incident.participants) or "-"))
    console.print(details)

    table = Table(title="Timeline", title_justify="left")
    for column in ("when", "who", "what", "change", "text"):
        table.add_column(column)
    for event in timeline:
        change = f"{event.field}: {event.old or '∅'} → {event.new}" if event.field else ""
        table.add_row(
            show_time(event.at, zone),
            escape(str(event.actor)),
            event.kind,
            escape(change),
            escape(event.text),
        )
    console.print(table)
