"""Sockets for the network probes (http, tls, tcp): resolve, connect, TLS, send and receive.

Everything runs on the loop's own socket calls (`sock_recv`, `sock_sendall`, ...) over one
non-blocking socket (TLS on top of it lives in `probes.tls_client`): no transports or
streams, because a probe runs every few seconds for every target and this path costs a
fraction of the CPU of a general-purpose client. It also lets each phase (DNS, connect, TLS)
be timed on its own.

Who is at fault is decided here, once, for the three kinds:
- a name that does not exist (NXDOMAIN, or no address record) is `fail`: the target's DNS
  record is gone, and its users cannot reach it either;
- our resolver failing (timed out, refused, SERVFAIL) is `error`: the lookup ran on our
  side and cannot tell whether the target is healthy;
- a refused, reset or unreachable connection is `fail`: the target or the path to it is down;
- a local network that cannot even route there (ENETUNREACH, no local address) is `error`.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import aiohappyeyeballs

from probes.result import Status

RECV_SIZE = 65536
HAPPY_EYEBALLS_DELAY = 0.25  # RFC 8305's recommended connection attempt delay
Address = tuple[Any, ...]  # what socket.connect takes for AF_INET / AF_INET6
# Local causes: our host has no route or no address for that family, or a local firewall.
_OUR_ERRNOS = frozenset(
    {errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EACCES, errno.EPERM}
)
_CONTROL = {code: f"\\x{code:02x}" for code in [*range(32), 127]}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


class ProbeProblem(Exception):
    """Stops a check with a verdict: `status` and the one-line `reason` a person reads."""

    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# What a probe waits for in each phase, for the reason when the deadline passes.
WAITING_FOR = {
    "dns": "a DNS answer for {host}",
    "connect": "a connection to {where}",
    "tls": "the TLS handshake with {where}",
    "ttfb": "the first byte of the response",
    "body": "the rest of the response",
    "send": "sending to {where}",
    "banner": "a first line from {where}",
    "proxy": "the proxy {where} to open a tunnel",
}


@dataclass
class Timings:
    """Phase durations in seconds, filled as the check goes, and the phase under way.

    Values add up over several connections (redirects), like blackbox_exporter's phases.
    """

    dns: float = 0.0
    connect: float = 0.0
    tls: float = 0.0
    phase: str = "dns"
    host: str = ""
    port: int = 0
    own_host: str | None = None  # a proxy of ours: its silence is our problem, not the target's

    def enter(self, phase: str, host: str, port: int) -> None:
        self.phase = phase
        self.host = host
        self.port = port

    def timed_out(self, after: float) -> ProbeProblem:
        """Our resolver or proxy hanging is our problem (`error`); the rest is the target's."""
        ours = self.phase in ("dns", "proxy") or (
            self.own_host is not None and self.host == self.own_host
        )
        status = Status.ERROR if ours else Status.FAIL
        where = display(self.host, self.port)
        waiting_for = WAITING_FOR[self.phase].format(host=self.host, where=where)
        return ProbeProblem(
            status, f"no answer within {round(after, 2):g}s: waiting for {waiting_for}"
        )


def own_deadline(timeout: float) -> float:
    """A deadline just inside the runner's, so a probe can still say which phase hung."""
    return timeout - min(0.25, timeout * 0.1)


def excerpt(data: bytes | bytearray | str, limit: int = 300) -> str:
    """At most `limit` characters, control characters escaped, fit for a card or a log."""
    text = data if isinstance(data, str) else data[: limit * 4].decode("utf-8", "replace")
    cut = text[:limit].translate(_CONTROL)
    return cut + "…" if len(text) > limit else cut


