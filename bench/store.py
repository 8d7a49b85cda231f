"""Embedded store vs a row-per-point SQLite table: ingest points/s, bytes/point, query latency.

Data: `--series` series (default 5,000) sampled every 10 s, `--points` points in all (default 10M, so
2,000 points = 5.5 h per series). Values are random walks quantized the way device metrics are: interface
rates in whole bytes/s, utilisation percents with two decimals, temperatures in 0.5 °C steps, fan speeds
in 10 rpm steps. Timestamps are on the 10 s grid (agents stamp the scheduled poll time).

Batches look like what agents send: `--series-per-batch` series (default 1,000, one agent's poll) with
`--points-per-series` points each (default 1: a live poll every 10 s; use 60 for spool backfill).
Every write is durable before it returns in both stores (embedded: journal fdatasync; baseline: one
SQLite transaction per batch, WAL, synchronous=FULL). Ingest time includes closing (the embedded
store's final flush of its head into chunks). bytes/point = database files after close / points.

Queries run on `--history-series` extra series (default 10) holding 30 days at 10 s: one series' last
24 h of raw points, and one series' 30 days at a 1 h step (avg). Latency p50/p99 over `--queries` runs.
Goals (issue 6): >= 500k points/s per core, <= 2 bytes/point, 24 h single-series query p99 <= 5 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

from hub.matchers import Matcher, MatchOp
from hub.store.base import Agg, RangeQuery
from hub.store.config import EmbeddedStoreConfig
from hub.store.embedded.store import EmbeddedStore
from shared.model import Batch, SeriesKey, SeriesPoints

T0 = 1_789_999_200_000
INTERVAL_MS = 10_000
DAY_MS = 86_400_000


def series_values(index: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """One realistic series: a random walk quantized like its kind of metric."""
    kind = index % 4
    if kind == 0:  # interface rate, bytes/s
        return np.maximum(0, 2e6 + np.cumsum(rng.normal(0, 4e4, n))).round()
    if kind == 1:  # utilisation percent
        return np.clip(40 + np.cumsum(rng.normal(0, 0.8, n)), 0, 100).round(2)
    if kind == 2:  # temperature, 0.5 °C steps
        return np.round((35 + np.cumsum(rng.normal(0, 0.2, n))) * 2) / 2
    return np.round((6000 + np.cumsum(rng.normal(0, 20, n))) / 10) * 10  # fan rpm


def series_key(index: int) -> SeriesKey:
    metric = ("if_in_bytes_rate", "cpu_util_percent", "temp_celsius", "fan_rpm")[index % 4]
    return SeriesKey.of(metric, {"device": f"dev{index // 40}", "idx": str(index % 40)})


@dataclass
class Dataset:
    """Pre-generated values; batches are cut from it lazily so 10M points need no 10M objects."""

    keys: list[SeriesKey]
    values: np.ndarray  # series x points
    agent_prefix: str = "agent-"

    @classmethod
    def generate(cls, series: int, points: int, seed: int, agent_prefix: str) -> Dataset:
        rng = np.random.default_rng(seed)
        vals = np.stack([series_values(i, points, rng) for i in range(series)])
        return cls([series_key(i) for i in range(series)], vals, agent_prefix)

    @property
    def points(self) -> int:
        return int(self.values.size)

    def batches(self, series_per_batch: int, points_per_series: int) -> Iterator[tuple[str, Batch]]:
        n_series, n_points = self.values.shape
        ts_all = T0 + np.arange(n_points, dtype=np.int64) * INTERVAL_MS
        seq = 0
        for lo_p in range(0, n_points, points_per_series):
            ts = ts_all[lo_p : lo_p + points_per_series]
            for lo_s in range(0, n_series, series_per_batch):
                agent = f"{self.agent_prefix}{lo_s // series_per_batch}"
                rows = range(lo_s, min(n_series, lo_s + series_per_batch))
                sp = tuple(
                    SeriesPoints(self.keys[r], ts, self.values[r, lo_p : lo_p + len(ts)]) for r in rows
                )
                seq += 1
                yield agent, Batch(1, seq, sp)


class RowStore:
    """The baseline: one SQLite row per point, one durable transaction per batch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL);"
            "CREATE TABLE IF NOT EXISTS points (series_id INTEGER NOT NULL, ts INTEGER NOT NULL,"
            " value REAL NOT NULL, PRIMARY KEY (series_id, ts)) WITHOUT ROWID;"
        )
        self.ids: dict[str, int] = dict(self.db.execute("SELECT key, id FROM series").fetchall())

    def write(self, agent: str, batch: Batch) -> None:
        self.db.execute("BEGIN")
        for s in batch.series:
            key = f"{agent}/{s.key}"
            sid = self.ids.get(key)
            if sid is None:
                sid = self.ids[key] = len(self.ids) + 1
                self.db.execute("INSERT INTO series VALUES (?, ?)", (sid, key))
            self.db.executemany(
                "INSERT OR REPLACE INTO points VALUES (?, ?, ?)",
                zip([sid] * len(s), s.timestamps_ms.tolist(), s.values.tolist(), strict=True),
            )
        self.db.execute("COMMIT")

    def raw(self, sid: int, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.db.execute(
            "SELECT ts, value FROM points WHERE series_id=? AND ts BETWEEN ? AND ? ORDER BY ts",
            (sid, start, end),
        ).fetchall()
        arr = np.array(rows, dtype=np.float64).reshape(-1, 2)
        return arr[:, 0].astype(np.int64), arr[:, 1]

    def hourly_avg(self, sid: int, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.db.execute(
            "SELECT ts / 3600000 * 3600000 AS b, AVG(value) FROM points"
            " WHERE series_id=? AND ts BETWEEN ? AND ? GROUP BY b ORDER BY b",
            (sid, start, end),
        ).fetchall()
        arr = np.array(rows, dtype=np.float64).reshape(-1, 2)
        return arr[:, 0].astype(np.int64), arr[:, 1]

    def close(self) -> None:
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()


@dataclass
class Ingest:
    points: int
    wall_s: float
    cpu_s: float
    disk_bytes: int

    @property
    def per_core(self) -> float:
        return self.points / self.cpu_s

    @property
    def bytes_per_point(self) -> float:
        return self.disk_bytes / self.points

    def line(self, name: str, with_bytes: bool = True) -> str:
        wall = self.points / self.wall_s
        text = f"{name:<11} {wall:>11,.0f} pts/s wall  {self.per_core:>11,.0f} pts/s/core (cpu)"
        return text + (f"  {self.bytes_per_point:6.2f} bytes/point on disk" if with_bytes else "")


def ingest(
    write: Callable[[str, Batch], object],
    close: Callable[[], None],
    data: Dataset,
    series_per_batch: int,
    points_per_series: int,
    files: Callable[[], int],
    writers: int = 1,
    chunk_batches: int = 200,
) -> Ingest:
    """Writes every batch, timing only the writes (batches are generated in untimed chunks).

    With `writers` > 1, batches are written from that many threads, as the hub's ingest does.
    """
    wall = cpu = 0.0
    gen = data.batches(series_per_batch, points_per_series)
    pool = ThreadPoolExecutor(writers) if writers > 1 else None
    while True:
        chunk = [b for _, b in zip(range(chunk_batches), gen, strict=False)]
        if not chunk:
            break
        w0, c0 = time.perf_counter(), time.process_time()
        if pool is None:
            for agent, batch in chunk:
                write(agent, batch)
        else:
            list(pool.map(lambda ab: write(*ab), chunk))
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
    w0, c0 = time.perf_counter(), time.process_time()
    close()
    wall += time.perf_counter() - w0
    cpu += time.process_time() - c0
    return Ingest(data.points, wall, cpu, files())


def file_bytes(path: Path) -> int:
    """A SQLite database's size with its WAL and journal files."""
    return sum(os.path.getsize(f) for f in (path, *path.parent.glob(path.name + "-*")) if f.exists())


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def percentiles(runs: list[tuple[float, float]]) -> str:
    """Wall-clock p50/p99, and the p99 of the process's CPU time per query (what a busy machine's
    scheduler adds to the wall clock does not show in it)."""
    wall = np.array([w for w, _ in runs]) * 1000
    cpu = np.array([c for _, c in runs]) * 1000
    return (
        f"p50 {np.percentile(wall, 50):8.3f} ms  p99 {np.percentile(wall, 99):8.3f} ms"
        f"  (cpu p99 {np.percentile(cpu, 99):7.3f} ms)"
    )


def timed_runs(fn: Callable[[int], object], n: int, series: int) -> list[tuple[float, float]]:
    out = []
    for i in range(n):
        w, c = time.perf_counter(), time.process_time()
        fn(i % series)
        out.append((time.perf_counter() - w, time.process_time() - c))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", type=int, default=10_000_000)
    p.add_argument("--series", type=int, default=5000)
    p.add_argument("--series-per-batch", type=int, default=1000)
    p.add_argument("--points-per-series", type=int, default=1)
    p.add_argument("--history-series", type=int, default=10)
    p.add_argument("--history-days", type=int, default=30)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--writers", type=int, default=4, help="threads for the concurrent embedded run")
    p.add_argument("--dir", type=Path, default=None, help="parent of the work directory (default: temp)")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="store-bench-", dir=args.dir))
    emb_dir, rows_path = root / "embedded", root / "rows.sqlite"

    data = Dataset.generate(args.series, args.points // args.series, seed=1, agent_prefix="agent-")
    history = Dataset.generate(args.history_series, args.history_days * 8640, seed=2, agent_prefix="history-")
    print(
        f"data: {data.points:,} points, {args.series:,} series at 10 s, batches of {args.series_per_batch}"
        f" series x {args.points_per_series} point(s); history: {args.history_series} series x"
        f" {args.history_days} days = {history.points:,} points; work dir {root}"
    )

    config = EmbeddedStoreConfig(raw_retention=timedelta(days=args.history_days + 1))
    emb = EmbeddedStore(emb_dir, config)
    emb.open()
    emb_ingest = ingest(
        emb.write, emb.close, data, args.series_per_batch, args.points_per_series, lambda: dir_bytes(emb_dir)
    )
    conc_dir = root / "embedded-concurrent"
    conc = EmbeddedStore(conc_dir, config)
    conc.open()
    conc_ingest = ingest(
        conc.write,
        conc.close,
        data,
        args.series_per_batch,
        args.points_per_series,
        lambda: dir_bytes(conc_dir),
        writers=args.writers,
    )
    shutil.rmtree(conc_dir)
    rows = RowStore(rows_path)
    row_ingest = ingest(
        rows.write,
        rows.close,
        data,
        args.series_per_batch,
        args.points_per_series,
        lambda: file_bytes(rows_path),
    )
    print("\ningest, durable per batch, including the final flush/checkpoint:")
    print(emb_ingest.line("embedded"))
    print(
        conc_ingest.line(f"embedded x{args.writers}", with_bytes=False) + f"  ({args.writers} writer threads)"
    )
    print(row_ingest.line("row/point"))
    print(
        f"embedded vs row/point: {emb_ingest.per_core / row_ingest.per_core:.1f}x pts/s/core,"
        f" {row_ingest.bytes_per_point / emb_ingest.bytes_per_point:.1f}x denser"
    )
    print("goal:      >= 500,000 pts/s/core, <= 2 bytes/point")

    # History for the queries, written as spool backfill (1 h of points per series per batch).
    emb = EmbeddedStore(emb_dir, config)
    emb.open()
    rows = RowStore(rows_path)
    hist_emb = ingest(emb.write, emb.close, history, args.history_series, 360, lambda: dir_bytes(emb_dir))
    hist_rows = ingest(
        rows.write, rows.close, history, args.history_series, 360, lambda: file_bytes(rows_path)
    )
    print("\nhistory backfill (360 points per series per batch):")
    print(hist_emb.line("embedded", with_bytes=False))
    print(hist_rows.line("row/point", with_bytes=False))

    emb = EmbeddedStore(emb_dir, config)
    emb.open()
    rows = RowStore(rows_path)
    try:
        end = T0 + args.history_days * DAY_MS - 1
        keys = history.keys

        def emb_query(i: int, start: int, step: int | None) -> tuple[np.ndarray, np.ndarray]:
            key = keys[i]
            matchers = tuple(Matcher(k, MatchOp.EQ, v) for k, v in (*key.labels, ("agent", "history-0")))
            (res,) = emb.query(RangeQuery(key.metric, start, end, matchers, step_ms=step, agg=Agg.AVG))
            return res.timestamps_ms, res.values

        def row_sid(i: int) -> int:
            return rows.ids[f"history-0/{keys[i]}"]

        day_start, month_start = end + 1 - DAY_MS, T0
        checks = [
            (emb_query(0, day_start, None), rows.raw(row_sid(0), day_start, end)),
            (emb_query(0, month_start, 3_600_000), rows.hourly_avg(row_sid(0), month_start, end)),
        ]
        same = all(
            np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1], rtol=1e-9, atol=1e-9) for a, b in checks
        )
        print(f"\nqueries over {args.queries} runs (answers equal in both stores: {same}):")
        n, hs = args.queries, args.history_series
        lines = [
            (
                "last 24 h raw, 1 series",
                lambda i: emb_query(i, day_start, None),
                lambda i: rows.raw(row_sid(i), day_start, end),
            ),
            (
                "30 days at 1 h avg, 1 series",
                lambda i: emb_query(i, month_start, 3_600_000),
                lambda i: rows.hourly_avg(row_sid(i), month_start, end),
            ),
        ]
        for name, emb_fn, row_fn in lines:
            print(f"{name:<30} embedded  {percentiles(timed_runs(emb_fn, n, hs))}")
            print(f"{'':<30} row/point {percentiles(timed_runs(row_fn, max(10, n // 10), hs))}")
        print("goal: last 24 h single-series p99 <= 5 ms")
    finally:
        emb.close()
        rows.close()
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
