"""Durations and sizes as people write them in tocsin.yml: `30s`, `5m`, `1h30m`, `64KiB`.

They live in the lowest layer because probe settings, detection and the config all use them.
"""

import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")
DURATION_SCHEMA = {"type": "string", "pattern": r"^(\d+(ms|s|m|h|d|w))+$", "examples": ["30s"]}
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Far beyond any interval or window a team means, far below what timedelta and timers hold.
MAX_DURATION = timedelta(days=3650)
MAX_DIGITS = 12
MAX_SHOWN = 40

SIZE = re.compile(r"^(\d+)\s*(B|KiB|MiB|KB|MB)?$")
SIZE_FACTORS = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024 * 1024, "KB": 1000, "MB": 1000 * 1000}


def parse_duration(value: Any) -> timedelta:
    """Accept `30s`, `5m`, `1h30m`, `500ms`, `2d`, `1w`; refuse bare numbers as ambiguous."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("write a duration such as 30s, 5m or 1h")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError("write a duration such as 30s, 5m or 1h")
        raise ValueError(f"add a unit: write {value}s, {value}m or {value}h")
    text = value.strip().replace(" ", "")
    if not text or DURATION_PART.sub("", text):
        raise ValueError(
            f"'{_shown(value)}' is not a duration; write e.g. 30s, 5m, 1h30m (units ms s m h d w)"
        )
    parts = [(n.lstrip("0") or "0", unit) for n, unit in DURATION_PART.findall(text)]
    if any(len(n) > MAX_DIGITS for n, _ in parts):
        raise _too_long(value)
    seconds = sum(int(n) * UNIT_SECONDS[unit] for n, unit in parts)
    if seconds > MAX_DURATION.total_seconds():
        raise _too_long(value)
    return timedelta(seconds=seconds)


def _too_long(value: str) -> ValueError:
    return ValueError(
        f"'{_shown(value)}' is longer than {MAX_DURATION.days}d (10 years), "
        "the longest duration tocsin accepts; write a shorter one"
    )


def _shown(value: str) -> str:
    return value if len(value) <= MAX_SHOWN else value[: MAX_SHOWN - 3] + "..."


def format_duration(value: timedelta) -> str:
    """The shortest exact form: 90s -> 1m30s, 0 -> 0s."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    parts = []
    for unit in ("w", "d", "h", "m", "s", "ms"):
        size = round(UNIT_SECONDS[unit] * 1000)
        count, total_ms = divmod(total_ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_size(value: Any) -> int:
    """Bytes from `65536`, `64KiB` or `1MiB`."""
    if isinstance(value, bool):
        raise ValueError("write a size such as 64KiB")
    if isinstance(value, int):
        return value
    match = SIZE.match(str(value).strip())
    if not match:
        raise ValueError(f"'{value}' is not a size; write e.g. 65536, 64KiB or 1MiB")
    return int(match.group(1)) * SIZE_FACTORS[match.group(2)]


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(DURATION_SCHEMA),
]

ByteSize = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string", "examples": ["64KiB"]}]}),
]
