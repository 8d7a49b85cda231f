"""The default store: compressed per-series chunks in SQLite, an in-memory head made durable by a journal.

Write path: a batch becomes columns (a series id per point), is appended to the ingest journal, added
to the head, and acknowledged once an fdatasync covers it (concurrent writers share one: group commit).
Every `head_max_points` points or `flush_interval` the head is sealed: the journal file is synced and
set aside (`Journal.seal`), a new head and journal file take the writes, and a background thread
flushes the sealed head in one SQLite transaction (WAL, synchronous=FULL): each series' raw chunks are
merged and re-encoded, completed blocks are rolled up, and the batch ids, events and the journal
position are recorded; only then is the sealed file deleted. So a flush of millions of points no
longer stops ingest; writers wait only when a second head fills up before the first is flushed.
Reads see the sealed head and the new one. On open the journal (a sealed file first) is replayed past
the recorded position, so a SIGKILL at any moment loses nothing acknowledged and duplicates nothing.

Layout: one row per (series, resolution, block). Raw blocks span 2 h (720 points at 10 s), 5 min rollups
1 day, 1 h rollups 30 days; each block size is a multiple of the next finer one, so a raw block always
holds whole rollup buckets. A raw block is rolled up once the series has moved past it (in groups of
`ROLLUP_LAG_BLOCKS`); until then queries roll it up from raw. Retention deletes whole blocks per
resolution, rolling up first whatever raw block would otherwise be lost.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zstandard

from hub.matchers import Matcher, MatchOp
from hub.store import ledger
from hub.store.base import (
    AGENT_LABEL,
    Agg,
    RangeQuery,
    SeriesColumns,
    SeriesResult,
    WriteResult,
    aggregate_series,
    effective_step,
    millis,
)
from hub.store.config import EmbeddedStoreConfig
from hub.store.embedded import chunk
from hub.store.embedded.chunk_cache import DecodedChunks
from hub.store.embedded.head import Head, merge_newer
from hub.store.embedded.journal import Journal
from hub.store.embedded.record import IngestRecord
from hub.store.embedded.rollup import RES_1H, RES_5M, ROLLUP_RESOLUTIONS, Rollup
from shared.clock import Clock, SystemClock
from shared.model import Batch, Event, F64Array, I64Array, SeriesKey, SeriesPoints

log = logging.getLogger(__name__)
FLUSH_RETRY_MS = 60_000

RAW = 0
RAW_BLOCK_MS = 2 * 3600 * 1000
BLOCK_MS = {RAW: RAW_BLOCK_MS, RES_5M: 24 * 3600 * 1000, RES_1H: 30 * 24 * 3600 * 1000}
# Completed raw blocks wait for rollup until this many have gathered (reads roll them up from raw).
ROLLUP_LAG_BLOCKS = 6
_METRIC_POSTING = "__name__"

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, metric TEXT NOT NULL, labels TEXT NOT NULL,
  rolled_until INTEGER, UNIQUE (metric, labels));
CREATE TABLE IF NOT EXISTS chunks (series_id INTEGER NOT NULL, res INTEGER NOT NULL,
  block_start INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL, UNIQUE (series_id, res, block_start));
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""
    + ledger.SCHEMA
)
_UPSERT_CHUNK = (
    "INSERT INTO chunks (series_id, res, block_start, n, data) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (series_id, res, block_start) DO UPDATE SET n = excluded.n, data = excluded.data"
)


@dataclass
class EmbeddedStats:
    """Counters for the hub's metrics endpoint; rejections are counted here and logged once."""

    flushes: int = 0
    flush_failures: int = 0
    # Writes that waited for a background flush (the next head filled before the sealed one was written).
    flush_waits: int = 0
    rejected_series: int = 0
    points_below_retention: int = 0
    journal_records_skipped: int = 0


@dataclass(eq=False, slots=True)
class _Sealed:
    """A head set aside for flushing, with what its flush records: the series first seen in it, the
    batch ids changed since the previous flush, and the journal position it covers."""

    head: Head
    lsn: int
    series: list[tuple[int, SeriesKey]]
    seen: ledger.SeenRows


