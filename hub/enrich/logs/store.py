"""The hub's log store: raw lines with their template ids in the state database, searchable by text.

Full text is SQLite FTS5 (the embedded default) or PostgreSQL's tsvector (at scale), created by the
0008 migration. The text query language follows the backend: FTS5's query syntax on SQLite (words,
"phrases", prefix*, AND/OR/NOT, NEAR), PostgreSQL's `websearch_to_tsquery` (words, "phrases", or, -word)
there; a query FTS5 cannot parse is a `LogQueryError`, never a server error.

A batch's lines, its template counts and its batch id commit in one transaction, so a re-sent batch
adds nothing and the counts in `log_templates` are exact. Pages are read newest first by (ts, id) with
keyset cursors: lines stored while a client pages never shift what it has not read yet.

Thread-safe (SQLAlchemy's pool); methods block, call them from worker threads.
"""

from __future__ import annotations

import base64
import binascii
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect

from hub.db.sql import insert_ignore
from hub.enrich.logs.models import FTS_TABLE, TSV_COLUMN, log_batches, log_lines, log_templates
from hub.store.base import TIME_MAX_MS
from shared.model import LogRecord

MINUTE_MS = 60_000
MAX_ID = 2**63 - 1  # BIGINT
_FTS = sa.table(FTS_TABLE, sa.column("rowid"), sa.column(FTS_TABLE))
# A batch's lines enter the FTS5 index in one statement: a third of the cost of a trigger per line.
_FTS_FILL = sa.text(
    f"INSERT INTO {FTS_TABLE} (rowid, message) SELECT id, message FROM log_lines WHERE id > :after"
)
_CURSOR = re.compile(r"(\d{1,16}):(\d{1,19})")


class LogQueryError(ValueError):
    """Raised for a search the store cannot run as asked: unparsable text query or cursor."""


@dataclass(frozen=True, slots=True)
class MinedRecord:
    """A line to store with the template the miner gave it."""

    record: LogRecord
    template_id: str
    template: str


@dataclass(frozen=True, slots=True)
class LogLine:
    """One stored line as the API returns it; `severity` and `facility` are syslog numbers (0 emergency
    .. 7 debug)."""

    id: int
    ts_ms: int
    received_ms: int
    agent: str
    device: str
    host: str
    app: str
    facility: int
    severity: int
    template_id: str
    message: str


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: strictly after this (ts, id) in newest-first order."""

    ts_ms: int
    id: int

    def encode(self) -> str:
        """Opaque to clients: url-safe base64 of the position."""
        return base64.urlsafe_b64encode(f"{self.ts_ms}:{self.id}".encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Raises LogQueryError for anything `encode` did not make."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise LogQueryError("cursor is not one this hub returned") from None
        m = _CURSOR.fullmatch(raw)
        if m is None or int(m.group(1)) > TIME_MAX_MS or int(m.group(2)) > MAX_ID:
            raise LogQueryError("cursor is not one this hub returned")
        return cls(int(m.group(1)), int(m.group(2)))


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Lines with ts in [start_ms, end_ms] matching every filter given; `max_severity` keeps that
    severity and worse (syslog numbers: lower is worse)."""

    start_ms: int
    end_ms: int
    limit: int
    text: str | None = None
    agent: str | None = None
    device: str | None = None
    app: str | None = None
    max_severity: int | None = None
    template_id: str | None = None
    after: Cursor | None = None


@dataclass(frozen=True, slots=True)
class LogPage:
    lines: list[LogLine]
    next: Cursor | None


