"""Batch-id ledger and event table: the bookkeeping every backend keeps beside its data.

Locally (one hub process) it is SQLite beside the data. Batch ids are (agent, boot_epoch, seq). An
agent's seqs within one boot rise mostly without gaps, so the ledger keeps, per (agent, boot_epoch), the
ranges of seqs seen rather than every id: a few ranges per agent cover days of batches, and a lookup
is a bisect.

With several hub processes (`api` + N `worker` on one PostgreSQL) each process's own file would see only
its own batches and events, so `SharedLedger` keeps them in the shared state database instead: one row
per batch id, recorded together with the batch's events in one transaction, so two workers storing the
same batch (a redelivery after ack_wait) record its events once.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect

from hub.store.models import store_batches, store_events
from shared.model import Event, Severity

SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_ranges (agent TEXT NOT NULL, boot_epoch INTEGER NOT NULL,
  lo INTEGER NOT NULL, hi INTEGER NOT NULL, last_ms INTEGER NOT NULL,
  PRIMARY KEY (agent, boot_epoch, lo)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, agent TEXT NOT NULL, ts INTEGER NOT NULL,
  kind TEXT NOT NULL, severity INTEGER NOT NULL, source TEXT NOT NULL, message TEXT NOT NULL,
  attributes TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
"""

BootKey = tuple[str, int]


class SeenBatches:
    """Which batch ids were stored, as seq ranges per (agent, boot_epoch), each stamped when last extended."""

    def __init__(self) -> None:
        # Per key, sorted disjoint non-adjacent ranges [lo, hi, last_ms].
        self._ranges: dict[BootKey, list[list[int]]] = {}
        self._dirty: set[BootKey] = set()

    def __contains__(self, batch_id: tuple[str, int, int]) -> bool:
        agent, boot, seq = batch_id
        ranges = self._ranges.get((agent, boot), [])
        i = bisect.bisect_right(ranges, seq, key=lambda r: r[0])
        return i > 0 and ranges[i - 1][1] >= seq

    def add(self, agent: str, boot: int, seq: int, now_ms: int) -> None:
        """Records one id (no-op if present), merging it into adjacent ranges."""
        ranges = self._ranges.setdefault((agent, boot), [])
        i = bisect.bisect_right(ranges, seq, key=lambda r: r[0])
        if i > 0 and ranges[i - 1][1] >= seq:
            return
        joins_left = i > 0 and ranges[i - 1][1] == seq - 1
        joins_right = i < len(ranges) and ranges[i][0] == seq + 1
        if joins_left and joins_right:
            left, right = ranges[i - 1], ranges.pop(i)
            left[1:] = [right[1], max(left[2], right[2], now_ms)]
        elif joins_left:
            ranges[i - 1][1:] = [seq, max(ranges[i - 1][2], now_ms)]
        elif joins_right:
            ranges[i][0] = seq
            ranges[i][2] = max(ranges[i][2], now_ms)
        else:
            ranges.insert(i, [seq, seq, now_ms])
        self._dirty.add((agent, boot))

    def prune(self, before_ms: int) -> None:
        """Forgets ranges last extended before `before_ms` (the dedup window has passed for them)."""
        for key, ranges in self._ranges.items():
            kept = [r for r in ranges if r[2] >= before_ms]
            if len(kept) != len(ranges):
                ranges[:] = kept
                self._dirty.add(key)
        self._ranges = {k: r for k, r in self._ranges.items() if r or k in self._dirty}

    def load(self, db: sqlite3.Connection) -> None:
        """Replaces the in-memory state with what `save` last committed."""
        self._ranges.clear()
        self._dirty.clear()
        rows = db.execute(
            "SELECT agent, boot_epoch, lo, hi, last_ms FROM batch_ranges ORDER BY agent, boot_epoch, lo"
        )
        for agent, boot, lo, hi, last in rows:
            self._ranges.setdefault((agent, boot), []).append([lo, hi, last])

    def save(self, db: sqlite3.Connection) -> None:
        """Writes the keys changed since the last `mark_saved`; the caller owns the transaction."""
        save_seen(db, self._rows(self._dirty))

    def mark_saved(self) -> None:
        """Call once the transaction that ran `save` has committed (a rolled-back save stays dirty)."""
        self._dirty.clear()
        self._ranges = {k: r for k, r in self._ranges.items() if r}

    def take_dirty(self) -> SeenRows:
        """A copy of the ranges of every key changed since the last save, which are then no longer dirty:
        a flush running without the caller's lock saves the copy (`save_seen`) while ids are added. Give
        them back with `restore_dirty` if that save is not committed."""
        rows = self._rows(self._dirty)
        self.mark_saved()
        return rows

    def restore_dirty(self, rows: SeenRows) -> None:
        """Marks the keys of a `take_dirty` whose save was rolled back as changed again."""
        self._dirty.update(key for key, _ in rows)

    def _rows(self, keys: Iterable[BootKey]) -> SeenRows:
        return [(key, [(lo, hi, last) for lo, hi, last in self._ranges.get(key, [])]) for key in keys]


# Per (agent, boot epoch): its ranges (lo, hi, last extended ms) as saved.
SeenRows = list[tuple[BootKey, list[tuple[int, int, int]]]]


