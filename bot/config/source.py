"""Reading tocsin.yml: YAML with line numbers, and refusal of duplicate keys.

PyYAML silently keeps the last of two equal keys, which hides typos such as
two `restart-nginx` commands. We compose the node tree once to record where
every key stands and to find duplicates, then build plain data from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.config.problems import ConfigError, ConfigProblem, KeyPath


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
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [ConfigProblem((), f"{path}: no such file; pass the config with -c FILE")]
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([ConfigProblem((), f"{path}: cannot be read ({error})")]) from None
    return parse_source(text, path)


# libyaml's parser when PyYAML was built with it: a tenth of the memory for large files.
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_source(text: str, path: Path) -> Source:
    try:
        loader = SAFE_LOADER(text)
        try:
            node = loader.get_single_node()
            data = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise ConfigError(
            [ConfigProblem((), f"{path}: YAML syntax error at {where}: {error.problem}")]
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError([ConfigProblem((), f"{path}: YAML error: {error}")]) from None
    source = Source(path=path, data=None)
    if node is None:
        return source
    _walk(node, (), source, source.problems)
    source.data = data
    return source


def _walk(node: yaml.Node, path: KeyPath, source: Source, problems: list[ConfigProblem]) -> None:
    source.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
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
            _walk(value_node, (*path, key), source, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), source, problems)
