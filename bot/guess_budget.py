"""How many wrong tokens a client may send before it must wait.

A token bucket per client: `burst` wrong guesses at once, then one more every
`refill` seconds. A client is its IP address, or its /64 for IPv6, where one host
commonly holds a whole prefix. At most `clients` are remembered (the least recently
seen is forgotten first), so a flood of addresses cannot grow memory without bound.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict

BURST = 10
REFILL_SECONDS = 6.0
CLIENTS = 4096


class GuessBudget:
    def __init__(
        self, burst: int = BURST, refill: float = REFILL_SECONDS, clients: int = CLIENTS
    ) -> None:
        self._burst = burst
        self._refill = refill
        self._clients = clients
        self._left: OrderedDict[str, tuple[float, float]] = OrderedDict()  # guesses, as of

    def wait_for(self, address: str | None) -> float:
        """Seconds `address` must wait before its next guess counts; 0 when it may go on."""
        left = self._left_now(client_of(address))
        return 0.0 if left >= 1 else (1 - left) * self._refill

    def spend(self, address: str | None) -> None:
        """`address` sent a wrong token."""
        client = client_of(address)
        self._left[client] = (self._left_now(client) - 1, time.monotonic())
        self._left.move_to_end(client)
        while len(self._left) > self._clients:
            self._left.popitem(last=False)

    def _left_now(self, client: str) -> float:
        left, at = self._left.get(client, (float(self._burst), 0.0))
        return min(float(self._burst), left + (time.monotonic() - at) / self._refill)


def client_of(address: str | None) -> str:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or ""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
