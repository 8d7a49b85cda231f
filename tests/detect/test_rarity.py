"""Rarity scores: calibrated by the history a series actually has, with gross departures always rare."""

from __future__ import annotations

import numpy as np
import pytest

from shared.detect import rarity

pytestmark = pytest.mark.unit


def score(seen: float, low_bins: int, bin_now: int, memory_points: int = 1000) -> float:
    """Score of a point in `bin_now` for one series whose `seen` past z all fell in bins below `low_bins`."""
    tail = np.zeros((1, 1, rarity.BINS), dtype=np.float32)
    tail[0, 0, :low_bins] = seen
    return float(rarity.rarity(tail, np.array([[bin_now]]), memory_points)[0, 0])


@pytest.mark.parametrize("seen", [300.0, 450.0, 5000.0])
def test_a_first_ever_extreme_scores_one_once_min_history_was_seen(seen: float) -> None:
    assert score(seen, 3, 3) == pytest.approx(1.0)


def test_a_young_series_record_just_past_its_range_is_not_yet_a_sure_anomaly() -> None:
    assert 0.5 < score(50.0, 3, 3) < 0.8


def test_a_young_series_departure_far_past_its_range_scores_one() -> None:
    assert score(15.0, 3, 3 + 20) == pytest.approx(1.0)


def test_a_value_inside_the_seen_range_scores_low() -> None:
    assert score(1000.0, 10, 2) == pytest.approx(0.0)
