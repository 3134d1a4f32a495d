"""The transition table, pair by pair: every allowed and every refused (status, action)."""

from __future__ import annotations

import pytest

from incidents.errors import IllegalTransitionError
from incidents.lifecycle import TRANSITIONS, Action, allowed_actions, next_status
from incidents.model import Status

OPEN, ACKED, MITIGATED, RESOLVED, CLOSED = (
    Status.OPEN,
    Status.ACKNOWLEDGED,
    Status.MITIGATED,
    Status.RESOLVED,
    Status.CLOSED,
)

# The documented lifecycle, written out independently of incidents.lifecycle.
EXPECTED: dict[tuple[Status, Action], Status] = {
    (OPEN, Action.ACKNOWLEDGE): ACKED,
    (ACKED, Action.MITIGATE): MITIGATED,
    (MITIGATED, Action.RESOLVE): RESOLVED,
    (RESOLVED, Action.CLOSE): CLOSED,
    (RESOLVED, Action.REOPEN): OPEN,
    (OPEN, Action.RESOLVE): RESOLVED,
    (ACKED, Action.RESOLVE): RESOLVED,
    (OPEN, Action.CLOSE): CLOSED,
    (ACKED, Action.CLOSE): CLOSED,
    (MITIGATED, Action.CLOSE): CLOSED,
    (ACKED, Action.UNACKNOWLEDGE): OPEN,
}

ALL_PAIRS = [(status, action) for status in Status for action in Action]


@pytest.mark.parametrize(("status", "action"), [p for p in ALL_PAIRS if p in EXPECTED])
def test_allowed_transition_reaches_expected_status(status: Status, action: Action) -> None:
    assert next_status("INC-7", status, action) is EXPECTED[(status, action)]


@pytest.mark.parametrize(("status", "action"), [p for p in ALL_PAIRS if p not in EXPECTED])
def test_refused_transition_names_incident_and_allowed_actions(
    status: Status, action: Action
) -> None:
    with pytest.raises(IllegalTransitionError) as refused:
        next_status("INC-7", status, action)
    message = str(refused.value)
    assert message.startswith(f"INC-7 is {status.value}; it cannot be")
    allowed = [a.value for a in Action if (status, a) in EXPECTED and a is not Action.UNACKNOWLEDGE]
    if allowed:
        assert message.endswith("Allowed: " + ", ".join(allowed))
    else:
        assert "closed is final" in message


def test_the_table_is_exactly_the_documented_lifecycle() -> None:
    assert TRANSITIONS == EXPECTED


def test_closed_allows_nothing() -> None:
    assert allowed_actions(Status.CLOSED) == []
