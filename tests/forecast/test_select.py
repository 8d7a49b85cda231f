"""Back-test selection, bands, time to threshold, the raise/resolve tracker, history gridding, threshold
sources and config bounds."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from hub.bus.messages import LimitCrossed
from hub.forecast.base import ForecastError, NotEnoughHistory
from hub.forecast.config import ForecastConfig, ThresholdRule
from hub.forecast.crossing import CrossingTracker, Direction, Phase, time_to_threshold
from hub.forecast.history import regular
from hub.forecast.methods import FORECASTERS, candidates
from hub.forecast.select import backtest_window, forecast
from hub.forecast.thresholds import DeviceLimits
from shared.model import SeriesKey

pytestmark = pytest.mark.unit

PERIODS = (24, 168)


def _weekly(days: int, seed: int = 0) -> np.ndarray:
    """Hourly traffic with a daily cycle and quiet weekends, multiplicative, with noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * 24)
    weekday = ((t // 24) % 7 < 5).astype(float)
    return (100 + 50 * weekday) * (1 + 0.4 * np.sin(2 * np.pi * t / 24)) + rng.normal(0, 3, t.shape[0])


def test_selection_keeps_every_candidates_error_and_picks_the_weekly_shape_for_weekly_data() -> None:
    x = _weekly(35)
    p = forecast(x, 48, PERIODS, candidates("auto"))
    names = [n for n, _ in p.errors]
    assert set(names) == {c.name for c in candidates("auto")}
    assert [e for _, e in p.errors] == sorted(e for _, e in p.errors)
    assert p.method == names[0] == "weekly_profile" and p.backtest_mase == p.errors[0][1]
    assert p.origins == 2 and p.backtest_steps == 48
    truth = _weekly(37)[-48:]
    assert np.mean(np.abs(p.yhat - truth)) < np.mean(np.abs(np.resize(x[-24:], 48) - truth))


def test_bands_hold_about_eighty_percent_of_what_comes_next() -> None:
    inside = []
    for seed in range(12):
        full = _weekly(30, seed)
        p = forecast(full[:-48], 48, PERIODS, candidates("auto"))
        future = full[-48:]
        assert (p.p10 <= p.yhat).all() and (p.yhat <= p.p90).all()
        inside.append(np.mean((future >= p.p10) & (future <= p.p90)))
    assert 0.6 <= float(np.mean(inside)) <= 0.97


def test_back_test_window_is_the_horizon_but_at_most_a_sixth_of_the_history_and_at_least_a_season() -> None:
    assert backtest_window(700, 48, PERIODS) == 48
    assert backtest_window(672, 720, PERIODS) == 112
    assert backtest_window(60, 720, PERIODS) == 24


def test_too_little_history_and_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(NotEnoughHistory, match="30 points of history, at least 48 needed"):
        forecast(np.ones(30), 48, PERIODS, candidates("auto"))
    for bad in (np.array([1.0, np.nan] * 50), np.ones((10, 10)), np.empty(0)):
        with pytest.raises(ForecastError):
            forecast(bad, 10, PERIODS, candidates("auto"))
    with pytest.raises(ForecastError, match="horizon"):
        forecast(np.ones(500), 0, PERIODS, candidates("auto"))
    with pytest.raises(ForecastError, match="periods"):
        forecast(np.ones(500), 10, (168, 24), candidates("auto"))


def test_a_constant_series_is_forecast_flat_with_a_zero_band() -> None:
    p = forecast(np.full(24 * 10, 5.0), 24, PERIODS, (FORECASTERS["seasonal_naive"],))
    assert np.array_equal(p.yhat, np.full(24, 5.0)) and np.array_equal(p.p10, p.p90)


def test_time_to_threshold_reads_p10_from_the_far_band_and_equal_is_not_a_crossing() -> None:
    x = np.arange(24 * 10, dtype=np.float64)  # +1 a step, no noise
    p = forecast(x, 100, PERIODS, (FORECASTERS["robust_trend"],))
    t = time_to_threshold(p, float(x[-1]) + 50, Direction.ABOVE)
    assert t.p10 is not None and t.p50 is not None and t.p10 <= t.p50
    assert time_to_threshold(p, 1e9, Direction.ABOVE).p50 is None
    below = time_to_threshold(p, float(x[-1]), Direction.BELOW)
    assert below.p50 is None  # rising away from a low limit


def test_tracker_raises_at_once_and_resolves_only_after_three_clear_evaluations() -> None:
    t = CrossingTracker(resolve_after=3)
    assert t.update("s", False) is None
    assert [t.update("s", c) for c in (True, True, False, False, True)] == [Phase.ONSET] * 2 + [None] * 2 + [
        Phase.ONSET
    ]
    assert [t.update("s", False) for _ in range(3)] == [None, None, Phase.END]
    assert t.raised() == set() and t.update("s", False) is None


def test_history_is_bucketed_onto_the_step_with_gaps_drawn_straight() -> None:
    ts = np.array([0, 1_000, 3_600_000, 4 * 3_600_000 + 5], dtype=np.int64)
    vals = np.array([1.0, 3.0, 4.0, 10.0])
    start, grid = regular(ts, vals, 3_600_000)
    assert start == 0 and grid.tolist() == [2.0, 4.0, 6.0, 8.0, 10.0]
    assert regular(ts[:0], vals[:0], 3_600_000)[1].shape == (0,)
    assert regular(ts, np.full(4, np.nan), 3_600_000)[1].shape == (0,)


async def test_device_limits_are_learnt_per_series_and_health_states_are_ignored() -> None:
    limits = DeviceLimits(max_series=2)

    def msg(metric: str, name: str, value: float) -> LimitCrossed:
        return LimitCrossed.create(
            agent="dc1/e1",
            device="pdu1",
            metric=metric,
            labels=(("device", "pdu1"),),
            ts_ms=1,
            value=1.0,
            limit_name=name,
            limit_value=value,
            phase="end",
        )

    await limits.handle(msg("pdu_power_watts", "crit_high", 7200.0))
    await limits.handle(msg("hw_health", "health_warning", 1.0))
    await limits.handle(msg("battery_percent", "warn_low", 20.0))
    key = SeriesKey.of("pdu_power_watts", {"device": "pdu1", "agent": "dc1/e1"})
    got = limits.get(key)
    assert got is not None
    assert (got.value, got.source, got.direction) == (7200.0, "device crit_high", Direction.ABOVE)
    low = limits.get(SeriesKey.of("battery_percent", {"device": "pdu1", "agent": "dc1/e1"}))
    assert low is not None and low.direction is Direction.BELOW
    assert len(limits.keys()) == 2
    await limits.handle(msg("inlet_temp", "crit_high", 40.0))  # over the bound: the oldest goes
    assert limits.get(key) is None and len(limits.keys()) == 2


def test_config_is_bounded_and_a_rule_names_exactly_one_source() -> None:
    with pytest.raises(ValidationError, match="exactly one of value or capacity_metric"):
        ThresholdRule(metric="x")
    with pytest.raises(ValidationError, match="exactly one"):
        ThresholdRule(metric="x", value=1.0, capacity_metric="y")
    with pytest.raises(ValidationError, match="method must be auto"):
        ForecastConfig(method="magic")
    with pytest.raises(ValidationError):
        ForecastConfig(cpu_share=0)
    with pytest.raises(ValidationError):
        ForecastConfig(unknown=1)  # type: ignore[call-arg]
    assert ForecastConfig().thresholds[0].capacity_metric == "device_storage_size_bytes"
