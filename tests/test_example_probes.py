"""Every probe of the four runbook examples, run once against real servers on loopback.

Each example is loaded with the real loader, its probes are aimed at the test servers
(tests.example_targets: paths, queries, commands and expectations stay as written) and every
probe runs once. A probe must never be `error`; one whose target the test made healthy must be
`ok`. The exceptions are two tables below, each entry with its reason: probes that measure this
host (CPU, memory, disk), whose verdict must follow the value they read, and probes that cannot
run here at all, which must fail naming what is missing rather than be skipped.

The ssh commands read fixed absolute paths (/var/www/html/wp-content/debug.log, /var/lib/docker,
...). Missing ones are made for the test and removed after it; existing ones are read as they
are and never written, and a probe reading one is then judged like a host-dependent one.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio
import yaml

from bot.cli import main
from bot.config.loader import load_config
from bot.probe_plan import PlannedProbe, plan_probes, probe_context
from probes.probe import run_probe
from probes.redis import RedisProbe
from probes.result import ProbeResult, Status
from tests.example_targets import (
    EDUBOT_TABLES,
    EXAMPLE_DATABASES,
    EXAMPLES_DIR,
    HOST_KEYS,
    HTTP_PAGES,
    HTTPS_PAGES,
    RUNBOOK_EXAMPLES,
    TARGET_KEYS,
    Endpoint,
    PingLedger,
    Scratch,
    SshLogin,
    Targets,
    access_log,
    banner_server,
    debug_log,
    drop_example_databases_sql,
    drop_probe_user_sql,
    example_databases_sql,
    failed_orders_today,
    probe_user_sql,
    rewrite_config,
    systemctl_units,
)
from tests.servers.mariadb import MariaDBServer, running_mariadb
from tests.servers.nginx import NginxServer
from tests.servers.redis import RedisServer
from tests.servers.replica_fixtures import ReplicaPair
from tests.servers.sshd import SSHServer
from tests.servers.tls_fixtures import TlsServers

Case = tuple[str, str]  # (example file, probe id)

CASES: list[Case] = [
    (example, probe.id)
    for example in RUNBOOK_EXAMPLES
    for probe in load_config(EXAMPLES_DIR / example).config.probes
]


@dataclass(frozen=True)
class CannotRun:
    """What a probe needs that the test host lacks; its failure must name one of `names`."""

    names: tuple[str, ...]
    why: str


# Probes that cannot be made healthy here. Each must come back `fail` (the command ran and
# could not do its job), with a reason naming what is missing: never `error`, never skipped.
CANNOT_RUN: dict[Case, CannotRun] = {
    ("woocommerce.yml", "store-db-integrity"): CannotRun(
        ("sudo", "wp"), "`sudo -u www-data wp db check` needs sudo, wp-cli and a WordPress"
    ),
    ("bazar.yml", "bazar-error-rate"): CannotRun(
        ("docker-compose",), "reads nginx's log inside the compose project: no docker-compose"
    ),
    ("bazar.yml", "bazar-containers"): CannotRun(
        ("docker-compose",), "asks docker-compose for stopped services: no docker-compose"
    ),
    ("edubot.yml", "edubot-cron"): CannotRun(
        ("sudo", "wp"), "`sudo -u www-data wp cron test` needs sudo, wp-cli and a WordPress"
    ),
    ("ecommerce-platform.yml", "api-error-rate"): CannotRun(
        ("prometheus.internal",),
        "curls Prometheus at prometheus.internal:9090, a name the test host cannot resolve",
    ),
    ("ecommerce-platform.yml", "postgres-ready"): CannotRun(
        ("docker", "ecommerce-postgres-prod"),
        "pg_isready inside the PostgreSQL container: no Docker daemon (or docker) here",
    ),
    ("ecommerce-platform.yml", "redis-ping"): CannotRun(
        ("docker", "ecommerce-redis-prod"),
        "redis-cli inside the Redis container: no Docker daemon (or docker) here",
    ),
}

# Probes that measure the test host itself: busy test machines are allowed to be unhealthy,
# so the value must be read and judged, and the status must follow it.
HOST_DEPENDENT: dict[Case, str] = {
    ("woocommerce.yml", "store-disk"): "disk use of /var/www on the test host",
    ("woocommerce.yml", "resort-disk"): "disk use of /var/www on the test host",
    ("woocommerce.yml", "tours-disk"): "disk use of /var/www on the test host",
    ("bazar.yml", "bazar-cpu"): "CPU use of the test host over 5 s",
    ("bazar.yml", "bazar-memory"): "memory use of the test host",
    ("bazar.yml", "bazar-disk"): "disk use of /var/lib/docker on the test host",
    ("edubot.yml", "edubot-cpu"): "CPU use of the test host over 5 s",
    ("edubot.yml", "edubot-memory"): "memory use of the test host",
    ("edubot.yml", "edubot-disk"): "disk use of / on the test host",
    ("ecommerce-platform.yml", "docker-disk"): "disk use of /var/lib/docker on the test host",
}

DEBUG_LOG = Path("/var/www/html/wp-content/debug.log")
ACCESS_LOG = Path("/var/log/nginx/access.log")
WWW_DIR = Path("/var/www")
DOCKER_DIR = Path("/var/lib/docker")
# The absolute paths each ssh probe's fixed command reads on its host.
READS: dict[Case, Path] = {
    ("woocommerce.yml", "store-php-errors"): DEBUG_LOG,
    ("woocommerce.yml", "store-5xx-rate"): ACCESS_LOG,
    ("woocommerce.yml", "store-disk"): WWW_DIR,
    ("woocommerce.yml", "resort-disk"): WWW_DIR,
    ("woocommerce.yml", "tours-disk"): WWW_DIR,
    ("bazar.yml", "bazar-disk"): DOCKER_DIR,
    ("edubot.yml", "edubot-errors"): DEBUG_LOG,
    ("ecommerce-platform.yml", "docker-disk"): DOCKER_DIR,
}
ACCESS_REQUESTS, ACCESS_SERVER_ERRORS = 40, 1  # 2.5 % 5xx, below store-5xx-rate's 5
CACHE_HITS, CACHE_MISSES = 9, 1  # a 90 % hit rate between the two samples
SSH_SESSIONS = 4  # at once: past MaxStartups (10) logins in progress, sshd drops some
HEARTBEAT_TOKEN = "heartbeat-test-token"


@dataclass(frozen=True)
class Prepared:
    """The servers, serving what the examples read, and the examples aimed at them."""

    targets: Targets
    environ: dict[str, str]
    originals: dict[str, dict[str, Any]]
    rewritten: dict[str, dict[str, Any]]
    configs: dict[str, Path]
    expected: dict[Case, dict[str, float]]
    existing: dict[Path, str]  # host paths that were there already: read, never written
    web_roots: tuple[Path, ...]  # what the nginx fixtures serve
    unmade: dict[Path, str]  # host paths that could not be made, with the error


@dataclass(frozen=True)
class Outcomes:
    results: dict[Case, ProbeResult]
    baselines: dict[Case, ProbeResult]  # first samples of probes that compare two


def _databases(
    stack: ExitStack,
    now: datetime,
    password: str,
    shared: MariaDBServer,
    performance: MariaDBServer,
    replica: MariaDBServer,
) -> None:
    """The examples' databases and their read-only probe user, dropped again afterwards."""
    # PROCESS: store-db-long-queries counts every session's PROCESSLIST row.
    grants = [*(f"SELECT ON `{db}`.*" for db in EXAMPLE_DATABASES), "PROCESS ON *.*"]
    stack.callback(shared.root_sql, drop_example_databases_sql() + drop_probe_user_sql())
    shared.root_sql(example_databases_sql(now) + probe_user_sql(password, grants))
    performance.root_sql(probe_user_sql(password))  # global_status needs no grant
    stack.callback(replica.root_sql, drop_probe_user_sql())
    replica.root_sql(probe_user_sql(password, ["REPLICATION CLIENT, SLAVE MONITOR ON *.*"]))


