"""Bounds on the YAML document: how many values, how deep, and aliases that contain themselves.

A few lines of YAML can stand for billions of values (`&b [*a, *a, ...]` nine times
over) or for a value that contains itself (`&a [*a]`). Anchors stay useful for shared
probe defaults, so they are measured rather than forbidden: the loader counts the values
it parses, then measures each composed node once, aliases expanded but without
expanding them, and refuses a document that would grow past the bounds before anything
walks it as plain data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import yaml

from bot.config.problems import ConfigProblem, KeyPath

MAX_VALUES = 100_000
MAX_DEPTH = 32
SHOWN_DEPTH = 4  # a too-deep value is named by its first keys, not by 32 of them

Child = tuple[str | int, yaml.Node, int]
Follows = Callable[[yaml.Node, yaml.Node], bool]


def count_problem(events: Iterable[yaml.Event]) -> ConfigProblem | None:
    """Count values as the parser streams them; stop past MAX_VALUES, before any node is built."""
    values = 0
    for event in events:
        if isinstance(event, yaml.NodeEvent):
            values += 1
            if values > MAX_VALUES:
                where = f" by line {event.start_mark.line + 1}" if event.start_mark else ""
                return ConfigProblem(
                    (),
                    f"more than {MAX_VALUES:,} values{where}; tocsin reads at most "
                    f"{MAX_VALUES:,} (a large configuration has a few thousand): split out "
                    "what does not belong in tocsin.yml",
                )
    return None


@dataclass(frozen=True)
class _Extent:
    """A node as it reads with aliases expanded: its values and its depth."""

    values: int
    depth: int


def expansion_problem(root: yaml.Node) -> ConfigProblem | None:
    """A value that contains itself, nests past MAX_DEPTH or expands past MAX_VALUES."""
    extents: dict[int, _Extent] = {}
    cycle = _measure(root, extents)
    if cycle is not None:
        return cycle
    if extents[id(root)].depth > MAX_DEPTH:
        path, line = _descend(
            root,
            lambda node, child: extents[id(child)].depth == extents[id(node)].depth - 1,
            SHOWN_DEPTH,
        )
        return ConfigProblem(
            path,
            f"nests deeper than {MAX_DEPTH} levels below here, the most tocsin reads (a "
            "configuration needs fewer than ten); flatten it or use fewer nested aliases",
            line,
        )
    if extents[id(root)].values > MAX_VALUES:
        path, line = _descend(
            root, lambda _, child: extents[id(child)].values > MAX_VALUES, MAX_DEPTH
        )
        return ConfigProblem(
            path,
            f"aliases make this expand to more than {MAX_VALUES:,} values, the most tocsin "
            "reads; use its anchors fewer times or write the values out",
            line,
        )
    return None


@dataclass
class _Frame:
    """A collection being measured: where it is, the children still to see, their sum so far."""

    node: yaml.Node
    path: KeyPath
    children: Iterator[Child]
    values: int = 0
    depth: int = 0

    def add(self, extent: _Extent) -> None:
        self.values = min(self.values + extent.values, MAX_VALUES + 1)
        self.depth = max(self.depth, extent.depth)


SCALAR = _Extent(1, 1)


def _measure(root: yaml.Node, extents: dict[int, _Extent]) -> ConfigProblem | None:
    """Post-order over the node graph, each node once; a child on the current path is a cycle."""
    stack = [_Frame(root, (), _children(root))]
    on_path = {id(root)}
    while stack:
        frame = stack[-1]
        for label, child, line in frame.children:
            known = extents.get(id(child))
            if known is not None:
                frame.add(known)
            elif isinstance(child, yaml.ScalarNode):
                extents[id(child)] = SCALAR
                frame.add(SCALAR)
            elif id(child) in on_path:
                return ConfigProblem(
                    (*frame.path, label),
                    "this value contains itself through an alias of an anchor around it; "
                    "YAML aliases must not point back into their own anchor",
                    line,
                )
            else:
                stack.append(_Frame(child, (*frame.path, label), _children(child)))
                on_path.add(id(child))
                break
        else:
            stack.pop()
            on_path.discard(id(frame.node))
            extent = _Extent(min(1 + frame.values, MAX_VALUES + 1), 1 + frame.depth)
            extents[id(frame.node)] = extent
            if stack:
                stack[-1].add(extent)
    return None


def _descend(root: yaml.Node, follows: Follows, limit: int) -> tuple[KeyPath, int]:
    """Where a bound is crossed: from the root, follow the first child that `follows` its
    parent, at most `limit` keys deep."""
    node, line = root, root.start_mark.line + 1
    path: KeyPath = ()
    while len(path) < limit:
        for label, child, child_line in _children(node):
            if follows(node, child):
                node, path, line = child, (*path, label), child_line
                break
        else:
            break
    return path, line


def _children(node: yaml.Node) -> Iterator[Child]:
    """(key or index, node, line where it is written) of each key and value under `node`."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            label = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            yield label, key_node, line
            yield label, value_node, line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield index, item, item.start_mark.line + 1
