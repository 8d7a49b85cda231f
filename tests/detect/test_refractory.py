"""Refractory shaping: one event reports one high score; its echoes report 0, a stronger event shows."""

from __future__ import annotations

import numpy as np
import pytest

from shared.detect.refractory import Refractory
from shared.model import SeriesKey
from tests.detect.conftest import bank_for, feed, noise, ticks

pytestmark = pytest.mark.unit


def shaped(raw: list[float], points: int) -> list[float]:
    """Reported scores of one series fed `raw` point by point."""
    ref = Refractory(points)
    ref.columns.grow(1)
    rows = np.zeros(1, dtype=np.intp)
    return [float(ref.shape(rows, np.array([s]))[0]) for s in raw]


def test_echoes_of_a_peak_report_zero_until_the_refractory_period_ends() -> None:
    assert shaped([0.1, 0.9, 0.8, 0.9, 0.2, 0.7], 3) == [0.1, 0.9, 0.0, 0.0, 0.0, 0.7]


def test_a_stronger_score_within_the_period_is_reported_at_once() -> None:
    assert shaped([0.6, 0.5, 0.95, 0.9], 10) == pytest.approx([0.6, 0.0, 0.95, 0.0])


def test_zero_points_reports_raw_scores() -> None:
    assert shaped([0.1, 0.9, 0.8], 0) == pytest.approx([0.1, 0.9, 0.8])


def test_rows_are_shaped_independently() -> None:
    ref = Refractory(5)
    ref.columns.grow(2)
    first = ref.shape(np.array([0, 1]), np.array([0.9, 0.3]))
    second = ref.shape(np.array([1, 0]), np.array([0.5, 0.4]))
    assert first.tolist() == pytest.approx([0.9, 0.3])
    assert second.tolist() == pytest.approx([0.5, 0.0])


def test_a_burst_reports_one_high_score_and_pages_once(key: SeriesKey) -> None:
    ts = ticks(600)
    values = noise(600)
    values[500:506] += 30.0
    run = feed(bank_for(refractory_points=100), [key], ts, values)
    assert run.event_ticks(ts) == [500]
    assert run.scores[500, 0] >= 0.6
    assert float(run.scores[501:506, 0].max()) == 0.0