def _units_active(stack: ExitStack, sshd: SSHServer, units: set[str]) -> None:
    """Report `units` active on the test sshd; their states are put back afterwards."""
    for unit in sorted(units):
        state = sshd.units_dir / unit
        before = state.read_text() if state.exists() else None
        sshd.set_unit_state(unit, "active")
        if before is None:
            stack.callback(state.unlink, missing_ok=True)
        else:
            stack.callback(state.write_text, before)


def _host_paths(
    scratch: Scratch, now: datetime
) -> tuple[dict[Path, str], dict[Path, str], dict[Case, dict[str, float]]]:
    """Make the paths the ssh commands read: (existing, unmade, values the made ones give)."""
    log = debug_log(now)
    wanted: dict[Path, str | None] = {  # directories first, so a made /var/www counts as made
        WWW_DIR: None,
        DOCKER_DIR: None,
        DEBUG_LOG: log.text,
        ACCESS_LOG: access_log(now, ACCESS_REQUESTS, ACCESS_SERVER_ERRORS),
    }
    existing: dict[Path, str] = {}
    unmade: dict[Path, str] = {}
    for path, text in wanted.items():
        try:
            made = scratch.directory(path) if text is None else scratch.file(path, text)
        except OSError as error:
            unmade[path] = f"cannot make {path} for the test: {error}"
            continue
        if not made:
            existing[path] = f"reads the test host's own {path}"
    values: dict[Case, dict[str, float]] = {}
    if DEBUG_LOG not in existing and DEBUG_LOG not in unmade:
        values[("woocommerce.yml", "store-php-errors")] = {"value": log.error_lines}
        values[("edubot.yml", "edubot-errors")] = {"value": log.errors_today}
    if ACCESS_LOG not in existing and ACCESS_LOG not in unmade:
        share = 100 * ACCESS_SERVER_ERRORS / ACCESS_REQUESTS
        values[("woocommerce.yml", "store-5xx-rate")] = {"value": share}
    return existing, unmade, values


