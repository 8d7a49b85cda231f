"""Streams NAB CSVs through the agent's DetectorBank and writes NAB result files for nab_score.py.

Every file is one series of one bank running the agent's default detection rule: one config for every
file, no per-file tuning, each point scored before it is learned with its own timestamp (no look-ahead).
All files are fed in lockstep (poll i carries point i of every file still running), which is how the
agent polls many series and makes a run take seconds; series never see each other's points.

    python bench/nab_run.py --data ../shared/data/nab --out /tmp/nab-out
    python ../shared/tools/nab_score.py --nab ../shared/data/nab --results /tmp/nab-out

`--stage two-stage` also runs the hub's confirmation (bench/nab_confirm.py) over the same edge scores
and writes its results to `--two-stage-out` (default `<out>-two-stage`); `--score` prints both stages'
scores, per-category scores, false-positive rows and windows detected.

--data is a NAB checkout (data/ and labels/), its data/ directory (category sub-directories of CSVs),
or one category directory; labels are looked up beside data/ (only to fill the `label` column).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.nab_confirm import NAB_CONFIRM, confirm_series, nab_scorer, report  # noqa: E402
from shared.detect import DetectConfig, DetectorBank  # noqa: E402
from shared.model import SeriesKey  # noqa: E402

PREFIX = "outpost_"
# NAB files span years of data time; with the agent's forget_after_s the bank would drop a file whose
# timestamps lag the newest file's. Forgetting frees memory only, it does not change scoring.
NEVER_FORGET_S = 100 * 365 * 86400.0


@dataclass(frozen=True, slots=True)
class NabFile:
    """One NAB series: where it came from, where its results go, and its rows."""

    relpath: str  # <category>/<file>.csv, the key of combined_windows.json
    stamps: list[str]
    ts_ms: np.ndarray
    values: np.ndarray


def read_csv(path: Path, relpath: str) -> NabFile:
    """Timestamps as written, epoch milliseconds (UTC) and values of one NAB file."""
    with open(path, newline="") as f:
        rows = [r for r in list(csv.reader(f))[1:] if r]
    stamps = [r[0] for r in rows]
    epoch_ms = [int(datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp() * 1000) for s in stamps]
    values = np.array([float(r[1]) for r in rows], dtype=np.float64)
    return NabFile(relpath, stamps, np.array(epoch_ms, dtype=np.int64), values)


def find_files(data: Path) -> tuple[list[tuple[Path, str]], Path | None]:
    """The CSVs under `data` with their `<category>/<file>` names, and the labels file if there is one."""
    if (data / "data").is_dir():
        data = data / "data"
    categories = [data] if any(data.glob("*.csv")) else sorted(p for p in data.iterdir() if p.is_dir())
    root = data.parent if data in categories else data
    labels = root.parent / "labels" / "combined_windows.json"
    found = [(src, f"{cat.name}/{src.name}") for cat in categories for src in sorted(cat.glob("*.csv"))]
    return found, labels if labels.exists() else None


def score_all(files: list[NabFile], config: DetectConfig) -> list[np.ndarray]:
    """Anomaly score of every point of every file, one bank, one poll per row index."""
    bank = DetectorBank(config)
    keys = [SeriesKey.of("nab.value", {"file": f.relpath}) for f in files]
    lengths = np.array([f.values.shape[0] for f in files])
    longest = int(lengths.max(initial=0))
    ts = np.zeros((len(files), longest), dtype=np.int64)
    x = np.zeros((len(files), longest))
    for i, f in enumerate(files):
        ts[i, : lengths[i]], x[i, : lengths[i]] = f.ts_ms, f.values
    out = np.zeros((len(files), longest))
    live: tuple[SeriesKey, ...] = ()
    for t in range(longest):
        rows = np.flatnonzero(lengths > t)
        if len(rows) != len(live):  # a file ended: a new key tuple (the bank reuses its plan otherwise)
            live = tuple(keys[r] for r in rows.tolist())
        out[rows, t] = bank.observe(live, ts[rows, t], x[rows, t]).scores
    return [out[i, : lengths[i]] for i in range(len(files))]


def labels_of(windows: list[list[str]], stamps: list[str]) -> list[int]:
    """1 inside a labelled window, else 0 (NAB's `label` column; the scorer does not read it)."""
    spans = [(a.split(".")[0], b.split(".")[0]) for a, b in windows]
    return [int(any(a <= s <= b for a, b in spans)) for s in stamps]


def write_result(out: Path, f: NabFile, scores: np.ndarray, windows: list[list[str]]) -> None:
    category, name = f.relpath.split("/")
    dst = out / category / f"{PREFIX}{name}"
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value", "anomaly_score", "label"])
        labels = labels_of(windows, f.stamps)
        for s, v, a, lab in zip(f.stamps, f.values.tolist(), scores.tolist(), labels, strict=True):
            w.writerow([s, repr(v), f"{a:.6f}", lab])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--labels", type=Path, help="combined_windows.json (default: found beside data/)")
    ap.add_argument("--stage", choices=("edge", "two-stage"), default="edge")
    ap.add_argument("--two-stage-out", type=Path, help="two-stage results (default: <out>-two-stage)")
    ap.add_argument("--score", action="store_true", help="score the stages run with ../shared/tools")
    a = ap.parse_args()
    found, labels_path = find_files(a.data.resolve())
    labels_path = a.labels or labels_path
    windows: dict[str, list[list[str]]] = json.loads(labels_path.read_text()) if labels_path else {}
    files = [read_csv(src, rel) for src, rel in found]
    t0 = time.perf_counter()
    scores = score_all(files, DetectConfig(forget_after_s=NEVER_FORGET_S))
    elapsed = time.perf_counter() - t0
    for f, s in zip(files, scores, strict=True):
        write_result(a.out, f, s, windows.get(f.relpath, []))
    points = sum(f.values.shape[0] for f in files)
    print(f"{len(files)} files, {points} points scored in {elapsed:.1f}s -> {a.out}", flush=True)
    stages = {"edge": {f.relpath: s for f, s in zip(files, scores, strict=True)}}
    if a.stage == "two-stage":
        out2 = a.two_stage_out or a.out.with_name(a.out.name + "-two-stage")
        t0 = time.perf_counter()
        pairs = zip(files, scores, strict=True)
        confirmed = [confirm_series(f.ts_ms, f.values, s, NAB_CONFIRM) for f, s in pairs]
        elapsed = time.perf_counter() - t0
        for f, s in zip(files, confirmed, strict=True):
            write_result(out2, f, s, windows.get(f.relpath, []))
        print(f"two-stage: judged in {elapsed:.1f}s -> {out2}", flush=True)
        stages["two-stage"] = {f.relpath: s for f, s in zip(files, confirmed, strict=True)}
    if a.score:
        root = next(p for p in (a.data.resolve(), *a.data.resolve().parents) if (p / "labels").is_dir())
        report(nab_scorer(Path(__file__).resolve().parents[1]), root, stages)


if __name__ == "__main__":
    main()
