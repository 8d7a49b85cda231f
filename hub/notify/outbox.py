"""Blocking accessors of the notification outbox; the dispatcher runs them in worker threads.

Safe to call from several threads at once: every call takes its own connection from the engine's pool
(SQLAlchemy engines are thread-safe, connections are not shared). Works on SQLite and PostgreSQL.
A row is claimed with a lease (next_attempt_ms pushed ahead, lease_token set) by one conditional UPDATE,
so two hubs sharing a database never both take it; a hub that dies mid-send loses the lease when it
expires, and a restarted hub with the same `owner` takes its own leases back at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.notify.model import Notification
from hub.notify.models import notify_outbox as t

MAX_ERROR_TEXT = 1000
PRUNE_CHUNK = 5_000


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
class Outcome:
    """What one attempt at a claimed row ended in: `sent`, `pending` again at `next_ms`, or `dead`."""

    claim: Claimed
    state: Literal["sent", "pending", "dead"]
    attempts: int
    now_ms: int
    next_ms: int = 0
    reason: str = ""
    error: str = ""


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
        return bool(self._insert(conn, [n], now_ms))

    def insert_many(self, ns: Sequence[Notification], now_ms: int) -> list[bool]:
        """Adds each notification in one transaction; per notification, whether it was new."""
        with self._engine.begin() as conn:
            return self.insert_all(conn, ns, now_ms)

    def insert_all(self, conn: sa.Connection, ns: Sequence[Notification], now_ms: int) -> list[bool]:
        """Adds each notification in the caller's transaction (one statement); per one, whether it was new."""
        if not ns:
            return []
        added = self._insert(conn, ns, now_ms)
        out = []
        for n in ns:  # the same id twice in one batch: only the first is new
            key = (n.receiver, n.id)
            out.append(key in added)
            added.discard(key)
        return out

    def _insert(self, conn: sa.Connection, ns: Sequence[Notification], now_ms: int) -> set[tuple[str, str]]:
        rows = [
            {
                "receiver": n.receiver,
                "id": n.id,
                "group_hash": group_hash(n.group_key),
                "payload": n.to_json(),
                "state": "pending",
                "attempts": 0,
                "next_attempt_ms": now_ms,
                "created_ms": n.created_ms,
                "enqueued_ms": now_ms,
                "updated_ms": now_ms,
            }
            for n in ns
        ]
        # One multi-row INSERT; RETURNING names the rows added (a conflicting row returns nothing), where
        # rowcount would not: drivers disagree on it for skipped rows.
        stmt = self._dialect.insert(t).on_conflict_do_nothing().returning(t.c.receiver, t.c.id)
        return {(r[0], r[1]) for r in conn.execute(stmt, rows)}

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

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Writes what attempts ended in, in one transaction (one commit for many sends).

        Sent and dead rows are final whoever holds the lease; a retry is written only while this claim
        still holds it (another hub may have taken the row after the lease ran out).
        """
        b = sa.bindparam
        final: dict[str, object] = {
            "lease_owner": None,
            "lease_token": None,
            "updated_ms": b("b_now"),
            "attempts": b("b_attempts"),
        }
        sent = [o for o in outcomes if o.state == "sent"]
        retry = [o for o in outcomes if o.state == "pending"]
        dead = [o for o in outcomes if o.state == "dead"]
        pending_row = (t.c.seq == b("b_seq")) & (t.c.state == "pending")
        with self._engine.begin() as conn:
            if sent:
                conn.execute(
                    t.update().where(pending_row).values(state="sent", sent_ms=b("b_now"), **final),
                    [{"b_seq": o.claim.seq, "b_now": o.now_ms, "b_attempts": o.attempts} for o in sent],
                )
            if retry:
                conn.execute(
                    t.update()
                    .where(pending_row & (t.c.lease_token == b("b_token")))
                    .values(next_attempt_ms=b("b_next"), last_error=b("b_error"), **final),
                    [
                        {
                            "b_seq": o.claim.seq,
                            "b_token": o.claim.lease_token,
                            "b_now": o.now_ms,
                            "b_attempts": o.attempts,
                            "b_next": o.next_ms,
                            "b_error": o.error[:MAX_ERROR_TEXT],
                        }
                        for o in retry
                    ],
                )
            if dead:
                conn.execute(
                    t.update()
                    .where(pending_row)
                    .values(state="dead", dead_reason=b("b_reason"), last_error=b("b_error"), **final),
                    [
                        {
                            "b_seq": o.claim.seq,
                            "b_now": o.now_ms,
                            "b_attempts": o.attempts,
                            "b_reason": o.reason,
                            "b_error": o.error[:MAX_ERROR_TEXT],
                        }
                        for o in dead
                    ],
                )

    def release_owner(self, owner: str, now_ms: int) -> int:
        """Hands back every lease of `owner` as due now: at start (leases held before a crash) and at
        a clean stop (rows queued or cut off mid-send); returns how many."""
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

    def prune(self, older_than_ms: int, chunk: int = PRUNE_CHUNK) -> int:
        """Deletes sent and dead rows last touched before `older_than_ms` (retention); returns how many.

        In transactions of at most `chunk` rows, so a first pass over months of rows never holds the
        database's write lock long enough to stall the alert path's own commits.
        """
        done = t.c.state.in_(("sent", "dead")) & (t.c.updated_ms < older_than_ms)
        total = 0
        while True:
            with self._engine.begin() as conn:
                batch = sa.select(t.c.seq).where(done).order_by(t.c.seq).limit(chunk).scalar_subquery()
                n = int(conn.execute(t.delete().where(t.c.seq.in_(batch))).rowcount or 0)
            total += n
            if n < chunk:
                return total
