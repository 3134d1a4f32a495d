"""What people type after a command: a few leading words, then free text kept as typed.

Slack hands over a command's text as one string. Only the words tocsin acts on
(a sub-command, an incident id, a severity, probe globs, a duration) are split
off at whitespace; what follows is a title, a note or a reason, and keeps its
quotes, backslashes, repeated spaces and line breaks. Shell-style splitting
would eat them (`C:\\tmp` became `C:tmp`).
"""

from __future__ import annotations

import re

WORD = re.compile(r"\S+")


def leading_words(text: str, count: int) -> tuple[list[str], str]:
    """Up to `count` words from the start of `text`, and the rest exactly as typed
    (less the whitespace that separated it from the last word)."""
    words: list[str] = []
    position = 0
    while len(words) < count and (match := WORD.search(text, position)) is not None:
        words.append(match.group())
        position = match.end()
    return words, text[position:].lstrip()


def trailing_word(text: str, pattern: re.Pattern[str]) -> tuple[str, str | None]:
    """`text` without its last word when that word matches `pattern`, and the word."""
    parts = text.rstrip().rsplit(None, 1)
    if not parts or not pattern.fullmatch(parts[-1]):
        return text, None
    return (parts[0] if len(parts) == 2 else ""), parts[-1]
