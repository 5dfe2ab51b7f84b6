"""The data directory and the database are private to the gateway's user (0700 / 0600).

The database holds the device database, key hashes, idTags and every message; the directory also
holds the admin token and the site password. A first start used to leave them 0755/0644 (umask),
readable by every local user. SQLite gives its -wal and -shm files the database file's mode.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)
DIR_MODE, FILE_MODE = 0o700, 0o600


def make_private(database: Path) -> None:
    """Create (or tighten) the data directory and the database file before SQLite opens it."""
    directory = database.resolve().parent
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & 0o077:
        if directory == Path.cwd().resolve():
            # A database straight in the working directory: not ours to lock down.
            log.warning("data directory %s is mode %o (others can read it); use a directory of its "
                        "own for database.path", directory, mode)
        else:
            directory.chmod(DIR_MODE)
            log.info("data directory %s tightened from %o to 0700", directory, mode)
    fd = os.open(database, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.close(fd)
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if path.exists() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(FILE_MODE)
