"""Secrets a target echoes never reach a result: reasons and evidence are redacted,
by pattern (anything that looks like a secret) and by value (the secrets tocsin holds)."""

from __future__ import annotations

import logging

import pytest

from probes.probe import KindSettings, Probe, ProbeContext, run_probe
from probes.redaction import Redaction, clean, redact
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


HELD = "9f2c41d7e0b6"  # an API key as bare text: no pattern can tell it from other words


def test_secrets_tocsin_holds_are_redacted_by_value() -> None:
    redaction = Redaction([HELD, "Tr0ub&dor 3", "C:\\vault\\k3y", "short", HELD + "77"])
    assert redaction.clean(f"invalid key {HELD}!", 100) == "invalid key [redacted]!"
    assert redaction.redact(f"key={HELD}77") == "key=[redacted]"  # the longer secret whole
    # as a URL and as JSON quote them
    assert redaction.redact("GET /?k=Tr0ub%26dor%203 said") == "GET /?k=[redacted] said"
    assert redaction.redact('{"k": "C:\\\\vault\\\\k3y"}') == '{"k": "[redacted]"}'
    assert redaction.redact("a short answer") == "a short answer"  # too short to be a secret
    assert redaction.redact("password=hunter2") == "password=[redacted]"  # patterns still apply
    assert Redaction().clean(f"invalid key {HELD}", 100) == f"invalid key {HELD}"


class KeyEchoingProbe(EchoingProbe):
    """A target that quotes the key it was sent, then a probe bug that quotes it too."""

    async def observe(self, budget: float) -> Observation:
        if self.probe_id == "buggy":
            raise RuntimeError(f"cannot parse answer to key {HELD}")
        return Observation(
            Status.FAIL, f"HTTP 401: invalid key {HELD}", evidence=(("body", f"key {HELD}"),)
        )


async def test_run_probe_redacts_the_secrets_of_its_context_in_results_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    context = ProbeContext(redaction=Redaction([HELD]))
    result = await run_probe(KeyEchoingProbe("echo", KindSettings(), context), 1)
    assert (result.reason, dict(result.evidence)) == (
        "HTTP 401: invalid key [redacted]",
        {"body": "key [redacted]"},
    )
    with caplog.at_level(logging.ERROR, logger="probes.probe"):
        raised = await run_probe(KeyEchoingProbe("buggy", KindSettings(), context), 1)
    assert raised.reason == "probe raised RuntimeError: cannot parse answer to key [redacted]"
    assert "probe buggy raised" in caplog.text and "RuntimeError" in caplog.text
    assert HELD not in caplog.text
