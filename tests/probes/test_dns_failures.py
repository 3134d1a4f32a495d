"""Whose fault a DNS failure is, asked of a real resolver answering from a test server.

A name whose record is gone (NXDOMAIN, or no address: NODATA) is the target's failure,
since its users cannot reach it either; a resolver that fails (SERVFAIL, REFUSED, no
answer) is tocsin's own problem and must not page on its own.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.dns import run_with_resolver, running_dns, unshare_available

PROBE_EACH = """
import asyncio, json, sys
from probes.probe import ProbeContext, run_probe
from probes.registry import build_probe

async def main():
    for kind, name in [tuple(item.split(":")) for item in sys.argv[1:]]:
        settings = (
            {"url": f"http://{name}:1/"} if kind == "http" else {"host": name, "port": 1}
        )
        probe = build_probe(name, kind, settings, ProbeContext())
        result = await run_probe(probe, 4.0)
        print(json.dumps([kind, name, result.status.value, result.reason]))

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def resolv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    why = unshare_available()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the DNS tests cannot run: {why}")
        pytest.skip(why)
    with running_dns(tmp_path_factory.mktemp("dns")) as path:
        yield path


def probe_names(resolv: Path, *items: str) -> dict[tuple[str, str], tuple[str, str]]:
    output = run_with_resolver(resolv, [sys.executable, "-c", PROBE_EACH, *items])
    results = {}
    for line in output.splitlines():
        kind, name, status, reason = json.loads(line)
        results[(kind, name)] = (status, reason)
    return results


def test_a_name_that_does_not_exist_fails_and_a_failing_resolver_is_an_error(
    resolv: Path,
) -> None:
    names = ("gone.test", "empty.test", "broken.test", "refusing.test", "silent.test")
    results = probe_names(resolv, *(f"{kind}:{name}" for kind in ("http", "tcp") for name in names))
    for kind in ("http", "tcp"):
        assert results[(kind, "gone.test")][0] == "fail", results
        assert results[(kind, "gone.test")][1].startswith("DNS: gone.test does not exist")
        assert results[(kind, "empty.test")][0] == "fail", results
        for name in ("broken.test", "refusing.test", "silent.test"):
            status, reason = results[(kind, name)]
            assert status == "error", (name, reason)
            assert reason.startswith(f"DNS lookup of {name} failed")


def test_a_name_that_resolves_gets_past_dns(resolv: Path) -> None:
    results = probe_names(resolv, "tcp:shop.test")
    status, reason = results[("tcp", "shop.test")]
    assert (status, reason) == ("fail", "connection refused by shop.test:1")
