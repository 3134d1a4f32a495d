"""The ssh probe: run one command on a host from `hosts:` and judge how it ended.

Exactly one of three modes per probe:
- `command`: an argv list, quoted with shlex.join (a shell only when written as
  [sh, -c, ...]); `value_regex` reads a number, `expect` checks exit status,
  value and output;
- `units`: `systemctl is-active` for each unit, all of which must be active;
- `log`: lines matching a pattern appended to a file since the previous sample.
Connection handling lives in ssh_pool, the killing deadline in ssh_run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shlex
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from probes.log_counter import LogCounter
from probes.probe import KindSettings, Probe
from probes.result import Measurement, Observation, Status
from probes.ssh_output import CommandCheck, evidence_of, judge_units
from probes.ssh_pool import SshConnection, SshProblem
from probes.ssh_run import CommandTimedOut
from probes.thresholds import Threshold

# Left of the probe timeout for killing a command and closing its channel.
CLEANUP_MARGIN = 0.5
_UNIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9@_.:\\-]*")


def _regex(value: str | None, key: str, groups: int = 0) -> str | None:
    if value is None:
        return None
    try:
        compiled = re.compile(value)
    except re.error as error:
        raise ValueError(f"{key} is not a valid regular expression ({error})") from None
    if compiled.groups < groups:
        raise ValueError(f"{key} needs a capture group around the number, e.g. '(\\d+)%'")
    return value


class SshExpect(BaseModel):
    """What a healthy run looks like; the exit status is always checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exit_status: int = Field(0, ge=0, le=255)
    value: Threshold | None = None
    output_contains: str | None = Field(None, min_length=1)
    output_regex: str | None = None

    @field_validator("output_regex")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        return _regex(value, "output_regex")


class LogSettings(BaseModel):
    """A log file and the grep -E -i pattern whose new lines are counted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    pattern: str = Field(min_length=1)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or "\n" in value or "\0" in value:
            raise ValueError("give an absolute path, e.g. /var/www/html/wp-content/debug.log")
        return value

    @field_validator("pattern")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value or "\0" in value:
            raise ValueError(
                "give one pattern on one line; use | for alternatives, e.g. 'fatal|error'"
            )
        return value


class SshSettings(KindSettings):
    """The keys of `kind: ssh`; exactly one of `command`, `units` and `log`."""

    host: str = Field(min_length=1, description="a name under `hosts:`")
    command: list[str] | None = None
    units: list[str] | None = None
    log: LogSettings | None = None
    value_regex: str | None = None
    value_unit: str = Field("", max_length=16)
    expect: SshExpect = SshExpect()

    @field_validator("command", mode="before")
    @classmethod
    def _argv_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(
                "give `command` as a list of arguments, e.g. [df, --output=pcent, /]; "
                "for a pipeline write [sh, -c, '...']"
            )
        return value

    @field_validator("command")
    @classmethod
    def _runnable(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or not value[0]):
            raise ValueError("give the program first, e.g. [df, --output=pcent, /]")
        if value is not None and any("\0" in arg for arg in value):
            raise ValueError("arguments cannot contain NUL characters")
        return value

    @field_validator("units")
    @classmethod
    def _unit_names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("give at least one unit, e.g. [nginx, php8.1-fpm]")
        for unit in value or ():
            if not _UNIT_NAME.fullmatch(unit):
                raise ValueError(f"'{unit}' is not a systemd unit name; e.g. nginx or cron.service")
        return value

    @field_validator("value_regex")
    @classmethod
    def _value_regex(cls, value: str | None) -> str | None:
        return _regex(value, "value_regex", groups=1)

    @model_validator(mode="after")
    def _one_mode(self) -> SshSettings:
        given = [key for key in ("command", "units", "log") if getattr(self, key) is not None]
        if len(given) != 1:
            got = f" (got {' and '.join(given)})" if given else ""
            raise ValueError(
                f"give exactly one of `command`, `units` or `log`{got}, "
                "e.g. command: [df, --output=pcent, /]"
            )
        expected = self.expect.model_fields_set
        if self.command is None and (self.value_regex is not None or self.value_unit):
            raise ValueError("`value_regex` and `value_unit` apply to `command`; remove them")
        if self.units is not None and expected:
            raise ValueError("`units` fails on any unit that is not active; remove `expect`")
        if self.log is not None and expected - {"value"}:
            raise ValueError(
                "with `log` only expect.value applies (the count of new lines), "
                "e.g. expect: {value: {below: 51}}"
            )
        if self.command is not None and self.expect.value and self.value_regex is None:
            raise ValueError("expect.value needs `value_regex` to read it, e.g. '(\\d+)%'")
        return self


class SshProbe(Probe):
    kind = "ssh"
    settings_model = SshSettings

    def configure(self, settings: KindSettings) -> None:
        assert isinstance(settings, SshSettings)
        self.settings = settings
        self.host = self.context.hosts.get(settings.host)
        self._connection = SshConnection(self.host) if self.host else None
        expect = settings.expect
        self._log = None
        if settings.log is not None:
            self._log = LogCounter(settings.log.path, settings.log.pattern, expect.value)
        self._check = CommandCheck(
            exit_status=expect.exit_status,
            value=re.compile(settings.value_regex) if settings.value_regex else None,
            threshold=expect.value,
            unit=settings.value_unit,
            contains=expect.output_contains,
            matches=re.compile(expect.output_regex, re.M) if expect.output_regex else None,
        )

    @property
    def target_host(self) -> str:
        return self.host.address if self.host else self.settings.host

    async def observe(self, timeout: float) -> Observation:  # noqa: ASYNC109 - the contract
        if self._connection is None:
            known = ", ".join(sorted(self.context.hosts)) or "none"
            reason = f"host '{self.settings.host}' is not under `hosts:` (known: {known})"
            return Observation(Status.ERROR, reason)
        argv, shown = self._argv()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout - min(CLEANUP_MARGIN, timeout / 10)
        try:
            run = await self._connection.run(argv, deadline)
        except SshProblem as problem:
            return Observation(problem.status, problem.reason)
        except CommandTimedOut as late:
            if late.started:
                reason = f"command did not finish within {timeout:g}s; killed it"
            else:
                reason = f"no ssh session on {self._connection.where} within {timeout:g}s"
            return Observation(Status.FAIL, reason, evidence=(("command", shown),))
        if self._log is not None:  # its stdout is the counter's bookkeeping, not for people
            evidence = evidence_of(shown, dataclasses.replace(run, stdout=""))
            observed = self._log.observe(run.stdout, run.stderr, run.exit_status, evidence)
        elif self.settings.units is not None:
            observed = judge_units(self.settings.units, run, evidence_of(shown, run))
        else:
            observed = self._check.judge(run, evidence_of(shown, run))
        duration = Measurement("duration_ms", round(run.duration * 1000, 1), "ms")
        return dataclasses.replace(observed, measurements=(*observed.measurements, duration))

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def _argv(self) -> tuple[list[str], str]:
        """The argv to run and how it is shown in evidence."""
        if self._log is not None:
            shown = f"count lines matching '{self._log.pattern}' appended to {self._log.path}"
            return self._log.argv(), shown
        if self.settings.units is not None:
            argv = ["systemctl", "is-active", "--", *self.settings.units]
        else:
            argv = list(self.settings.command or ())
        return argv, shlex.join(argv)
