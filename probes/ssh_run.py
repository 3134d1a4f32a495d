"""Run one command over an open SSH connection, with an output cap and a deadline that kills.

asyncssh's own `run(timeout=)` buffers output without limit and, at its
timeout, leaves the remote process running. Here each stream keeps at most
`cap` bytes, and the remote side runs under coreutils `timeout -s KILL`, so
the command's whole process group dies at the deadline even when sshd refuses
the SSH "signal" request (OpenSSH does for root logins, which skip privilege
separation) or the connection is gone. The signal is still sent first: where
sshd accepts it the process dies at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncssh

OUTPUT_CAP = 64 * 1024
REMOTE_SLACK = 0.2


class CommandTimedOut(Exception):
    """The deadline passed: before the session opened, or with the command killed."""

    def __init__(self, started: bool) -> None:
        super().__init__("started" if started else "not started")
        self.started = started


@dataclass(frozen=True)
class RemoteRun:
    """What one command did: its (capped) output, how it ended, how long it took."""

    stdout: str
    stderr: str
    exit_status: int | None
    exit_signal: str | None
    duration: float
    truncated: bool


class _CappedSession(asyncssh.SSHClientSession[bytes]):
    """Keeps the first `cap` bytes of stdout and of stderr and drops the rest."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.truncated = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        buffer = self.stderr if datatype == asyncssh.EXTENDED_DATA_STDERR else self.stdout
        room = max(self._cap - len(buffer), 0)
        if len(data) > room:
            self.truncated = True
        buffer += data[:room]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed.done():
            return
        if exc is None:
            self.closed.set_result(None)
        else:
            self.closed.set_exception(exc)


def remote_command(argv: Sequence[str], budget: float) -> str:
    """`argv` quoted for the remote shell, killed on the remote side after `budget` seconds.

    The remote clock starts once the session is open, later than ours, and gets
    a little slack on top, so the local deadline comes first and a timed-out run
    is reported as such, never as an exit by SIGKILL.
    """
    seconds = math.ceil((budget + REMOTE_SLACK) * 10) / 10
    return shlex.join(["timeout", "-s", "KILL", f"{seconds:.1f}", *argv])


async def run_remote(
    conn: asyncssh.SSHClientConnection, command: str, budget: float, cap: int = OUTPUT_CAP
) -> RemoteRun:
    """Run `command` (already quoted) without a pty; raise CommandTimedOut after `budget` s."""
    began = time.perf_counter()
    session = _CappedSession(cap)
    channel: asyncssh.SSHClientChannel[bytes] | None = None
    try:
        async with asyncio.timeout(budget):
            channel, _ = await conn.create_session(
                lambda: session, command, encoding=None, request_pty=False
            )
            channel.write_eof()  # a command reading stdin sees EOF instead of waiting
            await session.closed
    except TimeoutError:
        _kill(channel)
        raise CommandTimedOut(started=channel is not None) from None
    except BaseException:  # cancelled or the connection broke: never leave it running
        _kill(channel)
        raise
    signal = channel.get_exit_signal()
    return RemoteRun(
        stdout=session.stdout.decode(errors="replace"),
        stderr=session.stderr.decode(errors="replace"),
        exit_status=None if signal else channel.get_exit_status(),
        exit_signal=signal[0] if signal else None,
        duration=time.perf_counter() - began,
        truncated=session.truncated,
    )


def _kill(channel: asyncssh.SSHClientChannel[bytes] | None) -> None:
    """SIGKILL the remote process group (where sshd allows it) and close the channel."""
    if channel is None:
        return
    with contextlib.suppress(OSError):  # the channel closed meanwhile
        channel.send_signal("KILL")
    channel.close()
