"""The simple seasonal methods: seasonal naive, a seasonal profile of recent seasons, and the same profile
on a robust (Theil–Sen) trend of per-season means, damped.

All are a few vectorized numpy operations on the last seasons of the history (well under a millisecond
for a month of hourly points), so the back-test can afford to refit each of them at several origins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hub.forecast.base import season_period
from shared.model import F64Array

# A MAD of zero (a perfectly regular series) must not make the trend look certain beyond what the
# per-step noise allows: 1.4826 turns a MAD into a standard deviation for normal noise.
_MAD_TO_SD = 1.4826


def _seasons(history: F64Array, period: int, keep: int) -> F64Array:
    """The last whole seasons of `history` (at most `keep`), one per row, aligned to its end."""
    n = min(history.shape[0] // period, keep)
    return history[history.shape[0] - n * period :].reshape(n, period)


@dataclass(frozen=True, slots=True)
class SeasonalNaive:
    """Each step repeats the value one season earlier: the benchmark every other method must beat."""

    name: str = "seasonal_naive"
    season: int = 0  # index into `periods`
    models_trend: bool = False

    def min_history(self, periods: tuple[int, ...]) -> int:
        return season_period(periods, self.season)

    def predict(self, history: F64Array, horizon: int, periods: tuple[int, ...]) -> F64Array:
        p = season_period(periods, self.season)
        return np.resize(history[-p:], horizon).astype(np.float64)


@dataclass(frozen=True, slots=True)
class Profile:
    """The seasonal shape of the last seasons (median per phase, so one odd season does not bend it) and
    the mean of the last season. Multiplicative when every value is positive (the daily swing of traffic
    or power grows with its level), additive otherwise (utilization percentages touching zero)."""

    level: float
    shape: F64Array  # one value per phase of the period, ending at the history's last step
    multiplicative: bool
    season_means: F64Array
    residual_sd: float  # per step, around the fitted shape

    @classmethod
    def fit(cls, history: F64Array, period: int, keep: int, detrend: bool = False) -> Profile:
        """The profile of the last `keep` seasons; with `detrend`, the shape is taken around the trend
        of the season means (within each season too), so steady growth is not mistaken for a sawtooth
        shape that climbs every season and drops back at its end."""
        seg = _seasons(history, period, keep)
        means = seg.mean(axis=1)
        slope = _theil_sen(means) / period if detrend else 0.0
        base = means[:, None] + slope * (np.arange(period) - (period - 1) / 2)
        multiplicative = bool((seg > 0).all() and (base > 0).all())
        if multiplicative:
            shape = np.median(seg / base, axis=0)
            fitted = base * shape
        else:
            shape = np.median(seg - base, axis=0)
            fitted = base + shape
        k = seg.shape[0]
        # The shape is fitted to these very seasons: the raw scatter understates the noise by k/(k-1).
        residual_sd = float(np.std(seg - fitted)) * np.sqrt(k / (k - 1)) if k > 1 else 0.0
        return cls(float(means[-1]), shape, multiplicative, means, residual_sd)

    def extend(self, trend: F64Array) -> F64Array:
        """The forecast for `len(trend)` steps, `trend` being the level at each of them."""
        base = np.resize(self.shape, trend.shape[0])
        return trend * base if self.multiplicative else trend + base


@dataclass(frozen=True, slots=True)
class SeasonalProfile:
    """The seasonal profile of the last `keep` seasons on the last season's level (no trend)."""

    name: str = "seasonal_profile"
    season: int = 0
    keep: int = 7
    models_trend: bool = False

    def min_history(self, periods: tuple[int, ...]) -> int:
        return 2 * season_period(periods, self.season)

    def predict(self, history: F64Array, horizon: int, periods: tuple[int, ...]) -> F64Array:
        profile = Profile.fit(history, season_period(periods, self.season), self.keep)
        return profile.extend(np.full(horizon, profile.level))


@dataclass(frozen=True, slots=True)
class RobustTrend:
    """The seasonal profile on a Theil–Sen trend of per-season means, damped by `damping` per season.

    Theil–Sen (the median of pairwise slopes) ignores a few odd seasons (a log rotation, a backup night)
    that would tilt a least-squares line; damping keeps a short burst of growth from being extrapolated
    at full slope for a month. The uncertainty of that trend (`drift`) widens the bands of whichever
    method is chosen (`select`).
    """

    name: str = "robust_trend"
    season: int = 0
    keep: int = 28
    damping: float = 0.98
    models_trend: bool = True

    def min_history(self, periods: tuple[int, ...]) -> int:
        return 3 * season_period(periods, self.season)

    def predict(self, history: F64Array, horizon: int, periods: tuple[int, ...]) -> F64Array:
        p = season_period(periods, self.season)
        profile = Profile.fit(history, p, self.keep, detrend=True)
        slope = _theil_sen(profile.season_means) / p
        phi = self.damping ** (1.0 / p)
        steps = np.arange(1, horizon + 1)
        # The last season's mean is the level half a season before the end; undamped up to the end.
        damped = phi * (1 - phi**steps) / (1 - phi) if phi < 1 else steps.astype(np.float64)
        return profile.extend(profile.level + slope * ((p - 1) / 2 + damped))


def drift(history: F64Array, period: int, keep: int = 28) -> tuple[float, float]:
    """The history's trend per step (Theil–Sen over its last `keep` season means) and its standard error.

    The error comes from the scatter of those means around their line, but never below what the per-step
    noise alone implies (a mean of `period` steps): a short or very regular history does not make the
    future level look certain. Both are zero with fewer than two seasons (no trend can be seen at all).
    """
    profile = Profile.fit(history, period, keep, detrend=True)
    means = profile.season_means
    n = means.shape[0]
    if n < 2:
        return 0.0, 0.0
    slope = _theil_sen(means)
    t = np.arange(n, dtype=np.float64)
    resid = means - slope * t
    spread = _MAD_TO_SD * float(np.median(np.abs(resid - np.median(resid))))
    floor = profile.residual_sd / np.sqrt(period)
    sxx = float(((t - t.mean()) ** 2).sum())
    return slope / period, max(spread, floor) / np.sqrt(sxx) / period


def _theil_sen(y: F64Array) -> float:
    """The median of the slopes between every pair of points of `y` (one per unit of its index)."""
    n = y.shape[0]
    if n < 2:
        return 0.0
    i, j = np.triu_indices(n, 1)
    return float(np.median((y[j] - y[i]) / (j - i)))
