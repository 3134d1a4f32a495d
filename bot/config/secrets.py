"""Secrets never live in tocsin.yml: find any that were written there anyway.

This runs on the raw YAML data, before the schema, so it also catches secrets
in kind-specific probe fields and in keys the schema does not know.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from bot.config.problems import ConfigProblem, KeyPath, format_path

SECRET_KEYS = frozenset(
    {
        "password", "passwd", "pass", "secret", "token", "api_key", "apikey", "api_token",
        "passphrase", "key_passphrase", "private_key", "signing_secret", "client_secret",
        "authorization", "auth_token", "access_token", "cookie",
    }
)  # fmt: skip
SECRET_VALUES = (
    (re.compile(r"^xox[abposr]-"), "a Slack token", "SLACK_BOT_TOKEN"),
    (re.compile(r"^xapp-"), "a Slack app-level token", "SLACK_APP_TOKEN"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key", "a key file path"),
)
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def secret_problems(data: Any) -> list[ConfigProblem]:
    """Every inline secret, and every `*_env` field that does not name a variable."""
    problems = []
    for where, value in _leaves(data, ()):
        key = where[-1] if isinstance(where[-1], str) else ""
        lowered = key.lower()
        if lowered in SECRET_KEYS and value not in (None, ""):
            variable = _suggested_variable(data, where)
            problems.append(
                ConfigProblem(
                    where,
                    "secrets are not written in the file; put it in an environment variable and "
                    f"name it here instead: `{key}_env: {variable}`",
                )
            )
        elif lowered.endswith("_env") and not (isinstance(value, str) and ENV_NAME.match(value)):
            problems.append(
                ConfigProblem(
                    where,
                    f"`{key}` names an environment variable such as SHOP_DB_PASSWORD, not the "
                    "secret itself; move the value into the environment",
                )
            )
        elif isinstance(value, str):
            problems.extend(
                ConfigProblem(where, f"this looks like {what}; use {instead} instead")
                for pattern, what, instead in SECRET_VALUES
                if pattern.search(value)
            )
    return problems


def unset_variables(data: Any) -> list[str]:
    """Warnings for `*_env` fields naming variables missing from this environment."""
    return [
        f"{format_path(where)}: environment variable {value} is not set here"
        for where, value in _leaves(data, ())
        if isinstance(where[-1], str)
        and where[-1].lower().endswith("_env")
        and isinstance(value, str)
        and ENV_NAME.match(value)
        and value not in os.environ
    ]


def _leaves(data: Any, path: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    """(path, value) of every scalar in the document."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, (*path, str(key)))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _leaves(item, (*path, index))
    elif path:
        yield path, data


def _suggested_variable(data: Any, where: KeyPath) -> str:
    """A variable name from the owner's id or name, e.g. SHOP_DB_PASSWORD."""
    owner = "tocsin"
    if len(where) > 2 and where[0] == "probes" and isinstance(where[1], int):
        probe = data["probes"][where[1]]
        owner = str(probe.get("id", owner)) if isinstance(probe, dict) else owner
    elif len(where) > 2:
        owner = str(where[1])
    return re.sub(r"[^A-Z0-9]+", "_", f"{owner}_{where[-1]}".upper()).strip("_")
