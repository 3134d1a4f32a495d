"""The ssh probe's kept connection to its host, verified against the host's pinned key.

Connecting costs a TCP handshake, a key exchange and a signature, so the
connection is kept between runs and dropped after any failure, to be opened
afresh next time. Failures are classified here once: `fail` when the host
refused, dropped or did not answer us; `error` when our own side is at fault
(DNS, key, known_hosts, a host key we do not trust, a login we were refused).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import asyncssh

from probes.net import connect_status
from probes.probe import SshHost
from probes.result import Status
from probes.ssh_run import OUTPUT_CAP, CommandTimedOut, RemoteRun, remote_command, run_remote

# Keepalives find a dead connection between runs instead of in the middle of one.
KEEPALIVE_INTERVAL = 30.0
KEEPALIVE_COUNT_MAX = 3
# Never wait less than this for a connection, however little of the timeout is left.
MIN_CONNECT_TIMEOUT = 0.1

T = TypeVar("T")


class SshProblem(Exception):
    """A run that ended before the command could say anything, already classified."""

    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _PinnedKeyClient(asyncssh.SSHClient):
    """Notes the fingerprint of a host key that known_hosts does not hold; it stays refused."""

    def __init__(self) -> None:
        self.untrusted_key: str | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.untrusted_key = key.get_fingerprint("sha256")
        return False


class SshConnection:
    """One connection to one host, opened on demand and kept until it fails or is closed."""

    def __init__(self, host: SshHost) -> None:
        self.host = host
        self.where = f"{host.address}:{host.port}"
        self._connection: asyncssh.SSHClientConnection | None = None

    async def run(self, argv: Sequence[str], deadline: float) -> RemoteRun:
        """Run `argv` on the host, finishing by `deadline` (event-loop time).

        Raises SshProblem when no command could run and CommandTimedOut when it
        was killed at the deadline. A kept connection that turns out dead is
        replaced once: the host may have closed it between runs.
        """
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            kept = self._connection is not None and not self._connection.is_closed()
            connection = await self._open(max(deadline - loop.time(), MIN_CONNECT_TIMEOUT))
            budget = deadline - loop.time()
            if budget <= 0:
                raise CommandTimedOut(started=False)
            try:
                command = remote_command(argv, budget)
                return await run_remote(connection, command, budget, OUTPUT_CAP)
            except (asyncssh.Error, OSError) as error:
                self.discard()
                if kept and attempt == 1:
                    continue
                reason = f"ssh session on {self.where} failed: {error}"
                raise SshProblem(Status.FAIL, reason) from None
            except BaseException:  # timed out or cancelled: the link itself may be stuck
                self.discard()
                raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def discard(self) -> None:
        """Drop the kept connection so the next run opens a new one."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
            await connection.wait_closed()

    async def _open(self, wait: float) -> asyncssh.SSHClientConnection:
        if self._connection is not None and not self._connection.is_closed():
            return self._connection
        self.discard()
        self._connection = await self._connect(wait)
        return self._connection

    async def _connect(self, wait: float) -> asyncssh.SSHClientConnection:
        host = self.host
        known_hosts = _load(host.known_hosts, "known_hosts", asyncssh.read_known_hosts)
        key = _load(
            host.key, "ssh key", lambda path: asyncssh.read_private_key(path, host.key_passphrase)
        )
        client = _PinnedKeyClient()
        try:
            return await asyncssh.connect(
                host.address,
                port=host.port,
                username=host.user,
                client_factory=lambda: client,
                known_hosts=known_hosts,
                client_keys=[key],
                agent_path=None,
                config=None,
                preferred_auth="publickey",
                connect_timeout=wait,
                login_timeout=wait,
                keepalive_interval=KEEPALIVE_INTERVAL,
                keepalive_count_max=KEEPALIVE_COUNT_MAX,
            )
        except asyncssh.HostKeyNotVerifiable:
            presented = client.untrusted_key or "a revoked key"
            reason = f"host key of {self.where} ({presented}) is not in {host.known_hosts}"
            raise SshProblem(Status.ERROR, reason) from None
        except asyncssh.PermissionDenied:
            reason = f"ssh login as {host.user} on {self.where} refused with key {host.key}"
            raise SshProblem(Status.ERROR, reason) from None
        except (asyncssh.KeyExchangeFailed, asyncssh.ProtocolNotSupported) as error:
            reason = f"cannot negotiate ssh with {self.where}: {error.reason}"
            raise SshProblem(Status.ERROR, reason) from None
        except asyncssh.DisconnectError as error:
            reason = f"ssh connection to {self.where} closed during login: {error.reason}"
            raise SshProblem(Status.FAIL, reason) from None
        except TimeoutError:
            reason = f"no ssh login to {self.where} within {wait:.3g}s"
            raise SshProblem(Status.FAIL, reason) from None
        except socket.gaierror as error:
            reason = f"cannot resolve {host.address}: {error.strerror}"
            raise SshProblem(Status.ERROR, reason) from None
        except ConnectionRefusedError:
            raise SshProblem(Status.FAIL, f"connection refused by {self.where}") from None
        except OSError as error:
            reason = f"cannot reach {self.where}: {error.strerror or error}"
            raise SshProblem(connect_status(error), reason) from None


def _load(path: Path, what: str, read: Callable[[str], T]) -> T:
    """Read one of our own files: trouble with it is ours (an error), named with its path."""
    try:
        return read(str(path))
    except OSError as error:
        reason = f"cannot read {what} {path}: {error.strerror or error}"
        raise SshProblem(Status.ERROR, reason) from None
    except ValueError as error:  # asyncssh's KeyImportError among others; never holds secrets
        raise SshProblem(Status.ERROR, f"cannot load {what} {path}: {error}") from None
