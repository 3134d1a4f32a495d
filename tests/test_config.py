"""tocsin.yml validation: every problem named by key path and line, with the fix."""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import ConfigError, LoadedConfig, TocsinConfig, load_config_text
from incidents.model import Severity
from probes.durations import format_duration, parse_duration, parse_size

MINIMAL = 'slack: {channel: "#ops-incidents"}\n'

SHOP = """
slack: {channel: "#ops-incidents"}
hosts:
  web-1: {address: 10.0.0.5, user: tocsin, key: /run/secrets/id, known_hosts: /etc/kh}
probes:
  - id: shop-db
    kind: mysql
    host: 10.0.0.6
    user: probe
    password_env: SHOP_DB_PASSWORD
  - id: shop-home
    kind: http
    url: https://shop.example.com/
    interval: 30s
    depends_on: [shop-db]
    remediate: [restart-nginx]
commands:
  restart-nginx: {hosts: [web-1], run: [sudo, systemctl, restart, nginx], risk: restart}
approvals:
  restart: {approvers: ["@oncall"]}
"""


def load(text: str) -> LoadedConfig:
    return load_config_text(textwrap.dedent(text))


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load(text)
    return error.value.lines()


def test_minimal_file_gets_runbook_severities() -> None:
    config = load(MINIMAL).config
    assert {s: (v.name, v.respond_within) for s, v in config.severities.items()} == {
        Severity.P0: ("Critical", timedelta(0)),
        Severity.P1: ("High", timedelta(minutes=15)),
        Severity.P2: ("Medium", timedelta(minutes=30)),
        Severity.P3: ("Low", timedelta(hours=1)),
    }
    assert str(config.storage.path) == "tocsin.db"


def test_file_severity_overrides_only_what_it_names() -> None:
    config = load(MINIMAL + "severities: {P1: {name: Urgent, respond_within: 5m}}\n").config
    assert config.severities[Severity.P1].name == "Urgent"
    assert config.severities[Severity.P1].respond_within == timedelta(minutes=5)
    assert config.severities[Severity.P3].name == "Low"


def test_valid_shop_config_keeps_kind_specific_fields() -> None:
    loaded = load(SHOP)
    home = loaded.config.probes[1]
    assert home.model_extra == {"url": "https://shop.example.com/"}
    assert home.interval == timedelta(seconds=30)
    assert home.effective_timeout == timedelta(seconds=10)
    assert loaded.config.probes[0].effective_timeout == timedelta(seconds=10)


def test_default_timeout_stays_below_a_short_interval() -> None:
    config = load(
        MINIMAL + "probes: [{id: fast, kind: tcp, host: h, port: 1, interval: 5s}]\n"
    ).config
    assert config.probes[0].effective_timeout == timedelta(seconds=4)


def test_unknown_depends_on_names_the_path_line_and_known_probes() -> None:
    text = SHOP.replace("depends_on: [shop-db]", "depends_on: [shop-dbb]")
    assert problems(text) == [
        "probes[1].depends_on (line 15): unknown probe 'shop-dbb' (did you mean 'shop-db'?) "
        "(known: shop-db, shop-home)"
    ]


def test_several_problems_are_reported_together() -> None:
    text = (
        SHOP.replace("depends_on: [shop-db]", "depends_on: [nope]")
        .replace("remediate: [restart-nginx]", "remediate: [restart-ngnix]")
        .replace("hosts: [web-1]", "hosts: [web-9]")
        .replace("interval: 30s", "interval: 30")
    )
    found = problems(text)
    assert len(found) == 4
    assert any(p.startswith("probes[1].interval (line 14): add a unit: write 30s") for p in found)
    assert any(
        "unknown command 'restart-ngnix' (did you mean 'restart-nginx'?)" in p for p in found
    )
    assert any(p.startswith("commands.restart-nginx.hosts") and "web-9" in p for p in found)
    assert any("unknown probe 'nope'" in p for p in found)


def test_dependency_cycle_is_named() -> None:
    text = MINIMAL + textwrap.dedent(
        """
        probes:
          - {id: a, kind: tcp, host: h, port: 1, depends_on: [b]}
          - {id: b, kind: tcp, host: h, port: 1, depends_on: [c]}
          - {id: c, kind: tcp, host: h, port: 1, depends_on: [a]}
          - {id: d, kind: tcp, host: h, port: 1, depends_on: [d]}
        """
    )
    assert problems(text) == [
        "probes[3].depends_on (line 7): 'd' depends on itself; remove it",
        "probes[0].depends_on (line 4): dependency cycle a -> b -> c -> a; "
        "remove one of these depends_on",
    ]


