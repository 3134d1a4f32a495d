"""The runbook examples' probes, pointed at the loopback test servers, and what those servers serve.

An example runs as written except for where its probes look: a URL keeps its path and query, a
mysql probe its user, database and query, an ssh probe its command. Only the `hosts:` entries
and the keys in TARGET_KEYS change, so a probe that works here works as the example says.
"""

from __future__ import annotations

import contextlib
import copy
import socket
import socketserver
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests.servers.ports import LOOPBACK

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
RUNBOOK_EXAMPLES = ("woocommerce.yml", "bazar.yml", "edubot.yml", "ecommerce-platform.yml")

# What a rewrite may change, per kind (`ca_file` trusts the test CA); the rest stays as written.
TARGET_KEYS: dict[str, frozenset[str]] = {
    "http": frozenset({"url", "ca_file"}),
    "tls": frozenset({"host", "port", "ca_file"}),
    "tcp": frozenset({"host", "port"}),
    "mysql": frozenset({"host", "port"}),
    "redis": frozenset({"host", "port"}),
    "ssh": frozenset(),  # reaches the test sshd through its `hosts:` entry
    "heartbeat": frozenset(),  # reads the ledger, no target
}
HOST_KEYS = frozenset({"address", "port", "user", "key", "known_hosts"})


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class SshLogin:
    """What a `hosts:` entry needs to reach the test sshd, host key pinned."""

    address: str
    port: int
    user: str
    key: Path
    known_hosts: Path


@dataclass(frozen=True)
class Targets:
    """The test servers standing in for the examples' hosts."""

    http: Endpoint
    https: Endpoint
    ca_file: Path
    smtp: Endpoint
    mysql: Endpoint
    mysql_performance: Endpoint  # performance_schema on, as MySQL 8 has it by default
    mysql_replica: Endpoint
    redis: Endpoint
    ssh: SshLogin


def mysql_target(probe: Mapping[str, Any], targets: Targets) -> Endpoint:
    """Replication checks read a replica; performance_schema queries need it switched on."""
    if probe.get("check") == "replication":
        return targets.mysql_replica
    if "performance_schema" in str(probe.get("query", "")).lower():
        return targets.mysql_performance
    return targets.mysql


def rewrite_probe(probe: Mapping[str, Any], targets: Targets) -> dict[str, Any]:
    """`probe` aimed at the test servers; only its TARGET_KEYS change."""
    moved = copy.deepcopy(dict(probe))
    kind = probe["kind"]
    if kind == "http":
        url = urlsplit(probe["url"])
        server = targets.https if url.scheme == "https" else targets.http
        moved["url"] = urlunsplit((url.scheme, server.netloc, url.path, url.query, ""))
        if url.scheme == "https":
            moved["ca_file"] = str(targets.ca_file)
    elif kind == "tls":
        moved |= {"host": targets.https.host, "port": targets.https.port}
        moved["ca_file"] = str(targets.ca_file)
    elif kind == "tcp":
        moved |= {"host": targets.smtp.host, "port": targets.smtp.port}
    elif kind == "redis":
        moved |= {"host": targets.redis.host, "port": targets.redis.port}
    elif kind == "mysql":
        server = mysql_target(probe, targets)
        moved |= {"host": server.host, "port": server.port}
    return moved


def systemctl_units(data: Mapping[str, Any]) -> set[str]:
    """Units that ssh probes ask `systemctl is-active` about."""
    return {
        unit
        for probe in data.get("probes", [])
        if probe.get("command", [])[:2] == ["systemctl", "is-active"]
        for unit in probe["command"][2:]
    }


def rewrite_config(data: Mapping[str, Any], targets: Targets, storage: Path) -> dict[str, Any]:
    """A whole example aimed at the test servers, its store under `storage`."""
    rewritten = copy.deepcopy(dict(data))
    rewritten["storage"] = {**data.get("storage", {}), "path": str(storage)}
    login = targets.ssh
    rewritten["hosts"] = {
        name: {
            **entry,
            "address": login.address,
            "port": login.port,
            "user": login.user,
            "key": str(login.key),
            "known_hosts": str(login.known_hosts),
        }
        for name, entry in data.get("hosts", {}).items()
    }
    rewritten["probes"] = [rewrite_probe(probe, targets) for probe in data.get("probes", [])]
    return rewritten


# --- MariaDB ----------------------------------------------------------------------------------

PROBE_USER = "tocsin_probe"  # the examples' mysql user, created on each test server
EXAMPLE_DATABASES = ("woocommerce_db", "bazar_marketplace", "wordpress_db")
# WordPress writes post_date in the site's time zone and post_date_gmt in UTC. A zone far from
# the server's (UTC here) shows a query mixing post_date with NOW() for what it is.
SITE_UTC_OFFSET = timedelta(hours=10)


@dataclass(frozen=True)
class Order:
    placed_ago: timedelta
    status: str


