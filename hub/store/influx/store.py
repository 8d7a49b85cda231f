"""InfluxDB backend: line protocol writes that are acknowledged only once InfluxDB accepted them.

The only module that imports `influxdb_client`. Writes (mode v2) go through the client's batching write
API to `/api/v2/write`, which retries with exponential backoff itself; `write()` waits for the success
or error callback of each of its request bodies, so nothing is acknowledged to an agent before InfluxDB
accepted it. Mode v1 POSTs to `/write?db=` (InfluxDB 1.x before 1.8) with the same retry policy.
Reads use InfluxQL over `/query` (see `influxql.py`; the measurement/tag/field mapping is in
`lineproto.py`). Points are stamped with the edge's time, so a replay overwrites rather than duplicates;
a ledger also remembers batch ids (to answer `duplicate=True`) and keeps the events: a local SQLite file
for one hub process, or `ledger.SharedLedger` in the shared state database when several run.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from pathlib import Path

from influxdb_client import InfluxDBClient, WriteOptions
from influxdb_client.client.write_api import WriteApi, WritePrecision

from hub.matchers import Matcher
from hub.store import ledger
from hub.store.base import RangeQuery, SeriesColumns, SeriesResult, WriteResult, millis
from hub.store.config import InfluxStoreConfig
from hub.store.influx import lineproto
from hub.store.influx.http import InfluxHttp, status_error
from hub.store.influx.influxql import InfluxQLReader, InfluxReader
from shared.clock import Clock, SystemClock
from shared.errors import TransientError
from shared.model import Batch, Event, SeriesKey

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 10.0


class _Acks:
    """Completion of one `write()`'s request bodies, fed by the write API's callback thread."""

    def __init__(self, pending: int) -> None:
        self.pending = pending
        self.error: Exception | None = None
        self.done = threading.Event()

    def succeeded(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            self.done.set()

    def failed(self, exc: Exception) -> None:
        self.error = exc
        self.done.set()


class InfluxStore:
    """Implements `Store` on InfluxDB. Thread-safe."""

    def __init__(
        self,
        config: InfluxStoreConfig,
        ledger_path: Path,
        clock: Clock | None = None,
        reader: InfluxReader | None = None,
        shared: ledger.SharedLedger | None = None,
    ) -> None:
        """
        Args:
            config: server, credentials, write mode and retry policy.
            ledger_path: SQLite file for batch ids and events (unused with `shared`).
            clock: wall time for the dedup window.
            reader: the read path; InfluxQL over `/query` unless given (a server without InfluxQL, such as
                VictoriaMetrics, plugs in its own).
            shared: batch ids and events in the hub's shared state database instead of the local file,
                for hub processes that share one InfluxDB (`api` + N `worker`).
        """
        self._shared = shared
        self._cfg = config
        self._ledger_path = ledger_path
        self._clock = clock or SystemClock()
        self._http = InfluxHttp(config.url, config.token, config.http_timeout.total_seconds())
        self._reader: InfluxReader = reader or InfluxQLReader(self._http, config.database_name)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._seen = ledger.SeenBatches()
        self._client: InfluxDBClient | None = None
        self._write_api: WriteApi | None = None
        self._inflight: dict[bytes, list[_Acks]] = {}
        self._inflight_lock = threading.Lock()
        self.skipped_points = 0
        self._opened = False

    def open(self) -> None:
        if self._shared is None:
            self._ledger_path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._ledger_path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(ledger.SCHEMA)
            self._seen.load(db)
            self._db = db
        self._opened = True
        if self._cfg.write_mode == "v2":
            token = self._cfg.token.get_secret_value() if self._cfg.token else ""
            self._client = InfluxDBClient(
                url=self._cfg.url,
                token=token,
                org=self._cfg.org,
                timeout=millis(self._cfg.http_timeout),
            )
            retry_ms = millis(self._cfg.retry_interval)
            options = WriteOptions(
                # Each item we hand over is already a body of `batch_size` lines: post it at once.
                batch_size=1,
                flush_interval=10,
                retry_interval=retry_ms,
                max_retries=self._cfg.max_retries,
                max_retry_delay=int(_MAX_BACKOFF_S * 1000),
                max_retry_time=millis(self._cfg.write_timeout),
                exponential_base=2,
                # close() waits this long for requests still retrying, none of which was acknowledged.
                max_close_wait=millis(self._cfg.write_timeout) + 1000,
            )
            self._write_api = self._client.write_api(
                write_options=options, success_callback=self._on_success, error_callback=self._on_error
            )

    def close(self) -> None:
        """Safe without open and safe twice."""
        if self._write_api is not None:
            self._write_api.close()
            self._write_api = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._db is not None:
            self._db.close()
            self._db = None
        self._opened = False

    # -- writes -----------------------------------------------------------------------------------

    def write(self, agent: str, batch: Batch) -> WriteResult:
        """Returns once InfluxDB accepted every point of the batch (and the ledger recorded its id).

        Raises:
            TransientError: InfluxDB did not accept the batch within `write_timeout` (do not acknowledge).
            StoreError: InfluxDB rejected the data for good (HTTP 400/413/422).
        """
        shared = self._shared
        if shared is not None:
            self._check_open()
            if shared.seen(agent, batch.boot_epoch, batch.seq):
                return WriteResult(0, duplicate=True)
        else:
            db = self._conn()
            with self._lock:
                if (agent, batch.boot_epoch, batch.seq) in self._seen:
                    return WriteResult(0, duplicate=True)
        bodies, points, skipped = lineproto.encode_batch(agent, batch, self._cfg.batch_size)
        if skipped:
            if self.skipped_points == 0:
                log.warning("non-finite values cannot be written to InfluxDB; skipping and counting them")
            self.skipped_points += skipped
        if self._write_api is not None:
            self._send_v2(self._write_api, bodies)
        else:
            for body in bodies:
                self._send_v1(body)
        if shared is not None:
            # Another worker may have stored the same batch meanwhile (a redelivery): the points were
            # overwritten with themselves, and the id decides which of the two records the events.
            if not shared.record(agent, batch.boot_epoch, batch.seq, batch.events, self._clock.now_ms()):
                return WriteResult(0, duplicate=True)
            return WriteResult(points)
        with self._lock:
            with ledger.transaction(db):
                ledger.insert_events(db, [(agent, e) for e in batch.events])
                self._seen.add(agent, batch.boot_epoch, batch.seq, self._clock.now_ms())
                self._seen.save(db)
            self._seen.mark_saved()
        return WriteResult(points)

    def write_columns(self, agent: str, boot_epoch: int, seq: int, columns: SeriesColumns) -> WriteResult:
        """`write` of points given as columns: line protocol is written per series, so they become series."""
        return self.write(agent, Batch(boot_epoch=boot_epoch, seq=seq, series=columns.series()))

    def _send_v2(self, write_api: WriteApi, bodies: list[bytes]) -> None:
        if not bodies:
            return
        acks = _Acks(len(bodies))
        with self._inflight_lock:
            for body in bodies:
                self._inflight.setdefault(body, []).append(acks)
        write_api.write(
            bucket=self._cfg.bucket,
            org=self._cfg.org,
            record=bodies,
            # The client annotates its precision constants as str.
            write_precision=WritePrecision.MS,  # type: ignore[arg-type]
        )
        # The client gives up after max_retry_time; the extra second covers its last request.
        finished = acks.done.wait(self._cfg.write_timeout.total_seconds() + 1.0)
        with self._inflight_lock:
            for body in bodies:
                waiting = self._inflight.get(body, [])
                if acks in waiting:
                    waiting.remove(acks)
                if not waiting:
                    self._inflight.pop(body, None)
        if not finished:
            raise TransientError(f"InfluxDB did not accept the batch within {self._cfg.write_timeout}")
        if acks.error is not None:
            status = getattr(acks.error, "status", None)
            if isinstance(status, int):
                raise status_error(status, f"InfluxDB write failed with {status}") from None
            raise TransientError(f"InfluxDB write failed: {type(acks.error).__name__}") from None

    def _on_success(self, _conf: tuple[str, str, str], data: bytes) -> None:
        with self._inflight_lock:
            waiting = self._inflight.get(data)
            if waiting:
                waiting.pop(0).succeeded()

    def _on_error(self, _conf: tuple[str, str, str], data: bytes, exc: Exception) -> None:
        with self._inflight_lock:
            waiting = self._inflight.get(data)
            if waiting:
                waiting.pop(0).failed(exc)

    def _send_v1(self, body: bytes) -> None:
        """POSTs to `/write?db=`, retrying transient failures with backoff and jitter until the deadline."""
        deadline = time.monotonic() + self._cfg.write_timeout.total_seconds()
        delay = self._cfg.retry_interval.total_seconds()
        params = {"db": self._cfg.database_name, "precision": "ms"}
        attempt = 0
        while True:
            try:
                self._http.post("/write", params, body, "text/plain; charset=utf-8")
                return
            except TransientError:
                attempt += 1
                pause = min(delay, _MAX_BACKOFF_S) * (0.5 + random.random())
                if attempt > self._cfg.max_retries or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                delay *= 2

    # -- reads ------------------------------------------------------------------------------------

    def query(self, q: RangeQuery) -> list[SeriesResult]:
        return self._reader.query(q)

    def series(self, metric: str | None = None, matchers: tuple[Matcher, ...] = ()) -> list[SeriesKey]:
        return self._reader.series(metric, matchers)

    def events(
        self, start_ms: int, end_ms: int, limit: int = 1000, kind: str | None = None
    ) -> list[tuple[str, Event]]:
        if self._shared is not None:
            self._check_open()
            return self._shared.events(start_ms, end_ms, limit, kind)
        with self._lock:
            return ledger.select_events(self._conn(), start_ms, end_ms, limit, kind)

    def apply_retention(self, now_ms: int) -> int:
        """Prunes the ledger only: point retention is InfluxDB's own (bucket or retention policy).

        Returns:
            0, as no points are deleted here.
        """
        events_before = now_ms - millis(self._cfg.events_retention)
        if self._shared is not None:
            self._check_open()
            self._shared.expire(events_before, now_ms - millis(self._cfg.dedup_window))
            return 0
        db = self._conn()
        with self._lock:
            with ledger.transaction(db):
                ledger.expire(
                    db,
                    self._seen,
                    now_ms - millis(self._cfg.events_retention),
                    now_ms - millis(self._cfg.dedup_window),
                )
            self._seen.mark_saved()
        return 0

    def _check_open(self) -> None:
        if not self._opened:
            raise RuntimeError("store is not open")

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db
