"""Brings the hub's database to the newest schema with Alembic, once, however many hubs start at once.

A database made before Alembic (a `make run` data dir: the baseline's tables, no `alembic_version`) is
stamped at the baseline first, then upgraded like any other. Hubs starting together on one PostgreSQL
serialize on an advisory lock held for the migration's transaction (PostgreSQL's DDL is transactional:
the second hub then finds the schema at head and does nothing); on SQLite the migration runs in a
`BEGIN IMMEDIATE` transaction, which takes the database's write lock up front.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

log = logging.getLogger(__name__)
# Alembic logs every revision and context at INFO on every start; the hub says once what changed.
logging.getLogger("alembic").setLevel(logging.WARNING)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BASELINE = "0001_baseline"
# What the hub created with `create_all` before Alembic: all of them, or a fresh database.
LEGACY_TABLES = frozenset(
    {
        "agents",
        "agent_epochs",
        "seen_batches",
        "api_tokens",
        "enroll_tokens",
        "enroll_audit",
        "agent_certificates",
        "revoked_agents",
    }
)
# Alembic's `op` and `context` are module globals while a migration runs: one at a time per process,
# whatever the database's own lock does (an in-memory SQLite database has none).
_PROCESS_LOCK = threading.Lock()
# Any fixed 64-bit key: every hub (and `outpost-hub db upgrade`) takes the same one.
PG_LOCK_KEY = 0x6F7574706F7374  # "outpost"
# A second hub waits this long for the first one's migration before giving up (SQLite's busy timeout).
LOCK_WAIT_MS = 120_000


class MigrationError(Exception):
    """Raised when the database cannot be brought to the schema this hub needs: only some of the
    pre-Alembic tables exist, or it is at a revision this hub does not know (made by a newer hub)."""


@dataclass(frozen=True, slots=True)
class Upgraded:
    """What `upgrade` did: the revision before (None: empty, or made before Alembic) and after."""

    before: str | None
    after: str | None
    stamped: bool


def alembic_config(connection: sa.Connection) -> Config:
    """An Alembic config that runs the hub's revisions on `connection` (no alembic.ini involved)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this hub ships."""
    rev = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert rev is not None, "no revisions in hub/db/migrations/versions"
    return rev


def current(engine: sa.Engine) -> str | None:
    """The database's revision; None when it has none (empty, or made before Alembic)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> Upgraded:
    """Brings the database to `revision`, stamping a pre-Alembic database at the baseline first.

    Raises:
        MigrationError: the database is neither empty, pre-Alembic complete, nor at a known revision.
    """
    with _PROCESS_LOCK, _locked(engine) as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        config = alembic_config(conn)
        stamped = False
        try:
            if before is None:
                stamped = _stamp_legacy(conn, config)
            command.upgrade(config, revision)
        except CommandError as exc:
            raise MigrationError(f"cannot migrate the hub database from {before or 'empty'}: {exc}") from exc
        after = MigrationContext.configure(conn).get_current_revision()
    if stamped or before != after:
        was = "its pre-Alembic tables" if stamped else (before or "an empty database")
        log.info("hub database migrated from %s to %s", was, after)
    return Upgraded(before, after, stamped)


def _stamp_legacy(conn: sa.Connection, config: Config) -> bool:
    """Stamps a database made before Alembic at the baseline; True when it was one."""
    present = LEGACY_TABLES & set(sa.inspect(conn).get_table_names())
    if not present:
        return False
    if present != LEGACY_TABLES:
        missing = ", ".join(sorted(LEGACY_TABLES - present))
        raise MigrationError(
            f"the hub database has some of the hub's tables but not {missing}: not migrating it"
        )
    command.stamp(config, BASELINE)
    return True


class _locked:
    """A connection in a transaction no other hub's migration runs alongside; commits on success."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._own: sa.Engine | None = None
        self._conn: sa.Connection | None = None
        self._tx: sa.RootTransaction | None = None

    def __enter__(self) -> sa.Connection:
        engine = self._engine
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            engine = self._own = _sqlite_immediate(engine.url)
        self._conn = engine.connect()
        self._tx = self._conn.begin()
        if engine.dialect.name == "postgresql":
            self._conn.execute(sa.text(f"SET LOCAL lock_timeout = {LOCK_WAIT_MS}"))
            self._conn.execute(sa.select(sa.func.pg_advisory_xact_lock(PG_LOCK_KEY)))
        return self._conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        assert self._conn is not None and self._tx is not None
        try:
            if exc_type is None:
                self._tx.commit()
            else:
                self._tx.rollback()
        finally:
            self._conn.close()
            if self._own is not None:
                self._own.dispose()


def _sqlite_immediate(url: sa.URL) -> sa.Engine:
    """A short-lived engine whose transactions are real SQLite transactions begun IMMEDIATE.

    Python's sqlite3 module begins a transaction only before DML and never before DDL, so a migration
    on the hub's own engine would neither be atomic nor exclude a second hub: here the driver's own
    transaction handling is off and SQLAlchemy's begin emits BEGIN IMMEDIATE (SQLAlchemy's documented
    pysqlite recipe).
    """
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: object, _record: object) -> None:
        dbapi_conn.isolation_level = None  # type: ignore[attr-defined]
        cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={LOCK_WAIT_MS}")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
