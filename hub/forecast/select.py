"""Picks the method per series by a rolling back-test, and puts honest bands around its forecast.

The back-test hides the last `origins` windows of the history in turn, forecasts each from what came
before it and scores every candidate by its mean absolute error scaled by the in-sample seasonal naive
error (MASE, so errors compare across series). The best candidate forecasts from the whole history;
its back-test error is kept and shown with the forecast.

Bands come from that same back-test: the 10th and 90th percentiles of the signed errors, by how far
ahead they were made (never narrowing with distance; beyond the back-tested window, those of its last
part), combined with the uncertainty of the history's trend times the steps ahead (`naive.drift`).
Nothing widens them further with distance: a stationary series stays as uncertain as the back-test
found it. A short back-test cannot tell a month-long drift from noise, so when the chosen method keeps
the level flat, the band on the drift's side also widens by the part of the trend beyond its noise:
a series clearly growing is never forecast as safely flat just because a day ahead it looks so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hub.forecast.base import Forecaster, ForecastError, NotEnoughHistory
from hub.forecast.naive import drift
from shared.model import F64Array

MAX_HORIZON = 100_000
ORIGINS = 2
# The normal quantile of the 90th percentile: trend uncertainty enters the bands at this many errors.
_Z90 = 1.2816
# A trend the chosen method ignores widens its band only beyond this many standard errors (~98 %).
_Z_CLEAR = 2.0
# Error quantiles are taken over this many chunks of the back-test window, each from every origin.
_CHUNKS = 4


@dataclass(frozen=True, slots=True)
class Prediction:
    """A forecast of `horizon` steps with its 80 % band and how the method was chosen."""

    yhat: F64Array
    p10: F64Array
    p90: F64Array
    method: str
    # The chosen method's back-test error (MASE: 1.0 is as good as seasonal naive in-sample).
    backtest_mase: float
    # Every candidate that could be back-tested, with its error, best first.
    errors: tuple[tuple[str, float], ...]
    backtest_steps: int
    origins: int


def backtest_window(n: int, horizon: int, periods: tuple[int, ...]) -> int:
    """Steps each back-test origin forecasts: the horizon, but at most a sixth of the history (a month
    ahead cannot be back-tested on a month of data) and never less than a season."""
    return max(1, min(horizon, max(periods[0], n // 6)))


def forecast(
    history: F64Array,
    horizon: int,
    periods: tuple[int, ...],
    candidates: Sequence[Forecaster],
    origins: int = ORIGINS,
) -> Prediction:
    """Back-tests `candidates` on `history`, forecasts `horizon` steps with the best one.

    Raises:
        NotEnoughHistory: no candidate can be back-tested at even one origin.
        ForecastError: a bad argument (empty or non-finite history, horizon or periods out of range).
    """
    x = np.asarray(history, dtype=np.float64)
    _check(x, horizon, periods, candidates)
    n = x.shape[0]
    bt = backtest_window(n, horizon, periods)
    cheapest = min(c.min_history(periods) for c in candidates)
    k = min(origins, (n - cheapest) // bt)
    if k < 1:
        raise NotEnoughHistory(n, cheapest + bt)
    scale = _scale(x, periods[0])
    results: list[tuple[float, str, Forecaster, F64Array]] = []
    for c in candidates:
        if n - k * bt < c.min_history(periods):
            continue  # compared only on the origins every candidate shares
        errs = np.empty((k, bt))
        for o in range(k):
            cut = n - (k - o) * bt
            errs[o] = x[cut : cut + bt] - c.predict(x[:cut], bt, periods)
        results.append((float(np.mean(np.abs(errs))) / scale, c.name, c, errs))
    results.sort(key=lambda r: r[0])
    score, name, best, errs = results[0]
    yhat = best.predict(x, horizon, periods)
    lo, hi = _bands(errs, horizon)
    steps = np.arange(1, horizon + 1)
    slope, se = drift(x, periods[0])
    lo, hi = np.hypot(lo, _Z90 * se * steps), np.hypot(hi, _Z90 * se * steps)
    if not best.models_trend:
        # The method keeps the level flat: its band admits the part of the trend that is clearly there.
        clear = max(0.0, abs(slope) - _Z_CLEAR * se)
        if slope > 0:
            hi = hi + clear * steps
        else:
            lo = lo + clear * steps
    return Prediction(
        yhat=yhat,
        p10=yhat - lo,
        p90=yhat + hi,
        method=name,
        backtest_mase=score,
        errors=tuple((r[1], r[0]) for r in results),
        backtest_steps=bt,
        origins=k,
    )


def _check(x: F64Array, horizon: int, periods: tuple[int, ...], candidates: Sequence[Forecaster]) -> None:
    if x.ndim != 1 or x.shape[0] == 0 or not bool(np.isfinite(x).all()):
        raise ForecastError("history must be a non-empty 1-D array of finite values")
    if not 1 <= horizon <= MAX_HORIZON:
        raise ForecastError(f"horizon must be 1 .. {MAX_HORIZON} steps")
    if not periods or any(p < 1 for p in periods) or list(periods) != sorted(periods):
        raise ForecastError("periods must be positive step counts, shortest first")
    if not candidates:
        raise ForecastError("no candidate method")


def _scale(x: F64Array, period: int) -> float:
    """The in-sample seasonal naive MAE (the MASE denominator); a constant series gets its level's size."""
    p = period if x.shape[0] > period else 1
    d = float(np.mean(np.abs(x[p:] - x[:-p]))) if x.shape[0] > p else 0.0
    return d if d > 0 else max(float(np.mean(np.abs(x))), 1e-9)


def _bands(errs: F64Array, horizon: int) -> tuple[F64Array, F64Array]:
    """Distances below and above the forecast of its 10th and 90th percentile, per step ahead."""
    bt = errs.shape[1]
    edges = np.linspace(0, bt, min(_CHUNKS, bt) + 1).astype(int)
    lo = np.array([max(0.0, -np.quantile(errs[:, a:b], 0.1)) for a, b in zip(edges, edges[1:], strict=False)])
    hi = np.array([max(0.0, np.quantile(errs[:, a:b], 0.9)) for a, b in zip(edges, edges[1:], strict=False)])
    lo, hi = np.maximum.accumulate(lo), np.maximum.accumulate(hi)
    chunk = np.minimum(np.searchsorted(edges[1:], np.arange(horizon), side="right"), lo.shape[0] - 1)
    return lo[chunk], hi[chunk]