@dataclass(frozen=True, slots=True)
class TemplateStats:
    """A template as `/api/v1/logs/templates` lists it: its lines in the store and when they came."""

    template_id: str
    template: str
    first_seen_ms: int
    last_seen_ms: int
    count: int


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one prune pass deleted."""

    by_age: int
    by_rows: int


def check_fts5_query(text: str) -> None:
    """Parses `text` as an FTS5 query against an empty in-memory index with the store's one column.

    FTS5 reports a bad query only when it runs; running it here first tells a client's syntax error
    apart from a failing database. A connection per call: sqlite3 connections are not shared across
    threads, and an in-memory one costs microseconds.

    Raises:
        LogQueryError: FTS5 cannot parse it (the message says where).
    """
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE VIRTUAL TABLE q USING fts5(message)")
        db.execute("SELECT rowid FROM q WHERE q MATCH ?", (text,)).fetchall()
    except sqlite3.Error as exc:
        raise LogQueryError(f"q is not a valid search: {exc}") from None
    finally:
        db.close()


class LogStore:
    """Lines, templates and batch ids in the hub's state database (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._pg = engine.dialect.name == "postgresql"
        self._dialect = postgresql if self._pg else sqlite_dialect
        self._upsert = self._template_upsert()

    def write(self, agent: str, boot_epoch: int, seq: int, lines: Sequence[MinedRecord], now_ms: int) -> bool:
        """Stores a batch's lines and counts its templates, once per batch id, in one transaction.

        Returns:
            False when this batch id was stored before (nothing is added).

        Raises:
            sqlalchemy.exc.SQLAlchemyError: not stored (the caller does not acknowledge the batch).
        """
        rows = [_row(agent, m) for m in lines]
        with self._engine.begin() as db:
            marker = {"agent": agent, "boot_epoch": boot_epoch, "seq": seq, "stored_ms": now_ms}
            if not insert_ignore(db, log_batches, **marker):
                return False
            if rows:
                # The marker took SQLite's write lock: no other writer adds lines until this commits.
                before = None if self._pg else db.execute(sa.select(sa.func.max(log_lines.c.id))).scalar()
                db.execute(sa.insert(log_lines), rows)
                if not self._pg:
                    db.execute(_FTS_FILL, {"after": before or 0})
                self._count_templates(db, lines)
        return True

    def _count_templates(self, db: sa.Connection, lines: Sequence[MinedRecord]) -> None:
        seen: dict[str, _TemplateDelta] = {}
        for m in lines:
            ts = m.record.ts_ms
            t = seen.get(m.template_id)
            if t is None:
                seen[m.template_id] = _TemplateDelta(m.template, ts, ts, 1)
            else:
                t.template = m.template  # the miner's latest, most general text
                t.first, t.last, t.count = min(ts, t.first), max(ts, t.last), t.count + 1
        # Rows locked in one order by every writer: concurrent batches cannot deadlock on PostgreSQL.
        values = [
            {"template_id": k, "template": t.template, "first_seen_ms": t.first, "last_seen_ms": t.last,
             "n": t.count}
            for k, t in sorted(seen.items())
        ]  # fmt: skip
        db.execute(self._upsert, values)

    def _template_upsert(self) -> sa.Insert:
        """One template row's upsert, run for every row of a batch: compiled once (a VALUES list of a
        batch's templates was compiled anew for every batch)."""
        c = log_templates.c
        ins = self._dialect.insert(log_templates).values(
            template_id=sa.bindparam("template_id"),
            template=sa.bindparam("template"),
            first_seen_ms=sa.bindparam("first_seen_ms"),
            last_seen_ms=sa.bindparam("last_seen_ms"),
            count=sa.bindparam("n"),
        )
        new = ins.excluded
        least, greatest = (sa.func.least, sa.func.greatest) if self._pg else (sa.func.min, sa.func.max)
        return ins.on_conflict_do_update(
            index_elements=[c.template_id],
            set_={
                "template": new.template,
                "count": c.count + new["count"],
                "first_seen_ms": least(c.first_seen_ms, new.first_seen_ms),
                "last_seen_ms": greatest(c.last_seen_ms, new.last_seen_ms),
            },
        )

    def search(self, q: LogQuery) -> LogPage:
        """One page of matching lines, newest first, and the cursor of the next (None: last page).

        Raises:
            LogQueryError: the text query does not parse.
        """
        c = log_lines.c
        where = [c.ts_ms >= q.start_ms, c.ts_ms <= q.end_ms]
        for column, value in ((c.agent, q.agent), (c.device, q.device), (c.app, q.app)):
            if value is not None:
                where.append(column == value)
        if q.template_id is not None:
            where.append(c.template_id == q.template_id)
        if q.max_severity is not None:
            where.append(c.severity <= q.max_severity)
        if q.after is not None:
            # The plain bound lets the (ts, id) index narrow the scan; the row value makes it exact.
            where.append(c.ts_ms <= q.after.ts_ms)
            where.append(sa.tuple_(c.ts_ms, c.id) < sa.tuple_(q.after.ts_ms, q.after.id))
        if q.text is not None:
            where.append(self._matches(q.text))
        stmt = sa.select(log_lines).where(*where).order_by(c.ts_ms.desc(), c.id.desc()).limit(q.limit + 1)
        with self._engine.connect() as db:
            rows = db.execute(stmt).all()
        lines = [LogLine(**r._mapping) for r in rows[: q.limit]]
        more = len(rows) > q.limit
        return LogPage(lines, Cursor(lines[-1].ts_ms, lines[-1].id) if more else None)

    def _matches(self, text: str) -> sa.ColumnElement[bool]:
        if self._pg:
            tsv: sa.ColumnElement[object] = sa.literal_column(f"{log_lines.name}.{TSV_COLUMN}")
            return tsv.op("@@")(sa.func.websearch_to_tsquery("simple", text))
        check_fts5_query(text)
        hits = sa.select(_FTS.c.rowid).where(_FTS.c[FTS_TABLE].op("MATCH")(text))
        return log_lines.c.id.in_(hits)

    def templates(self, limit: int) -> list[TemplateStats]:
        """The most frequent templates, most lines first (ties: most recently seen first)."""
        c = log_templates.c
        stmt = sa.select(log_templates).order_by(c["count"].desc(), c.last_seen_ms.desc()).limit(limit)
        with self._engine.connect() as db:
            return [TemplateStats(**r._mapping) for r in db.execute(stmt)]

    def template_stats(self, template_ids: Sequence[str]) -> dict[str, TemplateStats]:
        """The rows of these templates by id (ids the store no longer has are absent)."""
        if not template_ids:
            return {}
        stmt = sa.select(log_templates).where(log_templates.c.template_id.in_(list(template_ids)))
        with self._engine.connect() as db:
            return {r.template_id: TemplateStats(**r._mapping) for r in db.execute(stmt)}

    def minute_counts(self, agent: str, minutes: Sequence[int]) -> list[tuple[str, str, int, int]]:
        """Lines of `agent` per (device, template, minute) for the given minute starts (ms).

        Returns:
            (device, template_id, minute start ms, lines) for every pair with lines in those minutes.
        """
        c = log_lines.c
        bucket = (c.ts_ms - c.ts_ms % MINUTE_MS).label("minute")
        ranges = [c.ts_ms.between(lo, hi - 1) for lo, hi in _runs(minutes)]
        stmt = (
            sa.select(c.device, c.template_id, bucket, sa.func.count())
            .where(c.agent == agent, sa.or_(*ranges))
            .group_by(c.device, c.template_id, bucket)
        )
        with self._engine.connect() as db:
            return [(r[0], r[1], int(r[2]), int(r[3])) for r in db.execute(stmt)]

    def prune(self, before_ms: int, max_rows: int, chunk: int, batches_before_ms: int) -> Pruned:
        """Deletes lines older than `before_ms`, then the oldest stored beyond `max_rows`, `chunk` rows
        per transaction (ingest waits at most one chunk); also templates no kept line can have (last
        seen before `before_ms`) and batch ids stored before `batches_before_ms`."""
        c = log_lines.c
        by_age = self._delete_chunks(sa.select(c.id).where(c.ts_ms < before_ms), chunk)
        with self._engine.connect() as db:
            cut = db.execute(sa.select(c.id).order_by(c.id.desc()).offset(max_rows).limit(1)).scalar()
        by_rows = 0 if cut is None else self._delete_chunks(sa.select(c.id).where(c.id <= cut), chunk)
        with self._engine.begin() as db:
            db.execute(sa.delete(log_templates).where(log_templates.c.last_seen_ms < before_ms))
            db.execute(sa.delete(log_batches).where(log_batches.c.stored_ms < batches_before_ms))
        return Pruned(by_age, by_rows)

    def _delete_chunks(self, ids: sa.Select[tuple[int]], chunk: int) -> int:
        removed = 0
        while True:
            with self._engine.begin() as db:
                n = db.execute(
                    sa.delete(log_lines).where(log_lines.c.id.in_(ids.order_by(log_lines.c.id).limit(chunk)))
                ).rowcount
            removed += n
            if n < chunk:
                return removed


@dataclass(slots=True)
class _TemplateDelta:
    """What one batch adds to a template's row."""

    template: str
    first: int
    last: int
    count: int


def _row(agent: str, m: MinedRecord) -> dict[str, object]:
    r = m.record
    return {
        "ts_ms": r.ts_ms,
        "received_ms": r.received_ms,
        "agent": agent,
        "device": r.device,
        "host": r.host,
        "app": r.app,
        "facility": r.facility,
        "severity": r.severity,
        "template_id": m.template_id,
        "message": r.message,
    }


def _runs(minutes: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted minute starts as [lo, hi) ranges of consecutive minutes."""
    runs: list[list[int]] = []
    for m in sorted(set(minutes)):
        if runs and runs[-1][1] == m:
            runs[-1][1] = m + MINUTE_MS
        else:
            runs.append([m, m + MINUTE_MS])
    return [(lo, hi) for lo, hi in runs]
