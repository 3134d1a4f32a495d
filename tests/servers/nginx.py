"""A throwaway nginx serving a tiny static site plus fixed-status routes.

Routes (see ``ROUTES``): ``/`` static index.html (200), ``/health`` 200 "ok", ``/error``
500, ``/missing`` 404, ``/wrong-body`` 200 with other text, ``/no-content`` 204,
``/big.bin`` 2 MiB, ``/redirect`` 301 to ``/health`` (relative Location),
``/redirect-absolute`` 302 (absolute), ``/redirect-chain`` two hops, ``/loop-a`` and
``/loop-b`` a redirect loop, ``/invalid-key`` 401 quoting the ``X-Api-Key`` it got,
``/slow`` (first byte after ``?ms=``, default 400 ms) and ``/up/...``, both proxied to a
small upstream (``tests.servers.upstream``) because stock nginx has no way to delay an
answer. Tests that need more routes pass extra ``location``
blocks, or whole ``server`` blocks (the TLS fixtures do).
"""

from __future__ import annotations

import http.client
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from string import Template

from tests.servers.ports import LOOPBACK, free_port
from tests.servers.process import ServerProcess, find_binary
from tests.servers.upstream import running_upstream

PACKAGE = "nginx"
INDEX_TEXT = "tocsin test shop"
_INDEX_HTML = f"<!doctype html>\n<html><body><h1>{INDEX_TEXT}</h1></body></html>\n"
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
WRONG_BODY_TEXT = "maintenance in progress"
BIG_BODY_SIZE = 2 * 1024 * 1024

# The routes every server block of the test nginx serves; $upstream is the upstream's port.
ROUTES = Template("""\
        location / {
            index index.html;
        }
        location = /health {
            default_type text/plain;
            return 200 "ok";
        }
        location = /error {
            return 500;
        }
        location = /missing {
            return 404;
        }
        location = /wrong-body {
            default_type text/plain;
            return 200 "$wrong_body";
        }
        location = /no-content {
            return 204;
        }
        location = /redirect {
            absolute_redirect off;
            return 301 /health;
        }
        location = /redirect-absolute {
            return 302 $$scheme://$$host:$$server_port/health;
        }
        location = /redirect-chain {
            absolute_redirect off;
            return 302 /redirect;
        }
        location = /loop-a {
            absolute_redirect off;
            return 302 /loop-b;
        }
        location = /loop-b {
            absolute_redirect off;
            return 302 /loop-a;
        }
        location = /slow {
            proxy_pass http://$host:$upstream/slow;
        }
        location /up/ {
            proxy_pass http://$host:$upstream/;
        }
        location = /elsewhere {
            return 302 http://$host:$upstream/echo;
        }
        location = /here-again {
            absolute_redirect off;
            return 302 /up/echo;
        }
        location = /invalid-key {
            default_type text/plain;
            return 401 "invalid key $$http_x_api_key";
        }
""")

# Placeholders use string.Template ($name); nginx variables inside extra
# location blocks are inserted verbatim and need no escaping.
NGINX_CONF_TEMPLATE = Template("""\
daemon off;
$user_line
worker_processes 1;
pid $prefix/nginx.pid;
error_log stderr;

events {
    worker_connections 512;
}

http {
    access_log $prefix/access.log;
    $temp_paths
    types {
        text/html html;
        text/plain txt;
    }
    default_type application/octet-stream;

    server {
        listen $host:$port;
        server_name localhost;
        root $root;

$routes
$extra_locations
    }
$extra_servers
}
""")


@dataclass(frozen=True)
class NginxServer:
    """Where the test nginx listens and which directory it serves."""

    host: str
    port: int
    base_url: str
    root: Path
    prefix: Path
    config_path: Path
    access_log: Path
    log_path: Path
    pid: int
    upstream_url: str = ""

    def url(self, path: str = "/") -> str:
        """Absolute URL for ``path`` on this server."""
        return f"{self.base_url}{path if path.startswith('/') else '/' + path}"


def routes(upstream_port: int) -> str:
    """The standard ``location`` blocks, for the main server block or an extra one."""
    return ROUTES.substitute(host=LOOPBACK, upstream=upstream_port, wrong_body=WRONG_BODY_TEXT)


def render_config(
    prefix: Path,
    root: Path,
    port: int,
    extra_locations: Sequence[str] = (),
    extra_servers: Sequence[str] = (),
    upstream_port: int = 0,
) -> str:
    """Fill the template; extras are complete ``location ... { }`` / ``server { }`` blocks."""
    # Started as root, workers would drop to nobody and need the traverse bit on every
    # directory above the root; pytest takes it off its temp directory whenever another
    # session starts. A throwaway test server keeps the workers' user instead.
    user_line = "user root root;" if os.geteuid() == 0 else ""
    temp_paths = "\n    ".join(f"{kind}_temp_path {prefix}/tmp/{kind};" for kind in _TEMP_PATHS)
    extra = "\n".join(f"        {block.strip()}" for block in extra_locations)
    return NGINX_CONF_TEMPLATE.substitute(
        user_line=user_line,
        prefix=prefix,
        temp_paths=temp_paths,
        host=LOOPBACK,
        port=port,
        root=root,
        routes=routes(upstream_port),
        extra_locations=extra,
        extra_servers="\n".join(f"    {block.strip()}" for block in extra_servers),
    )


def _healthy(host: str, port: int) -> bool:
    """True once /health answers 200, i.e. a worker is serving requests."""
    conn = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


@contextmanager
def running_nginx(
    base_dir: Path,
    extra_locations: Sequence[str] = (),
    extra_servers: Callable[[int], Sequence[str]] | None = None,
) -> Iterator[NginxServer]:
    """Run nginx in the foreground with its prefix, logs and temp dirs under ``base_dir``.

    ``extra_servers`` gets the upstream's port and returns whole ``server { }`` blocks,
    which can serve ``routes(upstream_port)`` too.
    """
    binary = find_binary("nginx", PACKAGE)
    root = base_dir / "www"
    root.mkdir()
    (root / "index.html").write_text(_INDEX_HTML)
    (root / "big.bin").write_bytes(b"tocsin big body\n" * (BIG_BODY_SIZE // 16))
    (base_dir / "tmp").mkdir()
    port = free_port()
    with running_upstream() as upstream_port:
        servers = extra_servers(upstream_port) if extra_servers else ()
        config_path = base_dir / "nginx.conf"
        config_path.write_text(
            render_config(base_dir, root, port, extra_locations, servers, upstream_port)
        )

        argv = [binary, "-e", "stderr", "-p", str(base_dir), "-c", str(config_path)]
        process = ServerProcess("nginx", argv, base_dir / "nginx.log")
        process.start(lambda: _healthy(LOOPBACK, port))
        try:
            yield NginxServer(
                host=LOOPBACK,
                port=port,
                base_url=f"http://{LOOPBACK}:{port}",
                root=root,
                prefix=base_dir,
                config_path=config_path,
                access_log=base_dir / "access.log",
                log_path=process.log_path,
                pid=process.pid,
                upstream_url=f"http://{LOOPBACK}:{upstream_port}",
            )
        finally:
            process.stop()
