"""The detector state file: one numpy .npz with a JSON header, versioned, never pickle.

Why not pickle: a snapshot outlives the code that wrote it and may be read by a newer agent; arrays plus
a JSON header can be checked field by field and loading them cannot execute anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import OutpostError

FORMAT = "outpost-detect"
# 3: the robust detector's short average holds the residual (was the value) and it learns a daily cycle.
VERSION = 3
_HEADER = "__header__"


class SnapshotError(OutpostError):
    """Raised when a snapshot file is missing, unreadable, of another format or of another version."""


def file_name(name: str) -> str:
    """A filesystem-safe, collision-free snapshot file name for a bank's owner (a target, a pushing
    source: names may contain '/', ':' or spaces)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80]
    return f"{safe}-{hashlib.blake2b(name.encode(), digest_size=4).hexdigest()}.npz"


def write(path: Path, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Writes atomically: a temporary file in the same directory, fsynced, then renamed over `path`.

    The file is 0600 from its creation: it describes what is normal for the monitored series."""
    meta = json.dumps({"format": FORMAT, "version": VERSION, **header}).encode()
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        members: dict[str, Any] = {_HEADER: np.frombuffer(meta, dtype=np.uint8), **arrays}
        np.savez(f, **members)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Reads a snapshot written by `write`.

    Raises:
        SnapshotError: the file is missing, corrupt, not ours, or of another version.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        header = json.loads(arrays.pop(_HEADER).tobytes().decode())
    except FileNotFoundError as e:
        raise SnapshotError(f"no snapshot at {path}") from e
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise SnapshotError(f"unreadable snapshot {path}: {type(e).__name__}") from e
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SnapshotError(f"{path} is not a detector snapshot")
    if header.get("version") != VERSION:
        raise SnapshotError(
            f"{path} has snapshot version {header.get('version')}, this agent reads {VERSION}"
        )
    return header, arrays
