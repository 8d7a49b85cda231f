"""Codec throughput and density: encode+decode points/s and bytes/point for 1000 series × 10 points.

Data: realistic metric shapes (random walks quantised like real counters/gauges: integer rates, percents
with one decimal, temperatures in 0.5 steps), 10 s interval. Baseline in the same run: the same batch
as plain uncompressed protobuf, and as one JSON object per point (what a naive HTTP shipper sends).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from shared import codec
from shared.model import Batch, MetricKind, SeriesKey, SeriesPoints


def make_batch(series: int, points: int, seed: int = 1) -> Batch:
    rng = np.random.default_rng(seed)
    t0 = 1_700_000_000_000
    ts = t0 + np.arange(points, dtype=np.int64) * 10_000
    out = []
    for i in range(series):
        shape = i % 3
        if shape == 0:  # interface rate, bytes/s, integer
            v = np.maximum(0, 1e6 + np.cumsum(rng.normal(0, 5e4, points))).round()
        elif shape == 1:  # utilisation percent, one decimal
            v = np.clip(40 + np.cumsum(rng.normal(0, 1.5, points)), 0, 100).round(1)
        else:  # temperature, 0.5 °C steps
            v = (np.round((35 + np.cumsum(rng.normal(0, 0.3, points))) * 2) / 2).astype(np.float64)
        key = SeriesKey.of(f"bench_metric_{shape}", {"device": f"sw{i // 48}", "port": str(i % 48)})
        out.append(SeriesPoints(key, ts.copy(), v.astype(np.float64), MetricKind.GAUGE, ""))
    return Batch(1, 1, tuple(out))


def timed(fn: object, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--series", type=int, default=1000)
    p.add_argument("--points", type=int, default=10)
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args()
    batch = make_batch(args.series, args.points)
    n = batch.point_count
    zstd_bytes = codec.encode(batch)
    raw_bytes = codec.encode(batch, compress=False)
    enc = timed(lambda: codec.encode(batch), args.repeat)
    dec = timed(lambda: codec.decode(zstd_bytes), args.repeat)
    json_lines = [
        json.dumps({"metric": s.key.metric, "labels": dict(s.key.labels), "ts": int(t), "value": float(v)})
        for s in batch.series
        for t, v in zip(s.timestamps_ms, s.values, strict=True)
    ]
    json_size = sum(len(line) + 1 for line in json_lines)
    print(f"batch: {args.series} series x {args.points} points = {n} points")
    print(f"encode: {n / enc:,.0f} points/s ({enc * 1e3:.2f} ms)")
    print(f"decode: {n / dec:,.0f} points/s ({dec * 1e3:.2f} ms)")
    print(f"encode+decode: {n / (enc + dec):,.0f} points/s")
    print(
        f"bytes/point: zstd envelope {len(zstd_bytes) / n:.2f}   raw protobuf {len(raw_bytes) / n:.2f}"
        f"   baseline JSON-per-point {json_size / n:.2f}"
    )


if __name__ == "__main__":
    main()
