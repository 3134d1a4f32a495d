"""Probe tables for the terminal: detection budgets, one-off results, history."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.config.model import TocsinConfig
from bot.probe_plan import detection_settings, probe_rule
from incidents.detection_rules import detection_budget
from incidents.probe_journal import ProbeHistory
from probes.durations import format_duration
from probes.result import Measurement, ProbeResult, Status

STATUS_STYLE = {Status.OK: "green", Status.FAIL: "bold red", Status.ERROR: "magenta"}


def render_budgets(console: Console, config: TocsinConfig) -> None:
    """How long each probe may take, at worst, from first failure to an open incident."""
    if not config.probes:
        return
    settings = detection_settings(config)
    table = Table(
        title="Detection budget (interval * fail_after + timeout + group_wait)",
        title_justify="left",
    )
    for column in ("probe", "sev", "interval", "fail after", "timeout", "budget"):
        table.add_column(column, justify="right" if column != "probe" else "left")
    rows = sorted(
        (probe_rule(p, config.detection.group_by) for p in config.probes),
        key=lambda rule: (rule.severity.rank, detection_budget(rule, settings), rule.probe_id),
    )
    for rule in rows:
        window = f" of {rule.fail_window}" if rule.fail_window != rule.fail_after else ""
        table.add_row(
            escape(rule.probe_id),
            rule.severity.value,
            format_duration(rule.interval),
            f"{rule.fail_after}{window}",
            format_duration(rule.timeout),
            format_duration(detection_budget(rule, settings)),
        )
    console.print(table)


def measurements_text(measurements: tuple[Measurement, ...]) -> str:
    parts = []
    for m in measurements:
        text = m.shown()
        parts.append(f"[red]{escape(text)}[/red]" if m.met is False else escape(text))
    return "\n".join(parts)


def render_results(console: Console, results: list[tuple[str, ProbeResult]]) -> None:
    table = Table(title=f"Probes ({len(results)})", title_justify="left")
    for column in ("probe", "kind", "status", "measured", "reason", "took"):
        table.add_column(column, justify="right" if column == "took" else "left")
    for kind, result in results:
        table.add_row(
            escape(result.probe_id),
            kind,
            f"[{STATUS_STYLE[result.status]}]{result.status.value}[/]",
            measurements_text(result.measurements),
            escape(result.reason),
            f"{result.duration * 1000:.0f} ms",
        )
    console.print(table)
    counts = {status: sum(1 for _, r in results if r.status is status) for status in Status}
    console.print(", ".join(f"{n} {status.value}" for status, n in counts.items()))


def render_history(console: Console, probe_id: str, history: ProbeHistory, zone: ZoneInfo) -> None:
    if not history.samples and not history.changes:
        console.print(f"No results recorded for {probe_id} yet (they are kept by `tocsin run`).")
        return
    samples = Table(title=f"Recent results of {probe_id}", title_justify="left")
    for column in ("when", "status", "measured", "reason", "took"):
        samples.add_column(column)
    for result in history.samples:
        samples.add_row(
            result.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            f"[{STATUS_STYLE[result.status]}]{result.status.value}[/]",
            measurements_text(result.measurements),
            escape(result.reason),
            f"{result.duration * 1000:.0f} ms",
        )
    console.print(samples)
    changes = Table(title=f"State changes of {probe_id}", title_justify="left")
    for column in ("when", "from", "to", "why"):
        changes.add_column(column)
    for change in history.changes:
        changes.add_row(
            change.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            change.old,
            change.new,
            escape(change.reason),
        )
    console.print(changes)
