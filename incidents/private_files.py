"""The database files are tocsin's alone: probe evidence and notes may quote secrets.

New files are created 0600 whatever the umask; SQLite gives the `-wal` and
`-shm` files it creates later the mode of the database file, so they are
0600 too. A directory other users may write to is refused: they could
replace the database, or plant its `-wal`, `-shm` or the file itself before
tocsin creates them. The sticky bit (as on /tmp) only stops them deleting
tocsin's files, not creating those names first, so it is refused as well.
An existing file keeps the mode it has: an operator may have opened it to a
group on purpose.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from incidents.errors import UnsafeDirectoryError

PRIVATE_MODE = 0o600
OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def refuse_shared_directory(path: Path) -> None:
    """Raise when users other than the owner may write to the directory `path` is in."""
    directory = path.parent
    mode = stat.S_IMODE(directory.stat().st_mode)
    if not mode & OTHERS_WRITE:
        return
    shown = f"{path}: the directory {directory} is writable by other users (mode {mode:o})"
    if mode & stat.S_ISVTX:
        raise UnsafeDirectoryError(
            f"{shown}; even with the sticky bit they can create the database or its -wal and "
            "-shm files before tocsin does. Point storage.path at a directory only tocsin's "
            "user can write to (e.g. /var/lib/tocsin)"
        )
    raise UnsafeDirectoryError(
        f"{shown}, who could replace the database files or create them first. Run "
        f"`chmod g-w,o-w {directory}`, or point storage.path at another directory"
    )


def create_private(path: Path) -> None:
    """Create `path` empty with mode 0600 unless it exists (an empty file is a new database)."""
    try:
        descriptor = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_MODE
        )
    except FileExistsError:
        return
    try:
        os.fchmod(descriptor, PRIVATE_MODE)  # the umask may have taken bits away
    finally:
        os.close(descriptor)
