"""Suite-wide fixtures: a running hub process per test that asks for one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.outpost import HubHandle, start_hub

# Suite-wide database fixtures (`postgres`, `state_url`), defined once.
pytest_plugins = ["tests.support.databases"]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubHandle]:
    """A real `outpost-hub run` on free ports with an embedded store under tmp_path."""
    h = start_hub(tmp_path)
    try:
        yield h
    finally:
        h.stop()
