"""Smoke tests: each real test server starts and speaks its protocol.

The fixtures come from the ``tests.servers.fixtures`` plugin loaded by conftest.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import aiomysql
import asyncssh
import pytest
import redis.asyncio

from tests.servers.fixtures import missing_binary
from tests.servers.mariadb import MariaDBServer
from tests.servers.nginx import INDEX_TEXT, NginxServer
from tests.servers.process import MissingBinaryError
from tests.servers.redis import RedisServer
from tests.servers.sshd import SSHServer, known_hosts_line


async def test_redis_answers_ping(redis_server: RedisServer) -> None:
    client = redis.asyncio.Redis(host=redis_server.host, port=redis_server.port)
    try:
        assert await client.ping() is True
    finally:
        await client.aclose()


async def test_mariadb_tcp_user_can_query(mariadb_server: MariaDBServer) -> None:
    conn = await aiomysql.connect(
        host=mariadb_server.host,
        port=mariadb_server.port,
        user=mariadb_server.user,
        password=mariadb_server.password,
        db=mariadb_server.database,
    )
    try:
        async with conn.cursor() as cur:
            await cur.execute("SELECT 1")
            assert await cur.fetchone() == (1,)
            # Grants later tests rely on: process list and replica status.
            await cur.execute("SHOW FULL PROCESSLIST")
            assert await cur.fetchall()
            await cur.execute("SHOW REPLICA STATUS")
    finally:
        conn.close()


async def test_sshd_runs_command_with_pinned_host_key(sshd_server: SSHServer) -> None:
    async with asyncssh.connect(
        sshd_server.host,
        port=sshd_server.port,
        username=sshd_server.username,
        client_keys=[str(sshd_server.client_key)],
        known_hosts=str(sshd_server.known_hosts),
        agent_path=None,
        config=None,
    ) as conn:
        result = await conn.run("echo hello", check=True)
    assert result.stdout == "hello\n"


async def test_sshd_rejects_unknown_host_key(sshd_server: SSHServer, tmp_path: Path) -> None:
    other_public_key = tmp_path / "other_host_key.pub"
    other_public_key.write_bytes(
        asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh")
    )
    wrong_known_hosts = tmp_path / "known_hosts"
    wrong_known_hosts.write_text(
        known_hosts_line(sshd_server.host, sshd_server.port, other_public_key)
    )
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        async with asyncssh.connect(
            sshd_server.host,
            port=sshd_server.port,
            username=sshd_server.username,
            client_keys=[str(sshd_server.client_key)],
            known_hosts=str(wrong_known_hosts),
            agent_path=None,
            config=None,
        ):
            pass


async def test_nginx_serves_shop_and_error(nginx_server: NginxServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(nginx_server.url("/")) as response:
            assert response.status == 200
            assert INDEX_TEXT in await response.text()
        async with session.get(nginx_server.url("/error")) as response:
            assert response.status == 500


def test_missing_server_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CI must never go green by skipping a real-server test."""
    missing = MissingBinaryError("mariadbd", "mariadb-server")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y mariadb-server"):
        missing_binary(missing)
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y mariadb-server"):
        missing_binary(missing)