def _pages(scratch: Scratch, root: Path, pages: dict[str, str]) -> None:
    for name, text in pages.items():
        assert scratch.file(root / name, text), f"{root / name} is there already"


def _environ(configs: dict[str, dict[str, Any]], password: str) -> dict[str, str]:
    """Every variable the examples name: database passwords and heartbeat tokens."""
    environ: dict[str, str] = {}
    for data in configs.values():
        for probe in data["probes"]:
            if "password_env" in probe:
                environ[probe["password_env"]] = password
            if "token_env" in probe:
                environ[probe["token_env"]] = HEARTBEAT_TOKEN
    return environ


@pytest.fixture(scope="module")
def prepared(
    tmp_path_factory: pytest.TempPathFactory,
    mariadb_server: MariaDBServer,
    _mariadb_pair_session: ReplicaPair,  # session-wide: no test here stops a replica thread
    nginx_server: NginxServer,
    tls_servers: TlsServers,
    sshd_server: SSHServer,
    redis_server: RedisServer,
) -> Iterator[Prepared]:
    """Servers serving what the examples read, and the examples aimed at them.

    Everything made here (databases, users, pages, host paths, unit states, a MariaDB with
    performance_schema on, the SMTP stand-in) is undone or stopped after the module.
    """
    now = datetime.now(UTC)
    password = secrets.token_urlsafe(18)
    scratch = Scratch()
    base = tmp_path_factory.mktemp("examples")
    originals = {
        example: yaml.safe_load((EXAMPLES_DIR / example).read_text())
        for example in RUNBOOK_EXAMPLES
    }
    with ExitStack() as stack:
        performance = stack.enter_context(
            running_mariadb(
                tmp_path_factory.mktemp("mariadb-performance"), ["--performance-schema=ON"]
            )
        )
        smtp = stack.enter_context(banner_server())
        stack.callback(scratch.remove)
        replica = _mariadb_pair_session.replica
        _databases(stack, now, password, mariadb_server, performance, replica)
        units = {unit for data in originals.values() for unit in systemctl_units(data)}
        _units_active(stack, sshd_server, units)
        _pages(scratch, tls_servers.nginx.root, HTTPS_PAGES)
        _pages(scratch, nginx_server.root, HTTP_PAGES)
        existing, unmade, values = _host_paths(scratch, now)
        targets = Targets(
            http=Endpoint(nginx_server.host, nginx_server.port),
            https=Endpoint(tls_servers.host, tls_servers.ports["valid"]),
            ca_file=tls_servers.ca_file,
            smtp=smtp,
            mysql=Endpoint(mariadb_server.host, mariadb_server.port),
            mysql_performance=Endpoint(performance.host, performance.port),
            mysql_replica=Endpoint(replica.host, replica.port),
            redis=Endpoint(redis_server.host, redis_server.port),
            ssh=SshLogin(
                sshd_server.host,
                sshd_server.port,
                sshd_server.username,
                sshd_server.client_key,
                sshd_server.known_hosts,
            ),
        )
        rewritten: dict[str, dict[str, Any]] = {}
        configs: dict[str, Path] = {}
        for example, data in originals.items():
            stem = example.removesuffix(".yml")
            rewritten[example] = rewrite_config(data, targets, base / f"{stem}.db")
            configs[example] = base / example
            configs[example].write_text(yaml.safe_dump(rewritten[example], sort_keys=False))
        expected: dict[Case, dict[str, float]] = {
            ("woocommerce.yml", "store-failed-orders-today"): {"value": failed_orders_today(now)},
            ("woocommerce.yml", "store-failed-order"): {"value": 0},
            ("woocommerce.yml", "store-db-long-queries"): {"value": 0},
            ("woocommerce.yml", "store-cache-hit-rate"): {
                "hit_rate_percent": 100 * CACHE_HITS / (CACHE_HITS + CACHE_MISSES)
            },
            ("edubot.yml", "edubot-db"): {"value": len(EDUBOT_TABLES)},
            **values,
        }
        yield Prepared(
            targets=targets,
            environ=_environ(rewritten, password),
            originals=originals,
            rewritten=rewritten,
            configs=configs,
            expected=expected,
            existing=existing,
            web_roots=(tls_servers.nginx.root, nginx_server.root),
            unmade=unmade,
        )


