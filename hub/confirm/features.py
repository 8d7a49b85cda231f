"""Context features of a device at every point of its recent history, from its series on one time grid.

Each row describes the device at one time step, from what was known then (trailing windows only, so a
row never looks ahead): per series its robust z against the trailing window and its seasonal residual
against the same time one day earlier; on a device with several series, each series' coupling
residuals: its z and the robust z of its rate of change minus the median of the device's other series.
Under load CPU, traffic and temperature rise together (small residuals, however steep the rise); a
temperature jump with everything else steady does not. A device with one series has nothing to be
coupled to: its own rate of change stands in.
The same function builds the training rows (all history) and the rows scored for onsets (their times),
so a fitted forest and the rows it scores always agree on columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from shared.model import F64Array

# Trailing window the baselines are taken over, in points (a day of 5-minute samples).
WINDOW = 288
DAY_MS = 86_400_000
STRIDE = 12  # steps a baseline is reused for (see _robust_z)
CLIP = 50.0  # |z| beyond this carries no more information and would dominate the splits
_MAD_TO_SIGMA = 1.4826
PER_SERIES = ("z", "season")
LONE = ("dz",)  # per series, on a device of one series only
COUPLED = ("z", "dz")


@dataclass(frozen=True, slots=True, eq=False)
class Context:
    """Feature rows of a device: `rows[i]` describes time step `i` of the grid it was built on."""

    names: tuple[str, ...]
    rows: F64Array  # (steps, len(names))
    ready: int  # rows before this index lack a full trailing window: not used for fitting


def lookback_steps(step_ms: int) -> int:
    """Steps of history before a step for its every feature to have a full baseline (a day and a window)."""
    return DAY_MS // step_ms + WINDOW + 2


def feature_names(series: tuple[str, ...]) -> tuple[str, ...]:
    """Column names for a device's series, in order: `<series>:<feature>`."""
    if len(series) == 1:
        return tuple(f"{series[0]}:{f}" for f in (*PER_SERIES, *LONE))
    per = [f"{s}:{f}" for s in series for f in PER_SERIES]
    return tuple(per + [f"{s}:coupled_{f}" for f in COUPLED for s in series])


def context(
    series: tuple[str, ...],
    values: F64Array,
    step_ms: int,
    at: npt.NDArray[np.intp] | None = None,
    window: int = WINDOW,
) -> Context:
    """Feature rows for `values` (series x steps, NaN where a series has no point) on a grid of `step_ms`.

    Args:
        at: the steps to describe (an onset's step), default every step; each costs the same whatever
            the history length, so scoring a tick's onsets does not redo the training rows.

    Raises:
        ValueError: `values` is not (len(series), steps), the step is not positive, or `at` is outside.
    """
    if values.ndim != 2 or values.shape[0] != len(series) or step_ms <= 0 or values.shape[1] == 0:
        raise ValueError(f"need ({len(series)}, steps > 0) values on a positive step, got {values.shape}")
    steps = values.shape[1]
    at = np.arange(steps) if at is None else np.asarray(at, dtype=np.intp)
    if at.size and (at.min() < 0 or at.max() >= steps):
        raise ValueError(f"steps to describe must be in 0..{steps - 1}")
    x = _fill_forward(values)
    dx = np.diff(x, axis=1, prepend=x[:, :1])
    per: dict[str, F64Array] = {"z": _robust_z(x, at, window), "dz": _robust_z(dx, at, window)}
    season_lag = DAY_MS // step_ms
    per["season"] = np.zeros_like(per["z"])
    if 0 < season_lag < steps:
        diff = np.zeros_like(x)
        diff[:, season_lag:] = x[:, season_lag:] - x[:, :-season_lag]
        per["season"] = _robust_z(diff, at, window)
        per["season"][:, at < season_lag + window] = 0.0  # no full day-ago baseline yet
    if len(series) == 1:
        parts = [per[f][0] for f in (*PER_SERIES, *LONE)]
    else:
        parts = [per[f][k] for k in range(len(series)) for f in PER_SERIES]
        for f in COUPLED:
            v = per[f]
            others = np.stack([np.median(np.delete(v, k, axis=0), axis=0) for k in range(len(series))])
            parts += list(np.clip(v - others, -CLIP, CLIP))
    rows = np.nan_to_num(np.stack(parts, axis=1), nan=0.0, posinf=CLIP, neginf=-CLIP)
    return Context(feature_names(series), rows, int(np.searchsorted(at, window + 1)))


def _fill_forward(values: F64Array) -> F64Array:
    """A missed poll repeats the last value (0 before a series' first point), so gaps are not jumps."""
    x = values.astype(np.float64, copy=True)
    missing = ~np.isfinite(x)
    idx = np.where(missing, 0, np.arange(x.shape[1])[None, :])
    np.maximum.accumulate(idx, axis=1, out=idx)
    x = np.take_along_axis(x, idx, axis=1)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def _trailing(x: F64Array, at: npt.NDArray[np.intp], window: int) -> F64Array:
    """(series, len(at), window): the `window` points before each step of `at`; before the first full
    window the first point stands in for the missing past (those rows are not `ready`)."""
    padded = np.concatenate([np.repeat(x[:, :1], window, axis=1), x], axis=1)
    return np.asarray(sliding_window_view(padded[:, :-1], window, axis=1)[:, at, :])


def _robust_z(x: F64Array, at: npt.NDArray[np.intp], window: int) -> F64Array:
    """(x - trailing median) / trailing robust scale at the steps `at`; the scale never falls below a
    small share of the level, so a flat series that moves by a hair is not infinitely surprising.

    The baseline of a step is the window before the last multiple of `STRIDE` at or before it: a day's
    median moves little in a few steps, and the rolling medians are most of a fit's cost (STRIDE x less).
    """
    base = at - at % STRIDE
    anchors, which = np.unique(base, return_inverse=True)
    past = _trailing(x, anchors, window)
    med = np.median(past, axis=2)
    dev = np.abs(past - med[:, :, None])
    mad, mean_dev = np.median(dev, axis=2), dev.mean(axis=2)
    scale = np.fmax(np.fmax(_MAD_TO_SIGMA * mad, 0.5 * mean_dev), 1e-6 * (1.0 + np.abs(med)))
    return np.clip((x[:, at] - med[:, which]) / scale[:, which], -CLIP, CLIP)
