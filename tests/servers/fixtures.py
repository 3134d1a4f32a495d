"""Session-scoped pytest fixtures for the real loopback servers.

Load with ``pytest_plugins = ["tests.servers.fixtures"]`` in the top-level
conftest, or star-import this module there. A missing server binary skips
locally but fails under ``CI=true``: CI must never go green by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest

from tests.servers.mariadb import MariaDBServer, running_mariadb
from tests.servers.nginx import NginxServer, running_nginx
from tests.servers.process import MissingBinaryError
from tests.servers.redis import RedisServer, running_redis
from tests.servers.sshd import SSHServer, running_sshd

__all__ = ["mariadb_server", "nginx_server", "redis_server", "sshd_server"]


def running_in_ci() -> bool:
    """True when the CI environment variable says so (GitHub/GitLab set CI=true)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def missing_binary(error: MissingBinaryError) -> NoReturn:
    """Fail under CI, skip elsewhere, always naming the apt package to install."""
    message = f"{error.binary} is not installed: apt-get install -y {error.package}"
    # "from None": the report stays one line instead of a chained MissingBinaryError.
    if running_in_ci():
        failure = f"{message} (a missing server is a failure under CI=true)"
        raise pytest.fail.Exception(failure, pytrace=False) from None
    raise pytest.skip.Exception(message) from None


@contextmanager
def _binaries_required() -> Iterator[None]:
    try:
        yield
    except MissingBinaryError as error:
        missing_binary(error)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server on a free loopback port, shared by the whole session."""
    with _binaries_required(), running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """A MariaDB with database ``tocsin_test`` and TCP user ``tocsin``."""
    with _binaries_required(), running_mariadb(tmp_path_factory.mktemp("mariadb")) as server:
        yield server


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """An sshd accepting a generated key for the current user, host key pinned."""
    with _binaries_required(), running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="session")
def nginx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    """An nginx serving the static test shop and fixed-status routes."""
    with _binaries_required(), running_nginx(tmp_path_factory.mktemp("nginx")) as server:
        yield server
