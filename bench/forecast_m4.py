"""The hub's forecaster on the M4 Hourly series: writes `id,F1..F48` and prints the cost per series.

Runs `hub.forecast.select.forecast` (the code path the API and the forecast job use) on every series of
`Hourly-train.csv`, horizon 48, daily and weekly seasons, with the method named (default `auto`, the
back-test selection). The baseline in the same run is seasonal naive through the same path without its
back-test (the cost of reading and writing alone). Score the output with the M4 rules:

    python bench/forecast_m4.py --data ../shared/data/m4 --out FORECASTS.csv [--method auto]
    python ../shared/tools/m4_score.py --data ../shared/data/m4 --forecasts FORECASTS.csv

Exits 1 when the data is missing or a series could not be forecast.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.forecast.base import ForecastError  # noqa: E402
from hub.forecast.methods import AUTO, FORECASTERS, candidates  # noqa: E402
from hub.forecast.select import forecast  # noqa: E402

HORIZON = 48
PERIODS = (24, 168)


def load(path: Path) -> dict[str, np.ndarray]:
    """M4's layout: a header, then `id,value,...` with blanks padding the shorter rows."""
    out: dict[str, np.ndarray] = {}
    with path.open() as f:
        rows = csv.reader(f)
        next(rows)
        for row in rows:
            out[row[0]] = np.array([float(v) for v in row[1:] if v not in ("", "NA")])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder holding Hourly-train.csv")
    ap.add_argument("--out", type=Path, required=True, help="forecasts CSV to write")
    ap.add_argument("--method", default=AUTO, choices=[AUTO, *FORECASTERS])
    a = ap.parse_args()
    train_csv = a.data / "Hourly-train.csv"
    if not train_csv.exists():
        print(f"error: {train_csv} not found", file=sys.stderr)
        return 1
    series = load(train_csv)
    methods = candidates(a.method)
    baseline = (FORECASTERS["seasonal_naive"],)
    cost, cpu, base_cost, chosen = [], [], [], Counter[str]()
    rows = []
    for sid, x in series.items():
        t, c = time.perf_counter(), time.process_time()
        try:
            p = forecast(x, HORIZON, PERIODS, methods)
        except ForecastError as exc:
            print(f"error: {sid}: {exc}", file=sys.stderr)
            return 1
        cost.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        t = time.perf_counter()
        forecast(x, HORIZON, PERIODS, baseline, origins=1)
        base_cost.append(time.perf_counter() - t)
        chosen[p.method] += 1
        rows.append([sid, *(f"{v:.6g}" for v in p.yhat)])
    with a.out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", *(f"F{i}" for i in range(1, HORIZON + 1))])
        w.writerows(rows)
    ms, cpu_ms, base = np.array(cost) * 1000, np.array(cpu) * 1000, np.array(base_cost) * 1000
    print(f"{len(rows)} series, horizon {HORIZON}, method {a.method} -> {a.out}")

    def spread(v: np.ndarray) -> str:
        return f"median {np.median(v):.1f} ms, p90 {np.percentile(v, 90):.1f} ms, max {v.max():.1f} ms"

    print(f"  fit + forecast per series, wall: {spread(ms)} (goal: median <= 50 ms)")
    # CPU time too: on a shared machine the wall time also measures the neighbours.
    print(f"  fit + forecast per series, CPU:  {spread(cpu_ms)}")
    print(f"  baseline (seasonal naive, one origin, same path): median {np.median(base):.2f} ms")
    print("  methods chosen: " + ", ".join(f"{m} {n}" for m, n in chosen.most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
