"""Blocking accessors of the notification outbox; the dispatcher runs them in worker threads.

Safe to call from several threads at once: every call takes its own connection from the engine's pool
(SQLAlchemy engines are thread-safe, connections are not shared). Works on SQLite and PostgreSQL.
A row is claimed with a lease (next_attempt_ms pushed ahead, lease_token set) by one conditional UPDATE,
so two hubs sharing a database never both take it; a hub that dies mid-send loses the lease when it
expires, and a restarted hub with the same `owner` takes its own leases back at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.notify.model import Notification
from hub.notify.models import notify_outbox as t

MAX_ERROR_TEXT = 1000


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this hub holds the lease of."""

    seq: int
    receiver: str
    id: str
    payload: str
    attempts: int
    enqueued_ms: int
    lease_token: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    receiver: str
    id: str
    attempts: int
    reason: str
    last_error: str
    created_ms: int
    dead_ms: int


def group_hash(group_key: str) -> str:
    return hashlib.sha256(group_key.encode()).hexdigest()


class Outbox:
    """The `notify_outbox` table behind one engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._dialect = postgresql if engine.dialect.name == "postgresql" else sqlite

    def insert(self, conn: sa.Connection, n: Notification, now_ms: int) -> bool:
        """Adds `n` as pending in the caller's transaction; False when (receiver, id) is already there."""
        stmt = (
            self._dialect.insert(t)
            .values(
                receiver=n.receiver,
                id=n.id,
                group_hash=group_hash(n.group_key),
                payload=n.to_json(),
                state="pending",
                attempts=0,
                next_attempt_ms=now_ms,
                created_ms=n.created_ms,
                enqueued_ms=now_ms,
                updated_ms=now_ms,
            )
            .on_conflict_do_nothing()
            # RETURNING rather than rowcount: drivers disagree on rowcount for a skipped conflicting row.
            .returning(t.c.seq)
        )
        return conn.execute(stmt).first() is not None

    def insert_many(self, ns: Sequence[Notification], now_ms: int) -> list[bool]:
        """Adds each notification in one transaction; per notification, whether it was new."""
        with self._engine.begin() as conn:
            return [self.insert(conn, n, now_ms) for n in ns]

    def claim(
        self, receiver: str, now_ms: int, limit: int, lease_ms: int, owner: str, token: str
    ) -> list[Claimed]:
        """Leases up to `limit` due rows of `receiver`, oldest first, at most one per alert group."""
        o, p = t.alias("o"), t.alias("p")
        older_pending = sa.select(sa.literal(1)).where(
            p.c.receiver == o.c.receiver,
            p.c.group_hash == o.c.group_hash,
            p.c.state == "pending",
            p.c.seq < o.c.seq,
        )
        due = (
            sa.select(o.c.seq)
            .where(
                o.c.receiver == receiver,
                o.c.state == "pending",
                o.c.next_attempt_ms <= now_ms,
                ~sa.exists(older_pending),
            )
            .order_by(o.c.seq)
            .limit(limit)
        )
        with self._engine.begin() as conn:
            conn.execute(
                t.update()
                # Re-checked on the locked row (PostgreSQL): a row another hub just leased is skipped.
                .where(
                    t.c.seq.in_(due.scalar_subquery()), t.c.state == "pending", t.c.next_attempt_ms <= now_ms
                )
                .values(
                    next_attempt_ms=now_ms + lease_ms, lease_owner=owner, lease_token=token, updated_ms=now_ms
                )
            )
            rows = conn.execute(
                sa.select(t.c.seq, t.c.receiver, t.c.id, t.c.payload, t.c.attempts, t.c.enqueued_ms)
                .where(t.c.lease_token == token, t.c.state == "pending")
                .order_by(t.c.seq)
            ).all()
        return [Claimed(r[0], r[1], r[2], r[3], r[4], r[5], token) for r in rows]

    def mark_sent(self, seq: int, attempts: int, now_ms: int) -> None:
        """Records the peer's 2xx: the row is never sent again (whoever holds the lease)."""
        with self._engine.begin() as conn:
            conn.execute(
                t.update()
                .where(t.c.seq == seq, t.c.state == "pending")
                .values(
                    state="sent",
                    attempts=attempts,
                    sent_ms=now_ms,
                    updated_ms=now_ms,
                    lease_owner=None,
                    lease_token=None,
                )
            )

    def schedule_retry(self, c: Claimed, attempts: int, next_ms: int, error: str, now_ms: int) -> None:
        """Gives up the lease until `next_ms`; a no-op if the lease was lost meanwhile."""
        with self._engine.begin() as conn:
            conn.execute(
                t.update()
                .where(t.c.seq == c.seq, t.c.state == "pending", t.c.lease_token == c.lease_token)
                .values(
                    attempts=attempts,
                    next_attempt_ms=next_ms,
                    last_error=error[:MAX_ERROR_TEXT],
                    updated_ms=now_ms,
                    lease_owner=None,
                    lease_token=None,
                )
            )

    def mark_dead(self, seq: int, attempts: int, reason: str, error: str, now_ms: int) -> None:
        """Dead-letters the row: kept with its reason and (already scrubbed) last error, never retried."""
        with self._engine.begin() as conn:
            conn.execute(
                t.update()
                .where(t.c.seq == seq, t.c.state == "pending")
                .values(
                    state="dead",
                    attempts=attempts,
                    dead_reason=reason,
                    last_error=error[:MAX_ERROR_TEXT],
                    updated_ms=now_ms,
                    lease_owner=None,
                    lease_token=None,
                )
            )

    def release(self, tokens: Iterable[str], now_ms: int) -> int:
        """Hands leased rows back as due now (a dispatcher stopping mid-send); returns how many."""
        tokens = list(tokens)
        if not tokens:
            return 0
        with self._engine.begin() as conn:
            res = conn.execute(
                t.update()
                .where(t.c.lease_token.in_(tokens), t.c.state == "pending")
                .values(next_attempt_ms=now_ms, lease_owner=None, lease_token=None, updated_ms=now_ms)
            )
        return int(res.rowcount or 0)

    def release_owner(self, owner: str, now_ms: int) -> int:
        """At start: leases this hub held before it stopped are its own again at once."""
        with self._engine.begin() as conn:
            res = conn.execute(
                t.update()
                .where(t.c.lease_owner == owner, t.c.state == "pending")
                .values(next_attempt_ms=now_ms, lease_owner=None, lease_token=None, updated_ms=now_ms)
            )
        return int(res.rowcount or 0)

    def next_due_ms(self, receiver: str) -> int | None:
        """When the earliest pending row of `receiver` falls due (None when there is none)."""
        with self._engine.connect() as conn:
            value = conn.execute(
                sa.select(sa.func.min(t.c.next_attempt_ms)).where(
                    t.c.receiver == receiver, t.c.state == "pending"
                )
            ).scalar()
        return None if value is None else int(value)

    def dead_letters(self, receiver: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """The newest dead-lettered notifications, for the API and for operators."""
        q = sa.select(
            t.c.receiver,
            t.c.id,
            t.c.attempts,
            t.c.dead_reason,
            t.c.last_error,
            t.c.created_ms,
            t.c.updated_ms,
        ).where(t.c.state == "dead")
        if receiver is not None:
            q = q.where(t.c.receiver == receiver)
        with self._engine.connect() as conn:
            rows = conn.execute(q.order_by(t.c.updated_ms.desc(), t.c.seq.desc()).limit(limit)).all()
        return [DeadLetter(r[0], r[1], r[2], r[3] or "", r[4] or "", r[5], r[6]) for r in rows]

    def counts(self) -> dict[tuple[str, str], int]:
        """Rows by (receiver, state)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.receiver, t.c.state, sa.func.count()).group_by(t.c.receiver, t.c.state)
            ).all()
        return {(r[0], r[1]): int(r[2]) for r in rows}

    def prune(self, older_than_ms: int) -> int:
        """Deletes sent and dead rows last touched before `older_than_ms` (retention); returns how many."""
        with self._engine.begin() as conn:
            res = conn.execute(
                t.delete().where(t.c.state.in_(("sent", "dead")), t.c.updated_ms < older_than_ms)
            )
        return int(res.rowcount or 0)
