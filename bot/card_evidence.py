"""One probe result as mrkdwn: status, reason, measurements against thresholds, output.

The incident card shows one of these per probe and `/probe <id>` shows one on
its own, so both read the same evidence the same way.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.mrkdwn import MAX_SECTION, cap, code_block, escape_capped, show_time
from probes.result import Measurement, ProbeResult, Status

# The HTTP probe's phases: shown together on one line, like a waterfall.
PHASES = ("dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "total_ms")
MAX_EXCERPT = 1200

STATUS_EMOJI = {
    Status.OK: ":white_check_mark:",
    Status.FAIL: ":x:",
    Status.ERROR: ":warning:",
}
NO_RESULT_EMOJI = ":grey_question:"
MET_EMOJI = {True: ":white_check_mark:", False: ":x:"}


def evidence_text(
    heading: str,
    result: ProbeResult | None,
    zone: ZoneInfo,
    now: datetime,
    limit: int = MAX_SECTION,
    *,
    excerpt: bool = True,
) -> str:
    """`heading` (already mrkdwn) then the result, the output excerpt taking what room is left."""
    if result is None:
        return cap(f"{heading}\n_No result stored yet._", limit)
    text = cap("\n".join([heading, *result_lines(result, zone, now)]), limit)
    room = min(limit - len(text) - 1, MAX_EXCERPT)
    if excerpt and result.evidence and room > 40:
        text = f"{text}\n{code_block(show_evidence(result.evidence), room)}"
    return text


def result_lines(result: ProbeResult, zone: ZoneInfo, now: datetime) -> list[str]:
    """Reason, checked measurements one per line, phases on one line, when and how long."""
    lines = [f">{escape_capped(result.reason, 500, one_line=True) or '(no reason given)'}"]
    phases = [m for m in result.measurements if m.name in PHASES]
    for measurement in result.measurements:
        if measurement.met is not None or measurement.name not in PHASES:
            lines.append(show_measurement(measurement))
    if phases:
        lines.append("Phases: " + " · ".join(show_phase(m) for m in phases))
    took = f"{result.duration:.2f}s" if result.duration < 10 else f"{result.duration:.0f}s"
    lines.append(f"_Checked {show_time(result.started_at, zone, now)}, took {took}_")
    return lines


def show_measurement(measurement: Measurement) -> str:
    """`:x: ttfb_ms 1250 ms (expected below 800)`; unchecked values get a plain bullet."""
    mark = "•" if measurement.met is None else MET_EMOJI[measurement.met]
    return f"{mark} {escape_capped(measurement.shown(), 200, one_line=True)}"


def show_phase(measurement: Measurement) -> str:
    short = replace(measurement, name=measurement.name.removesuffix("_ms"), expected="")
    text = escape_capped(short.shown(), 60, one_line=True)
    return f"*{text}*" if measurement.met is False else text


def show_evidence(evidence: tuple[tuple[str, str], ...]) -> str:
    """`label: text` lines, raw: `code_block` escapes and redacts them."""
    return "\n".join(f"{label}: {text}" if label else text for label, text in evidence)


def status_heading(probe_id: str, result: ProbeResult | None, *, recovered: bool = False) -> str:
    """`:x: *shop-home* fail`: the first line of a probe's evidence."""
    name = escape_capped(probe_id, 100, one_line=True)
    if recovered:
        return f":white_check_mark: *{name}* recovered"
    if result is None:
        return f"{NO_RESULT_EMOJI} *{name}* no result"
    return f"{STATUS_EMOJI[result.status]} *{name}* {result.status.value}"
