"""The hub's one SQLAlchemy engine per process, from `state_url` (SQLite by default, PostgreSQL at scale).

Every package (fleet, auth, identity, alerts, notify) runs its statements on this engine, so they share
one pool and one set of connection rules instead of each opening the database its own way.
"""

from __future__ import annotations

import sqlalchemy as sa

# Waiting on another writer (a second hub, the CLI) instead of failing at once with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 5000


def create_engine(url: str) -> sa.Engine:
    """The engine for `url` (`sqlite:///...` or `postgresql+psycopg://...`).

    SQLite connections are used from worker threads (`check_same_thread` off) and run in WAL mode, so
    readers (the API) never block the writer (ingest). Connections are pinged before use: a PostgreSQL
    restart costs one failed check, not a broken pool.
    """
    sqlite = url.startswith("sqlite")
    engine = sa.create_engine(
        url, connect_args={"check_same_thread": False} if sqlite else {}, pool_pre_ping=True
    )
    if sqlite:
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.close()
