"""Notify fixtures: a recording HTTP receiver, outbox databases (SQLite file, real PostgreSQL), builders."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import hub.notify.models  # noqa: F401  (registers the outbox table on METADATA)
from hub.db.metadata import METADATA
from hub.notify.model import AlertView, Notification
from tests.notify.recorder import Recorder
from tests.support.postgres import Postgres

T0 = 1_800_000_000_000
_db_ids = itertools.count(1)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder().start()
    try:
        yield rec
    finally:
        rec.stop()


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    # What the hub's state engine sets (hub/db/engine.py): WAL, and waiting on a lock instead of failing.
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = sa.create_engine(url, pool_size=10)
    METADATA.create_all(engine)
    return engine


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    pg = Postgres(tmp_path_factory.mktemp("pg-logs"))
    try:
        yield pg
    finally:
        pg.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.sqlite'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.sqlite'}"
    pg: Postgres = request.getfixturevalue("postgres")
    return pg.create_database(f"notify{next(_db_ids)}")


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[sa.Engine]:
    eng = make_engine(sqlite_url)
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
