"""The buttons and selects under an active incident card.

Every element says which incident it acts on, so a click needs no lookup of
the message: a button's `value` is the incident id (`INC-7`), and a select
option's `value` is `INC-7|P1` or `INC-7|restart-nginx` (see `select_value`
and `split_select_value`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    InteractiveElement,
    Option,
    PlainTextObject,
    StaticSelectElement,
)

from bot.mrkdwn import MAX_LABEL, SEVERITY_EMOJI, plain_capped
from bot.slack_ids import (
    ACKNOWLEDGE,
    ADD_NOTE,
    CARD_ACTIONS_BLOCK,
    CHANGE_SEVERITY,
    ESCALATE_NOW,
    PROPOSE_REMEDIATION,
    RESOLVE,
)
from incidents.model import Severity, Status

SEPARATOR = "|"
MAX_OPTIONS = 100
MAX_OPTION_VALUE = 150  # Slack refuses longer option values: such commands are left out


@dataclass(frozen=True)
class Remediation:
    """A catalogue command suggested by a failing probe's `remediate` list."""

    command_id: str
    description: str


def select_value(incident_id: str, choice: str) -> str:
    """`INC-7|P1`: the option value of a card select, naming the incident it belongs to."""
    return f"{incident_id}{SEPARATOR}{choice}"


def split_select_value(value: str) -> tuple[str, str]:
    """(`INC-7`, `P1`) from `INC-7|P1`; a value without the separator has no choice."""
    incident_id, _, choice = value.partition(SEPARATOR)
    return incident_id, choice


def actions_block(
    incident_id: str,
    status: Status,
    severity: Severity,
    severity_names: Mapping[Severity, str],
    remediations: Sequence[Remediation],
) -> ActionsBlock:
    """Acknowledge (only while open), severity, escalate, resolve, note, remediation."""
    elements: list[InteractiveElement] = []
    if status is Status.OPEN:
        elements.append(button(ACKNOWLEDGE, "Acknowledge", incident_id, style="primary"))
    elements.append(severity_select(incident_id, severity, severity_names))
    elements.append(button(ESCALATE_NOW, "Escalate now", incident_id))
    elements.append(
        button(
            RESOLVE,
            "Resolve",
            incident_id,
            style="danger",
            confirm=ConfirmObject(
                title=f"Resolve {incident_id}?",
                text="Escalation stops and the card shows the incident resolved.",
                confirm="Resolve",
                deny="Cancel",
                style="danger",
            ),
        )
    )
    elements.append(button(ADD_NOTE, "Add note", incident_id))
    remediation = remediation_select(incident_id, remediations)
    if remediation is not None:
        elements.append(remediation)
    return ActionsBlock(block_id=CARD_ACTIONS_BLOCK, elements=elements)


def button(
    action_id: str,
    text: str,
    incident_id: str,
    *,
    style: str | None = None,
    confirm: ConfirmObject | None = None,
) -> ButtonElement:
    return ButtonElement(
        action_id=action_id,
        text=PlainTextObject(text=plain_capped(text, MAX_LABEL), emoji=True),
        value=incident_id,
        style=style,
        confirm=confirm,
    )


def severity_select(
    incident_id: str, current: Severity, names: Mapping[Severity, str]
) -> StaticSelectElement:
    options = [
        Option(
            value=select_value(incident_id, severity.value),
            text=PlainTextObject(
                text=plain_capped(
                    f"{SEVERITY_EMOJI[severity]} {severity.value} {names.get(severity, '')}",
                    MAX_LABEL,
                ),
                emoji=True,
            ),
        )
        for severity in Severity
    ]
    return StaticSelectElement(
        action_id=CHANGE_SEVERITY,
        placeholder=PlainTextObject(text="Change severity"),
        options=options,
        initial_option=options[list(Severity).index(current)],
    )


def remediation_select(
    incident_id: str, remediations: Sequence[Remediation]
) -> StaticSelectElement | None:
    """The suggested commands; None when there are none (the select would be empty)."""
    options = [
        Option(
            value=select_value(incident_id, r.command_id),
            text=PlainTextObject(
                text=plain_capped(
                    f"{r.command_id}: {r.description}" if r.description else r.command_id,
                    MAX_LABEL,
                )
            ),
        )
        for r in remediations
        if len(select_value(incident_id, r.command_id)) <= MAX_OPTION_VALUE
    ][:MAX_OPTIONS]
    if not options:
        return None
    return StaticSelectElement(
        action_id=PROPOSE_REMEDIATION,
        placeholder=PlainTextObject(text="Propose remediation"),
        options=options,
    )
