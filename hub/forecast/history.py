"""A series' stored points onto the regular grid the forecasters need: one value per step, gaps filled
by straight lines between their neighbours (a missed poll is not a drop to zero)."""

from __future__ import annotations

import numpy as np

from shared.model import F64Array, I64Array


def regular(timestamps_ms: I64Array, values: F64Array, step_ms: int) -> tuple[int, F64Array]:
    """The points bucketed by `step_ms` (aligned to multiples of it, averaged) from the first bucket with
    a finite value to the last; returns the first bucket's start and one value per bucket."""
    keep = np.isfinite(values)
    ts, vals = timestamps_ms[keep], values[keep]
    if ts.shape[0] == 0:
        return 0, np.empty(0, dtype=np.float64)
    buckets = ts // step_ms
    first = int(buckets[0])
    index = buckets - first
    size = int(index[-1]) + 1
    sums = np.bincount(index, weights=vals, minlength=size)
    counts = np.bincount(index, minlength=size)
    have = counts > 0
    grid = np.arange(size)
    out = np.interp(grid, grid[have], sums[have] / counts[have])
    return first * step_ms, out.astype(np.float64)