async def _cache_traffic(server: Endpoint) -> None:
    """Hits and misses between two samples of a hit_rate probe."""
    client = redis.asyncio.Redis(host=server.host, port=server.port)
    try:
        await client.set("tocsin-example:page", "cached page")
        for _ in range(CACHE_HITS):
            await client.get("tocsin-example:page")
        for _ in range(CACHE_MISSES):
            await client.get("tocsin-example:absent")
        await client.delete("tocsin-example:page")
    finally:
        await client.aclose()


def _compares_samples(item: PlannedProbe) -> bool:
    return isinstance(item.probe, RedisProbe) and item.probe.settings.check == "hit_rate"


@pytest.fixture(scope="module")
async def outcomes(prepared: Prepared) -> Outcomes:
    """Every probe of every example, run once and all at once, as `tocsin probe` runs them.

    Running them together lets the two 5-second vmstat samples overlap. A hit_rate probe
    needs a baseline: it runs again after some cache traffic, and that second result counts.
    """
    ledger = PingLedger(datetime.now().astimezone() - timedelta(minutes=5))
    planned: dict[Case, PlannedProbe] = {}
    for example in RUNBOOK_EXAMPLES:
        config = load_config(prepared.configs[example]).config
        context = probe_context(config, ledger, prepared.environ)
        for item in plan_probes(config, context):
            planned[(example, item.id)] = item
    ssh_slots = asyncio.Semaphore(SSH_SESSIONS)

    async def run(item: PlannedProbe) -> ProbeResult:
        if item.settings.kind != "ssh":
            return await run_probe(item.probe, item.timeout)
        async with ssh_slots:
            return await run_probe(item.probe, item.timeout)

    try:
        firsts = await asyncio.gather(*(run(item) for item in planned.values()))
        results = dict(zip(planned, firsts, strict=True))
        baselines: dict[Case, ProbeResult] = {}
        for case, item in planned.items():
            if _compares_samples(item):
                baselines[case] = results[case]
                await _cache_traffic(prepared.targets.redis)
                results[case] = await run(item)
    finally:
        for item in planned.values():
            await item.probe.close()
    return Outcomes(results, baselines)


def _shown(result: ProbeResult) -> str:
    measured = ", ".join(m.shown() for m in result.measurements)
    return f"{result.status}: {result.reason} [{measured}] evidence={dict(result.evidence)}"


@pytest.mark.parametrize(
    ("example", "probe_id"), CASES, ids=[f"{e.removesuffix('.yml')}:{p}" for e, p in CASES]
)
def test_example_probe_against_real_servers(
    example: str, probe_id: str, prepared: Prepared, outcomes: Outcomes
) -> None:
    case = (example, probe_id)
    result = outcomes.results[case]
    shown = _shown(result)
    if case in CANNOT_RUN:
        cannot = CANNOT_RUN[case]
        assert result.status is Status.FAIL, f"{cannot.why}; got {shown}"
        reason = result.reason.lower()
        assert any(name.lower() in reason for name in cannot.names), f"{cannot.why}; got {shown}"
        return
    read = READS.get(case)
    if read is not None:
        assert read not in prepared.unmade, f"{prepared.unmade[read]}; got {shown}"
    assert result.status is not Status.ERROR, shown
    host_dependent = HOST_DEPENDENT.get(case)
    if host_dependent is None and read is not None:
        host_dependent = prepared.existing.get(read)
    if host_dependent is not None:
        value = next((m for m in result.measurements if m.name == "value"), None)
        assert value is not None, f"{host_dependent}: no value read; got {shown}"
        assert result.status is (Status.OK if value.met else Status.FAIL), shown
        return
    assert result.status is Status.OK, shown
    for name, wanted in prepared.expected.get(case, {}).items():
        assert result.value_of(name) == pytest.approx(wanted), f"{name}; got {shown}"


