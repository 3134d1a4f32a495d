"""A throwaway MariaDB server with a ``tocsin`` TCP user and a ``tocsin_test`` database.

Setup SQL runs through the ``mariadb`` command-line client over the unix
socket as root, so the harness does not depend on the driver under test.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers.ports import LOOPBACK, free_port, port_accepts
from tests.servers.process import ServerProcess, current_user, find_binary, run_checked

SERVER_PACKAGE = "mariadb-server"
CLIENT_PACKAGE = "mariadb-client"
DATABASE = "tocsin_test"
USER = "tocsin"
# Later tests read the process list and replica status, hence the global grants.
# Since MariaDB 10.5.9, SHOW REPLICA STATUS needs SLAVE MONITOR on top of REPLICATION CLIENT.
_SETUP_SQL = """
CREATE DATABASE `{db}`;
CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';
CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}';
GRANT ALL PRIVILEGES ON `{db}`.* TO '{user}'@'127.0.0.1', '{user}'@'localhost';
GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR ON *.*
    TO '{user}'@'127.0.0.1', '{user}'@'localhost';
FLUSH PRIVILEGES;
"""


@dataclass(frozen=True)
class MariaDBServer:
    """Connection facts for the test MariaDB: TCP app user plus root over the socket."""

    host: str
    port: int
    user: str
    password: str
    database: str
    socket_path: Path
    root_user: str
    root_password: str
    client_binary: str
    base_dir: Path
    datadir: Path
    error_log: Path
    pid: int

    @property
    def root_client_argv(self) -> list[str]:
        """``mariadb`` client command line logged in as root over the socket."""
        return [
            self.client_binary,
            "--no-defaults",
            "-S",
            str(self.socket_path),
            f"-u{self.root_user}",
        ]

    def root_sql(self, sql: str, database: str | None = None) -> str:
        """Run ``sql`` as root through the client and return its tab-separated output."""
        argv = [*self.root_client_argv, "--batch", "-e", sql]
        if database is not None:
            argv.append(database)
        return run_checked(argv, "mariadb client")


def _install_db(install_binary: str, datadir: Path, os_user: str) -> None:
    """Create a fresh system database; root authenticates by (empty) password."""
    run_checked(
        [
            install_binary,
            "--no-defaults",
            f"--datadir={datadir}",
            f"--user={os_user}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        "mariadb-install-db",
        timeout=120.0,
    )


def _server_argv(
    binary: str, base_dir: Path, port: int, os_user: str, extra_args: Sequence[str] = ()
) -> Sequence[str]:
    return [
        binary,
        "--no-defaults",
        f"--datadir={base_dir / 'data'}",
        f"--socket={base_dir / 'sock'}",
        f"--port={port}",
        f"--bind-address={LOOPBACK}",
        f"--pid-file={base_dir / 'pid'}",
        f"--log-error={base_dir / 'err.log'}",
        # mariadbd refuses to run as root unless told so explicitly.
        f"--user={os_user}",
        *extra_args,
    ]


def start_mariadbd(base_dir: Path, port: int, extra_args: Sequence[str] = ()) -> ServerProcess:
    """Run mariadbd on the datadir under ``base_dir`` and wait for its port.

    Also restarts a server on its old datadir and port (after a test killed it);
    the caller stops the returned process.
    """
    binary = find_binary("mariadbd", SERVER_PACKAGE)
    process = ServerProcess(
        "mariadbd",
        _server_argv(binary, base_dir, port, current_user(), extra_args),
        base_dir / "mariadbd.log",
        extra_logs=(base_dir / "err.log",),
    )
    process.start(lambda: port_accepts(LOOPBACK, port))
    return process


@contextmanager
def running_mariadb(base_dir: Path, extra_args: Sequence[str] = ()) -> Iterator[MariaDBServer]:
    """Initialise a datadir in ``base_dir``, run mariadbd and create the test user.

    ``extra_args`` go to mariadbd (``--server-id=1``, ``--log-bin=...`` for a primary).
    """
    find_binary("mariadbd", SERVER_PACKAGE)
    install_binary = find_binary("mariadb-install-db", SERVER_PACKAGE)
    client_binary = find_binary("mariadb", CLIENT_PACKAGE)
    os_user = current_user()
    datadir = base_dir / "data"
    _install_db(install_binary, datadir, os_user)

    port = free_port()
    error_log = base_dir / "err.log"
    process = start_mariadbd(base_dir, port, extra_args)
    try:
        server = MariaDBServer(
            host=LOOPBACK,
            port=port,
            user=USER,
            password=secrets.token_urlsafe(18),
            database=DATABASE,
            socket_path=base_dir / "sock",
            root_user="root",
            root_password="",
            client_binary=client_binary,
            base_dir=base_dir,
            datadir=datadir,
            error_log=error_log,
            pid=process.pid,
        )
        server.root_sql(_SETUP_SQL.format(db=DATABASE, user=USER, password=server.password))
        yield server
    finally:
        process.stop()
