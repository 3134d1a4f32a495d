"""What a Slack request body must hold before Bolt and tocsin's listeners read it.

A valid signature says who sent the bytes, not that they are what they claim: Bolt
and the listeners index into the body (`body["view"]["state"]["values"]`,
`body["actions"][0]`) and would fail with a traceback on a body shaped otherwise.
Each kind tocsin handles names the fields it needs and their types; a body that lacks
one is refused with a reason written by tocsin, never with the received bytes.
"""

from __future__ import annotations

from typing import Any

Path = tuple[str | int, ...]

USER: tuple[Path, type] = (("user", "id"), str)
NEEDS: dict[str, tuple[tuple[Path, type], ...]] = {
    "command": ((("command",), str), (("user_id",), str), (("trigger_id",), str)),
    "block_actions": (USER, (("actions", 0, "action_id"), str), (("trigger_id",), str)),
    "view_submission": (
        USER,
        (("view", "callback_id"), str),
        (("view", "private_metadata"), str),
        (("view", "state", "values"), dict),
    ),
    "event_callback": ((("event", "type"), str), (("event_id",), str)),
    "url_verification": ((("challenge",), str),),
}


def envelope_problem(body: Any) -> str:
    """Why `body` (as Bolt parsed it) is not a request tocsin handles, or ""."""
    if not isinstance(body, dict) or not body:
        return "the body is not a JSON object or form"
    kind = "command" if "command" in body else body.get("type")
    if not isinstance(kind, str) or kind not in NEEDS:
        return "the body is not a kind of Slack request tocsin handles"
    for path, kind_of_value in NEEDS[kind]:
        if not isinstance(_at(body, path), kind_of_value):
            return f"{kind} without {'.'.join(str(step) for step in path)}"
    return ""


def _at(body: Any, path: Path) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(body, list) or len(body) <= step:
                return None
        elif not isinstance(body, dict):
            return None
        body = body[step] if isinstance(step, int) else body.get(step)
    return body
