"""systemd's service notifications (sd_notify), without libsystemd.

Under `Type=notify` systemd passes a datagram socket in `NOTIFY_SOCKET`; tocsin says
`READY=1` once it listens and probes, `WATCHDOG=1` while its event loop turns (so
`WatchdogSec=` restarts a stuck tocsin) and `STOPPING=1` when it shuts down.
Without the variable (not under systemd) nothing is sent.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping

from bot.log_throttle import LogThrottle

log = logging.getLogger(__name__)


class SystemdNotifier:
    def __init__(self, address: str) -> None:
        # "@name" is a socket in Linux's abstract namespace, written with a leading NUL.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._failures = LogThrottle(log)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> SystemdNotifier | None:
        address = environ.get("NOTIFY_SOCKET", "")
        return cls(address) if address else None

    def send(self, state: str) -> None:
        """Tell systemd `state` (e.g. "READY=1"); a failure is logged, never raised."""
        try:
            self._socket.sendto(state.encode(), self._address)
        except OSError as error:
            self._failures.warning("could not notify systemd (%s): %s", state, error)

    def close(self) -> None:
        self._socket.close()
