"""Open files: one budget shared by the listener's connections, probes, SQLite and Slack.

systemd starts a service with a soft limit of 1024 open files (and a far higher hard
one), which a flood of idle connections would exhaust, leaving probes unable to open
a socket. tocsin raises its soft limit to the hard one at start, and the listener takes
only what is left after one descriptor per probe that may run at once and a reserve
for SQLite, Slack and logs.
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)

RESERVE = 64  # SQLite (database, WAL, shared memory), Slack clients, logs, the odd pipe
FEWEST_CONNECTIONS = 8
UNLIMITED = 1 << 30
UNLIMITED_HARD = 65536  # macOS reports an infinite hard limit but refuses to go that high


def raise_open_file_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return UNLIMITED
    wanted = UNLIMITED_HARD if hard == resource.RLIM_INFINITY else hard
    if soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError) as error:
        log.warning("could not raise the open-file limit from %d to %d: %s", soft, wanted, error)
        return soft
    return wanted


def connection_budget(wanted: int, open_files: int, probes_at_once: int) -> int:
    """`wanted` connections, or fewer when the open-file limit must keep room beside them."""
    return min(wanted, max(FEWEST_CONNECTIONS, open_files - probes_at_once - RESERVE))
