"""The hub's own state (agents and their delivery counters, API tokens) in SQL via SQLAlchemy Core.

SQLite under the data dir by default; the same code runs on PostgreSQL at scale (`state_url`).
Sequence gaps are derived, not tracked point by point: per (agent, boot_epoch) the hub keeps the
highest seq seen and how many distinct batches arrived; since seq starts at 1 and duplicates are not
counted, `max_seq - received` is exactly the number of batches still missing. A late batch from a
backfill closes its gap by itself.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.dialects import postgresql, sqlite

from shared.delivery import DEDUP_WINDOW_MS
from shared.errors import TransientError

_meta = sa.MetaData()

agents = sa.Table(
    "agents",
    _meta,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("first_seen_ms", sa.BigInteger, nullable=False),
    sa.Column("last_seen_ms", sa.BigInteger, nullable=False),
    sa.Column("points_received", sa.BigInteger, nullable=False, default=0),
    sa.Column("batches_received", sa.BigInteger, nullable=False, default=0),
    sa.Column("duplicates", sa.BigInteger, nullable=False, default=0),
)

agent_epochs = sa.Table(
    "agent_epochs",
    _meta,
    sa.Column("agent", sa.String(255), primary_key=True),
    sa.Column("boot_epoch", sa.BigInteger, primary_key=True),
    sa.Column("max_seq", sa.BigInteger, nullable=False),
    sa.Column("received", sa.BigInteger, nullable=False),
)

# Batch ids the counters above already include: makes counting idempotent on its own, so a hub killed
# between the store write and this bookkeeping still counts the re-sent batch (which the store then
# reports as a duplicate) exactly once. Rows are kept for the delivery contract's dedup window (agents
# never replay a batch older than that: their spool age is validated against the same constant).
seen_batches = sa.Table(
    "seen_batches",
    _meta,
    sa.Column("agent", sa.String(255), primary_key=True),
    sa.Column("boot_epoch", sa.BigInteger, primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("seen_ms", sa.BigInteger, nullable=False, index=True),
)
SEEN_HORIZON_MS = DEDUP_WINDOW_MS
_PRUNE_EVERY = 1000

api_tokens = sa.Table(
    "api_tokens",
    _meta,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)


@dataclass(frozen=True, slots=True)
class AgentInfo:
    id: str
    first_seen_ms: int
    last_seen_ms: int
    points_received: int
    batches_received: int
    duplicates: int
    gaps: int


def hash_secret(secret: str) -> str:
    """How API and enrollment tokens are stored: only their SHA-256, compared in constant time."""
    return hashlib.sha256(secret.encode()).hexdigest()


class HubState:
    """Blocking accessors; the hub calls them from worker threads."""

    def __init__(self, url: str) -> None:
        connect_args = {"check_same_thread": False} if url.startswith("sqlite") else {}
        self._engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)
        if url.startswith("sqlite"):
            sa.event.listen(self._engine, "connect", _sqlite_pragmas)

    @property
    def engine(self) -> sa.Engine:
        """The engine, for components that keep their own tables in the hub's database (hub/enroll)."""
        return self._engine

    def open(self) -> None:
        _meta.create_all(self._engine)

    def close(self) -> None:
        self._engine.dispose()

    def record_batch(self, agent: str, boot_epoch: int, seq: int, points: int, now_ms: int) -> bool:
        """Counts one delivered batch once; a batch id already counted only bumps `duplicates`.

        This is the one duplicate decision of the hub (durable, shared by hubs on one database): the
        ingest counters on /metrics follow the value returned here, not the store's own dedup answer.
        Safe under concurrent calls for the same agent (inserts ignore conflicts instead of racing).

        Returns:
            True when the batch was counted as new, False when it was a duplicate.

        Raises:
            TransientError: the state database is unreachable or busy; the caller must not acknowledge.
        """
        try:
            return self._record_batch(agent, boot_epoch, seq, points, now_ms)
        except sa.exc.OperationalError as exc:
            raise TransientError(f"state database unavailable: {type(exc.orig).__name__}") from exc

    def _record_batch(self, agent: str, boot_epoch: int, seq: int, points: int, now_ms: int) -> bool:
        with self._engine.begin() as db:
            self._insert_ignore(
                db,
                agents,
                id=agent,
                first_seen_ms=now_ms,
                last_seen_ms=now_ms,
                points_received=0,
                batches_received=0,
                duplicates=0,
            )
            new = self._insert_ignore(
                db, seen_batches, agent=agent, boot_epoch=boot_epoch, seq=seq, seen_ms=now_ms
            )
            if seq % _PRUNE_EVERY == 0:
                db.execute(seen_batches.delete().where(seen_batches.c.seen_ms < now_ms - SEEN_HORIZON_MS))
            if not new:
                db.execute(
                    agents.update()
                    .where(agents.c.id == agent)
                    .values(last_seen_ms=now_ms, duplicates=agents.c.duplicates + 1)
                )
                return False
            db.execute(
                agents.update()
                .where(agents.c.id == agent)
                .values(
                    last_seen_ms=now_ms,
                    points_received=agents.c.points_received + points,
                    batches_received=agents.c.batches_received + 1,
                )
            )
            where = (agent_epochs.c.agent == agent) & (agent_epochs.c.boot_epoch == boot_epoch)
            if not self._insert_ignore(
                db, agent_epochs, agent=agent, boot_epoch=boot_epoch, max_seq=seq, received=1
            ):
                db.execute(
                    agent_epochs.update()
                    .where(where)
                    .values(
                        max_seq=sa.func.max(agent_epochs.c.max_seq, seq)
                        if self._engine.dialect.name == "sqlite"
                        else sa.func.greatest(agent_epochs.c.max_seq, seq),
                        received=agent_epochs.c.received + 1,
                    )
                )
            return True

    def _insert_ignore(self, db: sa.Connection, table: sa.Table, **values: object) -> bool:
        """INSERT unless the primary key exists (no check-then-insert race); True when a row was added."""
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        # RETURNING rather than rowcount: drivers disagree on rowcount for a skipped conflicting row.
        stmt = (
            dialect.insert(table).values(**values).on_conflict_do_nothing().returning(sa.literal_column("1"))
        )
        return db.execute(stmt).first() is not None

    def agents(self) -> list[AgentInfo]:
        gaps = (
            sa.select(
                agent_epochs.c.agent,
                sa.func.sum(agent_epochs.c.max_seq - agent_epochs.c.received).label("gaps"),
            )
            .group_by(agent_epochs.c.agent)
            .subquery()
        )
        q = sa.select(agents, sa.func.coalesce(gaps.c.gaps, 0)).outerjoin(gaps, gaps.c.agent == agents.c.id)
        with self._engine.connect() as db:
            # SUM() is NUMERIC on PostgreSQL: gaps come back as Decimal there, int on SQLite.
            rows = db.execute(q.order_by(agents.c.id)).all()
        return [AgentInfo(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6])) for r in rows]

    def total_gaps(self) -> int:
        with self._engine.connect() as db:
            value = db.execute(
                sa.select(sa.func.sum(agent_epochs.c.max_seq - agent_epochs.c.received))
            ).scalar()
        return int(value or 0)

    def ensure_admin_token(self, now_ms: int) -> str | None:
        """Creates the admin API token on first start. Returns it once (then only its hash is kept)."""
        token = "opt_" + secrets.token_urlsafe(32)
        with self._engine.begin() as db:  # hubs starting together on one database: exactly one creates it
            new = self._insert_ignore(
                db, api_tokens, name="admin", token_hash=hash_secret(token), role="admin", created_ms=now_ms
            )
        return token if new else None

    def check_token(self, token: str) -> str | None:
        """Returns the role of a valid token, else None.

        Looked up by the token's SHA-256 on a unique index: timing reveals nothing about the token itself.
        """
        with self._engine.connect() as db:
            role = db.execute(
                sa.select(api_tokens.c.role).where(api_tokens.c.token_hash == hash_secret(token))
            ).scalar()
        return None if role is None else str(role)


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()
