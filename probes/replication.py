"""Reading `SHOW REPLICA STATUS` rows: which thread is down, and how far behind.

MariaDB and MySQL before 8.0.22 spell the columns `Slave_*`/`Master_*`; MySQL
8.0.22+ spells them `Replica_*`/`Source_*`. Every lookup tries both, so one
probe reads either server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_REASON_CAP = 200
_EVIDENCE_CAP = 500

Row = Mapping[str, Any]


@dataclass(frozen=True)
class ReplicaHealth:
    """What the status rows say: problems for the reason, the worst lag, fields as evidence."""

    problems: tuple[str, ...]
    lag_seconds: float | None
    evidence: tuple[tuple[str, str], ...]


def _field(row: Row, *names: str) -> tuple[str, Any]:
    """(the name this server uses, its value) for the first of `names` present in `row`."""
    for name in names:
        if name in row:
            return name, row[name]
    return names[0], None


def _text(value: Any, cap: int) -> str:
    if value is None:
        return "NULL"
    text = " ".join(str(value).split())
    return text if len(text) <= cap else text[: cap - 1] + "…"


def _thread_problem(row: Row, thread: str, prefix: str) -> str | None:
    _, running = _field(row, f"Slave_{thread}_Running", f"Replica_{thread}_Running")
    if running == "Yes":
        return None
    _, error = _field(row, f"Last_{thread}_Error")
    _, errno = _field(row, f"Last_{thread}_Errno")
    state = "" if running in (None, "No") else f" ({running})"
    if error:
        code = f"error {errno}: " if errno else ""
        cause = f": {code}{_text(error, _REASON_CAP)}"
    else:
        cause = ": stopped, no error recorded"
    return f"{prefix}replica {thread} thread is not running{state}{cause}"


def _evidence(row: Row, prefix: str) -> list[tuple[str, str]]:
    _, host = _field(row, "Master_Host", "Source_Host")
    _, port = _field(row, "Master_Port", "Source_Port")
    pairs = [(f"{prefix}source", f"{host}:{port}")]
    for names in (
        ("Slave_IO_Running", "Replica_IO_Running"),
        ("Slave_SQL_Running", "Replica_SQL_Running"),
        ("Seconds_Behind_Master", "Seconds_Behind_Source"),
        ("Slave_SQL_Running_State", "Replica_SQL_Running_State"),
        ("Last_IO_Error",),
        ("Last_SQL_Error",),
        ("Gtid_IO_Pos", "Retrieved_Gtid_Set"),
    ):
        name, value = _field(row, *names)
        if value not in (None, "") or name.startswith("Seconds"):
            pairs.append((f"{prefix}{name}", _text(value, _EVIDENCE_CAP)))
    return pairs


def replica_health(rows: Sequence[Row]) -> ReplicaHealth:
    """Judge every replication channel; the caller handles "no rows" (not a replica)."""
    problems: list[str] = []
    lags: list[float] = []
    evidence: list[tuple[str, str]] = []
    for row in rows:
        _, channel = _field(row, "Channel_Name", "Connection_name")
        prefix = f"channel '{channel}': " if channel and len(rows) > 1 else ""
        broken = [
            problem
            for thread in ("IO", "SQL")
            if (problem := _thread_problem(row, thread, prefix)) is not None
        ]
        name, lag = _field(row, "Seconds_Behind_Master", "Seconds_Behind_Source")
        if lag is not None:
            lags.append(float(lag))
        elif not broken:
            broken.append(f"{prefix}replication lag unknown ({name} is NULL)")
        problems.extend(broken)
        evidence.extend(_evidence(row, prefix))
    return ReplicaHealth(tuple(problems), max(lags) if lags else None, tuple(evidence))