def test_hit_rate_is_measured_between_two_samples(outcomes: Outcomes) -> None:
    case = ("woocommerce.yml", "store-cache-hit-rate")
    first = outcomes.baselines[case]
    assert first.status is Status.OK, _shown(first)
    assert first.value_of("hit_rate_percent") is None
    assert "baseline" in first.reason


def test_tables_name_real_example_probes() -> None:
    for table in (CANNOT_RUN, HOST_DEPENDENT, READS):
        assert set(table) <= set(CASES), set(table) - set(CASES)
    assert not set(CANNOT_RUN) & set(HOST_DEPENDENT)


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


def test_rewrite_moves_only_where_probes_look(prepared: Prepared) -> None:
    """What runs is each example's own query, command and expectations: only targets differ."""
    for example, original in prepared.originals.items():
        rewritten = prepared.rewritten[example]
        assert _changed(original, rewritten) <= {"hosts", "storage", "probes"}
        for name, host in original.get("hosts", {}).items():
            assert _changed(host, rewritten["hosts"][name]) <= HOST_KEYS
        for before, after in zip(original["probes"], rewritten["probes"], strict=True):
            changed = _changed(before, after)
            assert changed <= TARGET_KEYS[before["kind"]], (before["id"], changed)
            if before["kind"] == "http":
                kept = urlsplit(after["url"]), urlsplit(before["url"])
                assert (kept[0].path, kept[0].query) == (kept[1].path, kept[1].query)


# --- `tocsin probe --json` ----------------------------------------------------------------------

CLI_PROBES: tuple[Case, ...] = (
    ("woocommerce.yml", "store-home"),  # http over TLS
    ("woocommerce.yml", "store-db"),  # mysql
    ("woocommerce.yml", "store-backup"),  # heartbeat: a fresh store waits for its first ping
    ("bazar.yml", "bazar-redis"),  # redis
    ("edubot.yml", "edubot-nginx"),  # ssh
)
FAILING_PROBE: Case = ("bazar.yml", "bazar-tls")  # aimed at a certificate with 5 days left


def _cli_config(prepared: Prepared, tmp_path: Path, cases: list[Case], expiring: int) -> Path:
    """A small file of rewritten example probes.

    `depends_on` and `remediate` go: they name probes and commands this file leaves out.
    """
    probes: list[dict[str, Any]] = []
    hosts: dict[str, Any] = {}
    for example, probe_id in cases:
        data = prepared.rewritten[example]
        probe = next(p for p in data["probes"] if p["id"] == probe_id)
        probe = {k: v for k, v in probe.items() if k not in ("depends_on", "remediate")}
        if (example, probe_id) == FAILING_PROBE:
            probe["port"] = expiring
        if probe["kind"] == "ssh":
            hosts[probe["host"]] = data["hosts"][probe["host"]]
        probes.append(probe)
    document = {
        "slack": {"channel": "#example-probes"},
        "storage": {"path": str(tmp_path / "tocsin.db")},
        "hosts": hosts,
        "probes": probes,
    }
    path = tmp_path / "tocsin.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.mark.parametrize("failing", [False, True], ids=["all-ok", "one-failing"])
def test_tocsin_probe_json_on_rewritten_examples(
    failing: bool,
    prepared: Prepared,
    tls_servers: TlsServers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cases = [*CLI_PROBES, *([FAILING_PROBE] if failing else [])]
    path = _cli_config(prepared, tmp_path, cases, tls_servers.ports["expiring"])
    for name, value in prepared.environ.items():
        monkeypatch.setenv(name, value)

    code = main(["probe", "-c", str(path), "--json"])

    captured = capsys.readouterr()
    documents = json.loads(captured.out)
    assert code == (1 if failing else 0), captured.out + captured.err
    by_id = {document["probe"]: document for document in documents}
    assert set(by_id) == {probe_id for _, probe_id in cases}
    for probe_id, document in by_id.items():
        assert isinstance(document["reason"], str) and document["reason"], document
        assert isinstance(document["duration_ms"], int | float), document
        assert document["duration_ms"] >= 0
        for measurement in document["measurements"]:
            assert {"name", "value", "unit", "expected", "met"} <= measurement.keys()
        wanted = "fail" if (failing and probe_id == FAILING_PROBE[1]) else "ok"
        assert document["status"] == wanted, document
    if failing:
        tls = by_id[FAILING_PROBE[1]]
        assert "days_left" in tls["reason"]
        days = next(m for m in tls["measurements"] if m["name"] == "days_left")
        assert days["met"] is False and days["value"] < 30
