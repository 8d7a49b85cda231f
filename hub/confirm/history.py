"""A device's recent series read from the store onto one time grid (series x steps), for its context.

The grid step is the device's poll interval as its points show it (the median gap between points), so
one missed poll is one empty cell, filled forward by the features, never a stretched baseline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from hub.matchers import Matcher, MatchOp
from hub.store.base import AGENT_LABEL, RangeQuery, Store
from shared.model import F64Array, I64Array, SeriesKey

DEVICE_LABEL = "device"
MIN_STEP_MS = 1000
# Steps of one read at most, whatever step and range: bounds the memory one device's context takes.
MAX_STEPS = 20_000


@dataclass(frozen=True, slots=True, eq=False)
class DeviceHistory:
    """`values[k, i]` is series `series[k]` in the step starting at `first_ms + i * step_ms` (NaN: none)."""

    series: tuple[str, ...]
    values: F64Array
    step_ms: int
    first_ms: int

    @property
    def steps(self) -> int:
        return int(self.values.shape[1])

    def column_of(self, ts_ms: int) -> int:
        """The step holding `ts_ms`, clipped to the grid."""
        return int(np.clip((ts_ms - self.first_ms) // self.step_ms, 0, self.steps - 1))


def series_name(metric: str, labels: tuple[tuple[str, str], ...]) -> str:
    """A series' name within its device: the metric and its labels but the agent and device."""
    inner = ",".join(f'{k}="{v}"' for k, v in labels if k not in (AGENT_LABEL, DEVICE_LABEL))
    return f"{metric}{{{inner}}}"


def read_history(
    store: Store,
    agent: str,
    device: str,
    start_ms: int,
    end_ms: int,
    max_series: int,
    series: tuple[str, ...] | None = None,
    step_ms: int | None = None,
) -> DeviceHistory | None:
    """The device's series in [start_ms, end_ms] on one grid; None when it has no points there.

    Args:
        series: the series to read, in this order (a fitted model's columns); default the device's
            first `max_series` by name.
        step_ms: the grid step (a fitted model's); default the median gap between the points read.
    """
    matchers = (Matcher(AGENT_LABEL, MatchOp.EQ, agent), Matcher(DEVICE_LABEL, MatchOp.EQ, device))
    keys = store.series(None, matchers)
    by_name: dict[str, SeriesKey] = {series_name(k.metric, k.labels): k for k in keys}
    names = series if series is not None else tuple(sorted(by_name)[:max_series])
    wanted = {by_name[n].metric for n in names if n in by_name}
    points: dict[str, tuple[I64Array, F64Array]] = {}
    for metric in sorted(wanted):
        for r in store.query(RangeQuery(metric, start_ms, end_ms, matchers)):
            name = series_name(r.key.metric, r.key.labels)
            if name in names:
                points[name] = (r.timestamps_ms, r.values)
    if not points:
        return None
    step = step_ms or _median_gap(points.values())
    last = max(int(ts[-1]) for ts, _ in points.values())
    first_point = min(int(ts[0]) for ts, _ in points.values())
    # The last step holds the newest point; one spare step keeps the oldest point on the grid.
    steps = int(min((last - first_point) // step + 2, MAX_STEPS))
    first = last - (steps - 1) * step
    sums = np.zeros((len(names), steps))
    counts = np.zeros((len(names), steps))
    for k, name in enumerate(names):
        if name not in points:
            continue
        ts, vals = points[name]
        col = (ts - first) // step
        keep = (col >= 0) & (col < steps) & np.isfinite(vals)
        np.add.at(sums[k], col[keep], vals[keep])
        np.add.at(counts[k], col[keep], 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(counts > 0, sums / counts, np.nan)
    return DeviceHistory(names, values, step, first)


def _median_gap(points: Iterable[tuple[I64Array, F64Array]]) -> int:
    gaps = [np.diff(ts) for ts, _ in points]
    pooled = np.concatenate([g[g > 0] for g in gaps]) if gaps else np.array([])
    return max(MIN_STEP_MS, int(np.median(pooled))) if pooled.size else MIN_STEP_MS
