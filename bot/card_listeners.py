"""What the buttons, selects and modals of the incident card do.

Each listener acknowledges at once and then works; the card itself changes
through the outbox (the incident change enqueues its edit), so a click never
edits the message directly and a slow Slack never slows the click.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import slack_ids
from bot.card_actions import split_select_value
from bot.slack_context import SlackContext, respond_reply
from bot.slack_views import declare_modal, note_modal
from incidents.model import Severity, parse_incident_id

REMEDIATION_PENDING = (
    "Remediation is not configured yet: tocsin will run `{command}` only once command "
    "approval is set up. Nothing was run."
)


def register_card_listeners(app: AsyncApp, context: SlackContext) -> None:
    @app.action(slack_ids.ACKNOWLEDGE)
    async def acknowledge(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            actor = await context.actor(body)
            await context.incidents.acknowledge(_button_value(body), actor)

        await context.guarded(work, respond_reply(respond))

    @app.action(slack_ids.RESOLVE)
    async def resolve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            actor = await context.actor(body)
            await context.incidents.resolve(_button_value(body), actor, "resolved from Slack")

        await context.guarded(work, respond_reply(respond))

    @app.action(slack_ids.ESCALATE_NOW)
    async def escalate(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            actor = await context.actor(body)
            step = await context.escalation.escalate_now(
                parse_incident_id(_button_value(body)), actor
            )
            if step is None:
                await respond_reply(respond)(
                    "No escalation policy covers this incident's severity: nobody to page."
                )

        await context.guarded(work, respond_reply(respond))

    @app.action(slack_ids.CHANGE_SEVERITY)
    async def change_severity(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            actor = await context.actor(body)
            incident_id, choice = split_select_value(_selected(body))
            await context.incidents.change_severity(
                incident_id, Severity(choice), actor, "changed from the card"
            )

        await context.guarded(work, respond_reply(respond))

    @app.action(slack_ids.ADD_NOTE)
    async def add_note(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()

        async def work() -> None:
            await context.actor(body)
            await client.views_open(
                trigger_id=body["trigger_id"], view=note_modal(_button_value(body))
            )

        await context.guarded(work, respond_reply(respond))

    @app.action(slack_ids.PROPOSE_REMEDIATION)
    async def propose(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            await context.actor(body)
            _, command = split_select_value(_selected(body))
            await respond_reply(respond)(REMEDIATION_PENDING.format(command=command))

        await context.guarded(work, respond_reply(respond))

    @app.view(slack_ids.NOTE_MODAL)
    async def note_submitted(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        text = _input(body, slack_ids.NOTE_BLOCK, slack_ids.NOTE_INPUT)
        if not text.strip():
            await ack(response_action="errors", errors={slack_ids.NOTE_BLOCK: "Write a note."})
            return
        await ack()
        incident_id = body["view"]["private_metadata"]

        async def work() -> None:
            await context.incidents.add_note(incident_id, await context.actor(body), text)

        await context.guarded(work, _dm_reply(client, body))

    @app.view(slack_ids.DECLARE_MODAL)
    async def declare_submitted(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        title = _input(body, slack_ids.TITLE_BLOCK, slack_ids.TITLE_INPUT).strip()
        if not title:
            await ack(response_action="errors", errors={slack_ids.TITLE_BLOCK: "Give a title."})
            return
        await ack()
        values = body["view"]["state"]["values"]
        option = values.get(slack_ids.SEVERITY_BLOCK, {}).get(slack_ids.SEVERITY_INPUT, {})
        severity = Severity((option.get("selected_option") or {}).get("value") or "P2")
        service = _input(body, slack_ids.SERVICE_BLOCK, slack_ids.SERVICE_INPUT).strip()

        async def work() -> None:
            actor = await context.actor(body)
            await context.incidents.declare(title, severity, actor, service=service)

        await context.guarded(work, _dm_reply(client, body))


async def open_declare_modal(
    client: AsyncWebClient, trigger_id: str, context: SlackContext
) -> None:
    await client.views_open(trigger_id=trigger_id, view=declare_modal(context.cards.severity_names))


def _button_value(body: dict[str, Any]) -> str:
    return str(body["actions"][0].get("value") or "")


def _selected(body: dict[str, Any]) -> str:
    return str((body["actions"][0].get("selected_option") or {}).get("value") or "")


def _input(body: dict[str, Any], block: str, action: str) -> str:
    values = body.get("view", {}).get("state", {}).get("values", {})
    return str((values.get(block, {}).get(action) or {}).get("value") or "")


def _dm_reply(client: AsyncWebClient, body: dict[str, Any]) -> Any:
    """Modals have no channel: errors after a submission go to the user as a DM."""
    user = str((body.get("user") or {}).get("id") or "")

    async def reply(text: str) -> None:
        await client.chat_postMessage(channel=user, text=text)

    return reply
