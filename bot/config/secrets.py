"""Secrets never live in tocsin.yml: find any that were written there anyway.

A heartbeat token the environment does hold is refused when it is too short to
be safe from guessing (its value is never shown).

This runs on the raw YAML data, before the schema, so it also catches secrets
in kind-specific probe fields and in keys the schema does not know. Each
problem says what to write instead, using a key the schema accepts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from bot.config.fields import ENV_NAME
from bot.config.problems import ConfigProblem, KeyPath, format_path
from probes.heartbeat import MIN_TOKEN_LENGTH

SECRET_WORDS = (
    "password", "passwd", "secret", "token", "api_key", "apikey", "passphrase",
    "private_key", "requirepass", "credential",
)  # fmt: skip
SECRET_KEYS = frozenset({"pass", "pwd", "authorization", "cookie", "auth"})
SECRET_VALUES = (
    (re.compile(r"^xox[abposr]-"), "a Slack token", "SLACK_BOT_TOKEN in the environment"),
    (re.compile(r"^xapp-"), "a Slack app-level token", "SLACK_APP_TOKEN in the environment"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key", "a key file path"),
    (
        re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@", re.IGNORECASE),
        "a URL with a password in it",
        "a URL without the password and a `*_env` key naming a variable that holds it",
    ),
)
SLACK_FIX = (
    "Slack credentials come from the environment (SLACK_BOT_TOKEN, SLACK_APP_TOKEN, "
    "SLACK_SIGNING_SECRET), never from the file; remove this key"
)
HOST_FIX = (
    "hosts log in with a key file (`key:`), and its passphrase comes from `key_passphrase_env:`"
)


def is_secret_key(key: str) -> bool:
    """`password`, `db_password`, `X-Api-Key`, `requirepass`, ... but not `password_env`."""
    name = key.lower().replace("-", "_")
    if name.endswith("_env"):
        return False
    return name in SECRET_KEYS or any(name.endswith(word) for word in SECRET_WORDS)


def secret_problems(data: Any) -> list[ConfigProblem]:
    """Every inline secret, every `*_env` field that does not name a variable, and every
    heartbeat token that is set but too short."""
    problems = []
    for where, value in _leaves(data, ()):
        key = where[-1] if isinstance(where[-1], str) else ""
        if key and is_secret_key(key) and value not in (None, ""):
            problems.append(ConfigProblem(where, _fix_for(data, where, key)))
        elif key.lower().endswith("_env") and not (
            isinstance(value, str) and ENV_NAME.match(value)
        ):
            problems.append(
                ConfigProblem(
                    where,
                    f"`{key}` names an environment variable such as SHOP_DB_PASSWORD, not the "
                    "secret itself; move the value into the environment",
                )
            )
        elif key == "token_env" and _short_token(value):
            problems.append(
                ConfigProblem(
                    where,
                    f"the token in {value} is shorter than {MIN_TOKEN_LENGTH} characters and "
                    "could be guessed; use a long random one (e.g. `openssl rand -hex 16`)",
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


def _short_token(variable: Any) -> bool:
    """A token variable that is set (unset ones are only warned about) but too short."""
    token = os.environ.get(str(variable))
    return token is not None and len(token) < MIN_TOKEN_LENGTH


def _fix_for(data: Any, where: KeyPath, key: str) -> str:
    if where[0] == "slack":
        return SLACK_FIX
    if where[0] == "hosts":
        return f"secrets are not written in the file; {HOST_FIX}"
    return (
        "secrets are not written in the file; put it in an environment variable and name it "
        f"here instead: `{key}_env: {_suggested_variable(data, where)}`"
    )


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
