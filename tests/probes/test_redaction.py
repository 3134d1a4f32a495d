"""Secrets a target echoes never reach a result: reasons and evidence are redacted."""

from __future__ import annotations

import pytest

from probes.probe import KindSettings, Probe, ProbeContext, run_probe
from probes.redaction import clean, redact
from probes.result import Observation, Status

KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
    "-----END OPENSSH PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ("mysql://shop:hunter2@db:3306/shop", "mysql://shop:[redacted]@db:3306/shop"),
        ("DB_PASSWORD=hunter2 next", "DB_PASSWORD=[redacted] next"),
        ('{"api_key": "abc123"}', '{"api_key": [redacted]}'),
        ("api_key: abc123", "api_key: [redacted]"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x.y", "Authorization: Bearer [redacted]"),
        ("token xoxb-1234-5678-abcdef", "token xox-[redacted]"),
        ("key AKIAABCDEFGHIJKLMNOP used", "key [access key redacted] used"),
        (f"before\n{KEY}\nafter", "before\n[private key redacted]\nafter"),
        ("disk 91% used on /var/www", "disk 91% used on /var/www"),
    ],
)
def test_redact(said: str, shown: str) -> None:
    assert redact(said) == shown


def test_clean_escapes_control_characters_and_caps() -> None:
    assert clean("red \x1b[31mtext\x1b[0m\n", 100) == "red \\x1b[31mtext\\x1b[0m\n"
    assert clean("a\nb  c", 100, one_line=True) == "a b c"
    assert clean("x" * 50, 10) == "x" * 9 + "…"


class EchoingProbe(Probe):
    """A target that answers with a connection string and a private key in its output."""

    kind = "tcp"
    settings_model = KindSettings

    def configure(self, settings: KindSettings) -> None:
        pass

    @property
    def target_host(self) -> str:
        return "h"

    async def observe(self, budget: float) -> Observation:
        return Observation(
            Status.FAIL,
            "cannot connect to postgres://app:s3cr3t@db/app\r\n",
            evidence=(("stdout", f"password=s3cr3t\n{KEY}"),),
        )


async def test_run_probe_redacts_reason_and_evidence() -> None:
    result = await run_probe(EchoingProbe("p", KindSettings(), ProbeContext()), 1)
    assert result.reason == "cannot connect to postgres://app:[redacted]@db/app"
    assert dict(result.evidence)["stdout"] == "password=[redacted]\n[private key redacted]"
    assert "s3cr3t" not in result.reason + str(result.evidence)
