"""Database fixtures for the whole suite: one PostgreSQL server per run, a fresh database per test.

`state_url` is parametrized over SQLite (a file under tmp_path) and PostgreSQL, so every test that takes it
runs on both; `db` is that database migrated to the newest schema; `postgres` is the running server for
tests that need it directly. Registered for every test module by `tests/conftest.py`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.hubdb import migrated_engine
from tests.support.postgres import Postgres

_names = itertools.count(1)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    pg = Postgres(tmp_path_factory.mktemp("pg-logs"))
    try:
        yield pg
    finally:
        pg.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLAlchemy URL of an empty database: a SQLite file, or a new database on the session's server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.sqlite'}"
    pg: Postgres = request.getfixturevalue("postgres")
    return pg.create_database(f"t{next(_names)}")


@pytest.fixture
def db(state_url: str) -> Iterator[sa.Engine]:
    """An engine on `state_url` migrated to the newest schema, disposed after the test."""
    engine = migrated_engine(state_url)
    try:
        yield engine
    finally:
        engine.dispose()
