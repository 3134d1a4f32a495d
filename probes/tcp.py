"""The tcp probe: a port accepts connections and, optionally, greets or answers as expected.

With `send`, that text goes out first (e.g. "PING\\r\\n" to redis; YAML double quotes turn
`\\r\\n` into a line break). With `banner`, the first line the server sends must contain it
("220" for SMTP, "+PONG" after a PING).

Statuses: `fail` for a refused or reset connection, a first line without the banner (the
reason shows what arrived), a server that closes or stays silent, a threshold not met, or no
answer in time. `error` when our DNS lookup of `host` failed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

from probes.net import (
    Channel,
    ProbeProblem,
    Timings,
    connect,
    display,
    excerpt,
    io_problem,
    own_deadline,
)
from probes.probe import KindSettings, Probe
from probes.result import Measurement, Observation, Status
from probes.thresholds import Threshold, judge, measure

MAX_LINE = 4096


@dataclass
class _Run:
    """What one observation gathered so far, kept for the report if it is cut short."""

    timings: Timings = field(default_factory=Timings)
    received: bytearray = field(default_factory=bytearray)
    banner: float | None = None


class TcpExpect(BaseModel):
    """`expect:` of a tcp probe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_ms: Threshold | None = None
    banner_ms: Threshold | None = None


class TcpSettings(KindSettings):
    host: str
    port: int = Field(ge=1, le=65535)
    banner: str | None = None
    send: str | None = None
    expect: TcpExpect = TcpExpect()

    @field_validator("host")
    @classmethod
    def _bare_name(cls, value: str) -> str:
        if not value or "/" in value or " " in value:
            raise ValueError(f"'{value}' is not a host name; write e.g. smtp.example.com")
        return value

    @field_validator("banner", "send")
    @classmethod
    def _not_empty(cls, value: str | None) -> str | None:
        if value == "":
            raise ValueError("give some text or leave the key out")
        return value


class TcpProbe(Probe):
    kind = "tcp"
    settings_model = TcpSettings

    def configure(self, settings: KindSettings) -> None:
        assert isinstance(settings, TcpSettings)
        self.settings = settings
        self.where = display(settings.host, settings.port)
        self.payload = settings.send.encode() if settings.send is not None else None

    @property
    def target_host(self) -> str:
        return self.settings.host

    async def observe(self, timeout: float) -> Observation:  # noqa: ASYNC109 - the contract
        run = _Run()
        deadline = own_deadline(timeout)
        line: bytes | None = None
        try:
            async with asyncio.timeout(deadline):
                line = await self._exchange(run)
        except ProbeProblem as problem:
            return Observation(problem.status, problem.reason, self._measurements(run))
        except TimeoutError:
            if run.timings.phase != "banner":
                late = run.timings.timed_out(deadline)
                return Observation(late.status, late.reason, self._measurements(run))
            received = run.received
            got = f"got '{excerpt(received, 120)}'" if received else "nothing arrived"
            reason = (
                f"no complete first line from {self.where} within {round(deadline, 2):g}s ({got})"
            )
            evidence = (("received", excerpt(received)),) if received else ()
            return Observation(Status.FAIL, reason, self._measurements(run), evidence)
        return self._verdict(run, line)

    async def _exchange(self, run: _Run) -> bytes | None:
        host, port = self.settings.host, self.settings.port
        sock = await connect(host, port, run.timings)
        try:
            channel = Channel(sock)
            if self.payload is not None:
                run.timings.phase = "send"
                await channel.send(self.payload)
            if self.settings.banner is None:
                return None
            run.timings.phase = "banner"
            began = time.perf_counter()
            line = await _first_line(channel, run.received)
            run.banner = time.perf_counter() - began
            return line
        except OSError as error:
            raise io_problem(error, host, port) from None
        finally:
            sock.close()

    def _measurements(self, run: _Run) -> tuple[Measurement, ...]:
        expect = self.settings.expect
        connect_ms = round(run.timings.connect * 1000, 3)
        connected = measure("connect_ms", connect_ms, "ms", expect.connect_ms)
        if run.banner is None:
            return (connected,)
        banner_ms = measure("banner_ms", round(run.banner * 1000, 3), "ms", expect.banner_ms)
        return (connected, banner_ms)

    def _verdict(self, run: _Run, line: bytes | None) -> Observation:
        banner = self.settings.banner
        measurements = self._measurements(run)
        if banner is None or line is None:
            connected = f"{self.where} accepted the connection"
            return judge(measurements, healthy=connected)
        text = line.decode("utf-8", "replace")
        evidence = (("first line", excerpt(text)),)
        if not run.received:
            problem = f"{self.where} closed the connection without sending anything"
        elif banner not in text:
            problem = (
                f"first line from {self.where} is '{excerpt(text, 120)}' (expected '{banner}')"
            )
        else:
            answered = f"{self.where} answered '{excerpt(text, 80)}'"
            return judge(measurements, evidence, healthy=answered)
        return judge(measurements, evidence, problems=(problem,))


async def _first_line(channel: Channel, received: bytearray) -> bytes:
    """Up to the first line break, or what came before the peer closed (b"" for nothing)."""
    while True:
        end = received.find(b"\n")
        if end >= 0:
            return bytes(received[:end]).rstrip(b"\r")
        if len(received) >= MAX_LINE:
            return bytes(received[:MAX_LINE])
        data = await channel.recv()
        if not data:
            return bytes(received)
        received += data
