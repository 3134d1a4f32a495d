"""Probing through an egress proxy: which proxy a URL takes, and the CONNECT tunnel.

`proxy:` is either a URL (`http://proxy.internal:3128`) or `environment`, which reads
`HTTPS_PROXY`/`HTTP_PROXY` (lower case first, as curl does) and honours `NO_PROXY` as
curl reads it: `*`, names with their subdomains (`.corp` or `corp`), addresses and CIDR
ranges. Credentials may come only from the environment
(`HTTPS_PROXY=http://user:pass@proxy:3128`): tocsin.yml holds no secrets.

The proxy is tocsin's own infrastructure, so a proxy that cannot be reached, refuses us or
wants credentials is an `error` (tocsin cannot tell how the target is); a proxy that
reached out and could not get through (500, 502, 503, 504) speaks for the target: `fail`.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from probes.http_url import Url, ascii_host
from probes.net import ProbeProblem
from probes.result import Status

FROM_ENVIRONMENT = "environment"
PROXY_VARIABLES = tuple(
    name
    for base in ("https_proxy", "http_proxy", "all_proxy", "no_proxy")
    for name in (base, base.upper())
)
TARGET_FAULTS = frozenset({500, 502, 503, 504})  # tinyproxy says 500, squid 503


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    authorization: str | None = None  # the Proxy-Authorization value, from the environment

    @property
    def where(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_proxy(text: str, *, credentials: bool) -> Proxy:
    """Raises ValueError with the fix; `credentials` allows user:password (environment)."""
    parts = urlsplit(text.strip() if "://" in text else f"http://{text.strip()}")
    if parts.scheme.lower() != "http":
        raise ValueError(
            f"proxy '{text}': only http:// proxies are supported (https URLs still go "
            "through them, tunnelled with CONNECT); write e.g. http://proxy.internal:3128"
        )
    try:
        port = parts.port or 3128
    except ValueError:
        raise ValueError(f"proxy '{text}' has an invalid port") from None
    host = ascii_host(parts.hostname or "", text)
    if not host:
        raise ValueError(f"proxy '{text}' has no host; write e.g. http://proxy.internal:3128")
    authorization = None
    if parts.username is not None:
        if not credentials:
            raise ValueError(
                "remove the credentials from the proxy URL: set HTTPS_PROXY (with them) in "
                "tocsin's environment and write `proxy: environment`"
            )
        user = unquote(parts.username)
        secret = unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")
        authorization = f"Basic {token}"
    return Proxy(host, port, authorization)


def proxy_for(url: Url, setting: str | None, environ: Mapping[str, str]) -> Proxy | None:
    """The proxy `url` goes through, or None for a direct connection."""
    if setting is None:
        return None
    if setting != FROM_ENVIRONMENT:
        return parse_proxy(setting, credentials=False)
    scheme = url.scheme
    names = (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY")
    value = next((environ[name] for name in names if environ.get(name)), None)
    if value is None:
        return None
    no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
    if no_proxy and bypasses(url.host, no_proxy):
        return None
    try:
        return parse_proxy(value, credentials=True)
    except ValueError as error:
        raise ProbeProblem(Status.ERROR, f"the proxy in the environment: {error}") from None


def bypasses(host: str, no_proxy: str) -> bool:
    """Whether `NO_PROXY` sends `host` direct."""
    host = host.rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in (e.strip().lower() for e in no_proxy.split(",")[:256]):
        if entry == "*":
            return True
        name = entry.lstrip(".").rstrip(".")
        if not name:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(name.strip("[]"), strict=False):
                    return True
            except ValueError:
                pass
            continue
        if host == name or host.endswith(f".{name}"):
            return True
    return False


def connect_request(url: Url, proxy: Proxy) -> bytes:
    """`CONNECT host:port`, which asks the proxy for a tunnel to the target."""
    authority = f"[{url.host}]:{url.port}" if ":" in url.host else f"{url.host}:{url.port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def tunnel_refused(status: int, status_line: str, url: Url, proxy: Proxy) -> ProbeProblem:
    """What a non-2xx answer to CONNECT means for the probe's verdict."""
    where = f"{url.host}:{url.port}"
    said = f"proxy {proxy.where} answered '{status_line}' to CONNECT {where}"
    if status in TARGET_FAULTS:
        return ProbeProblem(Status.FAIL, said)
    if status == 407:
        return ProbeProblem(Status.ERROR, f"{said}: set its credentials in HTTPS_PROXY")
    return ProbeProblem(Status.ERROR, said)
