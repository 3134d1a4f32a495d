"""The tls probe: a server's certificate is trusted, names the server, and is not expiring.

One handshake verifies the chain and the name (`server_name`, default `host`) the way a
client would. When it fails, a second, unverified handshake fetches the certificate anyway,
so the card still shows its names and dates and `days_left` keeps being measured.

Statuses: `fail` for an untrusted chain or self-signed certificate, a name mismatch (the
reason lists the names the certificate holds), an expired certificate, a broken handshake,
a refused connection, `days_left`/`handshake_ms` outside their thresholds, or no answer in
time. `error` when our DNS lookup failed or our own `ca_file` cannot be loaded.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from probes.certificates import CertificateFacts, read_certificate
from probes.net import (
    ProbeProblem,
    Timings,
    connect,
    display,
    io_problem,
    own_deadline,
)
from probes.probe import KindSettings, Probe
from probes.result import Measurement, Observation
from probes.thresholds import Threshold, judge, measure
from probes.tls_client import TlsChannel, tls_context, tls_problem

_NAME_MISMATCH = frozenset({62, 64})  # X509_V_ERR_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH
_EXPIRED = 10  # X509_V_ERR_CERT_HAS_EXPIRED


class TlsExpect(BaseModel):
    """`expect:` of a tls probe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days_left: Threshold | None = None
    handshake_ms: Threshold | None = None


class TlsSettings(KindSettings):
    host: str
    port: int = Field(443, ge=1, le=65535)
    server_name: str | None = None
    ca_file: Path | None = None
    expect: TlsExpect = TlsExpect()

    @field_validator("host", "server_name")
    @classmethod
    def _bare_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or "/" in value or " " in value):
            raise ValueError(f"'{value}' is not a host name; write e.g. shop.example.com")
        return value


@dataclass
class _Found:
    facts: CertificateFacts | None = None
    untrusted: str | None = None


class TlsProbe(Probe):
    kind = "tls"
    settings_model = TlsSettings

    def configure(self, settings: KindSettings) -> None:
        assert isinstance(settings, TlsSettings)
        self.settings = settings
        self.server_name = settings.server_name or settings.host
        self.where = display(settings.host, settings.port)
        self._verifying: ssl.SSLContext | None = None
        self._reading: ssl.SSLContext | None = None

    @property
    def target_host(self) -> str:
        return self.settings.host

    async def observe(self, timeout: float) -> Observation:  # noqa: ASYNC109 - the contract
        timings = Timings()
        found = _Found()
        deadline = own_deadline(timeout)
        try:
            async with asyncio.timeout(deadline):
                await self._check(timings, found)
        except ProbeProblem as problem:
            return self._verdict(timings, found, problem)
        except TimeoutError:
            return self._verdict(timings, found, timings.timed_out(deadline))
        return self._verdict(timings, found, None)

    async def _check(self, timings: Timings, found: _Found) -> None:
        if self._verifying is None:
            self._verifying = tls_context(True, self.settings.ca_file)
        try:
            der = await self._handshake(self._verifying, timings)
        except ssl.SSLCertVerificationError as error:
            found.untrusted = error.verify_message or str(error)
            code = error.verify_code
            if self._reading is None:
                self._reading = tls_context(False, None)
            try:
                der = await self._handshake(self._reading, Timings())
            except (ProbeProblem, ssl.SSLError):
                return  # the verification failure is the news; the certificate stays unread
            found.facts = _read(der)
            found.untrusted = self._untrusted_reason(found.untrusted, code, found.facts)
            return
        found.facts = _read(der)

    async def _handshake(self, context: ssl.SSLContext, timings: Timings) -> bytes | None:
        """The peer certificate after a handshake; verification errors propagate."""
        sock = await connect(self.settings.host, self.settings.port, timings)
        try:
            channel = TlsChannel(sock, context, self.server_name)
            timings.enter("tls", self.settings.host, self.settings.port)
            began = time.perf_counter()
            try:
                await channel.handshake()
            except ssl.SSLCertVerificationError:
                raise
            except ssl.SSLError as error:
                raise tls_problem(error, self.server_name, self.where) from None
            except OSError as error:
                raise io_problem(error, self.settings.host, self.settings.port) from None
            finally:
                timings.tls += time.perf_counter() - began
            return channel.peer_certificate()
        finally:
            sock.close()

    def _untrusted_reason(self, message: str, code: int, facts: CertificateFacts | None) -> str:
        if facts is not None and code in _NAME_MISMATCH:
            names = ", ".join(facts.names) or "no names"
            return f"certificate is for {names}, not {self.server_name}"
        if facts is not None and code == _EXPIRED:
            return f"certificate expired on {facts.not_after:%Y-%m-%d %H:%M} UTC"
        return f"certificate of {self.server_name} not trusted: {message}"

    def _verdict(
        self, timings: Timings, found: _Found, stopped: ProbeProblem | None
    ) -> Observation:
        expect = self.settings.expect
        measurements: list[Measurement] = []
        evidence: tuple[tuple[str, str], ...] = ()
        facts = found.facts
        healthy = "certificate valid"
        if facts is not None:
            days = facts.days_left(self.context.now())
            measurements.append(measure("days_left", days, "days", expect.days_left))
            evidence = facts.evidence()
            healthy = f"certificate valid until {facts.not_after:%Y-%m-%d} ({days:.0f} days left)"
        if timings.connect:
            measurements.append(measure("connect_ms", round(timings.connect * 1000, 3), "ms", None))
        if timings.tls:
            handshake = round(timings.tls * 1000, 3)
            measurements.append(measure("handshake_ms", handshake, "ms", expect.handshake_ms))
        if stopped is not None:
            return Observation(stopped.status, stopped.reason, tuple(measurements), evidence)
        if found.untrusted is not None:
            problems: tuple[str, ...] = (found.untrusted,)
        elif facts is None:
            problems = (f"{self.where} sent no readable certificate",)
        else:
            problems = ()
        return judge(tuple(measurements), evidence, healthy=healthy, problems=problems)


def _read(der: bytes | None) -> CertificateFacts | None:
    if not der:
        return None
    try:
        return read_certificate(der)
    except ValueError:
        return None