def test_duplicate_probe_ids_and_duplicate_yaml_keys() -> None:
    text = MINIMAL + textwrap.dedent(
        """
        probes:
          - {id: a, kind: tcp, host: h, port: 1}
          - {id: a, kind: tcp, host: h, port: 1}
        storage: {path: one.db}
        storage: {path: two.db}
        """
    )
    assert problems(text) == [
        "storage (line 7): duplicate key 'storage' (first on line 6); keep one, "
        "YAML would silently drop the first",
        "probes[1].id (line 5): duplicate probe id 'a' (first at probes[0]); "
        "give each probe its own id",
    ]


def test_timeout_must_stay_below_interval() -> None:
    [problem] = problems(
        MINIMAL + "probes: [{id: a, kind: tcp, host: h, port: 1, interval: 10s, timeout: 10s}]\n"
    )
    assert problem.startswith(
        "probes[0].timeout (line 2): timeout (10s) must be above 0s and shorter"
    )
    assert "lower the timeout or raise the interval" in problem


def test_slack_confirm_after_is_a_positive_duration() -> None:
    assert load(MINIMAL).config.slack.confirm_after == timedelta(seconds=30)
    config = load('slack: {channel: "#ops-incidents", confirm_after: 45s}\n').config
    assert config.slack.confirm_after == timedelta(seconds=45)
    assert problems('slack: {channel: "#ops-incidents", confirm_after: 0s}\n') == [
        "slack.confirm_after (line 1): must be longer than 0s, e.g. 30s"
    ]


def test_unknown_keys_are_errors_with_a_suggestion() -> None:
    assert problems('slack: {channel: "#ops", chanel: "#x"}\n') == [
        "slack.chanel (line 1): unknown key 'chanel' (did you mean 'channel'?); "
        "remove it or fix its spelling"
    ]
    assert problems(MINIMAL + "probes: [{id: a, kind: tcp, host: h, port: 1, intervl: 30s}]\n") == [
        "probes[0].intervl (line 2): unknown key 'intervl' (did you mean 'interval'?); "
        "remove it or fix its spelling"
    ]


def test_unknown_probe_kind_lists_the_kinds() -> None:
    [problem] = problems(MINIMAL + "probes: [{id: a, kind: ping}]\n")
    assert "unknown probe kind 'ping'; use one of http, tls, tcp, mysql, redis, ssh, heartbeat" in (
        problem
    )


def test_yaml_syntax_error_gives_line_and_column() -> None:
    [problem] = problems('slack: {channel: "#ops"}\nprobes:\n  - id: a\n   kind: tcp\n')
    assert problem.startswith("tocsin.yml: YAML syntax error at line 4, column 4")


@pytest.mark.parametrize(
    ("snippet", "path", "fix"),
    [
        ("probes: [{id: shop-db, kind: mysql, password: hunter2}]", "probes[0].password",
         "`password_env: SHOP_DB_PASSWORD`"),
        ("probes: [{id: shop-db, kind: mysql, db_password: hunter2}]", "probes[0].db_password",
         "`db_password_env: SHOP_DB_DB_PASSWORD`"),
        ("probes: [{id: api, kind: http, headers: {Authorization: Bearer abc}}]",
         "probes[0].headers.Authorization", "`Authorization_env: API_AUTHORIZATION`"),
        ("probes: [{id: api, kind: http, headers: {X-Api-Key: abc}}]",
         "probes[0].headers.X-Api-Key", "`X-Api-Key_env: API_X_API_KEY`"),
        ("probes: [{id: cache, kind: redis, requirepass: abc}]", "probes[0].requirepass",
         "`requirepass_env: CACHE_REQUIREPASS`"),
        ("hosts: {web-1: {address: a, user: u, key: /k, known_hosts: /kh, passphrase: x}}",
         "hosts.web-1.passphrase", "`key_passphrase_env:`"),
        ('slack: {channel: "#ops", token: abc}', "slack.token", "SLACK_BOT_TOKEN"),
        ("probes: [{id: db, kind: mysql, url: 'mysql://probe:hunter2@10.0.0.6/shop'}]",
         "probes[0].url", "a URL with a password in it"),
    ],
)  # fmt: skip
def test_inline_secret_says_what_to_write_instead(snippet: str, path: str, fix: str) -> None:
    text = snippet if snippet.startswith("slack") else MINIMAL + snippet
    found = problems(text + "\n")
    assert any(p.startswith(path) and fix in p for p in found), found


