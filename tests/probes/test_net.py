"""Whose fault a connect failure is, the same for every kind."""

from __future__ import annotations

import errno

import pytest

from probes.net import connect_status
from probes.result import Status


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (OSError(errno.ENETUNREACH, "Network is unreachable"), Status.ERROR),
        (OSError(errno.EACCES, "Permission denied"), Status.ERROR),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), Status.FAIL),
        (OSError(errno.EHOSTUNREACH, "No route to host"), Status.FAIL),
        (None, Status.FAIL),
    ],
)
def test_our_network_is_an_error_the_targets_a_failure(
    error: OSError | None, status: Status
) -> None:
    assert connect_status(error) is status
