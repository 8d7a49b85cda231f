"""Blocking accessors of the notification outbox; the dispatcher runs them in worker threads.

Safe to call from several threads at once: every call takes its own connection from the engine's pool
(SQLAlchemy engines are thread-safe, connections are not shared). Works on SQLite and PostgreSQL.
A row is claimed with a lease (next_attempt_ms pushed ahead, lease_token set) by one conditional UPDATE,
so two hubs sharing a database never both take it; a hub that dies mid-send loses the lease when it
expires, and a restarted hub with the same `owner` takes its own leases back at once.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.sql.selectable import NamedFromClause

from hub.db.sql import executemany
from hub.notify.model import Notification
from hub.notify.models import notify_outbox as t

MAX_ERROR_TEXT = 1000
_IN_CHUNK = 500  # group hashes per IN list (SQLite bounds bound parameters)
PRUNE_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this hub holds the lease of; leased at insert, it still has its notification in memory."""

    seq: int
    receiver: str
    id: str
    payload: str
    attempts: int
    enqueued_ms: int
    lease_token: str
    notification: Notification | None = None


@dataclass(frozen=True, slots=True)
class Claims:
    """What one `claim` leased, and what it left: when the next row first in its group falls due (None:
    none; the claim's own `now_ms` when `limit` rows were due, so more may be), and whether a pending row
    is leased to nobody (a loader has to look again when a slot or that row's group frees up)."""

    rows: list[Claimed]
    next_due_ms: int | None
    unleased: bool


@dataclass(frozen=True, slots=True)
class Lease:
    """Rows `insert_all` may lease to `owner` as it writes them: up to `room[receiver]` per receiver,
    each until `until_ms[receiver]`."""

    owner: str
    token: str
    room: Mapping[str, int]
    until_ms: Mapping[str, int]


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


def _group_head(o: NamedFromClause, receiver: str | sa.BindParameter[str]) -> sa.ColumnElement[bool]:
    """Pending rows of `receiver` that no older pending row of their alert group is ahead of."""
    p = t.alias("p")
    older_pending = sa.select(sa.literal(1)).where(
        p.c.receiver == o.c.receiver,
        p.c.group_hash == o.c.group_hash,
        p.c.state == "pending",
        p.c.seq < o.c.seq,
    )
    return sa.and_(o.c.receiver == receiver, o.c.state == "pending", ~sa.exists(older_pending))


