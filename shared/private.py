"""Everything the agent and the hub write is private to their user: files 0600, directories 0700.

State files hold secrets or what an attacker wants (the admin token, key files, batch payloads, the
state and enrollment databases, detector baselines). Rather than a mode at each of the many places that
create files (SQLite also creates its -wal/-shm/-journal files by itself), the process umask is set to
077 once at start-up, and the data directory itself is tightened to 0700 when it already existed.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """Every file and directory this process creates from now on is 0600 / 0700 (or stricter)."""
    os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> None:
    """Creates `path` (and parents) 0700, or tightens it to 0700 if others may enter it.

    Raises:
        OSError: the directory cannot be created or its mode changed (not its owner).
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, 0o700)
        log.warning("data directory %s was mode %04o; made it 0700 (state files are private)", path, mode)


def write_private_atomic(path: Path, data: bytes) -> None:
    """Writes `data` to a 0600 temp file beside `path`, syncs it, then renames it over `path`: a crash
    leaves the old file or the new one, never a torn one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
