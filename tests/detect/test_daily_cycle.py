"""The daily cycle learned from the data: its breaks page, its routine steps and plain noise do not."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from shared.detect import seasonal
from shared.model import SeriesKey
from tests.detect.conftest import MINUTE_MS, bank_for, feed, noise, ticks

pytestmark = pytest.mark.unit

DAY = 288  # points a day at 5-minute polls
STEP_MS = 5 * MINUTE_MS


def _business_hours(ts_ms: np.ndarray) -> np.ndarray:
    """True from 09:00 to 18:00 UTC."""
    hour = (ts_ms // 3_600_000) % 24
    return (hour >= 9) & (hour < 18)


def _plateau_days(days: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps, a load of 20 at night and 80 in business hours with noise, and the business mask."""
    ts = ticks(days * DAY, STEP_MS)
    busy = _business_hours(ts)
    return ts, np.where(busy, 80.0, 20.0) + noise(len(ts), 0.0, 1.0, seed), busy


BREAKS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "peak missing": lambda v: np.full_like(v, 20.0) + (v - np.where(v > 50, 80.0, 20.0)),
    "plateau halved": lambda v: np.where(v > 50, v - 40.0, v),
    "day gone flat": lambda v: np.full_like(v, 40.0),
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_a_broken_day_pages_inside_it_and_the_routine_days_before_do_not(name: str, key: SeriesKey) -> None:
    # A week to learn: the first day's steps (before the cycle was known) fade from the rarity memory.
    days = 9
    ts, values, _ = _plateau_days(days)
    broken = slice((days - 1) * DAY, days * DAY)
    values[broken] = BREAKS[name](values[broken])
    run = feed(bank_for(), [key], ts, values)
    onsets = run.event_ticks(ts)
    assert [t for t in onsets if DAY <= t < (days - 1) * DAY] == []  # the routine days raise nothing
    assert any(t >= (days - 1) * DAY for t in onsets), f"no onset in the broken day ({name}): {onsets}"


def test_a_noiseless_daily_staircase_does_not_page_on_its_first_day(key: SeriesKey) -> None:
    ts = ticks(3 * DAY, STEP_MS)
    hour = (ts // 3_600_000) % 24
    values = 20.0 + 5.0 * np.minimum(hour, 24 - hour)  # a new level every hour, the same every day
    run = feed(bank_for(), [key], ts, values)
    assert run.events == []


def test_gaussian_noise_raises_at_most_two_onsets_per_300k_points() -> None:
    n_series, n_ticks = 60, 5000
    keys = [SeriesKey.of("latency.ms", {"probe": str(i)}) for i in range(n_series)]
    values = 10.0 + np.random.default_rng(3).standard_normal((n_ticks, n_series))
    run = feed(bank_for(), keys, ticks(n_ticks, STEP_MS), values)
    assert len(run.onsets) <= 2


@pytest.mark.parametrize("poll_s", [30, 300, 3600])
def test_a_bins_offset_remembers_the_same_days_whatever_the_poll_interval(poll_s: int) -> None:
    points_per_bin_day = 3600 // poll_s
    ts = np.array([10 * poll_s * 1000], dtype=np.int64)
    weight = seasonal.offset_weight(ts, ts - poll_s * 1000, np.array([False]))
    assert float(weight[0]) * points_per_bin_day == pytest.approx(1.0 / seasonal.OFFSET_DAYS)


def test_a_series_first_point_and_a_long_gap_do_not_overwrite_the_bin() -> None:
    ts = np.array([10 * 86_400_000, 10 * 86_400_000], dtype=np.int64)
    weight = seasonal.offset_weight(ts, np.array([0, 0], dtype=np.int64), np.array([True, False]))
    assert weight.tolist() == [0.0, 0.5]
