"""Reading tocsin.yml: YAML with line numbers, and refusal of duplicate keys.

PyYAML silently keeps the last of two equal keys, which hides typos such as
two `restart-nginx` commands. We compose the node tree once to record where
every key stands and to find duplicates, then build plain data from it. The
file is untrusted input: only a regular file of at most MAX_FILE_BYTES is
read, and `document_bounds` refuses documents that would expand without bound.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.config.document_bounds import count_problem, expansion_problem
from bot.config.problems import ConfigError, ConfigProblem, KeyPath

MAX_FILE_BYTES = 1 << 20


@dataclass
class Source:
    """The parsed file: plain data plus the line of every key path."""

    path: Path
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)

    def line_of(self, path: KeyPath) -> int | None:
        """Line of `path` or, for a key that is missing, of its nearest parent."""
        for length in range(len(path), -1, -1):
            line = self.lines.get(path[:length])
            if line is not None:
                return line
        return None


def read_source(path: Path) -> Source:
    return parse_source(_read_text(path), path)


def _read_text(path: Path) -> str:
    """The file's text; never waits on a pipe or reads a device, never more than MAX_FILE_BYTES.

    Opening without blocking lets a FIFO be refused instead of waiting for a writer.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            mode = os.fstat(descriptor).st_mode
            if not stat.S_ISREG(mode):
                raise _refused(path, f"is {_file_kind(mode)}, not a regular file; pass a YAML file")
            with open(descriptor, "rb", closefd=False) as stream:
                data = stream.read(MAX_FILE_BYTES + 1)
        finally:
            os.close(descriptor)
    except FileNotFoundError:
        raise _refused(path, "no such file; pass the config with -c FILE") from None
    except OSError as error:
        raise _refused(path, f"cannot be read ({error})") from None
    if len(data) > MAX_FILE_BYTES:
        raise _refused(
            path,
            f"is larger than {MAX_FILE_BYTES >> 20} MiB, the most tocsin reads "
            "(a large configuration is a few dozen KiB)",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _refused(path, f"cannot be read ({error})") from None


def _refused(path: Path, message: str) -> ConfigError:
    return ConfigError([ConfigProblem((), f"{path}: {message}")])


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


# libyaml's parser when PyYAML was built with it: a tenth of the memory for large files.
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_source(text: str, path: Path) -> Source:
    """Parse in bounded time and memory: count the values, measure aliases, then build data."""
    source = Source(path=path, data=None)
    try:
        problem = _parse(text, source)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise _refused(path, f"YAML syntax error at {where}: {error.problem}") from None
    except yaml.YAMLError as error:
        raise _refused(path, f"YAML error: {error}") from None
    if problem is not None:
        if not problem.path:
            problem = ConfigProblem((), f"{path}: {problem.message}")
        raise ConfigError([problem], source)
    return source


def _parse(text: str, source: Source) -> ConfigProblem | None:
    """Fill `source` (lines, duplicate keys, data), or return the bound the text crosses.

    Lines and duplicates are read from the nodes before they are built into data, as
    building merges `<<: *defaults` keys into the mapping, where an override would
    look like a duplicate.
    """
    problem = count_problem(yaml.parse(text, Loader=SAFE_LOADER))
    if problem is not None:
        return problem
    loader = SAFE_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problem = expansion_problem(node)
        if problem is not None:
            return problem
        _walk(node, (), source, set())
        source.data = loader.construct_document(node)
    finally:
        loader.dispose()
    return None


def _walk(node: yaml.Node, path: KeyPath, source: Source, checked: set[int]) -> None:
    """Record the line of every key path; report each duplicate key once, even when aliased.

    Recursion is safe here: the document is known to nest at most MAX_DEPTH deep.
    """
    source.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        first_visit = id(node) not in checked
        checked.add(id(node))
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # building the data refuses a list or mapping as a key
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                if first_visit:
                    source.problems.append(
                        ConfigProblem(
                            (*path, key),
                            f"duplicate key '{key}' (first on line {seen[key]}); "
                            "keep one, YAML would silently drop the first",
                            line,
                        )
                    )
                continue
            seen[key] = line
            source.lines[(*path, key)] = line
            _walk(value_node, (*path, key), source, checked)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), source, checked)
