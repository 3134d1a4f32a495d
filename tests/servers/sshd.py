"""A throwaway OpenSSH server that accepts one generated client key for the current user.

A non-root sshd can only log in its own user, so the username is always
the effective user running the tests. Host-key checking stays on: clients
get a known_hosts file pinned to the generated host key.

No systemd runs here, so sessions find a stand-in `systemctl` first on their
PATH: sshd's own `SetEnv PATH=...` puts the server's `bin/` directory in front
of the standard one, the way an administrator would set a session's PATH
server-wide, without touching the login user's dotfiles or the client. Only
`systemctl is-active` is emulated; a unit's state is the text of
`units/<unit>` (missing means `inactive`), set with `SSHServer.set_unit_state`.
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
SetEnv PATH={bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
"""
# `systemctl is-active [--] UNIT...`: one state per line, exit 0 when any unit is active.
_FAKE_SYSTEMCTL = """\
#!/bin/sh
if [ "$1" != is-active ]; then
    echo "test systemctl: only is-active is emulated" >&2
    exit 1
fi
shift
[ "$1" = -- ] && shift
code=3
for unit in "$@"; do
    state=$(cat "{units_dir}/${{unit%.service}}" 2>/dev/null || echo inactive)
    echo "$state"
    [ "$state" = active ] && code=0
done
exit $code
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
    bin_dir: Path
    units_dir: Path

    def set_unit_state(self, unit: str, state: str) -> None:
        """What the test `systemctl is-active` reports for ``unit`` (e.g. active, failed)."""
        (self.units_dir / unit).write_text(f"{state}\n")


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


def _fake_systemctl(base_dir: Path) -> tuple[Path, Path]:
    """Write ``bin/systemctl`` reading states from ``units/``; return both directories."""
    bin_dir = base_dir / "bin"
    units_dir = base_dir / "units"
    bin_dir.mkdir()
    units_dir.mkdir()
    systemctl = bin_dir / "systemctl"
    systemctl.write_text(_FAKE_SYSTEMCTL.format(units_dir=units_dir))
    systemctl.chmod(0o755)
    return bin_dir, units_dir


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
    bin_dir, units_dir = _fake_systemctl(base_dir)
    config_path = base_dir / "sshd_config"
    config_path.write_text(
        _CONFIG_TEMPLATE.format(
            port=port,
            host=LOOPBACK,
            host_key=host_key,
            pid_file=base_dir / "sshd.pid",
            authorized_keys=authorized_keys,
            bin_dir=bin_dir,
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
            bin_dir=bin_dir,
            units_dir=units_dir,
        )
    finally:
        process.stop(drain=5.0)
        _wait_for_orphan_zombies(timeout=3.0)
