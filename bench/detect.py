"""Detection throughput and memory: the vectorized paths against a per-series Python object baseline.

Prints series-updates/s (score + learn of one point of one series) per core (CPU time of this single
thread) for: a naive per-series-object EWMA (the baseline), the pure vectorized EWMA path, and the full
DetectorBank (gate, events, default robust+seasonal detector), at 100k series x 1 tick repeated and at
1 series x many ticks; then resident memory per 10k series and state bytes per series, and how many
anomaly onsets 300k points of pure Gaussian noise raise (the plain EWMA z-score beside it).

    python bench/detect.py [--series 100000] [--ticks 30] [--single-ticks 100000]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.detect import DetectConfig, DetectorBank, DetectRule  # noqa: E402
from shared.detect.detectors import EwmaDetector  # noqa: E402
from shared.model import SeriesKey  # noqa: E402

T0_MS = 1_700_000_000_000
STEP_MS = 30_000


class NaiveEwma:
    """What the bank replaces: one Python object per series, updated in a Python loop."""

    __slots__ = ("mean", "var")

    def __init__(self) -> None:
        self.mean = float("nan")
        self.var = 0.0

    def score_learn(self, x: float, alpha: float = 0.01) -> float:
        if self.mean != self.mean:
            self.mean = x
            return 0.0
        d = x - self.mean
        z2 = d * d / (self.var + 1e-12)
        self.mean += alpha * d
        self.var = (1 - alpha) * (self.var + alpha * d * d)
        return z2 / (z2 + 9.0)


def cpu_rate(updates_per_call: int, calls: int, fn: Callable[[int], object]) -> float:
    """Series-updates per CPU-second of `fn(i)` for i in range(calls)."""
    gc.collect()
    t0 = time.process_time()
    for i in range(calls):
        fn(i)
    return updates_per_call * calls / (time.process_time() - t0)


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def values_for(n: int, ticks: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    return 50.0 + rng.standard_normal((ticks, n))


def bench_wide(n: int, ticks: int) -> dict[str, float]:
    """n series, one point each per tick."""
    vals = values_for(n, ticks)
    out: dict[str, float] = {}
    objs = [NaiveEwma() for _ in range(n)]
    naive_ticks = max(2, ticks // 10)
    out["naive"] = cpu_rate(
        n, naive_ticks, lambda i: [o.score_learn(v) for o, v in zip(objs, vals[i].tolist(), strict=True)]
    )

    ewma = EwmaDetector(DetectRule(detector="ewma"))
    ewma.grow(n)
    rows = slice(0, n)
    accept = np.ones(n, dtype=bool)

    def ewma_step(i: int) -> None:
        ts = np.full(n, T0_MS + i * STEP_MS, dtype=np.int64)
        ewma.score_many(rows, ts, vals[i])
        ewma.learn_many(rows, ts, vals[i], accept)

    out["ewma"] = cpu_rate(n, ticks, ewma_step)

    keys = tuple(SeriesKey.of("if.in.octets", {"port": str(p)}) for p in range(n))
    for name, rule in (
        ("bank-ewma", DetectRule(detector="ewma", seasonality="none")),
        ("bank-robust", DetectRule()),
    ):
        bank = DetectorBank(DetectConfig(default=rule))
        bank.observe(keys, np.full(n, T0_MS, dtype=np.int64), vals[0])  # adds the rows; not timed
        out[name] = cpu_rate(
            n, ticks, lambda i, b=bank: b.observe(keys, np.full(n, T0_MS + (i + 1) * STEP_MS), vals[i])
        )
    return out


def bench_long(ticks: int) -> dict[str, float]:
    """One series, `ticks` points, one observe per point (the per-call overhead)."""
    vals = values_for(1, ticks)[:, 0]
    out: dict[str, float] = {}
    obj = NaiveEwma()
    out["naive"] = cpu_rate(1, ticks, lambda i: obj.score_learn(float(vals[i])))
    ewma = EwmaDetector(DetectRule(detector="ewma"))
    ewma.grow(1)
    rows, accept = slice(0, 1), np.ones(1, dtype=bool)

    def ewma_step(i: int) -> None:
        ts = np.full(1, T0_MS + i * STEP_MS, dtype=np.int64)
        ewma.score_many(rows, ts, vals[i : i + 1])
        ewma.learn_many(rows, ts, vals[i : i + 1], accept)

    out["ewma"] = cpu_rate(1, ticks, ewma_step)
    keys = (SeriesKey.of("temp"),)
    bank = DetectorBank(DetectConfig())
    out["bank-robust"] = cpu_rate(
        1, ticks, lambda i: bank.observe(keys, np.array([T0_MS + i * STEP_MS]), vals[i : i + 1])
    )
    return out


def bench_memory(n: int) -> tuple[float, int]:
    """RSS growth per 10k series of a bank holding n series (default rule), and state bytes per series."""
    keys = [SeriesKey.of("if.in.octets", {"port": str(p)}) for p in range(n)]
    gc.collect()
    before = rss_bytes()
    bank = DetectorBank(DetectConfig())
    bank.observe(keys, np.full(n, T0_MS, dtype=np.int64), np.ones(n))
    grown = rss_bytes() - before
    return grown / (n / 10_000), bank.row_nbytes


def noise_onsets(rule: DetectRule, series: int = 60, ticks: int = 5000) -> int:
    """Anomaly onsets raised by `series` x `ticks` points of pure Gaussian noise at 5-minute polls."""
    keys = tuple(SeriesKey.of("latency.ms", {"probe": str(p)}) for p in range(series))
    vals = 10.0 + np.random.default_rng(3).standard_normal((ticks, series))
    bank = DetectorBank(DetectConfig(default=rule))
    return sum(
        sum(
            e.kind == "anomaly.onset"
            for e in bank.observe(keys, np.full(series, T0_MS + i * 300_000), v).events
        )
        for i, v in enumerate(vals)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--ticks", type=int, default=30)
    ap.add_argument("--single-ticks", type=int, default=100_000)
    a = ap.parse_args()
    print(f"{a.series} series x {a.ticks} ticks (series-updates per CPU-second, one core):")
    wide = bench_wide(a.series, a.ticks)
    for name, rate in wide.items():
        print(f"  {name:<12} {rate:>14,.0f}/s   {rate / wide['naive']:7.1f}x naive")
    print(f"1 series x {a.single_ticks} ticks:")
    long = bench_long(a.single_ticks)
    for name, rate in long.items():
        print(f"  {name:<12} {rate:>14,.0f}/s   {rate / long['naive']:7.2f}x naive")
    per_10k, row = bench_memory(a.series)
    print(
        f"memory: {per_10k / 2**20:.2f} MiB RSS per 10k series (incl. keys and index); state {row} B/series"
    )
    robust, ewma = noise_onsets(DetectRule()), noise_onsets(DetectRule(detector="ewma"))
    print(f"pure Gaussian noise, onsets per 300k points: robust {robust}, ewma {ewma} (goal <= 2)")
    goal = wide["ewma"] >= 50e6
    print(
        f"goal >= 50M/s EWMA path at {a.series} series: {'met' if goal else 'NOT met'}; goal <= 2 KiB state: "
        f"{'met' if row <= 2048 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
