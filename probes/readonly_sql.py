"""Config-time guard for mysql probe queries: one statement that only reads.

This is the first of two guards (the probe also runs every query inside a
read-only transaction). It works on the statement with string literals and
comments blanked out (same length, so positions still match), so that a `;`
or `DELETE` inside a quoted value is no reason to refuse.
"""

from __future__ import annotations

import re

READ_KEYWORDS = ("SELECT", "SHOW", "WITH")
_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z]+)")
_WRITES = re.compile(r"\b(INSERT(?!\s*\()|UPDATE|DELETE)\b", re.IGNORECASE)
_FILE_OUTPUT = re.compile(r"\bINTO\s+(OUTFILE|DUMPFILE)\b", re.IGNORECASE)
_LOCKING_READ = re.compile(
    r"\bFOR\s+UPDATE\b|\bFOR\s+SHARE\b|\bLOCK\s+IN\s+SHARE\s+MODE\b", re.IGNORECASE
)
_QUOTES = "'\"`"


def _skip_quoted(sql: str, start: int) -> int:
    """Index just past the literal or identifier opened at `start`."""
    quote = sql[start]
    index = start + 1
    while index < len(sql):
        char = sql[index]
        if char == "\\" and quote != "`":
            index += 2
            continue
        if char == quote:
            if sql[index + 1 : index + 2] == quote:  # a doubled quote stays inside
                index += 2
                continue
            return index + 1
        index += 1
    raise ValueError(f"the query has an unclosed {quote}; close it")


def code_only(sql: str) -> str:
    """`sql` with the insides of literals and whole comments blanked to spaces.

    Executable comments (`/*! ... */`, `/*M! ... */`) are refused: the server
    runs their contents, so they cannot be treated as comments.
    """
    out: list[str] = []
    index = 0
    while index < len(sql):
        char, pair = sql[index], sql[index : index + 2]
        if char in _QUOTES:
            end = _skip_quoted(sql, index)
            out.append(char + " " * (end - index - 2) + char)
            index = end
        elif pair == "/*":
            if sql[index + 2 : index + 3] == "!" or sql[index + 2 : index + 4] == "M!":
                raise ValueError(
                    "the query has an executable comment (/*! ... */), which the server runs; "
                    "remove it"
                )
            end = sql.find("*/", index + 2)
            if end < 0:
                raise ValueError("the query has an unclosed /* comment; close it with */")
            out.append(" " * (end + 2 - index))
            index = end + 2
        elif char == "#" or (pair == "--" and sql[index + 2 : index + 3] in ("", " ", "\t", "\n")):
            end = sql.find("\n", index)
            end = len(sql) if end < 0 else end
            out.append(" " * (end - index))
            index = end
        else:
            out.append(char)
            index += 1
    return "".join(out)


def check_read_only(sql: str) -> str:
    """Return the query without a trailing `;`, or raise ValueError saying what to change."""
    code = code_only(sql).rstrip()
    if code.endswith(";"):  # one trailing `;` (and any comment after it) is harmless
        code, sql = code[:-1], sql[: len(code) - 1]
    if ";" in code:
        raise ValueError("give one statement only: the query has more than one (a `;` inside it)")
    first = _FIRST_WORD.match(code)
    word = first.group(1).upper() if first else ""
    if word not in READ_KEYWORDS:
        shown = f"'{word}'" if word else "nothing"
        raise ValueError(
            f"the query must start with SELECT, SHOW or WITH (it starts with {shown}): "
            "probes only read, e.g. query: SELECT COUNT(*) FROM orders"
        )
    if _LOCKING_READ.search(code):
        raise ValueError(
            "a locking read (FOR UPDATE, FOR SHARE, LOCK IN SHARE MODE) blocks writers; remove it"
        )
    if found := _WRITES.search(code):
        raise ValueError(
            f"the query contains {found.group(1).upper()}: probes only read; "
            "give a SELECT that counts or measures instead"
        )
    if _FILE_OUTPUT.search(code):
        raise ValueError("INTO OUTFILE/DUMPFILE writes a file on the server; remove it")
    return sql.strip()
