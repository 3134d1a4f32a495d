"""A throwaway OpenSSH server that accepts one generated client key for the current user.

A non-root sshd can only log in its own user, so the username is always
the effective user running the tests. Host-key checking stays on: clients
get a known_hosts file pinned to the generated host key.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers.ports import LOOPBACK, free_port
from tests.servers.process import (
    POLL_INTERVAL,
    ServerProcess,
    current_user,
    find_binary,
    proc_stats,
    run_checked,
)

SERVER_PACKAGE = "openssh-server"
CLIENT_PACKAGE = "openssh-client"
# Root sshd insists on its privilege-separation directory.
_PRIVSEP_DIR = Path("/run/sshd")
_CONFIG_TEMPLATE = """\
Port {port}
ListenAddress {host}
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PrintMotd no
Subsystem sftp internal-sftp
"""


@dataclass(frozen=True)
class SSHServer:
    """How to reach the test sshd with strict host-key verification."""

    host: str
    port: int
    username: str
    client_key: Path
    client_public_key: Path
    known_hosts: Path
    host_key: Path
    host_public_key: Path
    host_key_fingerprint: str
    config_path: Path
    log_path: Path
    pid: int


def _keygen(binary: str, path: Path, comment: str) -> None:
    """Generate an unencrypted ed25519 key pair at ``path`` / ``path.pub``."""
    run_checked(
        [binary, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        "ssh-keygen",
    )


def _fingerprint(binary: str, public_key: Path) -> str:
    """SHA256 fingerprint exactly as ``ssh-keygen -lf`` prints it (``SHA256:...``)."""
    output = run_checked([binary, "-l", "-E", "sha256", "-f", str(public_key)], "ssh-keygen -l")
    return output.split()[1]


def known_hosts_line(host: str, port: int, public_key: Path) -> str:
    """known_hosts entry; non-22 ports must be written as ``[host]:port``."""
    key_type, key_data = public_key.read_text().split()[:2]
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {key_type} {key_data}\n"


def _sends_banner(host: str, port: int) -> bool:
    """True once sshd greets with its protocol banner, not merely an open port."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            return sock.recv(64).startswith(b"SSH-2.0")
    except OSError:
        return False


def _wait_for_orphan_zombies(timeout: float) -> None:
    """Give init time to reap exited sshd orphans, so none is listed after the session.

    sshd's pre-auth child outlives its monitor when a client aborts the key
    exchange; it is re-parented to pid 1, which in some containers reaps lazily.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(
        name == "sshd" and state == "Z" and ppid == 1 for _, name, state, ppid in proc_stats()
    ):
        time.sleep(POLL_INTERVAL)


@contextmanager
def running_sshd(base_dir: Path) -> Iterator[SSHServer]:
    """Run ``sshd -D`` from ``base_dir`` with fresh host and client keys."""
    sshd = find_binary("sshd", SERVER_PACKAGE)
    keygen = find_binary("ssh-keygen", CLIENT_PACKAGE)
    username = current_user()
    host_key = base_dir / "ssh_host_ed25519_key"
    client_key = base_dir / "client_ed25519"
    _keygen(keygen, host_key, "tocsin-test-host")
    _keygen(keygen, client_key, f"tocsin-test-client@{username}")
    host_public_key = base_dir / f"{host_key.name}.pub"
    client_public_key = base_dir / f"{client_key.name}.pub"
    fingerprint = _fingerprint(keygen, host_public_key)

    authorized_keys = base_dir / "authorized_keys"
    authorized_keys.write_text(client_public_key.read_text())
    port = free_port()
    known_hosts = base_dir / "known_hosts"
    known_hosts.write_text(known_hosts_line(LOOPBACK, port, host_public_key))
    config_path = base_dir / "sshd_config"
    config_path.write_text(
        _CONFIG_TEMPLATE.format(
            port=port,
            host=LOOPBACK,
            host_key=host_key,
            pid_file=base_dir / "sshd.pid",
            authorized_keys=authorized_keys,
        )
    )
    if os.geteuid() == 0:
        _PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)

    process = ServerProcess(
        "sshd", [sshd, "-D", "-e", "-f", str(config_path)], base_dir / "sshd.log"
    )
    process.start(lambda: _sends_banner(LOOPBACK, port))
    try:
        yield SSHServer(
            host=LOOPBACK,
            port=port,
            username=username,
            client_key=client_key,
            client_public_key=client_public_key,
            known_hosts=known_hosts,
            host_key=host_key,
            host_public_key=host_public_key,
            host_key_fingerprint=fingerprint,
            config_path=config_path,
            log_path=process.log_path,
            pid=process.pid,
        )
    finally:
        process.stop(drain=5.0)
        _wait_for_orphan_zombies(timeout=3.0)
