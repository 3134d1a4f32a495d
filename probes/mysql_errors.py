"""MySQL/MariaDB errors sorted into `fail` (the database is unhealthy) and `error` (ours).

Our side: the credentials and grants we were given, the database name and the
query text in tocsin.yml. Everything else the server reports (too many
connections, lock waits, a crashed table, a lost connection) is the target's.
"""

from __future__ import annotations

import socket
from typing import Any

from probes.net import connect_status
from probes.result import Observation, Status

ACCESS_DENIED = frozenset({1044, 1045, 1130, 1251, 1698})
# No database selected, unknown column/table/function, syntax, missing grants, bad arguments.
OUR_QUERY = frozenset({1046, 1049, 1054, 1064, 1109, 1142, 1143, 1146, 1227, 1305, 1370, 1582})
READ_ONLY_REFUSED = 1792
STATEMENT_TIMEOUTS = frozenset({1969, 3024})  # MariaDB max_statement_time, MySQL max_execution_time
PARSE_ERROR = 1064
UNKNOWN_VARIABLE = 1193
CANT_CONNECT = 2003
CONNECTION_LOST = frozenset({2006, 2013})


def error_code(error: Exception) -> int | None:
    code = error.args[0] if error.args else None
    return code if isinstance(code, int) else None


def error_text(error: Exception) -> str:
    message = error.args[1] if len(error.args) > 1 else (error.args[0] if error.args else "")
    return " ".join(str(message).split()) or type(error).__name__


def _cause(error: BaseException) -> BaseException | None:
    cause = error.__cause__
    while cause is not None and cause.__cause__ is not None and not isinstance(cause, OSError):
        cause = cause.__cause__
    return cause


def _connect_failure(error: Exception, host: str, where: str) -> Observation:
    """2003 wraps the OSError behind it: refused, timed out, or our own name lookup."""
    cause = _cause(error)
    evidence = (("mysql error", f"{CANT_CONNECT} {error_text(error)}"),)
    if isinstance(cause, socket.gaierror):
        return Observation(Status.ERROR, f"cannot resolve {host}: {cause.strerror}", (), evidence)
    if isinstance(cause, ConnectionRefusedError):
        return Observation(Status.FAIL, f"connection refused by {where}", (), evidence)
    if isinstance(cause, TimeoutError):
        return Observation(Status.FAIL, f"no answer from {where} while connecting", (), evidence)
    detail = getattr(cause, "strerror", None) or cause or error_text(error)
    return Observation(connect_status(cause), f"cannot connect to {where}: {detail}", (), evidence)


def classify(
    error: Exception, *, host: str, where: str, phase: str, password_env: str | None
) -> Observation:
    """One line for a card; `phase` is "connecting" or "querying"."""
    code = error_code(error)
    text = error_text(error)
    evidence: tuple[tuple[str, str], ...] = (("mysql error", f"{code} {text}"),)

    def seen(status: Status, reason: str) -> Observation:
        return Observation(status, reason, (), evidence)

    if code == CANT_CONNECT:
        return _connect_failure(error, host, where)
    if code in CONNECTION_LOST:
        return seen(Status.FAIL, f"lost connection to {where} while {phase} (error {code})")
    if code in ACCESS_DENIED:
        secret = f"`user` and {password_env}" if password_env else "`user` and `password_env`"
        return seen(Status.ERROR, f"{text} (error {code}); check {secret}")
    if code == READ_ONLY_REFUSED:
        return seen(
            Status.ERROR, f"the query tried to write; the read-only transaction refused it: {text}"
        )
    if code in OUR_QUERY:
        return seen(Status.ERROR, f"the server refused the query: {text} (error {code})")
    number = f"error {code}" if code else "an error"
    return seen(Status.FAIL, f"{where} answered with {number} while {phase}: {text}")


def describe(value: Any, cap: int = 200) -> str:
    """A result cell as evidence text, capped."""
    if isinstance(value, bytes | bytearray):
        value = value.decode("utf-8", "replace")
    text = "NULL" if value is None else str(value)
    return text if len(text) <= cap else text[: cap - 1] + "…"
