"""The ssh probe against a real OpenSSH sshd on loopback, host key pinned."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from pydantic import ValidationError

from probes.probe import Probe, ProbeContext, SshHost, run_probe
from probes.registry import build_probe
from probes.result import ProbeResult, Status
from probes.ssh import SshProbe, SshSettings
from tests.servers.ports import free_port
from tests.servers.process import child_pids
from tests.servers.sshd import SSHServer, known_hosts_line

Build = Callable[..., SshProbe]


@pytest.fixture
def web_1(sshd_server: SSHServer) -> SshHost:
    return SshHost(
        name="web-1",
        address=sshd_server.host,
        port=sshd_server.port,
        user=sshd_server.username,
        key=sshd_server.client_key,
        known_hosts=sshd_server.known_hosts,
    )


@pytest.fixture
async def build(web_1: SshHost) -> AsyncIterator[Build]:
    """Builds ssh probes on `web-1` (or the host given) and closes them after the test."""
    built: list[SshProbe] = []

    def make(host: SshHost = web_1, **raw: Any) -> SshProbe:
        context = ProbeContext(hosts={host.name: host})
        probe = build_probe("check", "ssh", {"host": host.name, **raw}, context)
        assert isinstance(probe, SshProbe)
        built.append(probe)
        return probe

    yield make
    for probe in built:
        await probe.close()


async def observe(probe: Probe, within: float = 10.0) -> ProbeResult:
    return await run_probe(probe, within)


def logins(server: SSHServer) -> int:
    return server.log_path.read_text().count("Accepted publickey")


def running(marker: str) -> list[str]:
    found = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True, check=False)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


# --- command ------------------------------------------------------------------------------------


async def test_disk_percent_within_threshold_is_ok_and_above_fails(build: Build) -> None:
    disk = {"command": ["df", "--output=pcent", "/"], "value_regex": r"(\d+)%"}
    ok = await observe(build(**disk, value_unit="%", expect={"value": {"below": 101}}))
    used = ok.value_of("value")
    assert ok.status is Status.OK, ok.reason
    assert used is not None and 0 <= used <= 100
    assert ok.reason == f"value {used:.0f} % (expected below 101)"
    assert ok.value_of("exit_status") == 0
    assert dict(ok.evidence)["command"] == "df --output=pcent /"

    full = await observe(build(**disk, value_unit="%", expect={"value": {"below": used}}))
    assert full.status is Status.FAIL
    assert full.reason == f"value {used:.0f} % (expected below {used:.0f})"


async def test_exit_status_is_checked_and_stderr_explains_a_failure(build: Build) -> None:
    three = ["sh", "-c", "exit 3"]
    assert (await observe(build(command=three, expect={"exit_status": 3}))).status is Status.OK

    failed = await observe(build(command=["sh", "-c", "echo 'no such file' >&2; exit 2"]))
    assert failed.status is Status.FAIL
    assert failed.reason == "exit status 2 (expected 0): no such file"
    assert failed.value_of("exit_status") == 2
    assert dict(failed.evidence)["stderr"] == "no such file"


async def test_output_contains(build: Build) -> None:
    pong = await observe(build(command=["echo", "PONG"], expect={"output_contains": "PONG"}))
    assert pong.status is Status.OK
    assert pong.reason == "exit status 0"
    other = await observe(build(command=["echo", "LOADING"], expect={"output_contains": "PONG"}))
    assert other.status is Status.FAIL
    assert other.reason == "output does not contain 'PONG'"


async def test_output_regex(build: Build) -> None:
    probe = build(command=["echo", "replication: running"], expect={"output_regex": "^repl.*ing$"})
    assert (await observe(probe)).status is Status.OK
    probe = build(command=["echo", "stopped"], expect={"output_regex": "running"})
    assert (await observe(probe)).reason == "output does not match 'running'"


async def test_arguments_reach_the_program_verbatim(build: Build, tmp_path: Path) -> None:
    marker = tmp_path / "injected"
    text = f"a  b; touch {marker} $(id) '\""
    result = await observe(build(command=["echo", text]))
    assert dict(result.evidence)["stdout"] == text
    assert not marker.exists()


async def test_a_value_regex_that_matches_nothing_is_an_error(build: Build) -> None:
    result = await observe(build(command=["echo", "NaN"], value_regex=r"(\d+)"))
    assert result.status is Status.ERROR
    assert result.reason == r"value_regex '(\d+)' matched nothing in the output"


async def test_output_is_capped(build: Build) -> None:
    chatty = ["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x; echo; echo last"]
    result = await observe(build(command=chatty))
    evidence = dict(result.evidence)
    assert result.status is Status.OK
    assert evidence["output"] == "cut at 64 KiB per stream"
    assert len(evidence["stdout"]) <= 503


# --- units --------------------------------------------------------------------------------------


async def test_units_fail_naming_each_inactive_unit(sshd_server: SSHServer, build: Build) -> None:
    sshd_server.set_unit_state("nginx", "active")
    sshd_server.set_unit_state("php8.1-fpm", "failed")
    sshd_server.set_unit_state("redis-server", "activating")
    probe = build(units=["nginx", "php8.1-fpm", "redis-server"])
    result = await observe(probe)
    assert result.status is Status.FAIL
    assert result.reason == "not active: php8.1-fpm (failed), redis-server (activating)"
    assert result.value_of("inactive_units") == 2
    assert dict(result.evidence)["command"] == (
        "systemctl is-active -- nginx php8.1-fpm redis-server"
    )

    sshd_server.set_unit_state("php8.1-fpm", "active")
    sshd_server.set_unit_state("redis-server", "active")
    result = await observe(probe)
    assert result.status is Status.OK
    assert result.reason == "active: nginx, php8.1-fpm, redis-server"
    assert result.value_of("inactive_units") == 0


# --- log ----------------------------------------------------------------------------------------


async def test_log_counts_matching_lines_appended_since_the_last_sample(
    build: Build, tmp_path: Path
) -> None:
    log = tmp_path / "wp content" / "debug log's.txt"
    log.parent.mkdir()
    log.write_text("[old] PHP Fatal error: counted never\n" * 500)
    probe = build(log={"path": str(log), "pattern": "fatal|error"}, expect={"value": {"below": 51}})

    first = await observe(probe)
    assert first.status is Status.OK
    assert first.reason.startswith(f"baseline set: counting lines appended to {log}")
    assert first.value_of("value") is None

    with log.open("a") as file:
        file.write("PHP Warning: x\nPHP FATAL ERROR: y\nPHP Notice: z\n[error] w\n")
    second = await observe(probe)
    assert second.status is Status.OK
    assert second.value_of("value") == 2
    assert second.reason == f"2 new lines matching 'fatal|error' in {log}"
    assert dict(second.evidence)["read"] == f"bytes 18500 to 18558 of {log}"

    with log.open("a") as file:
        file.write("PHP Fatal error: boom\n" * 60)
    burst = await observe(probe)
    assert burst.status is Status.FAIL
    assert burst.reason == f"60 new lines matching 'fatal|error' in {log} (expected below 51)"

    quiet = await observe(probe)
    assert quiet.status is Status.OK
    assert quiet.value_of("value") == 0


async def test_a_line_still_being_written_is_counted_once_complete(
    build: Build, tmp_path: Path
) -> None:
    log = tmp_path / "debug.log"
    log.write_text("")
    probe = build(log={"path": str(log), "pattern": "fatal"})
    await observe(probe)
    with log.open("a") as file:
        file.write("error one\nPHP Fat")
    assert (await observe(probe)).value_of("value") == 0
    with log.open("a") as file:
        file.write("al error\n")
    assert (await observe(probe)).value_of("value") == 1


async def test_a_rotated_log_is_counted_from_its_start(build: Build, tmp_path: Path) -> None:
    log = tmp_path / "debug.log"
    log.write_text("error\n" * 100)
    probe = build(log={"path": str(log), "pattern": "error"})
    await observe(probe)

    log.rename(tmp_path / "debug.log.1")  # logrotate's default: a new file, a new inode
    log.write_text("error\n" * 120)
    rotated = await observe(probe)
    assert rotated.value_of("value") == 120
    assert "rotation" in dict(rotated.evidence)

    log.write_text("error\nfine\n")  # copytruncate: same inode, smaller
    truncated = await observe(probe)
    assert truncated.value_of("value") == 1
    assert "rotation" in dict(truncated.evidence)


async def test_a_missing_log_has_no_lines_until_it_appears(build: Build, tmp_path: Path) -> None:
    log = tmp_path / "debug.log"
    probe = build(log={"path": str(log), "pattern": "error"})
    missing = await observe(probe)
    assert missing.status is Status.OK
    assert missing.reason == f"{log} does not exist (no lines)"
    log.write_text("error\nerror\n")
    assert (await observe(probe)).value_of("value") == 2


async def test_the_log_pattern_is_never_run_by_a_shell(build: Build, tmp_path: Path) -> None:
    log = tmp_path / "debug.log"
    marker = tmp_path / "injected"
    log.write_text("")
    probe = build(log={"path": str(log), "pattern": f"'$(touch {marker})|error"})
    await observe(probe)
    log.write_text("error\n")
    assert (await observe(probe)).value_of("value") == 1
    assert not marker.exists()


# --- connection ---------------------------------------------------------------------------------


async def test_a_changed_host_key_is_an_error_naming_its_fingerprint(
    sshd_server: SSHServer, web_1: SshHost, build: Build, tmp_path: Path
) -> None:
    other = tmp_path / "other_host_key.pub"
    other.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh"))
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(known_hosts_line(sshd_server.host, sshd_server.port, other))
    host = SshHost("web-1", web_1.address, web_1.port, web_1.user, web_1.key, known_hosts)
    result = await observe(build(host, command=["true"]))
    assert result.status is Status.ERROR
    assert result.reason == (
        f"host key of {sshd_server.host}:{sshd_server.port} "
        f"({sshd_server.host_key_fingerprint}) is not in {known_hosts}"
    )


async def test_a_refused_login_is_an_error(web_1: SshHost, build: Build, tmp_path: Path) -> None:
    wrong_key = tmp_path / "wrong_ed25519"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(wrong_key))
    host = SshHost("web-1", web_1.address, web_1.port, web_1.user, wrong_key, web_1.known_hosts)
    result = await observe(build(host, command=["true"]))
    assert result.status is Status.ERROR
    assert result.reason == (
        f"ssh login as {web_1.user} on {web_1.address}:{web_1.port} refused with key {wrong_key}"
    )


async def test_a_missing_known_hosts_file_is_an_error(
    web_1: SshHost, build: Build, tmp_path: Path
) -> None:
    absent = tmp_path / "known_hosts"
    host = SshHost("web-1", web_1.address, web_1.port, web_1.user, web_1.key, absent)
    result = await observe(build(host, command=["true"]))
    assert result.status is Status.ERROR
    assert result.reason == f"cannot read known_hosts {absent}: No such file or directory"


async def test_a_refused_port_fails(web_1: SshHost, build: Build) -> None:
    port = free_port()
    host = SshHost("web-1", web_1.address, port, web_1.user, web_1.key, web_1.known_hosts)
    result = await observe(build(host, command=["true"]))
    assert result.status is Status.FAIL
    assert result.reason == f"connection refused by {web_1.address}:{port}"


async def test_an_unknown_host_name_is_an_error_naming_the_known_ones(web_1: SshHost) -> None:
    context = ProbeContext(hosts={"web-1": web_1})
    probe = build_probe("disk", "ssh", {"host": "web-9", "command": ["true"]}, context)
    result = await observe(probe)
    assert result.status is Status.ERROR
    assert result.reason == "host 'web-9' is not under `hosts:` (known: web-1)"


async def test_a_hanging_command_is_killed_at_the_timeout(build: Build) -> None:
    marker = f"{time.time_ns() % 10**6 + 10**6}.4711"
    probe = build(command=["sh", "-c", f"sleep {marker}; echo never"])
    began = time.monotonic()
    run = asyncio.create_task(observe(probe, within=2.0))
    await asyncio.sleep(1.0)
    assert running(marker)  # timeout, the shell and its sleep
    result = await run
    assert result.status is Status.FAIL
    assert result.reason == "command did not finish within 2s; killed it"
    assert time.monotonic() - began < 2.1

    for _ in range(10):  # the remote deadline is the local one plus a little slack
        if not running(marker):
            break
        await asyncio.sleep(0.1)
    assert running(marker) == []

    after = await observe(build(command=["true"]), within=2.0)
    assert after.status is Status.OK


async def test_one_connection_is_kept_between_runs_and_replaced_when_dropped(
    sshd_server: SSHServer, build: Build
) -> None:
    probe = build(command=["true"])
    before = logins(sshd_server)
    for _ in range(3):
        assert (await observe(probe)).status is Status.OK
    assert logins(sshd_server) == before + 1

    await probe.close()
    assert (await observe(probe)).status is Status.OK
    assert logins(sshd_server) == before + 2


async def test_a_connection_the_server_dropped_is_replaced(
    sshd_server: SSHServer, build: Build
) -> None:
    probe = build(command=["true"])
    assert (await observe(probe)).status is Status.OK
    before = logins(sshd_server)
    for pid in child_pids(sshd_server.pid):  # sshd's per-connection processes
        os.kill(pid, signal.SIGTERM)
    result = await observe(probe)
    assert result.status is Status.OK, result.reason
    assert logins(sshd_server) == before + 1


async def test_a_kept_connection_that_hangs_fails_and_is_replaced(
    sshd_server: SSHServer, build: Build
) -> None:
    probe = build(command=["true"])
    assert (await observe(probe)).status is Status.OK
    stuck = child_pids(sshd_server.pid)
    for pid in stuck:
        os.kill(pid, signal.SIGSTOP)
    try:
        result = await observe(probe, within=1.0)
    finally:
        for pid in stuck:
            os.kill(pid, signal.SIGCONT)
    assert result.status is Status.FAIL
    assert result.reason == f"no ssh session on {sshd_server.host}:{sshd_server.port} within 1s"
    assert (await observe(probe)).status is Status.OK


# --- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "give exactly one of `command`, `units` or `log`, e.g. command: [df"),
        (
            {"command": ["true"], "units": ["nginx"]},
            "give exactly one of `command`, `units` or `log` (got command and units)",
        ),
        ({"command": "df -h /"}, "give `command` as a list of arguments"),
        ({"command": ["df"], "value_regex": r"\d+%"}, "value_regex needs a capture group"),
        ({"command": ["df"], "value_regex": "(["}, "value_regex is not a valid regular"),
        ({"command": ["df"], "expect": {"value": {"below": 85}}}, "expect.value needs"),
        ({"units": ["nginx; reboot"]}, "'nginx; reboot' is not a systemd unit name"),
        ({"units": ["nginx"], "expect": {"exit_status": 0}}, "remove `expect`"),
        ({"log": {"path": "debug.log", "pattern": "error"}}, "give an absolute path"),
        (
            {"log": {"path": "/d.log", "pattern": "e"}, "expect": {"exit_status": 1}},
            "with `log` only expect.value applies",
        ),
        ({"log": {"path": "/d.log", "pattern": "e"}, "value_regex": "(1)"}, "remove them"),
        ({"command": ["true"], "expect": {"status": 0}}, "Extra inputs are not permitted"),
    ],
)
def test_settings_say_how_to_fix_them(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as error:
        SshSettings.model_validate({"host": "web-1", **raw})
    assert message in str(error.value)


def test_example_shapes_are_accepted() -> None:
    settings = SshSettings.model_validate(
        {
            "host": "store-1",
            "command": ["df", "--output=pcent", "/var/www"],
            "value_regex": r"(\d+)%",
            "expect": {"value": {"below": 85}},
        }
    )
    assert settings.expect.exit_status == 0
    SshSettings.model_validate({"host": "store-1", "units": ["nginx", "php8.1-fpm"]})
    SshSettings.model_validate(
        {
            "host": "store-1",
            "log": {"path": "/var/www/html/wp-content/debug.log", "pattern": "fatal|error"},
            "expect": {"value": {"below": 51}},
        }
    )
