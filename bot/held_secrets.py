"""The secret values tocsin holds, so that what it shows is redacted by value too.

Patterns catch text that looks like a secret (`password=...`, `Bearer ...`); a
target echoing a key as bare text does not look like one. tocsin knows the
values it took from the environment: every variable a `*_env` key names anywhere
in tocsin.yml (probe passwords, secret headers, heartbeat tokens, key
passphrases, and any `*_env` key added later), the Slack credentials, and the
password of a proxy URL in the environment. Values too short to tell from
ordinary words are left to the patterns (see `probes.redaction`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from bot.config.model import TocsinConfig
from probes.redaction import Redaction

SLACK_VARIABLES = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")
PROXY_VARIABLES = (
    "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
)  # fmt: skip


def named_variables(config: TocsinConfig) -> set[str]:
    """Every variable a `*_env` key names, wherever it stands in the file."""
    names: set[str] = set()
    pending: list[Any] = [config.model_dump()]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if str(key).lower().endswith("_env") and isinstance(value, str):
                    names.add(value)
                else:
                    pending.append(value)
        elif isinstance(node, (list, tuple)):
            pending.extend(node)
    return names


def held_secrets(config: TocsinConfig, environ: Mapping[str, str]) -> list[str]:
    """The values of those variables and of the Slack credentials that are set."""
    names = sorted(named_variables(config) | set(SLACK_VARIABLES))
    values = [environ[name] for name in names if environ.get(name)]
    for name in PROXY_VARIABLES:
        values.extend(_proxy_password(environ.get(name, "")))
    return values


def secret_redaction(config: TocsinConfig, environ: Mapping[str, str]) -> Redaction:
    return Redaction(held_secrets(config, environ))


def _proxy_password(url: str) -> list[str]:
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [password, unquote(password)] if password else []
