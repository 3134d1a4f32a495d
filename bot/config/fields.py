"""Field types shared across tocsin.yml: names, environment variables, Slack targets."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SLUG = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
SLACK_TARGET = re.compile(r"^(@[\w.-]+|[UW][A-Z0-9]{2,}|S[A-Z0-9]{2,}|!(here|channel))$")
SLACK_CHANNEL = re.compile(r"^(#[a-z0-9][a-z0-9_-]{0,79}|[CG][A-Z0-9]{2,})$")


def _slack_target(value: str) -> str:
    if not SLACK_TARGET.match(value):
        raise ValueError(
            f"'{value}' is not a Slack target; write a user group handle (@oncall), a user id "
            "(U024BE7LH) or a user group id (S0614TZR7)"
        )
    return value


def _slack_channel(value: str) -> str:
    if not SLACK_CHANNEL.match(value):
        raise ValueError(
            f"'{value}' is not a channel; write #ops-incidents or a channel id such as C0123ABC"
        )
    return value


Slug = Annotated[str, Field(pattern=SLUG)]
EnvName = Annotated[
    str, Field(pattern=ENV_NAME.pattern, description="name of an environment variable")
]
SlackTarget = Annotated[str, AfterValidator(_slack_target)]
SlackChannel = Annotated[str, AfterValidator(_slack_channel)]


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
