"""Thresholding apart from scoring: warm-up, k-of-n, suppression, model protection, device limits."""

from __future__ import annotations

import numpy as np
import pytest

from shared.detect import DetectorBank
from shared.detect.detectors import RobustDetector
from shared.model import Limits, SeriesKey, Severity
from tests.detect.conftest import MINUTE_MS, bank_for, feed, noise, ticks

pytestmark = pytest.mark.unit


def _robust(bank: DetectorBank) -> RobustDetector:
    """The default rule's detector, to look at its baseline columns."""
    detector = bank._groups[-1].detector
    assert isinstance(detector, RobustDetector)
    return detector


def test_no_anomaly_events_while_learning_even_for_a_huge_jump(key: SeriesKey) -> None:
    ts = ticks(100)
    values = noise(100)
    values[60] += 1000.0
    bank = bank_for(warmup_points=120)
    run = feed(bank, [key], ts, values)
    assert run.events == []
    assert bank.states() == {"learning": 1, "active": 0, "stale": 0}


def test_warmup_needs_both_points_and_time(key: SeriesKey) -> None:
    bank = bank_for(warmup_points=10, warmup_s=3600)
    feed(bank, [key], ticks(30), noise(30))  # 30 points but only 29 minutes
    assert bank.states()["learning"] == 1
    feed(bank, [key], ticks(40)[30:] + 31 * MINUTE_MS, noise(10))
    assert bank.states()["active"] == 1


def test_device_limit_pages_during_warmup_once_per_crossing(key: SeriesKey) -> None:
    ts = ticks(12)
    values = np.array([70, 75, 92, 95, 93, 80, 70, 96, 70, 10, 70, 71], dtype=np.float64)
    limits = {key: Limits(crit_high=90.0, warn_low=20.0)}
    run = feed(bank_for(warmup_points=1000), [key], ts, values, limits)
    assert run.event_ticks(ts) == [2, 7, 9]
    assert [e.severity for e in run.events] == [Severity.CRITICAL, Severity.CRITICAL, Severity.WARNING]
    assert [dict(e.attributes)["reason"] for e in run.events] == [
        "limit.crit_high",
        "limit.crit_high",
        "limit.warn_low",
    ]


def test_warning_limit_escalates_to_critical(key: SeriesKey) -> None:
    ts = ticks(4)
    values = np.array([50.0, 85.0, 86.0, 95.0])
    limits = {key: Limits(warn_high=80.0, crit_high=90.0)}
    run = feed(bank_for(), [key], ts, values, limits)
    assert run.event_ticks(ts) == [1, 3]
    assert [e.severity for e in run.events] == [Severity.WARNING, Severity.CRITICAL]


def test_k_of_n_persistence_ignores_a_lone_spike_and_fires_on_the_second(key: SeriesKey) -> None:
    ts = ticks(600)
    values = noise(600)
    values[300] += 30.0  # alone: 1 of 3
    values[500:503] += 30.0  # the EWMA score stays high over a sustained excursion
    run = feed(bank_for(detector="ewma", persistence_k=2, persistence_n=3), [key], ts, values)
    assert run.event_ticks(ts) == [501]


def test_suppression_window_holds_back_a_second_onset(key: SeriesKey) -> None:
    ts = ticks(700)
    values = noise(700)
    values[[400, 405, 600]] += 40.0  # 5 minutes apart, then 195 minutes later
    run = feed(bank_for(suppress_s=900), [key], ts, values)
    assert run.event_ticks(ts) == [400, 600]


def test_anomalous_point_does_not_move_the_baseline(key: SeriesKey) -> None:
    ts = ticks(301)
    values = noise(301)
    bank = bank_for()
    feed(bank, [key], ts[:300], values[:300])
    detector = _robust(bank).columns.a
    before = (float(detector["mu"][0]), detector["spread"][0].copy())
    run = feed(bank, [key], ts[300:], np.array([values[300] + 50.0]))
    assert run.scores[0, 0] >= 0.6
    assert float(detector["mu"][0]) == before[0]
    np.testing.assert_array_equal(detector["spread"][0], before[1])


def test_normal_point_moves_the_baseline(key: SeriesKey) -> None:
    bank = bank_for()
    feed(bank, [key], ticks(300), noise(300))
    mu = float(_robust(bank).columns.a["mu"][0])
    feed(bank, [key], ticks(301)[300:], np.array([mu + 0.5]))
    assert float(_robust(bank).columns.a["mu"][0]) > mu
