"""Log store throughput and search latency on the hub's SQLite state database.

Data: the Content of Loghub-2k's Linux and OpenSSH systems (real syslog lines) repeated to `--lines`;
synthetic lines when the data is absent. Measured: `LogIntake.store_batch` (check, mine, one transaction
per batch of `--batch` lines with the FTS5 index, batch id and template counts) in lines/s, then
`LogStore.search` p50/p99 for one-word and two-word queries with a page of 100. Baseline in the same run:
the same rows inserted with `executemany` into a plain table without FTS, indexes or mining (the floor
of writing them), and the miner alone.

Usage: bench/log_store.py [--data ../shared/data/loghub] [--lines 200000] [--batch 500]
"""

from __future__ import annotations

import argparse
import csv
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from hub.db import migrate
from hub.db.engine import create_engine
from hub.enrich.logs.config import LogsConfig
from hub.enrich.logs.counts import TemplateCounts
from hub.enrich.logs.intake import LogIntake
from hub.enrich.logs.metrics import LogMetrics
from hub.enrich.logs.miner import TemplateMiner
from hub.enrich.logs.store import LogQuery, LogStore
from hub.store.config import EmbeddedStoreConfig
from hub.store.embedded.store import EmbeddedStore
from hub.telemetry import HubMetrics
from shared.model import Batch, LogRecord

T0 = 1_789_999_200_000


def _contents(data: Path) -> list[str]:
    out: list[str] = []
    for system in ("Linux", "OpenSSH"):
        path = data / system / f"{system}_2k.log_structured.csv"
        if path.exists():
            with path.open(newline="") as f:
                out += [row["Content"] for row in csv.DictReader(f)]
    if not out:
        print(f"no Loghub data under {data}: synthetic lines")
        out = [
            f"link eth{i % 48} changed state to {'up' if i % 2 else 'down'} after {i} ms" for i in range(4000)
        ]
    return out


def _records(contents: list[str], n: int) -> list[LogRecord]:
    return [
        LogRecord(T0 + i * 10, T0 + i * 10, contents[i % len(contents)], app="sshd", device=f"d{i % 20}")
        for i in range(n)
    ]


def _baseline(records: list[LogRecord], batch: int, path: Path) -> float:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE lines (id INTEGER PRIMARY KEY, ts INTEGER, device TEXT, app TEXT, message TEXT)")
    t = time.perf_counter()
    for i in range(0, len(records), batch):
        with db:
            db.executemany(
                "INSERT INTO lines (ts, device, app, message) VALUES (?, ?, ?, ?)",
                [(r.ts_ms, r.device, r.app, r.message) for r in records[i : i + batch]],
            )
    rate = len(records) / (time.perf_counter() - t)
    db.close()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/loghub"))
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    contents = _contents(args.data)
    records = _records(contents, args.lines)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        floor = _baseline(records, args.batch, root / "plain.sqlite")
        miner = TemplateMiner()
        t = time.perf_counter()
        for r in records:
            miner.add(r.message)
        mining = len(records) / (time.perf_counter() - t)

        engine = create_engine(f"sqlite:///{root / 'state.sqlite'}")
        migrate.upgrade(engine)
        series = EmbeddedStore(root / "store", EmbeddedStoreConfig())
        series.open()
        store, metrics, cfg = LogStore(engine), LogMetrics(HubMetrics().registry), LogsConfig()
        intake = LogIntake(store, TemplateCounts(store, series, cfg, metrics), cfg, metrics, root / "logs")
        t = time.perf_counter()
        for seq, i in enumerate(range(0, len(records), args.batch), start=1):
            intake.store_batch("s/bench", Batch(1, seq, logs=tuple(records[i : i + args.batch])))
        stored = len(records) / (time.perf_counter() - t)

        words = sorted({w for c in contents for w in c.split() if w.isalpha() and len(w) > 3})
        rng = random.Random(7)
        end = T0 + args.lines * 10
        timings: dict[str, list[float]] = {"one word": [], "two words": []}
        for _ in range(args.queries):
            for kind, text in (
                ("one word", rng.choice(words)),
                ("two words", " ".join(rng.sample(words, 2))),
            ):
                t = time.perf_counter()
                store.search(LogQuery(T0, end, 100, text=text))
                timings[kind].append((time.perf_counter() - t) * 1000)
        series.close()
        engine.dispose()
    print(f"log store, SQLite, {args.lines} lines in batches of {args.batch} (measured under load)")
    print(f"  baseline: plain executemany, no FTS, no indexes, no mining   {floor:>10,.0f} lines/s")
    print(f"  baseline: miner alone                                         {mining:>10,.0f} lines/s")
    print(f"  LogIntake.store_batch (check, mine, FTS5, counts, batch id)   {stored:>10,.0f} lines/s")
    for kind, ms in timings.items():
        p99 = statistics.quantiles(ms, n=100)[98]
        p50 = statistics.median(ms)
        print(f"  search, {kind:9s} over {args.lines} lines: p50 {p50:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
