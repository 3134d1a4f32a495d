"""http(s) URLs as the http probe requests them: host in IDNA 2008, port, request target.

Browsers and curl map international names with IDNA 2008 (UTS #46, non-transitional):
`faß.de` is `xn--fa-hia.de`, another host than IDNA 2003's `fass.de`, so Python's
built-in `idna` codec (2003) would probe a different site. ASCII names are kept as they
are (lower-cased), because IDNA 2008 refuses underscores that internal names often have.
A trailing dot (`shop.example.` , a fully qualified name) is kept for DNS and the Host
header but not for TLS: certificates never carry it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import quote, urlsplit

import idna

_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"  # kept as they are; letters, digits and _.-~ always are


@dataclass(frozen=True)
class Url:
    """An http(s) URL split the way a request needs it."""

    scheme: str
    host: str
    port: int
    target: str
    text: str

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"

    @property
    def server_name(self) -> str:
        """The name TLS sends (SNI) and checks the certificate against."""
        return self.host.rstrip(".") if ":" not in self.host else self.host

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host.rstrip("."), self.port)


def parse_url(text: str) -> Url:
    """Raises ValueError with the fix when `text` is not an absolute http(s) URL.

    Spaces and non-ASCII characters in the path are percent-encoded (UTF-8; bytes that are
    not UTF-8 pass through unchanged when they came from a Location header).
    """
    parts = urlsplit(text.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"'{text}' is not an http(s) URL; write e.g. https://shop.example.com/")
    if parts.username is not None or parts.password is not None:
        raise ValueError("remove the user name and password from the URL: cards show the URL")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:  # `host:` with an empty port is the default port (RFC 3986); 0 is none
        raise ValueError(f"'{text}' has an invalid port; write a port from 1 to 65535")
    host = ascii_host(parts.hostname or "", text)
    if not host:
        raise ValueError(f"'{text}' has no host; write e.g. https://shop.example.com/")
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    target = quote(target, safe=_URL_SAFE, errors="surrogateescape")
    url = Url(scheme, host, port or (443 if scheme == "https" else 80), target, "")
    return replace(url, text=f"{scheme}://{url.host_header}{target}")


def ascii_host(host: str, text: str) -> str:
    """The host as DNS and TLS need it: IDNA 2008 for international names."""
    if host.isascii():
        if any(ch in host for ch in " /\\%\0") or host.startswith(".") or ".." in host:
            raise ValueError(f"'{text}' has an invalid host")
        return host.lower()
    dot = "." if host.endswith(".") else ""
    try:
        return idna.encode(host.rstrip("."), uts46=True).decode("ascii") + dot
    except idna.IDNAError as error:
        raise ValueError(f"'{text}' has an invalid international host name: {error}") from None
