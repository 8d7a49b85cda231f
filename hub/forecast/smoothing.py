"""Exponential smoothing with a seasonal term (additive Holt–Winters without trend), on the log of
positive series so that the seasonal swing scales with the level.

The smoothing constants are not optimised per series with a solver: a small grid is run side by side
as numpy vectors (one pass over the history for all of it) and the pair with the least one-step squared
error wins. That is about as accurate on hourly data and costs a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hub.forecast.base import season_period
from shared.model import F64Array

_ALPHAS = (0.05, 0.1, 0.2, 0.4)
_GAMMAS = (0.05, 0.2)


@dataclass(frozen=True, slots=True)
class HoltWinters:
    """Level and seasonal state, smoothed; the forecast is the last level plus the seasonal state."""

    name: str = "holt_winters"
    season: int = 0
    # Seasons of the history used to start the state (the error is counted only after them).
    warmup: int = 2
    # Points smoothed at most: the oldest state is forgotten anyway, and the pass is the cost.
    max_points: int = 672
    models_trend: bool = False

    def min_history(self, periods: tuple[int, ...]) -> int:
        return (self.warmup + 1) * season_period(periods, self.season)

    def predict(self, history: F64Array, horizon: int, periods: tuple[int, ...]) -> F64Array:
        p = season_period(periods, self.season)
        x = history[-self.max_points :]
        x = x[x.shape[0] % p :]  # whole seasons, so phase 0 of the state is phase 0 of the data
        log = bool((x > 0).all())
        z = np.log(x) if log else x
        first = z[: self.warmup * p].reshape(self.warmup, p)
        alpha, gamma = (g.ravel() for g in np.meshgrid(_ALPHAS, _GAMMAS))
        gain = gamma * (1 - alpha)
        level = np.full(alpha.shape, first[0].mean())
        # One row per phase, one column per grid point: each step touches one contiguous row in place.
        season = np.repeat(
            (first - first.mean(axis=1, keepdims=True)).mean(axis=0)[:, None], alpha.shape[0], 1
        )
        sse = np.zeros(alpha.shape)
        start = self.warmup * p
        for t, zt in enumerate(z.tolist()):
            row = season[t % p]
            err = zt - level - row
            if t >= start:
                sse += err * err
            level += alpha * err
            row += gain * err
        best = int(np.argmin(sse))
        phases = np.arange(z.shape[0], z.shape[0] + horizon) % p
        out = level[best] + season[phases, best]
        return np.exp(out) if log else out
