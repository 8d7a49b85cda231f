"""What `outpost_build_info` says on both sides: the installed version and the Python running it."""

from __future__ import annotations

import platform
from importlib import metadata


def version() -> str:
    """The installed outpost version ("unknown" when run from a tree that was never installed)."""
    try:
        return metadata.version("outpost")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_labels(side: str) -> dict[str, str]:
    """Labels of the build info metric: `side` is "agent" or "hub"."""
    return {"version": version(), "side": side, "python": platform.python_version()}
