"""The default store: a SQLite file under the hub's data dir, no external server needed.

Durability: each batch is written in one transaction together with its batch id, with
`synchronous=FULL` in WAL mode, so once `write` returns the batch survives a SIGKILL and a re-sent
batch is recognised as a duplicate atomically.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np

from hub.store.base import (
    AGENT_LABEL,
    Matcher,
    RangeQuery,
    SeriesResult,
    WriteResult,
    aggregate,
    effective_step,
)
from shared.model import Batch, Event, SeriesKey, Severity

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, metric TEXT NOT NULL, labels TEXT NOT NULL,
  UNIQUE (metric, labels));
CREATE TABLE IF NOT EXISTS points (series_id INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
  PRIMARY KEY (series_id, ts)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batches (agent TEXT NOT NULL, boot_epoch INTEGER NOT NULL, seq INTEGER NOT NULL,
  stored_ms INTEGER NOT NULL, PRIMARY KEY (agent, boot_epoch, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, agent TEXT NOT NULL, ts INTEGER NOT NULL,
  kind TEXT NOT NULL, severity INTEGER NOT NULL, source TEXT NOT NULL, message TEXT NOT NULL,
  attributes TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
"""

_SEP = "\x1f"


def _encode_labels(labels: tuple[tuple[str, str], ...]) -> str:
    return _SEP.join(f"{k}={v}" for k, v in labels)


def _decode_labels(text: str) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    pairs = (part.split("=", 1) for part in text.split(_SEP))
    return tuple((k, v) for k, v in pairs)


class EmbeddedStore:
    """SQLite-backed store; one connection guarded by a lock (SQLite serialises writers anyway)."""

    def __init__(self, path: Path, retention_ms: int = 30 * 24 * 3600 * 1000) -> None:
        self._path = path
        self._retention_ms = retention_ms
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._series_ids: dict[SeriesKey, int] = {}

    def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        for sid, metric, labels in db.execute("SELECT id, metric, labels FROM series"):
            self._series_ids[SeriesKey(metric, _decode_labels(labels))] = sid
        self._db = db

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    def write(self, agent: str, batch: Batch) -> WriteResult:
        db = self._conn()
        with self._lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                cur = db.execute(
                    "INSERT OR IGNORE INTO batches VALUES (?, ?, ?, strftime('%s','now') * 1000)",
                    (agent, batch.boot_epoch, batch.seq),
                )
                if cur.rowcount == 0:
                    db.execute("ROLLBACK")
                    return WriteResult(0, duplicate=True)
                points = 0
                for s in batch.series:
                    sid = self._series_id(db, _with_agent(s.key, agent))
                    db.executemany(
                        "INSERT OR REPLACE INTO points VALUES (?, ?, ?)",
                        zip([sid] * len(s), s.timestamps_ms.tolist(), s.values.tolist(), strict=True),
                    )
                    points += len(s)
                db.executemany(
                    "INSERT INTO events (agent, ts, kind, severity, source, message, attributes)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (agent, e.ts_ms, e.kind, e.severity.value, e.source, e.message,
                         _encode_labels(e.attributes))
                        for e in batch.events
                    ],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return WriteResult(points)

    def _series_id(self, db: sqlite3.Connection, key: SeriesKey) -> int:
        sid = self._series_ids.get(key)
        if sid is None:
            labels = _encode_labels(key.labels)
            db.execute("INSERT OR IGNORE INTO series (metric, labels) VALUES (?, ?)", (key.metric, labels))
            row = db.execute(
                "SELECT id FROM series WHERE metric=? AND labels=?", (key.metric, labels)
            ).fetchone()
            sid = int(row[0])
            self._series_ids[key] = sid
        return sid

    def series(self, metric: str | None = None, matchers: tuple[Matcher, ...] = ()) -> list[SeriesKey]:
        with self._lock:
            keys = list(self._series_ids)
        hits = (k for k in keys if metric is None or k.metric == metric)
        return sorted((k for k in hits if all(m.matches(k) for m in matchers)), key=str)

    def query(self, q: RangeQuery) -> list[SeriesResult]:
        db = self._conn()
        step = effective_step(q)
        out: list[SeriesResult] = []
        for key in self.series(q.metric, q.matchers):
            with self._lock:
                rows = db.execute(
                    "SELECT ts, value FROM points WHERE series_id=? AND ts BETWEEN ? AND ? ORDER BY ts",
                    (self._series_ids[key], q.start_ms, q.end_ms),
                ).fetchall()
            ts = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vals = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
            if step:
                ts, vals = aggregate(ts, vals, step, q.agg)
            out.append(SeriesResult(key, ts, vals))
        return out

    def events(self, start_ms: int, end_ms: int, limit: int = 1000) -> list[tuple[str, Event]]:
        db = self._conn()
        with self._lock:
            rows = db.execute(
                "SELECT agent, ts, kind, severity, source, message, attributes FROM events"
                " WHERE ts BETWEEN ? AND ? ORDER BY ts DESC LIMIT ?",
                (start_ms, end_ms, limit),
            ).fetchall()
        return [
            (r[0], Event(r[1], r[2], Severity(r[3]), r[4], r[5], _decode_labels(r[6]))) for r in rows
        ]

    def apply_retention(self, now_ms: int) -> int:
        db = self._conn()
        with self._lock:
            cur = db.execute("DELETE FROM points WHERE ts < ?", (now_ms - self._retention_ms,))
            return cur.rowcount

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _with_agent(key: SeriesKey, agent: str) -> SeriesKey:
    """Adds the certificate identity as the `agent` label, replacing any label of that name in the payload."""
    labels = dict(key.labels)
    labels[AGENT_LABEL] = agent
    return SeriesKey.of(key.metric, labels)