ORDERS = (
    Order(timedelta(minutes=10), "wc-processing"),
    Order(timedelta(minutes=40), "wc-completed"),
    Order(timedelta(hours=2), "wc-failed"),  # just outside store-failed-order's hour
    Order(timedelta(hours=3), "wc-failed"),
    Order(timedelta(hours=30), "wc-failed"),
    Order(timedelta(days=3), "wc-failed"),
)
# wpxedubot_cache matches LIKE 'wp_edubot%' only if the example's `\_` escape got lost.
EDUBOT_TABLES = ("wp_edubot_conversions", "wp_edubot_attribution_sessions", "wp_edubot_logs")
OTHER_WORDPRESS_TABLES = ("wp_options", "wpxedubot_cache")


_CLIENT_HOSTS = ("127.0.0.1", "localhost")


def probe_user_sql(password: str, grants: Sequence[str] = ()) -> str:
    """The examples' probe user, reachable over TCP, with `grants` (`SELECT ON db.*`, ...)."""
    statements = [
        f"CREATE USER '{PROBE_USER}'@'{host}' IDENTIFIED BY '{password}';" for host in _CLIENT_HOSTS
    ]
    statements += [
        f"GRANT {grant} TO '{PROBE_USER}'@'{host}';" for grant in grants for host in _CLIENT_HOSTS
    ]
    return "\n".join(statements)


def drop_probe_user_sql() -> str:
    return "\n".join(f"DROP USER IF EXISTS '{PROBE_USER}'@'{host}';" for host in _CLIENT_HOSTS)


def failed_orders_today(now: datetime) -> int:
    """Failed orders on the current UTC day, as store-failed-orders-today should count them."""
    return sum(
        1
        for order in ORDERS
        if order.status == "wc-failed" and (now - order.placed_ago).date() == now.date()
    )


def example_databases_sql(now: datetime) -> str:
    """The tables the examples' queries read, with rows that leave every probe healthy."""
    rows = []
    for number, order in enumerate(ORDERS, start=1):
        placed = now - order.placed_ago
        local = placed + SITE_UTC_OFFSET
        rows.append(
            f"({number}, '{local:%Y-%m-%d %H:%M:%S}', '{placed:%Y-%m-%d %H:%M:%S}',"
            f" 'Order #{number}', '{order.status}', 'shop_order')"
        )
    product = now - timedelta(days=40)
    rows.append(
        f"({len(ORDERS) + 1}, '{product + SITE_UTC_OFFSET:%Y-%m-%d %H:%M:%S}',"
        f" '{product:%Y-%m-%d %H:%M:%S}', 'Oak flooring 14 mm', 'publish', 'product')"
    )
    wordpress_tables = [
        f"CREATE TABLE wordpress_db.`{table}` (id BIGINT UNSIGNED PRIMARY KEY) ENGINE=InnoDB;"
        for table in (*EDUBOT_TABLES, *OTHER_WORDPRESS_TABLES)
    ]
    return "\n".join(
        [
            *(f"CREATE DATABASE `{name}`;" for name in EXAMPLE_DATABASES),
            # The columns of WordPress's own wp_posts that the store's queries read.
            """CREATE TABLE woocommerce_db.wp_posts (
                ID BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
                post_date DATETIME NOT NULL,
                post_date_gmt DATETIME NOT NULL,
                post_title TEXT NOT NULL,
                post_status VARCHAR(20) NOT NULL DEFAULT 'publish',
                post_type VARCHAR(20) NOT NULL DEFAULT 'post',
                KEY type_status_date (post_type, post_status, post_date, ID)
            ) ENGINE=InnoDB;""",
            "INSERT INTO woocommerce_db.wp_posts"
            " (ID, post_date, post_date_gmt, post_title, post_status, post_type) VALUES "
            + ", ".join(rows)
            + ";",
            *wordpress_tables,
        ]
    )


def drop_example_databases_sql() -> str:
    return "\n".join(f"DROP DATABASE IF EXISTS `{name}`;" for name in EXAMPLE_DATABASES)


# --- Web pages ----------------------------------------------------------------------------------

# Under the TLS nginx's root: what the examples' https probes ask for ("/" and "/health" are
# the fixture's own index page and route).
HTTPS_PAGES = {
    "shop/index.html": "<!doctype html>\n<html><body><h1>Shop</h1><ul class=products>"
    "<li>Oak flooring 14 mm</li></ul></body></html>\n",
    "wp-login.php": "<!doctype html>\n<html><body><form name=loginform id=loginform"
    ' method=post><input type=text name=log id="user_login"><input type=password name=pwd'
    ' id="user_pass"></form></body></html>\n',
    "wp-admin/admin.php": "<!doctype html>\n<html><body><h1>EduBot dashboard</h1></body></html>\n",
    "api/health": '{"status": "healthy", "database": "up", "redis": "up"}\n',
}
# Under the plain nginx's root: Elasticsearch's cluster health, as bazar-elasticsearch reads it.
HTTP_PAGES = {
    "_cluster/health": '{"cluster_name": "bazar", "status": "green", "timed_out": false,'
    ' "number_of_nodes": 1}\n',
}