def test_secret_under_an_env_key_is_never_echoed() -> None:
    found = problems(
        MINIMAL + "hosts: {web-1: {address: a, user: u, key: /k, known_hosts: /kh, "
        "key_passphrase_env: 'hunter2 secret'}}\n"
    )
    assert found == [
        "hosts.web-1.key_passphrase_env (line 2): `key_passphrase_env` names an environment "
        "variable such as SHOP_DB_PASSWORD, not the secret itself; move the value into the "
        "environment"
    ]
    assert "hunter2" not in "".join(found)


def test_slack_token_pasted_anywhere_is_refused() -> None:
    found = problems(
        'slack: {channel: "#ops"}\n'
        "probes: [{id: a, kind: http, url: http://h/, note: xoxb-123-456}]\n"
    )
    assert found == [
        "probes[0].note (line 2): this looks like a Slack token; use SLACK_BOT_TOKEN in the "
        "environment instead"
    ]


def test_env_field_must_name_a_variable_not_hold_the_secret() -> None:
    [problem] = problems(
        MINIMAL + "probes: [{id: a, kind: mysql, host: h, user: probe, password_env: 'hunter2!'}]\n"
    )
    assert problem.startswith(
        "probes[0].password_env (line 2): `password_env` names an environment"
    )


def test_unset_environment_variables_are_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOP_DB_PASSWORD", raising=False)
    assert load(SHOP).warnings == [
        "probes[0].password_env: environment variable SHOP_DB_PASSWORD is not set here"
    ]
    monkeypatch.setenv("SHOP_DB_PASSWORD", "from-the-environment")
    assert load(SHOP).warnings == []


def test_host_without_known_hosts_is_refused_with_the_fix() -> None:
    [problem] = problems(MINIMAL + "hosts: {web-1: {address: a, user: u, key: /k}}\n")
    assert problem.startswith(
        "hosts.web-1.known_hosts (line 2): is required: tocsin always verifies"
    )
    assert "ssh-keyscan" in problem


@pytest.mark.parametrize(
    ("run", "params", "expected"),
    [
        ('[mysql, -e, "KILL {id}"]', "{id: {pattern: '^[0-9]+$'}}", "feeds a parameter to code"),
        ("[sudo, bash, /opt/fix.sh, '{x}']", "{x: {enum: [a]}}", "'bash' is an interpreter"),
        ("[wp, eval, '{code}']", "{code: {pattern: '.*'}}", "'eval' is an interpreter"),
        ("[wp, plugin, deactivate, '{plugin}']", "{}", "placeholder '{plugin}' has no entry"),
        ("[systemctl, restart, nginx]", "{unit: {enum: [nginx]}}", "'unit' is declared but never"),
        ("[wp, '{x}']", "{x: {}}", "give exactly one of `pattern` or `enum`"),
        ("[wp, '{x}']", "{x: {pattern: '([a-z'}}", "is not a valid regular expression"),
        ("[wp, '{x}']", "{x: {enum: ['--all']}}", "starts with '-'"),
        ("[sudo, '{x}']", "{x: {enum: [nginx]}}", "'{x}' stands where a program is chosen"),
        ("[sudo, -u, www-data, '{x}', -c, id]", "{x: {enum: [bash]}}", "where a program is"),
        ("[timeout, 30, '{x}']", "{x: {enum: [reboot]}}", "where a program is chosen"),
        ("[docker, exec, -u, '0', db, '{x}']", "{x: {enum: [sh]}}", "where a program is chosen"),
        ("[ssh, db-2, '{x}']", "{x: {pattern: '.*'}}", "'ssh' is an interpreter"),
        ("[redis-cli, EVAL, '{x}', '0']", "{x: {pattern: '.*'}}", "feeds a parameter to code"),
        ("[find, /tmp, -exec, '{x}']", "{x: {enum: [rm]}}", "feeds a parameter to code"),
    ],
)
def test_unsafe_command_templates_are_refused(run: str, params: str, expected: str) -> None:
    text = MINIMAL + textwrap.dedent(
        f"""
        hosts: {{web-1: {{address: a, user: u, key: /k, known_hosts: /kh}}}}
        commands:
          fix: {{hosts: [web-1], run: {run}, params: {params}, risk: restart}}
        """
    )
    found = problems(text)
    assert any(expected in p for p in found), found


