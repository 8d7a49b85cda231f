"""The hub's one SQLAlchemy engine per process, from `state_url` (SQLite by default, PostgreSQL at scale).

Every package (fleet, auth, identity, alerts, notify) runs its statements on this engine, so they share
one pool and one set of connection rules instead of each opening the database its own way.
"""

from __future__ import annotations

import sqlalchemy as sa

# Waiting on another writer (a second hub, the CLI) instead of failing at once with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 5000
# A log a burst made large is cut back to this when it is reset after a checkpoint.
SQLITE_WAL_LIMIT_BYTES = 64 * 1024 * 1024


def create_engine(url: str) -> sa.Engine:
    """The engine for `url` (`sqlite:///...` or `postgresql+psycopg://...`).

    SQLite connections are used from worker threads (`check_same_thread` off) and run in WAL mode, so
    readers (the API) never block the writer (ingest). They never checkpoint inside a COMMIT: the hub's
    `WalCheckpointer` does it in the background (a process without one, such as a CLI command, leaves
    its pages to the hub, or to the checkpoint SQLite runs when the last connection closes).
    Connections are pinged before use: a PostgreSQL restart costs one failed check, not a broken pool.
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
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_LIMIT_BYTES}")
    cur.close()