class EmbeddedStore:
    """Implements `Store`. Thread-safe: one lock serialises writes and the in-memory state reads copy;
    a second one, always taken first, serialises use of the writing SQLite connection (a background
    flush's transaction, events, retention, close)."""

    def __init__(self, path: Path, config: EmbeddedStoreConfig, clock: Clock | None = None) -> None:
        """
        Args:
            path: directory holding `store.sqlite` and `ingest.journal`.
            config: retention, dedup window and flush policy.
            clock: wall time for dedup stamps and the flush interval (tests inject a FakeClock).
        """
        self._dir = path
        self._cfg = config
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._db_lock = threading.Lock()
        self._flushed = threading.Condition(self._lock)  # a background flush ended (writers may wait)
        self._sealed: _Sealed | None = None
        self._flusher: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        self._journal = Journal(path / "ingest.journal")
        self._head = Head()
        self._seen = ledger.SeenBatches()
        self._ids: dict[SeriesKey, int] = {}
        self._keys: dict[int, SeriesKey] = {}
        self._postings: dict[tuple[str, str], set[int]] = {}
        # Per agent: (metric, labels as sent) -> series id, so the hot path skips building keys.
        self._agent_keys: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], int]] = {}
        self._unsaved_series: list[int] = []
        # Per series: every raw block starting before this has its rollups stored; later blocks
        # (the one still filling, usually) are rolled up from raw when read.
        self._rolled_until: dict[int, int] = {}
        self._next_sid = 1
        self._raw_horizon_ms = -(2**62)
        self._last_flush_ms = 0
        self._flush_retry_at_ms = 0
        self._broken: OSError | None = None
        # Per thread: python-zstandard contexts must never be used by two threads at once (queries decode
        # in several threads while a writer flushes).
        self._zstd = _ZstdContexts()
        self._decoded = DecodedChunks()
        self._read_conns: dict[int, sqlite3.Connection] = {}
        self.stats = EmbeddedStats()

    # -- lifecycle --------------------------------------------------------------------------------

    def open(self) -> None:
        """Opens (creating if needed) the database and replays the journal into the head."""
        with self._db_lock, self._lock:
            self._dir.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._dir / "store.sqlite", check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            self._db = db
            for sid, metric, labels, rolled in db.execute(
                "SELECT id, metric, labels, rolled_until FROM series"
            ):
                self._index(sid, SeriesKey(metric, tuple((str(k), str(v)) for k, v in json.loads(labels))))
                if rolled is not None:
                    self._rolled_until[sid] = rolled
            self._next_sid = max(self._keys, default=0) + 1
            meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
            self._raw_horizon_ms = int(meta.get("raw_horizon_ms", self._raw_horizon_ms))
            self._seen.load(db)
            replayed = 0
            for _, payload in self._journal.open(int(meta.get("flushed_lsn", 0))):
                try:
                    record = IngestRecord.decode(payload)
                except ValueError as exc:
                    self.stats.journal_records_skipped += 1
                    log.error("journal record skipped (undecodable): %s", exc)
                    continue
                self._apply(record)
                replayed += 1
            self.stats.journal_records_skipped += self._journal.skipped_records  # damaged, not replayable
            self._last_flush_ms = self._clock.now_ms()
            if self._journal.has_sealed:  # a crash during a flush: its records are in the head again
                self._flush()
            if replayed:
                log.info(
                    "store %s: replayed %d journal records (%d points)",
                    self._dir,
                    replayed,
                    self._head.points,
                )

    def close(self) -> None:
        """Waits for a background flush, flushes the head and closes; safe without open and safe twice."""
        flusher = self._flusher
        if flusher is not None:
            flusher.join()
        with self._db_lock, self._lock:
            if self._db is None:
                return
            self._flush()
            self._journal.close()
            for reader in self._read_conns.values():
                reader.close()
            self._read_conns.clear()
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = None

    # -- writes -----------------------------------------------------------------------------------

    def write(self, agent: str, batch: Batch) -> WriteResult:
        """Stores a batch durably (journal fdatasync) before returning; a seen batch id is a no-op.

        The fdatasync runs outside the store lock, so concurrent writers share one (group commit).

        Raises:
            OSError: when the journal cannot be written or synced (do not acknowledge). After a failed
                sync the store refuses further writes: what the kernel dropped is unknowable.
        """
        return self._write(agent, batch.boot_epoch, batch.seq, batch.series, batch.events)

    def write_columns(self, agent: str, boot_epoch: int, seq: int, columns: SeriesColumns) -> WriteResult:
        """`write` of points given as columns (a push): the same journal record, durability and id."""
        return self._write(agent, boot_epoch, seq, columns, ())

    def _write(
        self,
        agent: str,
        boot_epoch: int,
        seq: int,
        points: tuple[SeriesPoints, ...] | SeriesColumns,
        events: tuple[Event, ...],
    ) -> WriteResult:
        with self._lock:
            self._conn()
            if self._flushing() and self._head.points >= self._cfg.head_max_points:
                if self.stats.flush_waits == 0:
                    log.warning("store: a write waits for a background flush (further waits only counted)")
                self.stats.flush_waits += 1
                while self._flushing() and self._head.points >= self._cfg.head_max_points:
                    self._flushed.wait(1.0)  # the next head is full too: wait for the flush (bounded memory)
            if self._broken is not None:
                raise OSError(f"store journal failed earlier: {self._broken}")
            if (agent, boot_epoch, seq) in self._seen:
                # The first copy may still be on its way to disk: wait for it like its writer does.
                accepted, duplicate, lsn = 0, True, self._journal.last_lsn
            else:
                if not isinstance(points, SeriesColumns):
                    points = self._columns(agent, f"{boot_epoch}-{seq}", points)
                record = self._record(agent, boot_epoch, seq, points, events)
                lsn = self._journal.append(record.encode())
                self._apply(record)
                accepted, duplicate = int(record.ts.shape[0]), False
                self._maybe_seal()
        try:
            self._journal.sync(lsn)
        except OSError as exc:
            self._broken = exc
            log.critical("store journal fdatasync failed; refusing writes: %s", exc)
            raise
        return WriteResult(accepted, duplicate)

    def flush(self) -> None:
        """Moves every head into chunks now, before returning (tests, and before shutdown)."""
        with self._db_lock, self._lock:
            self._conn()
            self._flush()

    def _columns(self, agent: str, batch_id: str, series: tuple[SeriesPoints, ...]) -> SeriesColumns:
        """An agent batch's series as columns; malformed ones (never from the codec) dropped and counted."""
        try:
            return SeriesColumns.of_series(series)
        except (TypeError, ValueError):  # 0-d arrays have no len(); mixed dimensions do not concatenate
            return SeriesColumns.of_series([s for s in series if self._valid(agent, batch_id, s)])

    def _record(
        self, agent: str, boot_epoch: int, seq: int, columns: SeriesColumns, events: tuple[Event, ...]
    ) -> IngestRecord:
        """The points with series ids; ids for new series are reserved, not yet indexed.

        Per series this is one dict lookup on a plain tuple (cheaper to hash than a SeriesKey);
        everything per point is an array operation.
        """
        keys, ts, vals = columns.keys, columns.timestamps_ms, columns.values
        known = self._agent_keys.setdefault(agent, {})
        sids = [known.get((k.metric, k.labels), 0) for k in keys]
        new: dict[SeriesKey, int] = {}
        if 0 in sids:
            for i, key in enumerate(keys):
                if sids[i] == 0:
                    full = _with_agent(key, agent)
                    sid = self._ids.get(full) or new.get(full)
                    if sid is None:
                        sid = new[full] = self._next_sid + len(new)
                    else:
                        known[(key.metric, key.labels)] = sid
                    sids[i] = sid
        point_sids = np.repeat(np.asarray(sids, dtype=np.int32), columns.counts)
        if ts.shape[0] and ts.min() < self._raw_horizon_ms:
            # Raw blocks before the horizon were deleted; merging into them would corrupt rollups.
            keep = ts >= self._raw_horizon_ms
            self.stats.points_below_retention += int(ts.shape[0] - np.count_nonzero(keep))
            point_sids, ts, vals = point_sids[keep], ts[keep], vals[keep]
        new_series = tuple((sid, key) for key, sid in new.items())
        return IngestRecord(agent, boot_epoch, seq, new_series, point_sids, ts, vals, events)

    def _valid(self, agent: str, batch_id: str, s: SeriesPoints) -> bool:
        if s.timestamps_ms.ndim == 1 and s.timestamps_ms.shape == s.values.shape:
            return True
        self._reject(f"series {s.key} of batch {agent}/{batch_id}: columns differ in length")
        return False

    def _apply(self, record: IngestRecord) -> None:
        """Adds a record to the index, head and seen ids; shared by `write` and journal replay."""
        for sid, key in record.new_series:
            self._index(sid, key)
            self._unsaved_series.append(sid)
            self._next_sid = max(self._next_sid, sid + 1)
        self._head.append(record.sids, record.ts, record.vals)
        self._head.events.extend((record.agent, e) for e in record.events)
        self._seen.add(record.agent, record.boot_epoch, record.seq, self._clock.now_ms())

    def _reject(self, why: str) -> None:
        if self.stats.rejected_series == 0:
            log.warning("rejected %s (further rejections are only counted)", why)
        self.stats.rejected_series += 1

    def _index(self, sid: int, key: SeriesKey) -> None:
        self._ids[key] = sid
        self._keys[sid] = key
        self._postings.setdefault((_METRIC_POSTING, key.metric), set()).add(sid)
        for pair in key.labels:
            self._postings.setdefault(pair, set()).add(sid)

    # -- flush ------------------------------------------------------------------------------------

    def _flushing(self) -> bool:
        """A sealed head's flush is running (not failed and waiting for its retry)."""
        return self._sealed is not None and self._flusher is not None and self._flusher.is_alive()

    def _maybe_seal(self) -> None:
        """From the write path (store lock held): seals the head when it is due and starts its flush in
        the background; retries a sealed head whose flush failed once the retry time has come."""
        now = self._clock.now_ms()
        if now < self._flush_retry_at_ms or self._flushing():
            return
        if self._sealed is None:
            due = self._head.points >= self._cfg.head_max_points or now - self._last_flush_ms >= millis(
                self._cfg.flush_interval
            )
            if not due:
                return
            sealed = self._current()
            try:
                self._journal.seal()
            except OSError as exc:
                self._seen.restore_dirty(sealed.seen)
                self._broken = exc
                log.critical("store journal could not be sealed; refusing writes: %s", exc)
                raise
            self._sealed, self._head, self._unsaved_series = sealed, Head(), []
        self._flusher = threading.Thread(
            target=self._flush_sealed, args=(self._sealed,), name="store-flush", daemon=True
        )
        self._flusher.start()

    def _flush_sealed(self, sealed: _Sealed) -> None:
        """The background flush of a sealed head: its transaction runs without the store lock (writes and
        reads go on), under the connection lock; a failure keeps it sealed (still journaled) for a retry
        a minute later."""
        with self._db_lock:  # `_sealed` changes only under this lock once set, so it is read safely here
            db = self._db
            if db is None or self._sealed is not sealed:  # closed, or flushed by `flush()` meanwhile
                return
            try:
                rolled = self._commit(db, sealed)
            except sqlite3.Error as exc:
                with self._lock:
                    self._flush_failed(exc)
                return
            # No seal can replace the file meanwhile: a new seal waits for `_sealed` to be cleared. Should
            # the delete fail, its records are all flushed: they replay as no-ops, the next seal replaces it.
            try:
                self._journal.drop_sealed()
            except OSError as exc:
                log.error("store: sealed journal not deleted: %s", exc)
            with self._lock:
                self._rolled_until.update(rolled)
                self._sealed = None
                self._flushed_now()
                self._flushed.notify_all()

    def _flush(self) -> None:
        """Flushes every head now (the caller holds both locks): the sealed one, then the current one."""
        db = self._conn()
        if self._sealed is not None:
            self._rolled_until.update(self._commit(db, self._sealed))
            self._sealed = None  # a background flush of it that was still waiting now finds nothing to do
        current = self._current()
        try:
            self._rolled_until.update(self._commit(db, current))
        except BaseException:
            self._seen.restore_dirty(current.seen)
            raise
        self._unsaved_series.clear()
        self._head.clear()
        self._journal.reset()
        self._journal.drop_sealed()
        self._flushed_now()

    def _current(self) -> _Sealed:
        """The current head with what its flush records (the batch ids changed since the last flush are
        taken: give them back with `restore_dirty` if that flush is not committed)."""
        return _Sealed(
            self._head,
            self._journal.last_lsn,
            [(sid, self._keys[sid]) for sid in self._unsaved_series],
            self._seen.take_dirty(),
        )

    def _flush_failed(self, exc: sqlite3.Error) -> None:
        if self.stats.flush_failures == 0:
            log.error("store flush failed, head kept in memory and journal: %s", exc)
        self.stats.flush_failures += 1
        # Not on every write (a full disk would make each one pay for a failing flush): a minute later.
        self._flush_retry_at_ms = self._clock.now_ms() + FLUSH_RETRY_MS

    def _flushed_now(self) -> None:
        self._last_flush_ms = self._clock.now_ms()
        self.stats.flushes += 1

    def _commit(self, db: sqlite3.Connection, sealed: _Sealed) -> dict[int, int]:
        """Writes a head in one transaction: new series, chunks and rollups, events, batch ids and the
        journal position it covers. Changes no in-memory state; returns each series' new `rolled_until`.
        """
        rolled: dict[int, int] = {}
        with ledger.transaction(db):
            db.executemany(
                "INSERT INTO series (id, metric, labels) VALUES (?, ?, ?)",
                [(sid, key.metric, json.dumps(key.labels)) for sid, key in sealed.series],
            )
            for sid, ts, vals in sealed.head.items():
                rolled[sid] = self._flush_series(db, sid, ts, vals)
            db.executemany(
                "UPDATE series SET rolled_until=? WHERE id=?", [(r, sid) for sid, r in rolled.items()]
            )
            ledger.insert_events(db, sealed.head.events)
            ledger.save_seen(db, sealed.seen)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('flushed_lsn', ?)", (sealed.lsn,))
        return rolled

    def _flush_series(self, db: sqlite3.Connection, sid: int, ts: I64Array, vals: F64Array) -> int:
        """Merges one series' head points into its raw chunks and rolls up blocks that completed.

        A block is complete once the series has points in a later block. Completed blocks are rolled
        up in groups of `ROLLUP_LAG_BLOCKS` (a rollup chunk rewrite costs about the same for one block
        as for six); late points into a block already rolled up roll it up again at once.
        Returns the series' new `rolled_until`.
        """
        blocks = (ts // RAW_BLOCK_MS) * RAW_BLOCK_MS
        cuts = np.flatnonzero(blocks[1:] != blocks[:-1]) + 1
        first, last = int(blocks[0]), int(blocks[-1])
        rolled = self._rolled_until.get(sid, first)
        newest = max(last, rolled)
        catch_up = newest - rolled >= ROLLUP_LAG_BLOCKS * RAW_BLOCK_MS
        raw = self._load_raw(db, sid, min(first, rolled) if catch_up else first, last)
        rows = []
        touched = []
        bounds = [0, *cuts.tolist(), ts.shape[0]]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            part_ts, part_vals = ts[lo:hi], vals[lo:hi]
            block = int(part_ts[0] // RAW_BLOCK_MS * RAW_BLOCK_MS)
            old = raw.get(block)
            if old is not None:
                part_ts, part_vals = merge_newer(old[0], old[1], part_ts, part_vals)
            raw[block] = (part_ts, part_vals)
            touched.append(block)
            rows.append(
                (
                    sid,
                    RAW,
                    block,
                    int(part_ts.shape[0]),
                    chunk.encode(part_ts, [part_vals], self._zstd.compressor),
                )
            )
        due = {b for b in touched if b < rolled}
        if catch_up:
            due |= {b for b in raw if rolled <= b < newest}
        rows.extend(self._rollup_rows(db, sid, [raw[b] for b in sorted(due)]))
        db.executemany(_UPSERT_CHUNK, rows)
        return newest if catch_up else rolled

    def _rollup_rows(
        self, db: sqlite3.Connection, sid: int, blocks: list[tuple[I64Array, F64Array]]
    ) -> list[tuple[int, int, int, int, bytes]]:
        """Rollup chunk rows at every resolution with the buckets of these whole raw blocks replaced."""
        if not blocks:
            return []
        ts = np.concatenate([b[0] for b in blocks])
        vals = np.concatenate([b[1] for b in blocks])
        raw_blocks = np.unique(ts // RAW_BLOCK_MS)
        rows = []
        for res in ROLLUP_RESOLUTIONS:
            rows.extend(self._rollup_chunk_rows(db, sid, res, Rollup.of_points(ts, vals, res), raw_blocks))
        return rows

    def _rollup_chunk_rows(
        self, db: sqlite3.Connection, sid: int, res: int, fresh: Rollup, raw_blocks: I64Array
    ) -> list[tuple[int, int, int, int, bytes]]:
        """New rollup chunk rows: stored buckets of the flushed raw blocks replaced by `fresh` ones."""
        size = BLOCK_MS[res]
        owner = (fresh.ts // size) * size
        cuts = np.flatnonzero(owner[1:] != owner[:-1]) + 1
        starts = [int(owner[0]), *(int(owner[c]) for c in cuts)]
        stored = self._load_rollups(db, sid, res, starts[0], starts[-1])
        rows = []
        bounds = [0, *cuts.tolist(), len(fresh)]
        for start, lo, hi in zip(starts, bounds[:-1], bounds[1:], strict=True):
            piece = Rollup.from_columns(fresh.ts[lo:hi], [c[lo:hi] for c in fresh.columns()])
            old = stored.get(start)
            if old is not None:
                piece = old.replace_blocks(piece, raw_blocks, RAW_BLOCK_MS)
            data = chunk.encode(piece.ts, piece.columns(), self._zstd.compressor)
            rows.append((sid, res, start, len(piece), data))
        return rows

    def _chunk_rows(self, db: sqlite3.Connection, sid: int, res: int, first: int, last: int) -> list[bytes]:
        rows = db.execute(
            "SELECT data FROM chunks WHERE series_id=? AND res=? AND block_start BETWEEN ? AND ?"
            " ORDER BY block_start",
            (sid, res, first, last),
        ).fetchall()
        return [r[0] for r in rows]

    def _load_raw(
        self, db: sqlite3.Connection, sid: int, first: int, last: int
    ) -> dict[int, tuple[I64Array, F64Array]]:
        out: dict[int, tuple[I64Array, F64Array]] = {}
        for data in self._chunk_rows(db, sid, RAW, first, last):
            ts, cols = chunk.decode(data, self._zstd.decompressor)
            out[int(ts[0] // RAW_BLOCK_MS * RAW_BLOCK_MS)] = (ts, cols[0])
        return out

    def _load_rollups(
        self, db: sqlite3.Connection, sid: int, res: int, first: int, last: int
    ) -> dict[int, Rollup]:
        out: dict[int, Rollup] = {}
        size = BLOCK_MS[res]
        for data in self._chunk_rows(db, sid, res, first, last):
            ts, cols = chunk.decode(data, self._zstd.decompressor)
            out[int(ts[0] // size * size)] = Rollup.from_columns(ts, cols)
        return out

    # -- reads ------------------------------------------------------------------------------------
    #
    # Reads hold the store lock only to copy what they need from memory (matching series, their head
    # points, how far each is rolled up); SQLite reads and chunk decoding run outside it, on a
    # connection of the reading thread (WAL readers never block the writer), so queries cannot stall
    # ingest. Racing a flush is harmless: points then come from both the head copy and the chunks,
    # and `merge_newer` keeps one per timestamp; blocks rolled up meanwhile are rolled up from raw again.

    def series(self, metric: str | None = None, matchers: tuple[Matcher, ...] = ()) -> list[SeriesKey]:
        return [t.key for t in self._targets(metric, matchers, with_head=False)]

    def query(self, q: RangeQuery) -> list[SeriesResult]:
        """Reads raw points, or step buckets from the coarsest resolution whose width divides the step.

        With `max_points`, a range wide enough for rollups is first read at that resolution to find
        where data is; the step is fitted to that extent (raw points if they fit). Rollup-answered
        queries widen the range edges to whole rollup buckets.
        """
        targets = self._targets(q.metric, q.matchers, with_head=True)
        if not targets:
            return []
        db = self._reader()
        with _read_transaction(db):
            start, end = q.start_ms, q.end_ms
            step = effective_step(q)
            res = _resolution(step)
            probe: list[Rollup] | None = None
            probe_res = res
            # Find where the data is, coarse to fine (1 h, then 5 min rollups), until the step that fits
            # the extent found is answered by the resolution that found it, or needs raw points. Each
            # pass moves to a finer resolution: a narrower extent never needs a wider step.
            for _ in ROLLUP_RESOLUTIONS:
                if not q.max_points or step is None or res == RAW:
                    break
                probe, probe_res = [self._rollup_points(db, t, res, start, end) for t in targets], res
                extent = _rollup_extent(probe, res, start, end)
                if extent is None:
                    return []
                lo, hi, most = extent
                step = effective_step(q, lo, hi, most)
                if step is not None and _resolution(step) == res:
                    return self._results(targets, [r.coarsen(step) for r in probe], q)
                start, end, res = lo, hi, _resolution(step)
            if step is not None and res != RAW:
                rolled = [self._rollup_points(db, t, res, start, end).coarsen(step) for t in targets]
                return self._results(targets, rolled, q)
            raw = [self._raw_points(db, t, start, end) for t in targets]
        if q.max_points:
            present = [ts for ts, _ in raw if ts.shape[0]]
            if not present and probe is not None:
                # Raw data already deleted by retention: answer from the rollups found above.
                coarse = -(-(step or 1) // probe_res) * probe_res
                return self._results(targets, [r.coarsen(coarse) for r in probe], q)
            if not present:
                return []
            first, last = min(int(ts[0]) for ts in present), max(int(ts[-1]) for ts in present)
            step = effective_step(q, first, last, max(ts.shape[0] for ts in present))
        if step:
            raw = _aggregate_each(raw, step, q.agg)
        return [
            SeriesResult(t.key, ts, vals) for t, (ts, vals) in zip(targets, raw, strict=True) if ts.shape[0]
        ]

    def _results(self, targets: list[_Target], rolled: list[Rollup], q: RangeQuery) -> list[SeriesResult]:
        return [
            SeriesResult(t.key, r.ts, r.select(q.agg)) for t, r in zip(targets, rolled, strict=True) if len(r)
        ]

    def _targets(
        self, metric: str | None, matchers: tuple[Matcher, ...], *, with_head: bool
    ) -> list[_Target]:
        """Matching series with what a read needs from memory, copied under the lock; sorted by key text.

        Candidates come from the postings for the name and `=` matchers (under the lock); the other
        matchers (regexes, compiled once in `Matcher`) are evaluated on the copied keys outside it.
        """
        postings: list[set[int]] = []
        rest = []
        with self._lock:
            if metric is not None:
                postings.append(self._postings.get((_METRIC_POSTING, metric), set()))
            for m in matchers:
                if m.op is MatchOp.EQ and m.value:
                    postings.append(self._postings.get((m.name, m.value), set()))
                else:
                    rest.append(m)
            if postings:
                postings.sort(key=len)
                sids: set[int] | list[int] = postings[0].intersection(*postings[1:])
            else:
                sids = list(self._keys)
            candidates = [(sid, self._keys[sid]) for sid in sids]
        hits = sorted(
            ((sid, key) for sid, key in candidates if all(m.matches(key) for m in rest)),
            key=lambda h: str(h[1]),
        )
        if not with_head:
            return [_Target(sid, key, None, None) for sid, key in hits]
        with self._lock:  # only list copies under the lock; head lookups run on the snapshot
            head = self._head.view()
            if self._sealed is not None:
                head = self._sealed.head.view().then(head)
            rolled = [self._rolled_until.get(sid) for sid, _ in hits]
        found = head.get_many([sid for sid, _ in hits])
        return [_Target(sid, key, found.get(sid), r) for (sid, key), r in zip(hits, rolled, strict=True)]

    def _reader(self) -> sqlite3.Connection:
        """This thread's read-only connection to the database (opened on first use, closed by `close`)."""
        ident = threading.get_ident()
        with self._lock:
            self._conn()
            db = self._read_conns.get(ident)
            if db is None:
                db = sqlite3.connect(
                    f"file:{self._dir / 'store.sqlite'}?mode=ro",
                    uri=True,
                    check_same_thread=False,
                    isolation_level=None,
                )
                self._read_conns[ident] = db
        return db

    def _raw_points(
        self, db: sqlite3.Connection, t: _Target, start: int, end: int
    ) -> tuple[I64Array, F64Array]:
        first = start // RAW_BLOCK_MS * RAW_BLOCK_MS
        dctx = self._zstd.decompressor
        decoded = [self._decoded.decode(d, dctx) for d in self._chunk_rows(db, t.sid, RAW, first, end)]
        ts = np.concatenate([np.zeros(0, np.int64), *(t for t, _ in decoded)])
        vals = np.concatenate([np.zeros(0, np.float64), *(c[0] for _, c in decoded)])
        if t.head is not None:
            ts, vals = merge_newer(ts, vals, t.head[0], t.head[1])
        keep = (ts >= start) & (ts <= end)
        return ts[keep], vals[keep]

    def _rollup_points(self, db: sqlite3.Connection, t: _Target, res: int, start: int, end: int) -> Rollup:
        """Stored rollups, plus rollups computed from raw for blocks not rolled up yet or with head points."""
        size = BLOCK_MS[res]
        stored = Rollup.concat(list(self._load_rollups(db, t.sid, res, start // size * size, end).values()))
        first = start // RAW_BLOCK_MS * RAW_BLOCK_MS
        last = end // RAW_BLOCK_MS * RAW_BLOCK_MS
        fresh_from = max(last + RAW_BLOCK_MS if t.rolled_until is None else t.rolled_until, first)
        head_blocks = np.zeros(0, np.int64)
        if t.head is not None:
            head_blocks = np.unique(t.head[0] // RAW_BLOCK_MS * RAW_BLOCK_MS)
            head_blocks = head_blocks[(head_blocks >= first) & (head_blocks <= last)]
        lo = min(fresh_from, int(head_blocks[0]) if head_blocks.shape[0] else fresh_from)
        if lo <= last:
            ts, vals = self._raw_points(db, t, lo, last + RAW_BLOCK_MS - 1)
            owner = ts // RAW_BLOCK_MS * RAW_BLOCK_MS
            keep = (owner >= fresh_from) | np.isin(owner, head_blocks)
            if keep.any():
                fresh = Rollup.of_points(ts[keep], vals[keep], res)
                stored = stored.replace_blocks(fresh, np.unique(owner[keep]) // RAW_BLOCK_MS, RAW_BLOCK_MS)
        return stored.overlapping(start, end, res)

    def events(
        self, start_ms: int, end_ms: int, limit: int = 1000, kind: str | None = None
    ) -> list[tuple[str, Event]]:
        """Events in [start_ms, end_ms], newest first, flushed and still in the head alike.

        Under both locks, so a flush cannot move events between the two halves while they are read.
        """
        with self._db_lock, self._lock:
            stored = ledger.select_events(self._conn(), start_ms, end_ms, limit, kind)
            heads = [self._head] if self._sealed is None else [self._sealed.head, self._head]
            fresh = [
                (a, e)
                for head in heads
                for a, e in head.events
                if start_ms <= e.ts_ms <= end_ms and (kind is None or e.kind.startswith(kind))
            ]
        merged = sorted(stored + fresh[::-1], key=lambda ae: ae[1].ts_ms, reverse=True)
        return merged[:limit]

    # -- retention --------------------------------------------------------------------------------

    def apply_retention(self, now_ms: int) -> int:
        """Deletes whole blocks past each resolution's retention, old events and expired batch ids.

        Returns:
            how many stored values were deleted (raw points plus rollup buckets).
        """
        retention = {
            RAW: self._cfg.raw_retention,
            RES_5M: self._cfg.rollup_5m_retention,
            RES_1H: self._cfg.rollup_1h_retention,
        }
        deleted = 0
        with self._db_lock, self._lock:
            db = self._conn()
            self._flush()
            with ledger.transaction(db):
                horizon = (now_ms - millis(self._cfg.raw_retention)) // RAW_BLOCK_MS * RAW_BLOCK_MS
                sealed = self._seal_before(db, horizon)
                for res, keep in retention.items():
                    cutoff = now_ms - millis(keep)
                    bounds = (res, cutoff - BLOCK_MS[res])
                    row = db.execute(
                        "SELECT COALESCE(SUM(n), 0) FROM chunks WHERE res=? AND block_start<=?", bounds
                    )
                    deleted += int(row.fetchone()[0])
                    db.execute("DELETE FROM chunks WHERE res=? AND block_start<=?", bounds)
                    if res == RAW:
                        horizon = cutoff // RAW_BLOCK_MS * RAW_BLOCK_MS
                        self._raw_horizon_ms = max(self._raw_horizon_ms, horizon)
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('raw_horizon_ms', ?)", (self._raw_horizon_ms,)
                )
                ledger.expire(
                    db,
                    self._seen,
                    now_ms - millis(self._cfg.events_retention),
                    now_ms - millis(self._cfg.dedup_window),
                )
            self._rolled_until.update(sealed)
            self._seen.mark_saved()
        return deleted

    def _seal_before(self, db: sqlite3.Connection, horizon: int) -> dict[int, int]:
        """Rolls up raw blocks before `horizon` that never completed (a series that went quiet) so
        their history survives the raw data's deletion; the caller owns the transaction.

        Returns:
            the new `rolled_until` of each sealed series, to apply once the transaction committed.
        """
        sealed = {}
        for sid, rolled in self._rolled_until.items():
            if rolled < horizon:
                raw = self._load_raw(db, sid, rolled, horizon - RAW_BLOCK_MS)
                db.executemany(_UPSERT_CHUNK, self._rollup_rows(db, sid, [raw[b] for b in sorted(raw)]))
                sealed[sid] = horizon
        db.executemany("UPDATE series SET rolled_until=? WHERE id=?", [(r, sid) for sid, r in sealed.items()])
        return sealed

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db


class _ZstdContexts(threading.local):
    """One zstd compressor and decompressor per thread (see `shared/codec.py` for why)."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=chunk.ZSTD_LEVEL)
        self.decompressor = zstandard.ZstdDecompressor()


@dataclass(frozen=True, slots=True)
class _Target:
    """One series a read will answer for, with its head points and rollup progress copied under the lock."""

    sid: int
    key: SeriesKey
    head: tuple[I64Array, F64Array] | None
    rolled_until: int | None


@contextmanager
def _read_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One snapshot for all reads of a query (WAL: never blocks or waits for the writer)."""
    db.execute("BEGIN")
    try:
        yield
    finally:
        db.execute("COMMIT")


def _aggregate_each(
    points: list[tuple[I64Array, F64Array]], step: int, agg: Agg
) -> list[tuple[I64Array, F64Array]]:
    """Each series' points aggregated per step, in one pass over all of them (`aggregate_series`)."""
    offsets = np.concatenate(([0], np.cumsum([ts.shape[0] for ts, _ in points], dtype=np.int64)))
    ts, vals, edges = aggregate_series(
        np.concatenate([np.zeros(0, np.int64), *(p[0] for p in points)]),
        np.concatenate([np.zeros(0, np.float64), *(p[1] for p in points)]),
        offsets,
        step,
        agg,
    )
    bounds = edges.tolist()
    return [(ts[lo:hi], vals[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


def _rollup_extent(rolled: list[Rollup], res: int, start: int, end: int) -> tuple[int, int, int] | None:
    """Where data is (first and last bucket, clipped to the range) and the most points of one series."""
    present = [r for r in rolled if len(r)]
    if not present:
        return None
    lo = max(start, min(int(r.ts[0]) for r in present))
    hi = min(end, max(int(r.ts[-1]) for r in present) + res - 1)
    return lo, hi, max(int(r.count.sum()) for r in present)


def _resolution(step: int | None) -> int:
    """The coarsest stored resolution whose bucket width divides `step` (raw if none does)."""
    for res in ROLLUP_RESOLUTIONS:
        if step is not None and step % res == 0:
            return res
    return RAW


def _with_agent(key: SeriesKey, agent: str) -> SeriesKey:
    """Adds the certificate identity as the `agent` label, replacing any label of that name in the payload."""
    labels = dict(key.labels)
    labels[AGENT_LABEL] = agent
    return SeriesKey.of(key.metric, labels)
