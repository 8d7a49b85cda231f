"""Migrations on a real database (SQLite file and a real PostgreSQL): fresh → head matches the models,
a database made before Alembic is stamped at the baseline and upgraded with its rows, bad ones refused."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hub.auth.keys import ApiKeys
from hub.db import migrate
from hub.db.engine import create_engine
from hub.db.schema import METADATA, UNMODELLED, include_name
from hub.fleet.agents import AgentInfo, Fleet
from hub.identity.db import AuditEntry, EnrollState
from tests.db.legacy import ADMIN_TOKEN, create_legacy_database
from tests.support.hubdb import HEAD

pytestmark = pytest.mark.integration


def _drift(engine: sa.Engine, metadata: sa.MetaData = METADATA) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        return list(compare_metadata(context, metadata))


def _pg_constraints(engine: sa.Engine) -> set[tuple[str, str]]:
    q = sa.text(
        "SELECT c.conrelid::regclass::text, c.conname FROM pg_constraint c"
        " JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'"
    )
    with engine.connect() as conn:
        return {(t, n) for t, n in conn.execute(q)}


def test_a_fresh_database_is_migrated_to_head_and_matches_the_models(state_url: str) -> None:
    engine = create_engine(state_url)
    try:
        first = migrate.upgrade(engine)
        again = migrate.upgrade(engine)
        assert (first.before, first.after, first.stamped) == (None, HEAD, False)
        assert (again.before, again.after, again.stamped) == (HEAD, HEAD, False)
        assert migrate.head() == HEAD and migrate.current(engine) == HEAD
        assert _drift(engine) == []
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names()) - UNMODELLED
            assert tables == {*METADATA.tables, "alembic_version"}
    finally:
        engine.dispose()


def test_the_drift_check_reports_a_column_the_migrations_do_not_create(tmp_path: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    changed = sa.MetaData(naming_convention=METADATA.naming_convention)
    for table in METADATA.tables.values():
        copy = table.to_metadata(changed)
        if table.name == "alerts":
            copy.append_column(sa.Column("acked_reason", sa.Text, nullable=True))
    try:
        migrate.upgrade(engine)
        (diff,) = _drift(engine, changed)
        assert diff[0] == "add_column" and (diff[2], diff[3].name) == ("alerts", "acked_reason")
    finally:
        engine.dispose()


def test_a_database_made_before_alembic_is_stamped_at_the_baseline_then_upgraded_with_its_rows(
    state_url: str,
) -> None:
    engine = create_engine(state_url)
    try:
        create_legacy_database(engine)
        done = migrate.upgrade(engine)
        assert (done.before, done.after, done.stamped) == (None, HEAD, True)
        assert _drift(engine) == []
        assert Fleet(engine).agents() == [
            AgentInfo("dc1/edge1", 1_800_000_000_000, 1_800_000_060_000, 400, 10, 2, gaps=2),
            AgentInfo("dc2/edge7", 1_800_000_000_000, 1_800_000_030_000, 40, 1, 0, gaps=0),
        ]
        assert Fleet(engine).record_batch("dc2/edge7", 1, 1, 40, 1_800_000_090_000) is False  # seen before
        keys = ApiKeys(engine)  # the admin token became the API key `admin`
        admin = keys.check(ADMIN_TOKEN, 1_800_000_100_000)
        assert admin is not None and (admin.id, admin.role) == ("admin", "admin")
        assert keys.ensure_admin_key(1_800_000_100_000) is None  # the old admin token stays the one
        enroll = EnrollState(engine)
        assert [(t.id, t.uses, t.max_uses) for t in enroll.list_tokens()] == [("tok1", 1, 3)]
        assert enroll.audit_log() == [
            AuditEntry(1_800_000_000_001, "enroll", "tok1", "dc1/edge1", "10.0.0.5", "ok")
        ]
        enroll.record(
            1_800_000_100_000, "renew", "-", "dc1/edge1", "10.0.0.5", "ok"
        )  # the id sequence goes on
        assert [e.action for e in enroll.audit_log()] == ["enroll", "renew"]
        assert (enroll.enrolled_agents(), enroll.revoked()) == (["dc1/edge1"], {"dc1/old"})
    finally:
        engine.dispose()


def test_legacy_and_fresh_postgresql_databases_end_with_the_same_constraint_names(postgres: Any) -> None:
    fresh, legacy = (create_engine(postgres.create_database(name)) for name in ("fresh", "legacy"))
    try:
        migrate.upgrade(fresh)
        create_legacy_database(legacy, rows=False)
        migrate.upgrade(legacy)
        names = _pg_constraints(fresh)
        assert names == _pg_constraints(legacy)
        assert {("agents", "pk_agents"), ("api_keys", "uq_api_keys_secret_hash")} <= names
        assert not [n for _, n in names if n.endswith(("_pkey", "_key"))]
    finally:
        fresh.dispose()
        legacy.dispose()


def test_a_database_with_only_some_of_the_hubs_tables_is_refused_and_left_as_it_was(tmp_path: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    try:
        create_legacy_database(engine)
        with engine.begin() as db:
            db.exec_driver_sql("DROP TABLE revoked_agents")
        with pytest.raises(migrate.MigrationError, match="but not revoked_agents: not migrating it"):
            migrate.upgrade(engine)
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert "alembic_version" not in tables and "alerts" not in tables and len(tables) == 7
    finally:
        engine.dispose()


def test_a_database_from_a_newer_hub_is_refused_naming_its_revision(tmp_path: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    try:
        migrate.upgrade(engine)
        with engine.begin() as db:
            db.exec_driver_sql("UPDATE alembic_version SET version_num = '0042_from_the_future'")
        with pytest.raises(migrate.MigrationError, match="from 0042_from_the_future: .*0042_from_the_future"):
            migrate.upgrade(engine)
        assert migrate.current(engine) == "0042_from_the_future"
    finally:
        engine.dispose()


def test_upgrades_started_together_on_one_database_migrate_it_once_and_all_succeed(state_url: str) -> None:
    engines = [create_engine(state_url) for _ in range(4)]  # as four hubs would, each with its own pool
    barrier = threading.Barrier(len(engines))

    def start(engine: sa.Engine) -> migrate.Upgraded:
        barrier.wait()
        return migrate.upgrade(engine)

    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            done = list(pool.map(start, engines))
        assert sorted((d.before or "", d.after) for d in done) == [("", HEAD)] + [(HEAD, HEAD)] * 3
        assert _drift(engines[0]) == []
    finally:
        for e in engines:
            e.dispose()
