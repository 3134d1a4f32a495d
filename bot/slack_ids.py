"""Every Block Kit action id and view callback id tocsin uses, in one place.

Listeners register on these names and renderers put them on buttons and
modals, so a rename here cannot leave a button without a handler.
"""

from __future__ import annotations

# Buttons and selects on the incident card. A button's `value` is the incident id (INC-n);
# a select option's value is `INC-n|choice` (bot.card_actions.select_value).
ACKNOWLEDGE = "incident_acknowledge"
CHANGE_SEVERITY = "incident_change_severity"  # static select; option value INC-n|P1
ESCALATE_NOW = "incident_escalate_now"
RESOLVE = "incident_resolve"  # carries a confirm dialog
ADD_NOTE = "incident_add_note"  # opens the note modal
PROPOSE_REMEDIATION = "incident_propose_remediation"  # static select; INC-n|command-id

CARD_ACTIONS = (
    ACKNOWLEDGE,
    CHANGE_SEVERITY,
    ESCALATE_NOW,
    RESOLVE,
    ADD_NOTE,
    PROPOSE_REMEDIATION,
)

# Modals. `private_metadata` carries the incident id where there is one.
NOTE_MODAL = "incident_note_modal"
DECLARE_MODAL = "incident_declare_modal"

# Block and action ids of the inputs inside the modals.
NOTE_BLOCK = "note_block"
NOTE_INPUT = "note_input"
TITLE_BLOCK = "title_block"
TITLE_INPUT = "title_input"
SEVERITY_BLOCK = "severity_block"
SEVERITY_INPUT = "severity_input"
SERVICE_BLOCK = "service_block"
SERVICE_INPUT = "service_input"

# Block ids on the card, so tests and updates can find the parts.
CARD_HEADER = "card_header"
CARD_FIELDS = "card_fields"
CARD_EVIDENCE = "card_evidence"
CARD_ACTIONS_BLOCK = "card_actions"

# Metadata event type on every message the outbox posts: after a crash, the sender
# looks for it to learn whether an unconfirmed post reached Slack.
OUTBOX_EVENT_TYPE = "tocsin_outbox"
