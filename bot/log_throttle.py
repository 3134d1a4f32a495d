"""One log line per kind of noise and interval, however often the noise comes.

Anyone who can reach the listener decides how often a connection is refused or a
token is wrong; a line each time would let them fill the disk. A throttle writes
the first line, holds the rest back for `every` seconds, and then writes one line
saying how many it held back (when an event loop runs to time it; otherwise the
count goes with the next line).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

DEFAULT_EVERY = 10.0


class LogThrottle:
    def __init__(self, log: logging.Logger, every: float = DEFAULT_EVERY) -> None:
        self._log = log
        self._every = every
        self._quiet_until = 0.0
        self._held = 0
        self._last: tuple[int, str, tuple[object, ...]] = (logging.INFO, "", ())

    def log(self, level: int, message: str, *args: object, **kwargs: Any) -> None:
        """Log now, or count it for a line at the end of the quiet time."""
        now = time.monotonic()
        self._last = (level, message, args)
        if now < self._quiet_until:
            self._held += 1
            if self._held == 1:
                self._flush_later(self._quiet_until - now)
            return
        self._write(level, message, args, **kwargs)

    def warning(self, message: str, *args: object) -> None:
        self.log(logging.WARNING, message, *args)

    def _flush_later(self, delay: float) -> None:
        with contextlib.suppress(RuntimeError):  # no loop: the count goes with the next line
            asyncio.get_running_loop().call_later(delay, self._flush)

    def _flush(self) -> None:
        if self._held:
            level, message, args = self._last
            self._write(level, message, args)

    def _write(self, level: int, message: str, args: tuple[object, ...], **kwargs: Any) -> None:
        if self._held:
            message += " (and %d more like it in the last %g s)"
            args = (*args, self._held, self._every)
        self._log.log(level, message, *args, **kwargs)
        self._held = 0
        self._quiet_until = time.monotonic() + self._every
