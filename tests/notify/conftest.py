"""Notify fixtures: a recording HTTP receiver, a migrated SQLite engine, notification builders."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.notify.model import AlertView, Notification
from tests.notify.recorder import Recorder
from tests.support.hubdb import migrated_engine

T0 = 1_800_000_000_000


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder().start()
    try:
        yield rec
    finally:
        rec.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.sqlite'}"


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[sa.Engine]:
    eng = migrated_engine(sqlite_url)
    try:
        yield eng
    finally:
        eng.dispose()


def alert(name: str = "DiskFull", status: str = "firing", **labels: str) -> AlertView:
    return AlertView(
        id=f"a-{name}",
        fingerprint=f"fp-{name}",
        status=status,  # type: ignore[arg-type]
        severity="critical",
        labels={"alertname": name, **labels},  # type: ignore[arg-type]
        annotations={"summary": f"{name} on dc1"},  # type: ignore[arg-type]
        starts_at_ms=T0,
        ends_at_ms=T0 + 60_000 if status == "resolved" else None,
        generator_url="http://hub.example/alerts/1",
    )


def note(i: int, receiver: str = "pager", group: str | None = None, status: str = "firing") -> Notification:
    """Notification number `i` for `receiver` (its own alert group unless `group` is given)."""
    return Notification.of(
        id=f"n-{receiver}-{i}",
        receiver=receiver,
        group_key=group or f'{{}}:{{alertname="A{i}"}}',
        group_labels={"alertname": f"A{i}"},
        alerts=(alert(f"A{i}", status, device=f"sw{i}"),),
        created_ms=int(time.time() * 1000),
    )
