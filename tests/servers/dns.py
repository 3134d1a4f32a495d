"""A test DNS server on 127.0.0.1:53 and a way to make the system resolver ask it.

The probes resolve through the C library (`getaddrinfo`), which reads /etc/resolv.conf
and cannot be pointed at another port. So a child process runs in its own mount
namespace (`unshare -m`, root only) with a resolv.conf of ours bound over the system's;
the machine's own resolver settings are never touched. The server answers from a fixed
table, with `dnslib` encoding the wire format:
- `shop.test`: 127.0.0.1;
- `gone.test`: NXDOMAIN (the record was deleted);
- `empty.test`: NOERROR without an address (NODATA);
- `broken.test`: SERVFAIL; `refusing.test`: REFUSED;
- `silent.test`: no answer within the resolver's 1 s timeout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

from tests.servers.ports import LOOPBACK

RESOLV_CONF = f"nameserver {LOOPBACK}\noptions timeout:1 attempts:1\n"
_RCODES = {"gone.test.": RCODE.NXDOMAIN, "broken.test.": RCODE.SERVFAIL,
           "refusing.test.": RCODE.REFUSED}  # fmt: skip


class _TableResolver(BaseResolver):  # type: ignore[misc]
    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).lower()
        if name == "silent.test.":
            time.sleep(3)  # past the resolver's timeout: the client has given up
        elif name in _RCODES:
            reply.header.rcode = _RCODES[name]
        elif name == "shop.test." and request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(LOOPBACK), ttl=5))
        return reply


def unshare_available() -> str | None:
    """Why the private-resolver children cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (unshare -m, port 53)"
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux)"
    return None


@contextmanager
def running_dns(directory: Path) -> Iterator[Path]:
    """The server for the block; yields the resolv.conf that points at it."""
    quiet = DNSLogger("-request,-reply,-truncated,-data,-recv,-send", prefix=False)
    servers = [
        DNSServer(_TableResolver(), port=53, address=LOOPBACK, tcp=tcp, logger=quiet)
        for tcp in (False, True)
    ]
    for server in servers:
        server.start_thread()
    resolv = directory / "resolv.conf"
    resolv.write_text(RESOLV_CONF)
    try:
        yield resolv
    finally:
        for server in servers:
            server.stop()


def run_with_resolver(resolv: Path, argv: list[str], timeout: float = 30.0) -> str:
    """Run `argv` with `resolv` as its /etc/resolv.conf; returns its standard output."""
    script = f'mount --bind "{resolv}" /etc/resolv.conf && exec "$@"'
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"{argv[0]} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout
