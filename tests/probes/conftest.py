"""Fixtures of the hostile-target tests: a scripted HTTP server and a watched event loop."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.loop_watch import WatchedLoop, watched_loop
from tests.servers.canned_http import CannedHttp, running_canned_http


@pytest.fixture(scope="module")
def canned() -> Iterator[CannedHttp]:
    """Answers each path with the bytes a test registered for it."""
    with running_canned_http() as server:
        yield server


@pytest.fixture(scope="module")
def watched() -> Iterator[WatchedLoop]:
    """An event loop in its own thread whose longest block is measured from outside."""
    with watched_loop() as loop:
        yield loop
