"""Agents and their delivery counters in the hub's SQL database; the one duplicate decision of the hub.

Sequence gaps are derived, not tracked point by point: per (agent, boot_epoch) the hub keeps the
highest seq seen and how many distinct batches arrived; since seq starts at 1 and duplicates are not
counted, `max_seq - received` is exactly the number of batches still missing. A late batch from a
backfill closes its gap by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.exc

from hub.db.sql import insert_ignore
from hub.fleet.models import agent_epochs, agents, seen_batches
from shared.delivery import DEDUP_WINDOW_MS
from shared.errors import TransientError

SEEN_HORIZON_MS = DEDUP_WINDOW_MS
# Forgetting old batch ids rides along every this-many-th sequence number: no timer, bounded table.
PRUNE_EVERY = 1000


@dataclass(frozen=True, slots=True)
class AgentInfo:
    id: str
    first_seen_ms: int
    last_seen_ms: int
    points_received: int
    batches_received: int
    duplicates: int
    gaps: int


class Fleet:
    """Blocking accessors over the hub's engine; the hub calls them from worker threads."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

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
            with self._engine.begin() as db:
                return _record_batch(db, agent, boot_epoch, seq, points, now_ms)
        except sa.exc.OperationalError as exc:
            raise TransientError(f"state database unavailable: {type(exc.orig).__name__}") from exc

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


def prune_seen(db: sa.Connection, now_ms: int) -> int:
    """Forgets batch ids older than the dedup window; returns how many were removed."""
    done = db.execute(seen_batches.delete().where(seen_batches.c.seen_ms < now_ms - SEEN_HORIZON_MS))
    return int(done.rowcount)


def _record_batch(db: sa.Connection, agent: str, boot_epoch: int, seq: int, points: int, now_ms: int) -> bool:
    insert_ignore(
        db,
        agents,
        id=agent,
        first_seen_ms=now_ms,
        last_seen_ms=now_ms,
        points_received=0,
        batches_received=0,
        duplicates=0,
    )
    new = insert_ignore(db, seen_batches, agent=agent, boot_epoch=boot_epoch, seq=seq, seen_ms=now_ms)
    if seq % PRUNE_EVERY == 0:
        prune_seen(db, now_ms)
    if not new:
        db.execute(_SEEN_AGAIN, {"b_agent": agent, "b_now": now_ms})
        return False
    db.execute(_COUNTED, {"b_agent": agent, "b_now": now_ms, "b_points": points})
    if not insert_ignore(db, agent_epochs, agent=agent, boot_epoch=boot_epoch, max_seq=seq, received=1):
        epoch = _EPOCH_SEEN_POSTGRES if db.dialect.name == "postgresql" else _EPOCH_SEEN_SQLITE
        db.execute(epoch, {"b_agent": agent, "b_boot": boot_epoch, "b_seq": seq})
    return True


# Built once (values as parameters): every stored batch runs them.
_SEEN_AGAIN = (
    agents.update()
    .where(agents.c.id == sa.bindparam("b_agent"))
    .values(last_seen_ms=sa.bindparam("b_now"), duplicates=agents.c.duplicates + 1)
)
_COUNTED = (
    agents.update()
    .where(agents.c.id == sa.bindparam("b_agent"))
    .values(
        last_seen_ms=sa.bindparam("b_now"),
        points_received=agents.c.points_received + sa.bindparam("b_points"),
        batches_received=agents.c.batches_received + 1,
    )
)


def _epoch_seen(greatest: Callable[..., sa.ColumnElement[int]]) -> sa.Update:
    epoch = agent_epochs.c
    return (
        agent_epochs.update()
        .where((epoch.agent == sa.bindparam("b_agent")) & (epoch.boot_epoch == sa.bindparam("b_boot")))
        .values(max_seq=greatest(epoch.max_seq, sa.bindparam("b_seq")), received=epoch.received + 1)
    )


_EPOCH_SEEN_SQLITE = _epoch_seen(sa.func.max)  # SQLite's max() of two arguments is GREATEST
_EPOCH_SEEN_POSTGRES = _epoch_seen(sa.func.greatest)