def save_seen(db: sqlite3.Connection, rows: SeenRows) -> None:
    """Replaces the stored ranges of each key in `rows`; the caller owns the transaction."""
    for (agent, boot), ranges in rows:
        db.execute("DELETE FROM batch_ranges WHERE agent=? AND boot_epoch=?", (agent, boot))
        db.executemany("INSERT INTO batch_ranges VALUES (?, ?, ?, ?, ?)", [(agent, boot, *r) for r in ranges])


def insert_events(db: sqlite3.Connection, events: Iterable[tuple[str, Event]]) -> None:
    """Appends events; the caller owns the transaction."""
    db.executemany(
        "INSERT INTO events (agent, ts, kind, severity, source, message, attributes)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (agent, e.ts_ms, e.kind, e.severity.value, e.source, e.message, json.dumps(e.attributes))
            for agent, e in events
        ],
    )


def select_events(
    db: sqlite3.Connection, start_ms: int, end_ms: int, limit: int, kind: str | None = None
) -> list[tuple[str, Event]]:
    """Events in [start_ms, end_ms], newest first; with `kind`, only kinds starting with it.

    The kind filter is part of the query, before the limit: filtering the newest `limit` rows afterwards
    found no anomaly behind 500 newer traps. A prefix compare (`substr`), not LIKE, so `%` and `_` in
    `kind` are plain characters.
    """
    where = "ts BETWEEN ? AND ?"
    args: list[int | str] = [start_ms, end_ms]
    if kind is not None:
        where += " AND substr(kind, 1, ?) = ?"
        args += [len(kind), kind]
    rows = db.execute(
        "SELECT agent, ts, kind, severity, source, message, attributes FROM events"
        f" WHERE {where} ORDER BY ts DESC, id DESC LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [(r[0], _event_from_row(r[1:])) for r in rows]


def _event_from_row(row: tuple[int, str, int, str, str, str]) -> Event:
    ts, kind, severity, source, message, attributes = row
    attrs = tuple((str(k), str(v)) for k, v in json.loads(attributes))
    return Event(ts, kind, Severity(severity), source, message, attrs)


def delete_events_before(db: sqlite3.Connection, before_ms: int) -> int:
    return db.execute("DELETE FROM events WHERE ts < ?", (before_ms,)).rowcount


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (taken at once, so writers never deadlock on upgrade); rolled back on error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def expire(db: sqlite3.Connection, seen: SeenBatches, events_before_ms: int, ids_before_ms: int) -> None:
    """Deletes old events and forgets batch ids not extended since `ids_before_ms` (inside a transaction)."""
    delete_events_before(db, events_before_ms)
    seen.prune(ids_before_ms)
    seen.save(db)


class SharedLedger:
    """Batch ids and events in the hub's state database (PostgreSQL at scale; SQLite works too).

    Thread-safe (SQLAlchemy's pool); methods block, call them from the store's threads.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._dialect = postgresql if engine.dialect.name == "postgresql" else sqlite_dialect

    def seen(self, agent: str, boot: int, seq: int) -> bool:
        b = store_batches.c
        q = sa.select(sa.literal(1)).where(b.agent == agent, b.boot_epoch == boot, b.seq == seq)
        with self._engine.connect() as conn:
            return conn.execute(q).first() is not None

    def record(self, agent: str, boot: int, seq: int, events: Iterable[Event], now_ms: int) -> bool:
        """Records the batch id and, if it is new, its events, in one transaction.

        Returns:
            False when another process recorded this id first (its events are not added again).
        """
        stmt = (
            self._dialect.insert(store_batches)
            .values(agent=agent, boot_epoch=boot, seq=seq, stored_ms=now_ms)
            .on_conflict_do_nothing()
            .returning(sa.literal_column("1"))
        )
        rows = [
            {
                "agent": agent,
                "ts_ms": e.ts_ms,
                "kind": e.kind,
                "severity": e.severity.value,
                "source": e.source,
                "message": e.message,
                "attributes": [list(p) for p in e.attributes],
            }
            for e in events
        ]
        with self._engine.begin() as conn:
            if conn.execute(stmt).first() is None:
                return False
            if rows:
                conn.execute(sa.insert(store_events), rows)
        return True

    def events(
        self, start_ms: int, end_ms: int, limit: int, kind: str | None = None
    ) -> list[tuple[str, Event]]:
        """As `select_events`: newest first, the kind prefix filtered before the limit."""
        e = store_events.c
        q = sa.select(e.agent, e.ts_ms, e.kind, e.severity, e.source, e.message, e.attributes).where(
            e.ts_ms.between(start_ms, end_ms)
        )
        if kind is not None:
            q = q.where(sa.func.substr(e.kind, 1, len(kind)) == kind)
        q = q.order_by(e.ts_ms.desc(), e.seq.desc()).limit(limit)
        with self._engine.connect() as conn:
            rows = conn.execute(q).all()
        return [
            (
                r.agent,
                Event(
                    r.ts_ms,
                    r.kind,
                    Severity(r.severity),
                    r.source,
                    r.message,
                    tuple((str(k), str(v)) for k, v in r.attributes),
                ),
            )
            for r in rows
        ]

    def expire(self, events_before_ms: int, ids_before_ms: int) -> None:
        """Deletes events older than `events_before_ms` and batch ids stored before `ids_before_ms`."""
        with self._engine.begin() as conn:
            conn.execute(sa.delete(store_events).where(store_events.c.ts_ms < events_before_ms))
            conn.execute(sa.delete(store_batches).where(store_batches.c.stored_ms < ids_before_ms))
