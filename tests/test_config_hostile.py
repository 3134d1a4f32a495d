"""Hostile tocsin.yml files end in exit 2 naming the key or the file, fast, in bounded memory.

Each file is given to the real `tocsin check FILE` and `tocsin run -c FILE` in a
child process held to 1 GiB of address space and a deadline, so a memory blow-up
or a hang fails the test instead of swapping or stalling the suite.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config import load_config_text

TOCSIN = Path(sys.executable).parent / "tocsin"
DEADLINE = 5.0
MEMORY = 1 << 30
COMMANDS = ("check", "run")
SLACK = 'slack: {channel: "#ops-incidents"}\n'


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def tocsin(*argv: str) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    result = subprocess.run(
        [str(TOCSIN), *argv],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        preexec_fn=_limit_memory,
        check=False,
    )
    assert time.monotonic() - started < DEADLINE
    return result


def refused(command: str, path: Path | str) -> str:
    """stderr of a refused file, after checking it ended in exit 2 with a short report."""
    argv = ("check", str(path)) if command == "check" else ("run", "-c", str(path))
    result = tocsin(*argv)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert len(result.stderr) < 4000
    return result.stderr


def billion_laughs() -> str:
    lines = ["lol0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"lol{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]" for n in range(1, 10)]
    return "\n".join(lines) + "\n"


def merge_bomb() -> str:
    lines = ["m0: &m0 {" + ", ".join(f"k{n}: 1" for n in range(9)) + "}"]
    lines += [f"m{n}: &m{n} {{<<: [" + ", ".join([f"*m{n - 1}"] * 9) + "]}" for n in range(1, 10)]
    return "\n".join(lines) + "\n"


def alias_chain(length: int) -> str:
    """Each anchor wraps the previous one: a few bytes a level, one level deeper each."""
    lines = ["a0: &a0 [x]"] + [f"a{n}: &a{n} [*a{n - 1}]" for n in range(1, length)]
    return "\n".join(lines) + "\n"


def probe_chain(length: int, *, closed: bool = False) -> str:
    """`length` tcp probes, each depending on the next; `closed` makes the last close a cycle."""
    lines = [SLACK, "probes:"]
    for n in range(length):
        parent = n + 1 if n + 1 < length else (0 if closed else None)
        depends = f", depends_on: [p{parent}]" if parent is not None else ""
        lines.append(f"  - {{id: p{n}, kind: tcp, host: 127.0.0.1, port: 9{depends}}}")
    return "\n".join(lines) + "\n"


def threshold(value: str) -> str:
    return SLACK + textwrap.dedent(
        f"""\
        probes:
          - id: shop-home
            kind: http
            url: https://shop.example.com/
            expect: {{ttfb_ms: {{below: {value}}}}}
        """
    )


HOSTILE: dict[str, tuple[Callable[[], str], tuple[str, ...]]] = {
    "billion laughs": (billion_laughs, ("lol5 (line 6): aliases", "100,000 values")),
    "merge-key bomb": (merge_bomb, ("m4.<< (line 5): aliases", "100,000 values")),
    "recursive alias": (lambda: "a: &a [*a]\n", ("a[0]", "contains itself")),
    "recursive merge": (lambda: "base: &b {<<: *b, x: 1}\n", ("base.<<", "contains itself")),
    "alias chain": (lambda: alias_chain(1200), ("a1199[0][0][0] (line 1197): nests", "32 levels")),
    "flat values": (lambda: "x: [" + "0," * 400_000 + "0]\n", ("100,000 values",)),
    "oversized": (lambda: "x: '" + "y" * (3 << 20) + "'\n", ("larger than 1 MiB",)),
    "interval overflow": (
        lambda: (
            SLACK + "probes: [{id: p, kind: tcp, host: h, port: 1, "
            "interval: 99999999999999999999999999w}]\n"
        ),
        ("probes[0].interval", "3650d"),
    ),
    "nan threshold": (lambda: threshold(".nan"), ("probes[0].expect.ttfb_ms.below", "finite")),
    "inf threshold": (lambda: threshold("1e400"), ("probes[0].expect.ttfb_ms.below", "finite")),
    "dependency cycle of 1,200": (
        lambda: probe_chain(1200, closed=True),
        ("probes[0].depends_on", "dependency cycle p0 -> p1 -> ", "1,200 probes"),
    ),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_file_is_refused_with_its_key(tmp_path: Path, case: str, command: str) -> None:
    build, expected = HOSTILE[case]
    path = tmp_path / "tocsin.yml"
    path.write_text(build())
    err = refused(command, path)
    for text in expected:
        assert text in err


@pytest.mark.parametrize("command", COMMANDS)
def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path, command: str) -> None:
    fifo = tmp_path / "tocsin.yml"
    os.mkfifo(fifo)
    err = refused(command, fifo)
    assert f"{fifo}: is a named pipe, not a regular file" in err


@pytest.mark.parametrize("command", COMMANDS)
def test_device_is_refused_without_reading_it(command: str) -> None:
    err = refused(command, "/dev/zero")
    assert "/dev/zero: is a device, not a regular file" in err


def test_directory_is_refused(tmp_path: Path) -> None:
    assert f"{tmp_path}: is a directory, not a regular file" in refused("check", tmp_path)


def test_long_dependency_chain_is_valid() -> None:
    """1,200 probes in one depends_on chain are legitimate: checked without recursion."""
    config = load_config_text(probe_chain(1200)).config
    assert config.probes[0].depends_on == ["p1"]
    assert config.probes[-1].depends_on == []


def test_long_dependency_chain_checks_from_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "tocsin.yml"
    path.write_text(probe_chain(1200))
    result = tocsin("check", str(path))
    assert result.returncode == 0, result.stderr[-2000:]


def test_anchors_for_shared_probe_defaults_still_work() -> None:
    """Anchors and merge keys are legitimate; a probe may override a merged default."""
    loaded = load_config_text(
        SLACK
        + textwrap.dedent(
            """\
            probes:
              - &web {id: shop-home, kind: http, url: "https://shop.example.com/",
                      interval: 30s, severity: P1, labels: &shop {service: shop}}
              - <<: *web
                id: shop-cart
                url: https://shop.example.com/cart
              - {id: shop-db, kind: tcp, host: 10.0.0.6, port: 3306, labels: *shop}
            """
        )
    )
    home, cart, db = loaded.config.probes
    assert (cart.id, cart.interval, cart.severity) == ("shop-cart", home.interval, home.severity)
    assert cart.model_extra == {"url": "https://shop.example.com/cart"}
    assert db.service == home.service == "shop"
