"""The tocsin command line as a user runs it: exit codes, messages, JSON, nothing lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bot.cli import main
from bot.config import load_config
from bot.probe_plan import probe_context

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tocsin.yml"
    path.write_text(
        f'slack: {{channel: "#ops-incidents"}}\nstorage: {{path: {tmp_path / "t.db"}}}\n'
        "listener: {port: 0}\n"
    )
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_check_valid_file_prints_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", str(REPO / "examples" / "demo.yml"))
    assert code == 0
    assert "demo.yml is valid" in out
    for heading in ("Probes (3)", "Commands (2)", "Hosts (1)", "Severities and escalation"):
        assert heading in out


def test_check_invalid_file_exits_2_with_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("slack: {channel: nope}\nprobes: [{id: a, kind: ping, depends_on: [b]}]\n")
    code, out, err = run(capsys, "check", str(bad))
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"{bad}: invalid configuration"
    assert any(
        line.startswith("  slack.channel (line 1): 'nope' is not a channel") for line in lines
    )
    assert any("probes[0].kind (line 2): unknown probe kind 'ping'" in line for line in lines)
    assert any("probes[0].depends_on (line 2): unknown probe 'b'" in line for line in lines)


def test_invalid_config_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "tocsin.yml"
    bad.write_text(f"slack: {{channel: nope}}\nstorage: {{path: {tmp_path / 'x.db'}}}\n")
    code, _, _ = run(capsys, "incidents", "declare", "Down", "--severity", "P0", "-c", str(bad))
    assert code == 2
    assert list(tmp_path.iterdir()) == [bad]


def test_missing_config_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "incidents", "list", "-c", str(tmp_path / "nope.yml"))
    assert code == 2
    assert "nope.yml: no such file; pass the config with -c FILE" in err


def test_incident_round_trip(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = str(config)
    code, out, _ = run(capsys, "-c", c, "incidents", "declare", "Checkout 500", "--severity", "P1")
    assert (code, out.strip()) == (0, "INC-1 [P1] open: Checkout 500")
    assert run(capsys, "incidents", "ack", "INC-1", "-c", c)[0] == 0
    assert run(capsys, "incidents", "note", "INC-1", "php-fpm restarted", "-c", c)[0] == 0
    assert run(capsys, "incidents", "resolve", "inc-1", "--reason", "ok", "-c", c)[0] == 0
    closed = run_json(capsys, "incidents", "close", "1", "-c", c)
    assert (closed["status"], closed["closure_reason"]) == ("closed", "resolved")

    shown = run_json(capsys, "incidents", "show", "INC-1", "-c", c)
    assert [e["kind"] for e in shown["timeline"]] == [
        "declared",
        "acknowledged",
        "note",
        "resolved",
        "closed",
    ]
    assert shown["timeline"][2]["text"] == "php-fpm restarted"
    assert shown["timeline"][1]["actor"]["source"] == "cli"
    assert all(shown["milestones"][m] for m in ("started", "acknowledged", "resolved", "closed"))
    assert shown["milestones"]["mitigated"] is None


def test_list_filters_and_human_table(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = str(config)
    for title in ("one", "two"):
        run(capsys, "incidents", "declare", title, "--severity", "P2", "-c", c)
    run(capsys, "incidents", "resolve", "INC-1", "-c", c)
    assert [i["id"] for i in run_json(capsys, "incidents", "list", "-c", c)] == ["INC-2", "INC-1"]
    active = run_json(capsys, "incidents", "list", "--status", "active", "-c", c)
    assert [i["id"] for i in active] == ["INC-2"]
    code, out, _ = run(capsys, "incidents", "list", "--status", "resolved", "-c", c)
    assert code == 0
    assert "INC-1" in out
    assert "INC-2" not in out


def test_refusals_exit_1_with_one_line(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = str(config)
    run(capsys, "incidents", "declare", "Disk full", "--severity", "P1", "-c", c)
    run(capsys, "incidents", "ack", "INC-1", "-c", c)
    assert run(capsys, "incidents", "ack", "INC-1", "-c", c) == (
        1,
        "",
        "error: INC-1 is acknowledged; it cannot be acknowledged. "
        "Allowed: mitigate, resolve, close\n",
    )
    assert run(capsys, "incidents", "show", "INC-42", "-c", c) == (
        1,
        "",
        "error: no incident INC-42; `/incident list` or `tocsin incidents list` shows them\n",
    )


def test_schema_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "tocsin.yml"
    assert "probes" in schema["properties"]


def test_run_reports_store_and_active_incidents(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "incidents", "declare", "Shop down", "--severity", "P0", "-c", str(config))
    code, out, _ = run(capsys, "run", "--for", "0s", "-c", str(config))
    assert code == 0
    assert "is ready" in out
    assert "Shop down" in out


def test_console_script_is_installed() -> None:
    tocsin = Path(sys.executable).parent / "tocsin"
    result = subprocess.run(
        [str(tocsin), "check", str(REPO / "examples" / "demo.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stdout


def test_tocsin_config_environment_variable(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOCSIN_CONFIG", str(config))
    assert run(capsys, "incidents", "declare", "Via env", "--severity", "P3")[0] == 0
    assert [i["title"] for i in run_json(capsys, "incidents", "list")] == ["Via env"]


def test_titles_are_shown_as_written_never_as_markup(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    title = "Checkout [/] broken [bold]x[/bold]"
    c = str(config)
    assert run(capsys, "incidents", "declare", title, "--severity", "P2", "-c", c)[0] == 0
    run(capsys, "incidents", "note", "INC-1", "[red]plain[/red]", "-c", c)
    code, out, err = run(capsys, "incidents", "show", "INC-1", "-c", c)
    assert (code, err) == (0, "")
    assert title in out
    assert "[red]plain[/red]" in out
    code, out, _ = run(capsys, "run", "--for", "0s", "-c", c)
    assert code == 0
    assert "[/]" in out


@pytest.mark.parametrize("limit", ["0", "-3", "many"])
def test_limit_must_be_positive(
    config: Path, capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["incidents", "list", "--limit", limit, "-c", str(config)])
    assert exited.value.code == 2
    assert "is not a positive whole number" in capsys.readouterr().err


@pytest.mark.parametrize("example", sorted((REPO / "examples").glob("*.yml")), ids=lambda p: p.name)
def test_schema_accepts_every_example_and_knows_kind_keys(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An editor using `tocsin schema` agrees with the loader on real files."""
    _, out, _ = run(capsys, "schema")
    validator = jsonschema.Draft202012Validator(json.loads(out))
    data = yaml.safe_load(example.read_text())
    assert [e.message for e in validator.iter_errors(data)] == []
    data["probes"][0]["ulr"] = "http://typo/"
    assert any("ulr" in e.message for e in validator.iter_errors(data))


def test_run_refuses_a_store_directory_others_may_write_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o775)
    config = tmp_path / "tocsin.yml"
    config.write_text(f'slack: {{channel: "#ops"}}\nstorage: {{path: {shared / "t.db"}}}\n')
    code, _, err = run(capsys, "run", "--for", "0s", "-c", str(config))
    assert code == 2
    assert f"error: {shared / 't.db'}: the directory {shared} is writable by other users" in err
    assert f"`chmod g-w,o-w {shared}`" in err
    assert list(shared.iterdir()) == []


def test_probes_see_only_the_variables_they_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """SLACK_BOT_TOKEN and friends never reach the probe layer."""
    monkeypatch.setenv("SHOP_DB_PASSWORD", "hunter2")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-not-for-probes")
    loaded = load_config(REPO / "examples" / "demo.yml")
    assert dict(probe_context(loaded.config).environ) == {"SHOP_DB_PASSWORD": "hunter2"}