def literal_family(host: str) -> int | None:
    """AF_INET or AF_INET6 when `host` is an IP literal (no lookup needed), else None."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family
    return None


def display(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def resolve(host: str, port: int, timings: Timings) -> list[tuple[int, Address]]:
    """(family, address) pairs to try in order; literals skip the resolver entirely."""
    family = literal_family(host)
    if family is not None:
        return [(family, (host, port))]
    timings.enter("dns", host, port)
    began = time.perf_counter()
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise dns_problem(host, error) from None
    except UnicodeError as error:
        raise ProbeProblem(Status.ERROR, f"DNS lookup of {host} failed: {why(error)}") from None
    finally:
        timings.dns += time.perf_counter() - began
    return [(info[0], info[4]) for info in infos]


# The resolver's answer that the name has no address: NXDOMAIN, or NODATA (the name
# exists, without an A/AAAA record). glibc reports a resolver that timed out, refused us
# or answered SERVFAIL as EAI_AGAIN or EAI_FAIL instead.
_NO_SUCH_NAME = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None
)


def dns_problem(host: str, error: socket.gaierror) -> ProbeProblem:
    """An answer that the name does not exist is the target's failure (its DNS record is
    gone: a customer cannot reach it either); a resolver that cannot answer is ours."""
    if error.errno in _NO_SUCH_NAME:
        return ProbeProblem(Status.FAIL, f"DNS: {host} does not exist ({why(error)})")
    return ProbeProblem(Status.ERROR, f"DNS lookup of {host} failed: {why(error)}")


async def connect(host: str, port: int, timings: Timings) -> socket.socket:
    """A connected non-blocking socket to `host`.

    One address (an IP literal, most internal names) is connected directly, without a
    trip through the loop when the handshake is already done. Several addresses race as
    RFC 8305 "happy eyeballs" (families interleaved, the next attempt 250 ms after the
    last began): a name with both `::1` and `127.0.0.1` whose IPv6 path drops packets
    still connects over IPv4 quickly instead of failing at the timeout.
    """
    addresses = await resolve(host, port, timings)
    timings.enter("connect", host, port)
    began = time.perf_counter()
    try:
        if len(addresses) == 1:
            return await _connect_one(*addresses[0])
        infos = [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)
                 for family, address in addresses]  # fmt: skip
        sock = await aiohappyeyeballs.start_connection(
            infos, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY, interleave=1
        )
        sock.setblocking(False)
        return sock
    except OSError as error:
        raise _connect_problem(host, port, [error]) from None
    finally:
        timings.connect += time.perf_counter() - began


async def _connect_one(family: int, address: Address) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await _connect(asyncio.get_running_loop(), sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


async def _connect(loop: asyncio.AbstractEventLoop, sock: socket.socket, address: Address) -> None:
    """Like `loop.sock_connect`, minus a trip through the loop when the handshake is already
    done by the time connect() returns (loopback and LAN targets, often)."""
    try:
        sock.connect(address)
        return
    except (BlockingIOError, InterruptedError):
        pass
    try:
        sock.getpeername()
    except OSError:  # not connected yet: wait until the socket is writable
        done = loop.create_future()
        loop.add_writer(sock.fileno(), _wake, done)
        try:
            await done
        finally:
            loop.remove_writer(sock.fileno())
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        raise OSError(error, os.strerror(error))


def _wake(done: asyncio.Future[None]) -> None:
    if not done.done():  # the writer may fire again before the waiting task runs
        done.set_result(None)


def _connect_problem(host: str, port: int, errors: list[OSError]) -> ProbeProblem:
    where = display(host, port)
    if any(isinstance(error, ConnectionRefusedError) for error in errors):
        return ProbeProblem(Status.FAIL, f"connection refused by {where}")
    # Several addresses that failed differently come as one OSError without an errno.
    theirs = [error for error in errors if error.errno not in _OUR_ERRNOS]
    if theirs:
        return ProbeProblem(Status.FAIL, f"cannot connect to {where}: {why(theirs[0])}")
    cause = why(errors[0]) if errors else "no address"
    return ProbeProblem(Status.ERROR, f"cannot reach {where} from here: {cause}")


def connect_status(error: BaseException | None) -> Status:
    """Whose fault a failed connect is: our own network (`error`) or the target (`fail`).

    Every kind classifies connect failures through this, so one local network fault
    reads the same for http, tcp, tls, mysql, redis and ssh probes.
    """
    if isinstance(error, OSError) and error.errno in _OUR_ERRNOS:
        return Status.ERROR
    return Status.FAIL


def io_problem(error: OSError, host: str, port: int) -> ProbeProblem:
    """A send or receive that broke after connecting: the target's side dropped us."""
    where = display(host, port)
    if isinstance(error, ConnectionResetError):
        return ProbeProblem(Status.FAIL, f"connection reset by {where}")
    return ProbeProblem(Status.FAIL, f"connection to {where} broke: {why(error)}")


def why(error: BaseException) -> str:
    """The OS's words for an error ("Connection refused"), without errno noise."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


class Channel:
    """Bytes over a connected socket; the base of the TLS channel."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()

    async def send(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, data)

    async def recv(self) -> bytes:
        """The next bytes that arrived; b"" once the peer has closed."""
        return await self.loop.sock_recv(self.sock, RECV_SIZE)

    def close(self) -> None:
        self.sock.close()
