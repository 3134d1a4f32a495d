"""What leaves a probe is escaped, capped and redacted (DESIGN.md section 6).

Reasons and evidence quote what targets said (HTTP bodies, command output,
database errors); they are stored and shown on Slack cards, so secrets that a
target echoes (a password in a DSN, a bearer token, a private key) are masked
here, once, for every kind. Patterns catch what looks like a secret; a
`Redaction` also masks the values tocsin itself holds (bot collects them), since
a target may echo a key as bare text (`invalid key 9f2c41d7`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MAX_REASON = 500
MAX_EVIDENCE = 2000
# Shorter values are not redacted by value: too likely to be ordinary words ("admin").
MIN_SECRET_LENGTH = 6
REDACTED = "[redacted]"

_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
            re.S,
        ),
        "[private key redacted]",
    ),
    (re.compile(r"\bxox[abeoprs]-[0-9A-Za-z-]+"), "xox-[redacted]"),
    (re.compile(r"\bxapp-[0-9A-Za-z-]+"), "xapp-[redacted]"),
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    (
        re.compile(
            r"(?i)\b([a-z0-9_-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key))"
            r"([\"']?\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
        ),
        r"\1\2[redacted]",
    ),
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@"), r"\1[redacted]@"),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "[access key redacted]"),
)

# Control characters other than newline and tab, shown as escapes so that a hostile
# answer cannot rewrite a terminal or a log line.
_CONTROL = {n: f"\\x{n:02x}" for n in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)}


# Every secret pattern above contains one of these; most texts contain none, and one
# search is far cheaper than seven substitutions on every result.
_MAYBE_SECRET = re.compile(
    r"(?i)private key|xox|xapp|bearer|basic|token|passw|pwd|secret|key|://[^/\s]*@|AKIA|ASIA"
)


def redact(text: str) -> str:
    if not _MAYBE_SECRET.search(text):
        return text
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def clean(text: str, limit: int, *, one_line: bool = False) -> str:
    """Redacted, control characters escaped, at most `limit` characters."""
    return _shown(redact(text), limit, one_line)


def _shown(text: str, limit: int, one_line: bool) -> str:
    text = text.translate(_CONTROL)
    if one_line:
        text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Redaction:
    """Redaction by pattern plus by value of the secrets given, compiled once.

    A value is also found as a URL or JSON would quote it; the longest value wins
    where one secret contains another. One search covers all of them.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms = {
            form
            for secret in secrets
            if len(secret.strip()) >= MIN_SECRET_LENGTH
            for form in (secret, quote(secret, safe=""), quote_plus(secret), _json(secret))
        }
        ordered = sorted(forms, key=lambda form: (-len(form), form))
        self._values = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        # Values first: a pattern could mask part of one and leave the rest showing.
        if self._values is not None:
            text = self._values.sub(REDACTED, text)
        return redact(text)

    def clean(self, text: str, limit: int, *, one_line: bool = False) -> str:
        """Redacted, control characters escaped, at most `limit` characters."""
        return _shown(self.redact(text), limit, one_line)


def _json(secret: str) -> str:
    return json.dumps(secret, ensure_ascii=False)[1:-1]