def test_safe_parameterised_command_is_accepted_and_unapproved_tiers_warned() -> None:
    text = MINIMAL + textwrap.dedent(
        """
        hosts: {web-1: {address: a, user: u, key: /k, known_hosts: /kh}}
        commands:
          deactivate-plugin:
            hosts: [web-1]
            run: [sudo, -u, www-data, wp, plugin, deactivate, "{plugin}", --path=/var/www/html]
            params: {plugin: {pattern: "^[a-z0-9][a-z0-9-]{0,63}$"}}
            risk: disruptive
            output_cap: 16KiB
        """
    )
    loaded = load(text)
    assert loaded.config.commands["deactivate-plugin"].output_cap == 16384
    assert loaded.warnings == [
        "commands.deactivate-plugin: risk 'disruptive' has no entry under approvals, so nobody "
        "can approve it; add approvals.disruptive"
    ]


def test_escalation_levels_and_targets() -> None:
    good = load(
        MINIMAL + "escalation: {P0: {levels: [{notify: ['@oncall', U024BE7LH], after: 0m}, "
        "{notify: [S0614TZR7], after: 5m}], repeat: 2}}\n"
    )
    assert good.config.escalation[Severity.P0].levels[1].after == timedelta(minutes=5)
    found = problems(MINIMAL + "escalation: {P4: {levels: [{notify: [oncall], after: 5m}]}}\n")
    assert found[0] == "escalation.P4 (line 2): key 'P4': Input should be 'P0', 'P1', 'P2' or 'P3'"
    assert any("'oncall' is not a Slack target" in p for p in found)
    [order] = problems(
        MINIMAL + "escalation: {P1: {levels: [{notify: ['@a'], after: 5m}, "
        "{notify: ['@b'], after: 1m}]}}\n"
    )
    assert order.startswith(
        "escalation.P1.levels (line 2): levels must be in order of `after` (got 5m, 1m)"
    )


def test_maintenance_windows() -> None:
    base = MINIMAL + "probes: [{id: shop-home, kind: http, url: 'http://shop/'}]\n"
    ok = load(base + 'maintenance: [{probes: ["shop-*"], cron: "0 2 * * SUN", duration: 1h, '
              "reason: weekly backup}]\n")  # fmt: skip
    assert ok.config.maintenance[0].duration == timedelta(hours=1)
    assert problems(
        base + "maintenance: [{probes: [blog-*], start: 2026-12-01T02:00:00Z, "
        "end: 2026-12-01T03:00:00Z, reason: x}]\n"
    ) == ["maintenance[0].probes (line 3): 'blog-*' matches no probe (known: shop-home)"]
    [bad_cron] = problems(base + "maintenance: [{probes: [shop-home], cron: '61 2 * * *', "
                          "duration: 1h, reason: x}]\n")  # fmt: skip
    assert "cron '61 2 * * *' is not a crontab line" in bad_cron
    [both] = problems(base + "maintenance: [{probes: [shop-home], cron: '0 2 * * *', "
                      "start: 2026-12-01T02:00:00Z, reason: x}]\n")  # fmt: skip
    assert "give either `cron` with `duration`, or `start` with `end`" in both


def test_timezone_is_checked() -> None:
    assert load(MINIMAL + "timezone: Europe/Berlin\n").config.zone.key == "Europe/Berlin"
    [problem] = problems(MINIMAL + "timezone: Mars/Olympus\n")
    assert problem.startswith("timezone (line 2): timezone 'Mars/Olympus' is unknown")


def test_empty_and_non_mapping_files() -> None:
    assert problems("") == ["tocsin.yml: the file is empty; start from examples/demo.yml"]
    assert problems("- a\n- b\n") == ["tocsin.yml: the top level must be a mapping of keys"]
    assert problems("probes: []\n") == ["slack (line 1): is required; add `slack:`"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("500ms", 0.5), ("2d", 172800), ("1w", 604800),
     ("0m", 0)],
)  # fmt: skip
def test_durations(text: str, expected: float) -> None:
    assert parse_duration(text).total_seconds() == expected


@pytest.mark.parametrize("text", ["30", "5 minutes", "1x", "", "-5s", "m"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"30s|5m"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**9))
def test_duration_format_round_trips(milliseconds: int) -> None:
    value = timedelta(milliseconds=milliseconds)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(
    "text", ["99999999999999999999999999w", "3651d", "999999999999w999999999999w", "9" * 5000 + "s"]
)
def test_durations_past_ten_years_are_refused_with_the_bound(text: str) -> None:
    with pytest.raises(ValueError, match=r"longer than 3650d \(10 years\)"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "shown"), [(".nan", "nan"), ("-.inf", "-inf"), ("1e400", "'1e400'")]
)
def test_thresholds_and_ladders_must_be_finite(value: str, shown: str) -> None:
    probe = "{id: a, kind: http, url: 'https://x/', expect: {ttfb_ms: {below: VALUE}},\n"
    ladder = "  severity_ladder: [{above: VALUE, severity: P1}]}"
    lines = problems(MINIMAL + f"probes: [{probe}{ladder}]\n".replace("VALUE", value))
    fix = f"must be a finite number, not {shown}; write e.g. 800"
    assert lines == [
        f"probes[0].expect.ttfb_ms.below (line 2): {fix}",
        f"probes[0].severity_ladder[0].above (line 3): {fix}",
    ]


