"""Rules that relate one part of tocsin.yml to another.

Probe ids are unique, `depends_on` names existing probes without cycles,
`remediate` names commands, commands name hosts, maintenance windows match
probes. These run on the raw data, defensively, so their problems are
reported together with schema problems elsewhere in the file.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from bot.config.model import TocsinConfig
from bot.config.problems import ConfigProblem, known_list, suggest


def reference_problems(data: dict[str, Any]) -> list[ConfigProblem]:
    probes = [p if isinstance(p, dict) else {} for p in _list(data.get("probes"))]
    problems: list[ConfigProblem] = []
    problems += _duplicate_probes(probes)
    problems += _probe_references(probes, set(_dict(data.get("commands"))))
    problems += _ssh_probe_hosts(probes, set(_dict(data.get("hosts"))))
    problems += _dependency_cycles(probes)
    problems += _command_hosts(_dict(data.get("commands")), set(_dict(data.get("hosts"))))
    problems += _maintenance_targets(_list(data.get("maintenance")), _ids(probes))
    return problems


def approval_warnings(config: TocsinConfig) -> list[str]:
    """Commands whose risk tier has no approval policy can never run: say so."""
    return [
        f"commands.{name}: risk '{command.risk.value}' has no entry under approvals, so nobody "
        f"can approve it; add approvals.{command.risk.value}"
        for name, command in config.commands.items()
        if command.risk not in config.approvals
    ]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _names(value: Any) -> list[str]:
    return [item for item in _list(value) if isinstance(item, str)]


def _ids(probes: list[dict[str, Any]]) -> set[str]:
    return {probe["id"] for probe in probes if isinstance(probe.get("id"), str)}


def _unknown(kind: str, name: str, known: set[str]) -> str:
    return f"unknown {kind} '{name}'{suggest(name, known)} ({known_list(known)})"


def _duplicate_probes(probes: list[dict[str, Any]]) -> list[ConfigProblem]:
    first: dict[str, int] = {}
    problems = []
    for index, probe in enumerate(probes):
        probe_id = probe.get("id")
        if not isinstance(probe_id, str):
            continue
        if probe_id in first:
            problems.append(
                ConfigProblem(
                    ("probes", index, "id"),
                    f"duplicate probe id '{probe_id}' (first at probes[{first[probe_id]}]); "
                    "give each probe its own id",
                )
            )
        else:
            first[probe_id] = index
    return problems


def _probe_references(probes: list[dict[str, Any]], commands: set[str]) -> list[ConfigProblem]:
    probe_ids = _ids(probes)
    problems = []
    for index, probe in enumerate(probes):
        path = ("probes", index, "depends_on")
        for parent in _names(probe.get("depends_on")):
            if parent == probe.get("id"):
                problems.append(ConfigProblem(path, f"'{parent}' depends on itself; remove it"))
            elif parent not in probe_ids:
                problems.append(ConfigProblem(path, _unknown("probe", parent, probe_ids)))
        problems.extend(
            ConfigProblem(("probes", index, "remediate"), _unknown("command", name, commands))
            for name in _names(probe.get("remediate"))
            if name not in commands
        )
    return problems


def _ssh_probe_hosts(probes: list[dict[str, Any]], hosts: set[str]) -> list[ConfigProblem]:
    """An ssh probe runs on a host defined under `hosts:`, with its pinned key."""
    return [
        ConfigProblem(("probes", index, "host"), _unknown("host", str(probe.get("host")), hosts))
        for index, probe in enumerate(probes)
        if probe.get("kind") == "ssh" and probe.get("host") not in hosts
    ]


def _dependency_cycles(probes: list[dict[str, Any]]) -> list[ConfigProblem]:
    """Depth-first search for cycles; each cycle is reported once, at its first probe.

    Iterative, each probe visited once: a legitimate chain of thousands of probes is
    checked in linear time, without recursion.
    """
    parents: dict[str, list[str]] = {}
    index_of: dict[str, int] = {}
    for index, probe in enumerate(probes):
        probe_id = probe.get("id")
        if isinstance(probe_id, str) and probe_id not in parents:
            parents[probe_id] = [p for p in _names(probe.get("depends_on")) if p != probe_id]
            index_of[probe_id] = index
    done: set[str] = set()
    problems = []
    for start in parents:
        if start in done:
            continue
        trail = [start]
        position = {start: 0}
        pending = [iter(parents[start])]
        while pending:
            parent = next(pending[-1], None)
            if parent is None:
                finished = trail.pop()
                del position[finished]
                done.add(finished)
                pending.pop()
            elif parent in position:
                cycle = [*trail[position[parent] :], parent]
                problems.append(
                    ConfigProblem(
                        ("probes", index_of[cycle[0]], "depends_on"),
                        f"dependency cycle {_shown_cycle(cycle)}; remove one of these depends_on",
                    )
                )
            elif parent in parents and parent not in done:
                position[parent] = len(trail)
                trail.append(parent)
                pending.append(iter(parents[parent]))
    return problems


def _shown_cycle(cycle: list[str], limit: int = 6) -> str:
    """`a -> b -> a`, or for a long cycle its start, its end and how many probes it holds."""
    if len(cycle) <= limit + 1:
        return " -> ".join(cycle)
    head = " -> ".join(cycle[: limit // 2])
    tail = " -> ".join(cycle[-limit // 2 :])
    return f"{head} -> ... -> {tail} ({len(cycle) - 1:,} probes)"


def _command_hosts(commands: dict[str, Any], hosts: set[str]) -> list[ConfigProblem]:
    return [
        ConfigProblem(("commands", name, "hosts"), _unknown("host", host, hosts))
        for name, command in commands.items()
        for host in _names(_dict(command).get("hosts"))
        if host not in hosts
    ]


def _maintenance_targets(windows: list[Any], probe_ids: set[str]) -> list[ConfigProblem]:
    return [
        ConfigProblem(
            ("maintenance", index, "probes"),
            f"'{pattern}' matches no probe{suggest(pattern, probe_ids)} ({known_list(probe_ids)})",
        )
        for index, window in enumerate(windows)
        for pattern in _names(_dict(window).get("probes"))
        if not any(fnmatchcase(probe_id, pattern) for probe_id in probe_ids)
    ]