@functools.cache
def _due_query() -> sa.Select[Any]:
    """Due rows first in their group, oldest first (binds: receiver, now, limit)."""
    o = t.alias("o")
    return (
        sa.select(o.c.seq)
        .where(_group_head(o, sa.bindparam("receiver")), o.c.next_attempt_ms <= sa.bindparam("now"))
        .order_by(o.c.seq)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


@functools.cache
def _leased_query() -> sa.Select[Any]:
    return (
        sa.select(t.c.seq, t.c.receiver, t.c.id, t.c.payload, t.c.attempts, t.c.enqueued_ms)
        .where(t.c.lease_token == sa.bindparam("token"), t.c.state == "pending")
        .order_by(t.c.seq)
    )


@functools.cache
def _next_due_query() -> sa.Select[Any]:
    """When the earliest row first in its group falls due after `now`: a row waiting behind its group's
    earlier one is not due before that one is done, and counting it made the loader sleep a whole poll
    past a retry falling due."""
    o = t.alias("o")
    return sa.select(sa.func.min(o.c.next_attempt_ms)).where(
        _group_head(o, sa.bindparam("receiver")), o.c.next_attempt_ms > sa.bindparam("now")
    )


@functools.cache
def _unleased_query() -> sa.Select[Any]:
    """Whether a pending row is leased to nobody: one behind its group's earlier row, a retry, or one
    written without a lease (binds: receiver)."""
    unleased = sa.select(t.c.seq).where(
        t.c.receiver == sa.bindparam("receiver"), t.c.state == "pending", t.c.lease_token.is_(None)
    )
    return sa.select(sa.exists(unleased))


@functools.cache
def _busy_groups_query() -> sa.Select[Any]:
    """Which of these alert groups have a pending row (binds: receiver, hashes)."""
    return (
        sa.select(t.c.group_hash)
        .where(
            t.c.receiver == sa.bindparam("receiver"),
            t.c.group_hash.in_(sa.bindparam("hashes", expanding=True)),
            t.c.state == "pending",
        )
        .distinct()
    )


@functools.cache
def _outcome_update(leased: bool) -> sa.Update:
    """An attempt's outcome, SET from the row's keys (see `hub.db.sql.executemany`); only on a row still
    pending, and for a retry only while the claim's lease holds (`b_token`)."""
    pending = (t.c.seq == sa.bindparam("b_seq")) & (t.c.state == sa.literal_column("'pending'"))
    if leased:
        pending = pending & (t.c.lease_token == sa.bindparam("b_token"))
    return t.update().where(pending)


def _final(o: Outcome) -> dict[str, object]:
    """What every outcome writes: the lease handed back, the attempt counted."""
    return {
        "b_seq": o.claim.seq,
        "lease_owner": None,
        "lease_token": None,
        "updated_ms": o.now_ms,
        "attempts": o.attempts,
    }


_INSERT_COLUMNS = (
    "receiver",
    "id",
    "group_hash",
    "payload",
    "state",
    "attempts",
    "next_attempt_ms",
    "lease_owner",
    "lease_token",
    "created_ms",
    "enqueued_ms",
    "updated_ms",
)
_INSERT_CHUNK = 500  # rows per INSERT: 6,000 bound parameters, well inside SQLite's limit


@functools.lru_cache(maxsize=128)
def _insert_sql(dialect: sa.Dialect, rows: int) -> str:
    """One INSERT of `rows` rows, positional parameters in `_INSERT_COLUMNS` order, run on the driver.

    A conflicting row is skipped and RETURNING names the rows added, where rowcount would not (drivers
    disagree on it for skipped rows). Written out, not built by SQLAlchemy: its insertmanyvalues
    (parameter processing per row and value) was most of the time a step spent on its outbox rows.
    """
    mark = "?" if dialect.paramstyle == "qmark" else "%s"  # sqlite3; psycopg takes %s positionally
    quote = dialect.identifier_preparer.quote
    one = "(" + ", ".join([mark] * len(_INSERT_COLUMNS)) + ")"
    return (
        f"INSERT INTO {quote(t.name)} ({', '.join(quote(c) for c in _INSERT_COLUMNS)})"
        f" VALUES {', '.join([one] * rows)} ON CONFLICT DO NOTHING"
        f" RETURNING {quote('receiver')}, {quote('id')}, {quote('seq')}"
    )


def group_hash(group_key: str) -> str:
    return hashlib.sha256(group_key.encode()).hexdigest()


class Outbox:
    """The `notify_outbox` table behind one engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def insert_many(self, ns: Sequence[Notification], now_ms: int) -> list[bool]:
        """Adds each notification in one transaction; per notification, whether it was new."""
        with self._engine.begin() as conn:
            return self.insert_all(conn, ns, now_ms)

    def insert_all(self, conn: sa.Connection, ns: Sequence[Notification], now_ms: int) -> list[bool]:
        """Adds each notification in the caller's transaction (one statement); per one, whether it was new."""
        return self.insert_leasing(conn, ns, now_ms, None)[0]

    def insert_leasing(
        self, conn: sa.Connection, ns: Sequence[Notification], now_ms: int, lease: Lease | None
    ) -> tuple[list[bool], list[Claimed]]:
        """`insert_all`, leasing some rows to `lease.owner` as they are written, so they can be sent from
        memory once the caller commits, without a claim query and a payload parse each.

        A row is leased when its receiver has room, it is the first of its alert group in `ns` and no
        older row of its group is pending: a group's notifications still go out one at a time, in order.
        Returns, per notification, whether it was new, and the rows leased (new ones only).
        """
        if not ns:
            return [], []
        hashes = [group_hash(n.group_key) for n in ns]
        payloads = [n.to_json() for n in ns]
        leased = self._leasable(conn, ns, hashes, lease) if lease is not None else set()
        added = self._insert(conn, ns, hashes, payloads, now_ms, leased, lease)
        out: list[bool] = []
        claims: list[Claimed] = []
        for i, n in enumerate(ns):  # the same id twice in one batch: only the first is new
            seq = added.pop((n.receiver, n.id), None)
            out.append(seq is not None)
            if seq is not None and lease is not None and i in leased:
                claims.append(Claimed(seq, n.receiver, n.id, payloads[i], 0, now_ms, lease.token, n))
        return out, claims

    def _leasable(
        self, conn: sa.Connection, ns: Sequence[Notification], hashes: list[str], lease: Lease
    ) -> set[int]:
        """Indexes into `ns` of the rows `insert_leasing` leases."""
        wanted: dict[str, set[str]] = {}
        for n, h in zip(ns, hashes, strict=True):
            if lease.room.get(n.receiver, 0) > 0:
                wanted.setdefault(n.receiver, set()).add(h)
        busy: set[tuple[str, str]] = set()
        for receiver, groups in wanted.items():
            ordered = sorted(groups)
            for i in range(0, len(ordered), _IN_CHUNK):
                params = {"receiver": receiver, "hashes": ordered[i : i + _IN_CHUNK]}
                busy.update((receiver, h) for h in conn.execute(_busy_groups_query(), params).scalars())
        room = dict(lease.room)
        taken: set[int] = set()
        for i, (n, h) in enumerate(zip(ns, hashes, strict=True)):
            key = (n.receiver, h)
            if key in busy or room.get(n.receiver, 0) <= 0:
                continue
            busy.add(key)  # a later notification of the group waits for this one
            room[n.receiver] -= 1
            taken.add(i)
        return taken

    def _insert(
        self,
        conn: sa.Connection,
        ns: Sequence[Notification],
        hashes: list[str],
        payloads: list[str],
        now_ms: int,
        leased: set[int],
        lease: Lease | None,
    ) -> dict[tuple[str, str], int]:
        rows: list[tuple[object, ...]] = []
        for i, n in enumerate(ns):  # in _INSERT_COLUMNS order
            if lease is not None and i in leased:
                next_ms, owner, token = lease.until_ms[n.receiver], lease.owner, lease.token
            else:
                next_ms, owner, token = now_ms, None, None
            rows.append(
                (n.receiver, n.id, hashes[i], payloads[i], "pending", 0, next_ms, owner, token)
                + (n.created_ms, now_ms, now_ms)
            )
        added: dict[tuple[str, str], int] = {}
        for i in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[i : i + _INSERT_CHUNK]
            sql = _insert_sql(conn.dialect, len(chunk))
            params = tuple(v for row in chunk for v in row)
            added.update(((r[0], r[1]), int(r[2])) for r in conn.exec_driver_sql(sql, params))
        return added

    def claim(self, receiver: str, now_ms: int, limit: int, lease_ms: int, owner: str, token: str) -> Claims:
        """Leases up to `limit` due rows of `receiver`, oldest first, at most one per alert group, and
        says what is left (when the next falls due, whether any pending row is leased to nobody).

        Reads first, in a transaction of its own: a loader woken with nothing due takes no write lock
        (on SQLite the database's one writer lock, which the alert path's commits wait for).
        """
        with self._engine.connect() as conn:
            due_now = {"receiver": receiver, "now": now_ms, "limit": limit}
            seqs = list(conn.execute(_due_query(), due_now).scalars())
            conn.rollback()
            rows: list[Claimed] = []
            if seqs:
                with conn.begin():
                    conn.execute(
                        t.update()
                        # Re-checked on the locked row: a row another hub leased since the read is skipped.
                        .where(t.c.seq.in_(seqs), t.c.state == "pending", t.c.next_attempt_ms <= now_ms)
                        .values(
                            next_attempt_ms=now_ms + lease_ms,
                            lease_owner=owner,
                            lease_token=token,
                            updated_ms=now_ms,
                        )
                    )
                    found = conn.execute(_leased_query(), {"token": token}).all()
                rows = [Claimed(r[0], r[1], r[2], r[3], r[4], r[5], token) for r in found]
            if len(seqs) == limit:
                return Claims(rows, now_ms, True)  # more may be due: the caller claims again at once
            due = conn.execute(_next_due_query(), {"receiver": receiver, "now": now_ms}).scalar()
            unleased = conn.execute(_unleased_query(), {"receiver": receiver}).scalar()
            conn.rollback()
        return Claims(rows, None if due is None else int(due), bool(unleased))

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Writes what attempts ended in, in one transaction (one commit for many sends).

        Sent and dead rows are final whoever holds the lease; a retry is written only while this claim
        still holds it (another hub may have taken the row after the lease ran out).
        """
        sent = [o for o in outcomes if o.state == "sent"]
        retry = [o for o in outcomes if o.state == "pending"]
        dead = [o for o in outcomes if o.state == "dead"]
        with self._engine.begin() as conn:
            if sent:
                executemany(
                    conn,
                    _outcome_update(False),
                    [_final(o) | {"state": "sent", "sent_ms": o.now_ms} for o in sent],
                )
            if retry:
                executemany(
                    conn,
                    _outcome_update(True),
                    [
                        _final(o)
                        | {
                            "b_token": o.claim.lease_token,
                            "next_attempt_ms": o.next_ms,
                            "last_error": o.error[:MAX_ERROR_TEXT],
                        }
                        for o in retry
                    ],
                )
            if dead:
                executemany(
                    conn,
                    _outcome_update(False),
                    [
                        _final(o)
                        | {"state": "dead", "dead_reason": o.reason, "last_error": o.error[:MAX_ERROR_TEXT]}
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
