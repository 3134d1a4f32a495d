"""Rules every whitelisted command template must obey (DESIGN.md section 6).

A command's argv is fixed text plus `{name}` placeholders filled from typed
parameters (`{{` and `}}` stand for literal braces). These checks run when the
configuration is loaded, so an unsafe catalogue never starts: every
placeholder is declared and constrained, and no interpreter is ever fed a
parameter. A template without parameters may run a fixed pipeline
(`sh -c "..."`): nothing in it comes from a person.
"""

import re
from enum import StrEnum

from commands.launchers import program_name, program_positions

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
PARAM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

INTERPRETERS = frozenset(
    {
        "sh", "bash", "dash", "zsh", "ksh", "csh", "tcsh", "fish",
        "python", "python2", "python3", "perl", "ruby", "php", "node", "nodejs", "lua", "ssh",
        "awk", "gawk", "mawk", "sed", "tclsh", "expect", "env", "xargs", "eval", "pwsh",
        "powershell", "Rscript",
    }
)  # fmt: skip
EVAL_FLAGS = frozenset(
    {"-c", "-e", "--eval", "--command", "--execute", "-Command", "-exec", "-execdir", "-ok"}
)
# Subcommands that evaluate code (wp eval, redis-cli EVAL ...), matched in any letter case.
EVAL_WORDS = frozenset({"eval", "eval-file", "evalsha", "eval_ro", "fcall", "script", "shell"})


class RiskTier(StrEnum):
    """How much harm a command can do; approval policies are set per tier."""

    READ = "read"
    RESTART = "restart"
    DISRUPTIVE = "disruptive"


def placeholders(argv: list[str]) -> list[str]:
    """Names of `{name}` placeholders in argv order, each once. `{{` and `}}` are literal braces."""
    seen: list[str] = []
    for word in argv:
        for name in PLACEHOLDER.findall(_without_literal_braces(word)):
            if name not in seen:
                seen.append(name)
    return seen


def _without_literal_braces(word: str) -> str:
    return word.replace("{{", "").replace("}}", "")


def _has_placeholder(word: str) -> bool:
    return PLACEHOLDER.search(_without_literal_braces(word)) is not None


def template_problems(argv: list[str], params: set[str]) -> list[str]:
    """What is wrong with an argv template, as messages that say the fix."""
    problems: list[str] = []
    used = placeholders(argv)
    for name in used:
        if not PARAM_NAME.match(name):
            problems.append(
                f"placeholder '{{{name}}}' is not a parameter name (lowercase letters, digits, _)"
            )
        elif name not in params:
            problems.append(f"placeholder '{{{name}}}' has no entry under params; declare it")
    problems.extend(
        f"parameter '{name}' is declared but never used in run; remove it"
        for name in sorted(params - set(used))
    )
    problems.extend(
        f"'{argv[position]}' stands where a program is chosen; it must be fixed text, "
        "not a parameter"
        for position in program_positions(argv)
        if _has_placeholder(argv[position])
    )
    if used:
        problems.extend(_interpreter_problems(argv))
    return problems


def _interpreter_problems(argv: list[str]) -> list[str]:
    """Refuse interpreters, and code-evaluating words fed by a parameter."""
    fix = "wrap the action in a script on the host and whitelist that script"
    for position, word in enumerate(argv):
        following = argv[position + 1] if position + 1 < len(argv) else ""
        if _has_placeholder(word):
            flag = word.split("=", 1)[0] if word.startswith("-") else ""
            if flag in EVAL_FLAGS or (word[:2] in EVAL_FLAGS and not word.startswith("--")):
                return [f"'{word}' feeds a parameter to code evaluation; {fix}"]
            continue
        base = program_name(word)
        if base in INTERPRETERS or re.fullmatch(r"(python|php|perl|ruby)[0-9.]*", base):
            return [
                f"'{word}' is an interpreter; a command with parameters must not run one; {fix}"
            ]
        evaluates = word in EVAL_FLAGS or word.lower() in EVAL_WORDS
        if evaluates and _has_placeholder(following):
            return [f"'{word} {following}' feeds a parameter to code evaluation; {fix}"]
    return []


def pattern_problems(pattern: str) -> list[str]:
    try:
        re.compile(pattern)
    except re.error as error:
        return [f"pattern {pattern!r} is not a valid regular expression: {error}"]
    return []
