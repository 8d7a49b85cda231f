"""Loghub-2k bench: the hub's template miner over each system's Content, GA per system and lines/s.

Usage: bench/loghub.py --data ../shared/data/loghub --out PRED_DIR [--repeat N]
Writes PRED_DIR/<S>/<S>_2k.log_structured.csv (LineId,EventTemplate) for /work/shared/tools/loghub_ga.py.
Exits non-zero when a system cannot be read or written. drain3 is timed beside ours when installed.
Speeds are the best of N runs (a fresh miner each), ours and drain3's interleaved, in CPU time of this
process: other processes on a busy machine then slow neither side, and a pause hits one run, not the result.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections import defaultdict

from hub.enrich.logs.miner import MinedLine, TemplateMiner


def grouping_accuracy(truth: list[str], pred: list[str]) -> float:
    """GA as the scorer defines it: a line is right when its predicted group equals its true group."""
    by_truth: dict[str, set[int]] = defaultdict(set)
    by_pred: dict[str, set[int]] = defaultdict(set)
    for i, (t, p) in enumerate(zip(truth, pred, strict=True)):
        by_truth[t].add(i)
        by_pred[p].add(i)
    correct = sum(len(m) for m in by_pred.values() if by_truth[truth[next(iter(m))]] == m)
    return correct / len(truth) if truth else 0.0


def _ours_seconds(contents: list[str]) -> tuple[float, list[MinedLine]]:
    miner = TemplateMiner()
    t0 = time.process_time()
    mined = [miner.add(c) for c in contents]
    return time.process_time() - t0, mined


def _drain3_seconds(contents: list[str]) -> float | None:
    try:
        from drain3 import TemplateMiner as Drain3  # type: ignore[import-untyped]
        from drain3.template_miner_config import TemplateMinerConfig  # type: ignore[import-untyped]
    except ImportError:
        return None
    d = Drain3(config=TemplateMinerConfig())  # its defaults, without the "drain3.ini not found" print
    t0 = time.process_time()
    for c in contents:
        d.add_log_message(c)
    return time.process_time() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeat", type=int, default=5, help="runs per system; the best counts (default 5)")
    args = ap.parse_args()
    systems = sorted(d for d in os.listdir(args.data) if os.path.isdir(os.path.join(args.data, d)))
    if not systems:
        print(f"no systems under {args.data}", file=sys.stderr)
        return 1
    scores: list[float] = []
    lines, ours_s, d3_s = 0, 0.0, 0.0  # totals for the overall ratio (all lines over all seconds)
    for s in systems:
        with open(
            os.path.join(args.data, s, f"{s}_2k.log_structured.csv"), newline="", encoding="utf-8"
        ) as f:
            rows = list(csv.DictReader(f))
        contents = [r["Content"] for r in rows]
        ours_t, mined = _ours_seconds(contents)
        d3_t = _drain3_seconds(contents)
        for _ in range(args.repeat - 1):
            ours_t = min(ours_t, _ours_seconds(contents)[0])
            again = _drain3_seconds(contents)
            d3_t = None if d3_t is None or again is None else min(d3_t, again)
        ours = len(contents) / ours_t
        os.makedirs(os.path.join(args.out, s), exist_ok=True)
        with open(
            os.path.join(args.out, s, f"{s}_2k.log_structured.csv"), "w", newline="", encoding="utf-8"
        ) as f:
            w = csv.writer(f)
            w.writerow(["LineId", "EventTemplate"])
            for r, m in zip(rows, mined, strict=True):
                w.writerow([r["LineId"], m.template_id])
        d3 = None if d3_t is None else len(contents) / d3_t
        lines, ours_s, d3_s = lines + len(contents), ours_s + ours_t, d3_s + (d3_t or 0.0)
        line = f"{s:10s} ours {ours:9.0f} lines/s  drain3 {'n/a' if d3 is None else f'{d3:.0f}'} lines/s"
        if d3_t is not None:
            line += f"  ours/drain3 {d3_t / ours_t:.2f}"
        if "EventTemplate" in rows[0]:
            ga = grouping_accuracy([r["EventTemplate"] for r in rows], [m.template_id for m in mined])
            scores.append(ga)
            line += f"  GA {ga:.3f}"
        print(line)
    if scores:
        print(f"{'mean':10s} GA {sum(scores) / len(scores):.3f} over {len(scores)} systems (one config)")
    if d3_s:
        print(
            f"{'overall':10s} ours {lines / ours_s:9.0f} lines/s  drain3 {lines / d3_s:.0f} lines/s"
            f"  ours/drain3 {d3_s / ours_s:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
