"""Whitelisted commands, their typed parameters, and who may approve each risk tier."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from bot.config.fields import SlackTarget, Strict
from commands.catalogue import PARAM_NAME, RiskTier, pattern_problems, template_problems
from probes.durations import ByteSize, Duration


def _word(value: object) -> object:
    """`[timeout, 30, nginx]`: YAML reads 30 as a number; an argv word is text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


ArgvWord = Annotated[str, BeforeValidator(_word)]


class ParamSettings(Strict):
    """One typed parameter. A pattern must match the whole value (anchors are implied)."""

    pattern: str | None = None
    enum: list[str] | None = Field(None, min_length=1)
    description: str = ""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None and (problems := pattern_problems(value)):
            raise ValueError(problems[0])
        return value

    @field_validator("enum")
    @classmethod
    def _plain_choices(cls, value: list[str] | None) -> list[str] | None:
        for choice in value or []:
            if choice.startswith("-") or not choice.strip():
                raise ValueError(f"enum value {choice!r} is blank or starts with '-'; remove it")
        return value

    @model_validator(mode="after")
    def _constrained(self) -> ParamSettings:
        if (self.pattern is None) == (self.enum is None):
            raise ValueError(
                "give exactly one of `pattern` or `enum`: every parameter is constrained"
            )
        return self


class CommandSettings(Strict):
    description: str = ""
    hosts: list[str] = Field(min_length=1)
    params: dict[Annotated[str, Field(pattern=PARAM_NAME.pattern)], ParamSettings] = {}
    run: list[ArgvWord] = Field(
        min_length=1, description="argv; {name} placeholders are parameters, {{ }} literal braces"
    )
    risk: RiskTier
    timeout: Duration = timedelta(seconds=60)
    output_cap: ByteSize = Field(65536, gt=0, description="bytes of output kept and posted")

    @field_validator("run")
    @classmethod
    def _safe_template(cls, value: list[str], info: ValidationInfo) -> list[str]:
        problems = template_problems(value, set(info.data.get("params", {})))
        if problems:
            raise ValueError("; ".join(problems))
        return value


class ApprovalPolicy(Strict):
    approvers: list[SlackTarget] = Field(min_length=1)
    count: int = Field(1, ge=1, le=5)
    not_requester: bool = True