# --- Files the ssh commands read --------------------------------------------------------------

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def wordpress_stamp(moment: datetime) -> str:
    """`[23-Nov-2025 08:00:05 UTC]`: how WordPress (PHP's error_log) stamps debug.log lines."""
    month = MONTHS[moment.month - 1]
    return f"[{moment.day:02d}-{month}-{moment.year} {moment:%H:%M:%S} UTC]"


@dataclass(frozen=True)
class DebugLog:
    text: str
    error_lines: int  # lines matching fatal|error, any case (store-php-errors)
    errors_today: int  # today's lines with ERROR (edubot-errors)


def debug_log(now: datetime) -> DebugLog:
    """A debug.log with lines from yesterday and today; `now` is UTC."""
    yesterday = now - timedelta(days=1)
    today = now.replace(hour=0, minute=0, second=5, microsecond=0)
    lines = [
        f"{wordpress_stamp(yesterday)} PHP Fatal error:  Uncaught Error: Call to undefined"
        " function wc_get_product() in /var/www/html/wp-content/plugins/sync/sync.php:88",
        f"{wordpress_stamp(yesterday)} EduBot ERROR: OpenAI request timed out after 30s",
        f'{wordpress_stamp(today)} PHP Warning:  Undefined array key "sku" in'
        " /var/www/html/wp-content/plugins/sync/import.php on line 214",
        f"{wordpress_stamp(today + timedelta(seconds=1))} EduBot ERROR: OpenAI request timed out",
        f"{wordpress_stamp(today + timedelta(seconds=2))} EduBot ERROR: conversion not recorded"
        " for session 4711",
        f"{wordpress_stamp(today + timedelta(seconds=3))} PHP Deprecated:  Function"
        " wp_make_content_images_responsive is deprecated",
    ]
    return DebugLog("\n".join(lines) + "\n", error_lines=4, errors_today=2)


def access_log(now: datetime, requests: int, server_errors: int) -> str:
    """nginx combined-format lines, `server_errors` of them 5xx."""
    stamp = f"{now:%d}/{MONTHS[now.month - 1]}/{now:%Y:%H:%M:%S} +0000"
    lines = [
        f'203.0.113.{n % 250 + 1} - - [{stamp}] "GET /shop/ HTTP/1.1"'
        f' {503 if n < server_errors else 200} 5120 "-" "Mozilla/5.0"'
        for n in range(requests)
    ]
    return "\n".join(lines) + "\n"


class Scratch:
    """Files and directories made for the test and removed after it.

    Anything that already existed is left exactly as it was: on a host with a real /var/www or
    /var/log/nginx the probes read those, and nothing there is written or removed.
    """

    def __init__(self) -> None:
        self._made: list[Path] = []

    def directory(self, path: Path) -> bool:
        """Make `path` and its missing parents; True when it did not exist before."""
        if path.exists():
            return False
        self.directory(path.parent)
        path.mkdir()
        path.chmod(0o755)  # nginx workers run as nobody when the tests run as root
        self._made.append(path)
        return True

    def file(self, path: Path, text: str) -> bool:
        """Write `path` unless it exists; True when this wrote it."""
        if path.exists() or path.is_symlink():
            return False
        self.directory(path.parent)
        path.write_text(text)
        path.chmod(0o644)
        self._made.append(path)
        return True

    def remove(self) -> None:
        """Newest first; a directory someone else has put files into stays."""
        while self._made:
            path = self._made.pop()
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()
                else:
                    path.unlink()


# --- Listeners and heartbeats -----------------------------------------------------------------

SMTP_BANNER = b"220 smtp.example.com ESMTP Postfix (Debian/GNU)\r\n"


class _BannerServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, banner: bytes) -> None:
        super().__init__((LOOPBACK, 0), _Greeter)
        self.banner = banner


class _Greeter(socketserver.BaseRequestHandler):
    """Greets like a mail relay, then waits for the client to hang up (or 5 s)."""

    def handle(self) -> None:
        assert isinstance(self.server, _BannerServer)
        connection: socket.socket = self.request
        connection.settimeout(5.0)
        with contextlib.suppress(OSError):
            connection.sendall(self.server.banner)
            while connection.recv(1024):
                pass


@contextmanager
def banner_server(banner: bytes = SMTP_BANNER) -> Iterator[Endpoint]:
    """A TCP listener in a thread, so it answers whichever event loop (or none) is running."""
    server = _BannerServer(banner)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    try:
        yield Endpoint(LOOPBACK, int(server.server_address[1]))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class PingLedger:
    """The heartbeat listener's ledger after every job pinged at `pinged` and none failed."""

    pinged: datetime

    def last_ping(self, probe_id: str) -> datetime | None:
        return self.pinged

    def failed_at(self, probe_id: str) -> datetime | None:
        return None

    def watching_since(self, probe_id: str) -> datetime:
        return self.pinged - timedelta(days=30)
