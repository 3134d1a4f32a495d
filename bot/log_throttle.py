"""One log line per kind of noise and interval, however often the noise comes.

Anyone who can reach the listener decides how often a connection is refused or a
token is wrong; a line each time would let them fill the disk. A throttle writes
the first line, holds the rest back for `every` seconds, and says on its next line
how many it held back.
"""

from __future__ import annotations

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

    def log(self, level: int, message: str, *args: object, **kwargs: Any) -> None:
        """Log now, or count it for the next line if a line went out less than `every` ago."""
        now = time.monotonic()
        if now < self._quiet_until:
            self._held += 1
            return
        if self._held:
            message += " (and %d more like it since the last such line)"
            args = (*args, self._held)
        self._log.log(level, message, *args, **kwargs)
        self._held = 0
        self._quiet_until = now + self._every

    def warning(self, message: str, *args: object) -> None:
        self.log(logging.WARNING, message, *args)