def test_sizes() -> None:
    assert [parse_size(v) for v in (65536, "64KiB", "1MiB", "10KB")] == [65536, 65536, 2**20, 10000]
    with pytest.raises(ValueError, match="64KiB"):
        parse_size("lots")


def test_json_schema_describes_the_file() -> None:
    schema = TocsinConfig.model_json_schema()
    assert set(schema["properties"]) >= {
        "slack", "storage", "severities", "escalation", "hosts", "probes", "commands",
        "approvals", "maintenance",
    }  # fmt: skip
    assert schema["required"] == ["slack"]
    probe = schema["$defs"]["ProbeSettings"]
    assert probe["properties"]["interval"]["pattern"].startswith("^(")
    json.dumps(schema)


def test_severity_without_response_time_takes_the_default() -> None:
    config = load(MINIMAL + "severities: {P2: {name: 'P3 (Medium)'}}\n").config
    assert config.severities[Severity.P2].name == "P3 (Medium)"
    assert config.severities[Severity.P2].response_time == timedelta(minutes=30)


def test_severity_ladder_and_kind_specific_near_misses() -> None:
    probe = (
        "probes: [{id: disk, kind: tcp, host: h, port: 1, "
        "severity_ladder: [{above: 85, severity: P1}]}]\n"
    )
    [step] = load(MINIMAL + probe).config.probes[0].severity_ladder
    assert (step.measure, step.above, step.severity) == ("value", 85, Severity.P1)
    assert problems(MINIMAL + "probes: [{id: a, kind: http, ulr: 'http://x/'}]\n") == [
        "probes[0].url (line 2): is required; add `url:`",
        "probes[0].ulr (line 2): unknown key 'ulr' (did you mean 'url'?); remove it or fix its "
        "spelling",
    ]


def test_ssh_probe_names_a_configured_host() -> None:
    assert problems(MINIMAL + "probes: [{id: disk, kind: ssh, host: web-9, command: [df]}]\n") == [
        "probes[0].host (line 2): unknown host 'web-9' (none are defined)"
    ]


@pytest.mark.parametrize(
    ("run", "accepted"),
    [
        ("[docker, exec, pg, pg_ctl, kill, TERM, '{pid}']", True),
        ("[docker, inspect, -f, '{{.State.Status}}', '{pid}']", True),
        ("[pwsh, -Command, '{pid}']", False),
        ("[docker, exec, pg, sh, -c, 'kill {pid}']", False),
    ],
)
def test_container_commands_and_literal_braces(run: str, accepted: bool) -> None:
    text = MINIMAL + textwrap.dedent(
        f"""
        hosts: {{db-1: {{address: a, user: u, key: /k, known_hosts: /kh}}}}
        commands:
          kill-query:
            hosts: [db-1]
            run: {run}
            params: {{pid: {{pattern: "^[0-9]+$"}}}}
            risk: disruptive
        """
    )
    if accepted:
        assert load(text).config.commands["kill-query"].run[-1] == "{pid}"
    else:
        assert any("interpreter" in p or "code evaluation" in p for p in problems(text))


def test_zero_response_time_is_kept() -> None:
    config = load(MINIMAL + "severities: {P1: {name: Urgent, respond_within: 0m}}\n").config
    assert config.severities[Severity.P1].response_time == timedelta(0)


def test_maintenance_start_and_end_agree_on_time_zones() -> None:
    base = MINIMAL + "probes: [{id: shop-home, kind: http, url: 'http://shop/'}]\n"
    [problem] = problems(
        base + "maintenance: [{probes: [shop-home], start: 2026-12-01T02:00:00, "
        "end: 2026-12-01T03:00:00Z, reason: x}]\n"
    )
    assert "both with a UTC offset" in problem
    naive = load(
        base + "maintenance: [{probes: [shop-home], start: 2026-12-01T02:00:00, "
        "end: 2026-12-01T03:00:00, reason: x}]\n"
    )
    assert naive.config.maintenance[0].end is not None
