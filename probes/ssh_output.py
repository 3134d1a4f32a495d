"""Judging what a remote command did: exit status, a value read from its output, unit states.

Reasons are one line for a Slack card and carry the first line the command
printed on failure ("exit status 2 (expected 0): df: /srv: No such file or
directory"); evidence keeps ~500-character excerpts of stdout and stderr.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from probes.result import Measurement, Observation, Status
from probes.ssh_run import OUTPUT_CAP, RemoteRun
from probes.thresholds import Threshold, measure

EXCERPT_CHARS = 500
_ALL_ACTIVE = Threshold(below=1)

Evidence = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CommandCheck:
    """The `command` mode's expectations, compiled once."""

    exit_status: int = 0
    value: re.Pattern[str] | None = None
    threshold: Threshold | None = None
    unit: str = ""
    contains: str | None = None
    matches: re.Pattern[str] | None = None

    def judge(self, run: RemoteRun, evidence: Evidence) -> Observation:
        measurements: list[Measurement] = []
        problems: list[str] = []
        expected = self.exit_status
        if run.exit_status is None:
            problems.append(f"{ending(run)} (expected exit status {expected})")
        else:
            ok = run.exit_status == expected
            measurements.append(Measurement("exit_status", run.exit_status, "", str(expected), ok))
            if not ok:
                problems.append(f"{ending(run)} (expected {expected}){_said(run)}")
        if self.contains is not None and self.contains not in run.stdout:
            problems.append(f"output does not contain '{self.contains}'")
        if self.matches is not None and not self.matches.search(run.stdout):
            problems.append(f"output does not match '{self.matches.pattern}'")
        healthy = ending(run)
        if self.value is not None:
            found = self.value.search(run.stdout)
            number = _number(found.group(1)) if found else None
            if number is None and not problems:  # a failed command explains a missing value
                what = f"captured '{found.group(1)}', not a number" if found else "matched nothing"
                reason = f"value_regex '{self.value.pattern}' {what} in the output"
                return Observation(Status.ERROR, reason, tuple(measurements), evidence)
            if number is not None:
                value = measure("value", number, self.unit, self.threshold)
                measurements.insert(0, value)
                healthy = value.shown()
                if value.met is False:
                    problems.append(value.shown())
        if problems:
            return Observation(Status.FAIL, "; ".join(problems), tuple(measurements), evidence)
        return Observation(Status.OK, healthy, tuple(measurements), evidence)


def judge_units(units: list[str], run: RemoteRun, evidence: Evidence) -> Observation:
    """`systemctl is-active` prints one state per unit, in order; only `active` is healthy.

    Its exit status says only whether ANY unit is active, so the states are read
    instead. Fewer states than units means systemctl did not run (no systemd,
    not on PATH): tocsin cannot tell, an error.
    """
    states = run.stdout.split()
    if len(states) != len(units):
        reason = (
            f"systemctl is-active gave {len(states)} states for {len(units)} units "
            f"({ending(run)}){_said(run)}"
        )
        return Observation(Status.ERROR, reason, evidence=evidence)
    pairs = zip(units, states, strict=True)
    down = [f"{unit} ({state})" for unit, state in pairs if state != "active"]
    inactive = measure("inactive_units", len(down), "", _ALL_ACTIVE)
    if down:
        return Observation(Status.FAIL, f"not active: {', '.join(down)}", (inactive,), evidence)
    return Observation(Status.OK, f"active: {', '.join(units)}", (inactive,), evidence)


def evidence_of(shown: str, run: RemoteRun) -> Evidence:
    """The command, how it ended, and excerpts of what it printed."""
    evidence = [("command", shown), ("exit", ending(run))]
    evidence += [
        (name, _excerpt(text))
        for name, text in (("stdout", run.stdout), ("stderr", run.stderr))
        if text.strip()
    ]
    if run.truncated:
        evidence.append(("output", f"cut at {OUTPUT_CAP // 1024} KiB per stream"))
    return tuple(evidence)


def ending(run: RemoteRun) -> str:
    if run.exit_status is not None:
        return f"exit status {run.exit_status}"
    if run.exit_signal is not None:
        return f"killed by signal {run.exit_signal}"
    return "no exit status"


def _number(text: str | None) -> float | None:
    try:
        number = float((text or "").strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _said(run: RemoteRun) -> str:
    """`: <first line of stderr (or stdout)>` for a reason, or nothing."""
    for stream in (run.stderr, run.stdout):
        for line in stream.splitlines():
            if line.strip():
                return f": {line.strip()[:160]}"
    return ""


def _excerpt(text: str) -> str:
    """Head and tail: a command's first lines say what it is, its last ones how it ended."""
    text = text.strip()
    if len(text) <= EXCERPT_CHARS:
        return text
    half = EXCERPT_CHARS // 2
    return f"{text[:half]} … {text[-half:]}"
