"""Start, wait for and stop one server process.

Every server runs in the foreground under our control so that it can be
stopped by pid; services managers (systemd, ``service``) are never involved.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
POLL_INTERVAL = 0.05
_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")

_running: list[ServerProcess] = []


class MissingBinaryError(RuntimeError):
    """A server binary is not installed; carries the apt package that provides it."""

    def __init__(self, binary: str, package: str) -> None:
        super().__init__(f"{binary} not found; install it with: apt-get install -y {package}")
        self.binary = binary
        self.package = package


class ServerStartError(RuntimeError):
    """A server did not come up; the message carries the tail of its logs."""


def find_binary(name: str, package: str) -> str:
    """Return the absolute path of ``name``, also looking in sbin dirs missing from PATH."""
    found = shutil.which(name)
    if found is None:
        extra = os.pathsep.join(_SBIN_DIRS)
        found = shutil.which(name, path=extra)
    if found is None:
        raise MissingBinaryError(name, package)
    # No resolve(): redis-server is a symlink to a multi-call binary dispatching on argv[0].
    return str(Path(found).absolute())


def current_user() -> str:
    """Name of the effective user, which servers must run as and log in as."""
    return pwd.getpwuid(os.geteuid()).pw_name


def log_tail(path: Path, lines: int = 40) -> str:
    """Return the last ``lines`` lines of ``path``, or a note when it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<{path}: {exc.strerror}>"
    return "\n".join(text.splitlines()[-lines:])


def run_checked(argv: Sequence[str], what: str, timeout: float = 60.0) -> str:
    """Run a short setup command and return its stdout; raise with its output on failure."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ServerStartError(f"{what} timed out after {timeout:.0f}s: {argv!r}") from exc
    if done.returncode != 0:
        raise ServerStartError(
            f"{what} failed with exit code {done.returncode}: {argv!r}\n"
            f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
        )
    return done.stdout


@dataclass
class ServerProcess:
    """One foreground server whose stdout and stderr go to ``log_path``.

    ``extra_logs`` are files the server writes itself (e.g. an error log);
    their tails are added to start-up errors too.
    """

    name: str
    argv: Sequence[str]
    log_path: Path
    extra_logs: Sequence[Path] = ()
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int:
        """Pid of the running server."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._proc.pid

    def start(self, ready: Callable[[], bool], timeout: float = READY_TIMEOUT) -> None:
        """Launch the server and block until ``ready()`` is true or ``timeout`` passes."""
        with self.log_path.open("ab") as log:
            # A new session makes the pid a process group id, so workers can be reaped too.
            self._proc = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _running.append(self)
        deadline = time.monotonic() + timeout
        try:
            while not ready():
                code = self._proc.poll()
                if code is not None:
                    raise ServerStartError(self._failure(f"exited with code {code} on start-up"))
                if time.monotonic() > deadline:
                    raise ServerStartError(self._failure(f"was not ready after {timeout:.0f}s"))
                time.sleep(POLL_INTERVAL)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = STOP_TIMEOUT, drain: float = 0.0) -> None:
        """Stop by pid: SIGTERM, wait, then SIGKILL the whole process group.

        ``drain`` seconds are first granted to children in their own sessions
        (sshd's per-connection processes), which the server should reap itself;
        killed first they would linger as orphans outside our process group.
        """
        proc = self._proc
        if proc is None:
            return
        if drain > 0 and proc.poll() is None:
            _drain_children(proc.pid, drain)
        self._proc = None
        if self in _running:
            _running.remove(self)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        # Children the server left behind (e.g. an orphaned worker) share its group id.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def _failure(self, what: str) -> str:
        parts = [f"{self.name} {what}", f"command: {list(self.argv)!r}"]
        for path in (self.log_path, *self.extra_logs):
            parts.append(f"--- tail of {path} ---\n{log_tail(path)}")
        return "\n".join(parts)


def proc_stats() -> Iterator[tuple[int, str, str, int]]:
    """(pid, comm, state, ppid) of every process, read from /proc (Linux)."""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, tail = stat_file.read_text().rpartition(")")
        except OSError:
            continue
        fields = tail.split()
        if len(fields) > 1:
            comm = head.partition("(")[2]
            yield int(stat_file.parent.name), comm, fields[0], int(fields[1])


def child_pids(pid: int) -> list[int]:
    """Pids whose parent is ``pid``."""
    return [child for child, _, _, ppid in proc_stats() if ppid == pid]


def _drain_children(pid: int, timeout: float) -> None:
    """Wait for the server's children to finish, then SIGTERM the stragglers by pid."""
    deadline = time.monotonic() + timeout
    while child_pids(pid) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
    for child in child_pids(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGTERM)


@atexit.register
def _stop_leftovers() -> None:
    """Safety net: never leave a server running if a session ends abnormally."""
    for server in list(_running):
        server.stop(timeout=5.0)
