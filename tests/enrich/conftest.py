"""Fixtures the poller tests share: the hub's real log intake on a migrated SQLite database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.enrich.log_sources import Intake, log_intake


@pytest.fixture
async def intake(tmp_path: Path) -> AsyncIterator[Intake]:
    async with log_intake(tmp_path) as it:
        yield it
