"""Every shipped example configuration passes `tocsin check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.yml"))
RUNBOOK_EXAMPLES = {"woocommerce.yml", "bazar.yml", "edubot.yml", "ecommerce-platform.yml"}


def test_one_example_per_runbook_and_a_demo() -> None:
    assert {path.name for path in EXAMPLES} >= RUNBOOK_EXAMPLES | {"demo.yml"}


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_passes_check(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(example)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"{example} is valid" in captured.out
