"""Every registered method on the same histories (a conformance pass over the registry), and what each
simple method is for."""

from __future__ import annotations

import numpy as np
import pytest

from hub.forecast.base import UnknownMethod
from hub.forecast.methods import AUTO, DEFAULT_CANDIDATES, FORECASTERS, candidates
from hub.forecast.naive import RobustTrend, SeasonalNaive, SeasonalProfile, drift
from hub.forecast.smoothing import HoltWinters

pytestmark = pytest.mark.unit

PERIODS = (24, 168)
RNG = np.random.default_rng(7)
T = np.arange(24 * 21)
SEASONAL = 50 + 10 * np.sin(2 * np.pi * T / 24) + RNG.normal(0, 1, T.shape[0])

# Prophet has its own test (test_prophet.py): importing it alone takes seconds.
_FAST = [n for n in FORECASTERS if n != "prophet"]


@pytest.mark.parametrize("name", _FAST)
def test_every_method_forecasts_the_horizon_with_finite_values_from_its_minimum_history(name: str) -> None:
    method = FORECASTERS[name]
    need = method.min_history(PERIODS)
    for history in (SEASONAL, SEASONAL[-need:], -SEASONAL):  # full, minimal, negative values
        out = method.predict(history, 48, PERIODS)
        assert out.shape == (48,) and out.dtype == np.float64 and np.isfinite(out).all()
    assert method.name == name


@pytest.mark.parametrize("name", _FAST)
def test_every_default_method_is_deterministic_and_tracks_a_clean_daily_cycle(name: str) -> None:
    method = FORECASTERS[name]
    clean = 50 + 10 * np.sin(2 * np.pi * T / 24)
    first, again = method.predict(clean, 48, PERIODS), method.predict(clean, 48, PERIODS)
    assert np.array_equal(first, again)
    truth = 50 + 10 * np.sin(2 * np.pi * np.arange(T.shape[0], T.shape[0] + 48) / 24)
    assert np.abs(first - truth).max() < 1.0


def test_seasonal_naive_repeats_the_last_season() -> None:
    out = SeasonalNaive().predict(SEASONAL, 30, PERIODS)
    assert np.array_equal(out[:24], SEASONAL[-24:]) and np.array_equal(out[24:], SEASONAL[-24:-18])


def test_profile_takes_the_median_shape_so_one_odd_day_does_not_bend_it() -> None:
    clean = 50 + 10 * np.sin(2 * np.pi * T / 24)
    odd = clean.copy()
    odd[-48:-24] += 40  # yesterday a backup ran all day
    out = SeasonalProfile().predict(odd, 24, PERIODS)
    shape = out - out.mean()
    assert np.abs(shape - (clean[-24:] - clean[-24:].mean())).max() < 0.5


def test_robust_trend_extrapolates_growth_and_shrugs_off_an_outlier_day() -> None:
    growing = 40 + 2.0 * T / 24 + 5 * np.sin(2 * np.pi * T / 24)
    growing[24 * 10 : 24 * 11] += 100  # one odd day that would tilt a least-squares line
    slope, se = drift(growing, 24)
    assert slope * 24 == pytest.approx(2.0, rel=0.05) and se < 0.05
    out = RobustTrend(damping=1.0).predict(growing, 24 * 7, PERIODS)
    expected_mean = 40 + 2.0 * (T.shape[0] + 24 * 3.5) / 24
    assert out[-24:].mean() == pytest.approx(expected_mean + 2.0 * 3, rel=0.03)


def test_holt_winters_follows_a_level_shift_that_a_profile_of_old_days_would_not() -> None:
    shifted = SEASONAL.copy()
    shifted[-72:] += 30
    hw = HoltWinters().predict(shifted, 24, PERIODS)
    assert hw.mean() == pytest.approx(80, abs=5)


def test_candidates_are_auto_or_a_registered_name_and_anything_else_is_refused() -> None:
    assert [c.name for c in candidates(AUTO)] == list(DEFAULT_CANDIDATES)
    assert "prophet" not in DEFAULT_CANDIDATES
    assert [c.name for c in candidates("holt_winters")] == ["holt_winters"]
    with pytest.raises(UnknownMethod, match="unknown method 'nope'"):
        candidates("nope")
