"""`depends_on`: a failing child of a parent with an open incident is a symptom, not a page."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from incidents.detection_rules import ProbeRule
from incidents.probe_state import ProbeState
from probes.result import Status


def ancestors(rule: ProbeRule, rules: Mapping[str, ProbeRule]) -> list[str]:
    """Parents, grandparents and so on, nearest first (the config refuses cycles).

    Linear in the number of ancestors: a chain of a thousand probes is legitimate.
    """
    seen: dict[str, None] = {}
    todo = deque(rule.depends_on)
    while todo:
        parent = todo.popleft()
        if parent in seen or parent not in rules:
            continue
        seen[parent] = None
        todo.extend(rules[parent].depends_on)
    return list(seen)


def parent_incident(
    rule: ProbeRule, rules: Mapping[str, ProbeRule], states: Mapping[str, ProbeState]
) -> int | None:
    """The open incident of the nearest ancestor that has one."""
    for parent in ancestors(rule, rules):
        state = states[parent]
        if state.firing and state.incident is not None and state.role == "member":
            return state.incident
    return None


def failing_ancestor(
    rule: ProbeRule, rules: Mapping[str, ProbeRule], states: Mapping[str, ProbeState]
) -> str | None:
    """An ancestor that is failing but has no incident yet: the child waits for it."""
    for parent in ancestors(rule, rules):
        state = states[parent]
        if state.firing or state.last_status is Status.FAIL:
            return parent
    return None
