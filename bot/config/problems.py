"""Configuration problems: where (key path and line), what was wrong, and the fix.

Everything that can be wrong with tocsin.yml ends up as a `ConfigProblem`, and
all of them are reported together, so one run of `tocsin check` shows every
mistake in the file.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

if TYPE_CHECKING:
    from bot.config.source import Source

KeyPath = tuple[str | int, ...]

MAX_SHOWN_VALUE = 60
MISSING_HINTS = {
    "known_hosts": "is required: tocsin always verifies host keys. Pin the key with "
    "`ssh-keyscan -p PORT ADDRESS >> known_hosts`, check its fingerprint, and add "
    "`known_hosts: /path/to/known_hosts`",
}


@dataclass(frozen=True)
class ConfigProblem:
    path: KeyPath
    message: str
    line: int | None = None


class ConfigError(Exception):
    """tocsin.yml is not usable; `str()` lists every problem with its path and line."""

    def __init__(self, problems: Sequence[ConfigProblem], source: Source | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(self.lines())

    def lines(self) -> list[str]:
        rendered = []
        for problem in self.problems:
            where = format_path(problem.path)
            line = problem.line
            if line is None and self.source and problem.path:
                line = self.source.line_of(problem.path)
            prefix = f"{where} (line {line})" if line else where
            rendered.append(f"{prefix}: {problem.message}" if prefix else problem.message)
        return rendered


def format_path(path: KeyPath) -> str:
    """('probes', 3, 'depends_on') -> 'probes[3].depends_on'."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def show_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN_VALUE else text[: MAX_SHOWN_VALUE - 3] + "..."


def suggest(word: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    matches = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def known_list(names: Iterable[str], limit: int = 8) -> str:
    ordered = sorted(names)
    if not ordered:
        return "none are defined"
    shown = ", ".join(ordered[:limit])
    return f"known: {shown}, ..." if len(ordered) > limit else f"known: {shown}"


def problems_from_validation(
    error: ValidationError, field_names: Iterable[str]
) -> list[ConfigProblem]:
    """Turn pydantic's errors into problems that say what to do."""
    names = set(field_names)
    problems = []
    for item in error.errors(include_url=False):
        location: list[str | int] = [part for part in item["loc"] if part != "[key]"]
        kind = item["type"]
        message = str(item["msg"]).removeprefix("Value error, ")
        value = item.get("input")
        if kind == "missing":
            field = str(location[-1]) if location else ""
            message = MISSING_HINTS.get(field, f"is required; add `{field}:`")
        elif kind == "extra_forbidden":
            key = str(location[-1]) if location else ""
            message = f"unknown key '{key}'{suggest(key, names)}; remove it or fix its spelling"
        elif kind in ("model_type", "dict_type") and value is None:
            message = "is empty; give it a value or remove the key"
        elif kind == "finite_number":
            message = f"must be a finite number, not {show_value(value)}; write e.g. 800"
        elif (
            kind not in ("value_error", "assertion_error")
            and _is_scalar(value)
            and ("[key]" not in item["loc"])
        ):
            message = f"{message} (got {show_value(value)})"
        if "[key]" in item["loc"]:
            message = f"key {show_value(location[-1])}: {message}"
        problems.append(ConfigProblem(tuple(location), message))
    return problems


def _may_hold_secret(location: list[str | int]) -> bool:
    """Never echo what was written under an `*_env` key: it may be the secret itself."""
    return bool(location) and str(location[-1]).lower().endswith("_env")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))
