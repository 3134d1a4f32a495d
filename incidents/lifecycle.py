"""The incident lifecycle as one transition table.

Every status change in tocsin goes through `next_status`, so the table below
is the whole truth about which actions are allowed when.
"""

from enum import StrEnum

from incidents.errors import IllegalTransitionError
from incidents.model import Milestone, Status


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    MITIGATE = "mitigate"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    CLOSE = "close"
    UNACKNOWLEDGE = "unacknowledge"  # escalation's reminders went unanswered


TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (Status.OPEN, Action.ACKNOWLEDGE): Status.ACKNOWLEDGED,
    (Status.ACKNOWLEDGED, Action.MITIGATE): Status.MITIGATED,
    (Status.MITIGATED, Action.RESOLVE): Status.RESOLVED,
    (Status.OPEN, Action.RESOLVE): Status.RESOLVED,
    (Status.ACKNOWLEDGED, Action.RESOLVE): Status.RESOLVED,
    (Status.RESOLVED, Action.REOPEN): Status.OPEN,
    (Status.OPEN, Action.CLOSE): Status.CLOSED,
    (Status.ACKNOWLEDGED, Action.CLOSE): Status.CLOSED,
    (Status.MITIGATED, Action.CLOSE): Status.CLOSED,
    (Status.RESOLVED, Action.CLOSE): Status.CLOSED,
    (Status.ACKNOWLEDGED, Action.UNACKNOWLEDGE): Status.OPEN,
}

MILESTONE_OF: dict[Action, Milestone] = {
    Action.ACKNOWLEDGE: Milestone.ACKNOWLEDGED,
    Action.MITIGATE: Milestone.MITIGATED,
    Action.RESOLVE: Milestone.RESOLVED,
    Action.CLOSE: Milestone.CLOSED,
}

PAST_TENSE: dict[Action, str] = {
    Action.ACKNOWLEDGE: "acknowledged",
    Action.MITIGATE: "mitigated",
    Action.RESOLVE: "resolved",
    Action.REOPEN: "reopened",
    Action.CLOSE: "closed",
    Action.UNACKNOWLEDGE: "unacknowledged",
}


# Taken by tocsin itself, never offered to people.
SYSTEM_ACTIONS = frozenset({Action.UNACKNOWLEDGE})


def allowed_actions(status: Status) -> list[Action]:
    """Actions a person may take from `status`, in table order."""
    return [
        action
        for (source, action) in TRANSITIONS
        if source is status and action not in SYSTEM_ACTIONS
    ]


def next_status(incident_id: str, status: Status, action: Action) -> Status:
    """The status after `action`, or an error naming what is allowed instead."""
    target = TRANSITIONS.get((status, action))
    if target is not None:
        return target
    allowed = allowed_actions(status)
    hint = ", ".join(a.value for a in allowed) if allowed else "nothing (closed is final)"
    raise IllegalTransitionError(
        f"{incident_id} is {status.value}; it cannot be {PAST_TENSE[action]}. Allowed: {hint}"
    )
