"""The hub's second stage on NAB: every file is a device with one series, confirmed from its own past.

For each file the context rows are `hub.confirm.features` of that one series; a forest is fitted with
the hub's `ConfirmConfig` (its history, refit interval, minimum rows and quantile turned into points at
the file's own step) on rows strictly before the refit point, and judges every point the edge scored
above zero until the next refit: no look-ahead. A dismissed point's score becomes 0, below any threshold;
points before the first fit keep their edge score (as `unscored` onsets page at the hub).
Also scores both stages with NAB's scorer and counts false-positive rows and detected windows.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from hub.confirm import features, iforest
from hub.confirm.config import ConfirmConfig
from hub.confirm.verdict import DISMISSED, judge
from shared.model import F64Array, I64Array

# Points the edge scored at least this are onsets to judge: half the agent's most sensitive threshold
# (0.4), so no sensible threshold reaches a point left unjudged.
CANDIDATE = 0.2
# The hub's defaults but for time: NAB files are weeks to months of 5-minute points, so a weekly refit on
# the last two weeks (a two-day history sees one weekend at best; hourly refits would be ~2,000 fits of
# ~0.5 s per file on this machine). On one edge run (58.1 standard, 311 FP rows, 60 windows) at a weekly
# refit: 2 weeks and quantile 0.995 gave 60.6 / 246 / 58, 4 weeks 62.6 / 249 / 60, 4 weeks at 0.998
# 58.9 / 187 / 54, and this (2 weeks, 0.998) 61.7 / 174 / 55: the most false positives removed for at
# most 10 % of windows lost.
NAB_CONFIRM = ConfirmConfig(refit_s=7 * 86_400.0, history_s=14 * 86_400.0)


def confirm_series(ts_ms: I64Array, values: F64Array, scores: F64Array, config: ConfirmConfig) -> F64Array:
    """The two-stage scores of one series: its edge scores with dismissed onsets set to 0."""
    step = int(np.median(np.diff(ts_ms))) if ts_ms.shape[0] > 1 else 1
    ctx = features.context(("value",), values[None, :], max(step, 1))
    history = max(1, int(config.history_s * 1000 // step))
    refit = max(1, int(config.refit_s * 1000 // step))
    out = scores.copy()
    for start in range(ctx.ready + config.min_rows, values.shape[0], refit):
        candidates = start + np.flatnonzero(scores[start : start + refit] >= CANDIDATE)
        if not candidates.size:
            continue
        rows = ctx.rows[max(ctx.ready, start - history) : start]
        forest = iforest.fit(rows, ctx.names, config.quantile, seed=0)
        for i, j in zip(candidates.tolist(), judge(forest, ctx.rows[candidates]), strict=True):
            if j.verdict == DISMISSED:
                out[i] = 0.0
    return out


def nab_scorer(repo: Path) -> ModuleType:
    """NAB's scorer from the shared tools beside the repo (benches may read ../shared; tests never)."""
    tools = repo.parent / "shared" / "tools"
    sys.path.insert(0, str(tools))
    import nab_score  # noqa: PLC0415 - only present beside a checkout with the shared tools

    return nab_score


def report(scorer_module: ModuleType, nab_root: Path, stages: dict[str, dict[str, F64Array]]) -> None:
    """Prints per stage: standard score, per-category raw and normalised scores, FP rows and windows
    detected, each at that stage's own optimised standard threshold."""
    sc = scorer_module.NABScorer(str(nab_root))
    profile = scorer_module.PROFILES["standard"]
    for name, results in stages.items():
        r = sc.score(results, per_file=True)["standard"]
        s_all, _, w_all, _ = sc._concat(results, "standard")
        detected = np.unique(w_all[(s_all >= r["threshold"]) & (w_all >= 0)]).size
        print(
            f"{name:10s} standard {r['normalized']:6.2f}  threshold {r['threshold']:.4f}  "
            f"FP rows {r['fp_rows']}  windows detected {detected}/{sc.n_windows}"
        )
        cats: dict[str, list[float]] = {}
        for rel, raw in r["per_file_raw"].items():
            c = cats.setdefault(rel.split("/")[0], [0.0, 0.0])
            c[0] += raw
            c[1] += len(sc.windows[rel])
        for cat, (raw, nw) in cats.items():
            norm = (
                100.0 * (raw + profile["fnWeight"] * nw) / (nw * (profile["tpWeight"] + profile["fnWeight"]))
                if nw
                else float("nan")
            )
            print(f"    {cat:24s} raw {raw:8.2f} over {int(nw):3d} windows  (normalised {norm:6.1f})")
