"""Streams NAB CSVs through the agent's DetectorBank and writes NAB result files for nab_score.py.

Each file is one series fed point by point with its own timestamps (no look-ahead), through the same
DetectorBank and default DetectConfig the agent runs; one config for every file, no per-file tuning.

    python bench/nab_run.py --data ../shared/data/nab/data --out /tmp/nab-out
    python ../shared/tools/nab_score.py --nab ../shared/data/nab --results /tmp/nab-out

--data is a NAB data directory (category sub-directories of CSVs) or one category directory.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.detect import DetectConfig, DetectorBank  # noqa: E402
from shared.model import SeriesKey  # noqa: E402

PREFIX = "outpost_"


def read_csv(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Timestamps as written, epoch milliseconds (UTC) and values of one NAB file."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    stamps = [r[0] for r in rows if r]
    epoch_ms = [int(datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp() * 1000) for s in stamps]
    ts = np.array(epoch_ms, dtype=np.int64)
    values = np.array([float(r[1]) for r in rows if r], dtype=np.float64)
    return stamps, ts, values


def score_series(ts: np.ndarray, values: np.ndarray, config: DetectConfig) -> np.ndarray:
    """Anomaly score of every point, fed one at a time through a fresh bank."""
    bank = DetectorBank(config)
    keys = (SeriesKey.of("nab.value"),)
    out = np.empty(values.shape[0], dtype=np.float64)
    for i in range(values.shape[0]):
        out[i] = bank.observe(keys, ts[i : i + 1], values[i : i + 1]).scores[0]
    return out


def labels_of(windows: list[list[str]], stamps: list[str]) -> list[int]:
    """1 inside a labelled window, else 0 (NAB's `label` column; the scorer does not read it)."""
    spans = [(a.split(".")[0], b.split(".")[0]) for a, b in windows]
    return [int(any(a <= s <= b for a, b in spans)) for s in stamps]


def run_file(job: tuple[Path, Path, list[list[str]]]) -> str:
    src, dst, windows = job
    stamps, ts, values = read_csv(src)
    scores = score_series(ts, values, DetectConfig())
    labels = labels_of(windows, stamps)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "value", "anomaly_score", "label"])
        for s, v, a, lab in zip(stamps, values.tolist(), scores.tolist(), labels, strict=True):
            w.writerow([s, repr(v), f"{a:.6f}", lab])
    return str(dst)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--labels", type=Path, help="combined_windows.json (default: <data>/../labels/...)")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    data = a.data.resolve()
    categories = [data] if any(data.glob("*.csv")) else sorted(p for p in data.iterdir() if p.is_dir())
    nab_root = data.parent if data in categories else data
    labels_path = a.labels or next(
        (p for p in (nab_root.parent / "labels" / "combined_windows.json",) if p.exists()), None
    )
    windows: dict[str, list[list[str]]] = json.loads(labels_path.read_text()) if labels_path else {}
    jobs = [
        (src, a.out / cat.name / f"{PREFIX}{src.name}", windows.get(f"{cat.name}/{src.name}", []))
        for cat in categories
        for src in sorted(cat.glob("*.csv"))
    ]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=a.jobs) as pool:
        done = list(pool.map(run_file, jobs))
    points = sum(len(read_csv(src)[0]) for src, _, _ in jobs)
    print(f"{len(done)} files, {points} points in {time.perf_counter() - t0:.1f}s -> {a.out}")


if __name__ == "__main__":
    main()
