"""Each detector on synthetic signals with known answers, through the bank the agent runs."""

from __future__ import annotations

import numpy as np
import pytest

from shared.model import SeriesKey, Severity
from tests.detect.conftest import MINUTE_MS, bank_for, feed, noise, ticks

pytestmark = pytest.mark.unit

VALUE_DETECTORS = ["robust", "ewma"]


@pytest.mark.parametrize("detector", VALUE_DETECTORS)
def test_spike_after_warmup_gives_exactly_one_event_at_the_spike(detector: str, key: SeriesKey) -> None:
    ts = ticks(600)
    values = noise(600)
    values[500] += 30.0
    run = feed(bank_for(detector=detector), [key], ts, values)
    assert run.event_ticks(ts) == [500]
    event = run.events[0]
    attrs = dict(event.attributes)
    assert (event.kind, event.source) == ("anomaly.onset", 'cpu.util{core="0",device="sw1"}')
    assert event.severity in (Severity.WARNING, Severity.CRITICAL)
    assert attrs["metric"] == "cpu.util"
    assert attrs["labels"] == '{"core": "0", "device": "sw1"}'
    assert float(attrs["value"]) == values[500]
    assert (attrs["detector"], attrs["reason"]) == (detector, "score")
    assert float(attrs["score"]) == pytest.approx(float(run.scores[500, 0]), abs=1e-4)
    assert run.scores[500, 0] >= 0.6


@pytest.mark.parametrize("detector", VALUE_DETECTORS)
def test_level_shift_pages_once_then_becomes_the_new_normal(detector: str, key: SeriesKey) -> None:
    ts = ticks(700)
    values = noise(700)
    values[400:] += 30.0
    run = feed(bank_for(detector=detector), [key], ts, values)
    assert run.event_ticks(ts) == [400]
    assert run.scores[500:, 0].max() < 0.6


def test_robust_baseline_adapts_to_a_shift_within_new_normal_points(key: SeriesKey) -> None:
    ts = ticks(500)
    values = noise(500)
    values[400:] += 30.0
    run = feed(bank_for(new_normal_points=12), [key], ts, values)
    assert run.scores[400, 0] >= 0.6
    assert run.scores[420:, 0].max() < 0.6


def test_daily_cycle_does_not_page_with_seasonality(key: SeriesKey) -> None:
    n = 288 * 6  # six days at 5-minute resolution (NAB's)
    ts = ticks(n, 5 * MINUTE_MS)
    values = 100.0 + 20.0 * np.sin(2 * np.pi * np.arange(n) / 288) + noise(n, 0.0, 1.0)
    run = feed(bank_for(seasonality="daily"), [key], ts, values)
    assert run.events == []


def test_nightly_spike_stops_paging_once_its_hour_has_learned_it(key: SeriesKey) -> None:
    n = 288 * 6
    ts = ticks(n, 5 * MINUTE_MS)
    values = noise(n, 10.0, 0.2)
    spikes = np.arange(100, n, 288)  # same time every day
    values[spikes] += 8.0
    run = feed(bank_for(seasonality="daily"), [key], ts, values)
    late = [t for t in run.event_ticks(ts) if t > 288 * 2]
    assert late == []
    off_hour = values.copy()
    off_hour[288 * 5 + 244] += 8.0  # the same spike at another hour still pages
    run = feed(bank_for(seasonality="daily"), [key], ts, off_hour)
    assert 288 * 5 + 244 in run.event_ticks(ts)


@pytest.mark.parametrize("detector", VALUE_DETECTORS)
def test_flat_line_never_pages_and_scores_zero(detector: str, key: SeriesKey) -> None:
    ts = ticks(400)
    run = feed(bank_for(detector=detector), [key], ts, np.full(400, 42.0))
    assert run.events == []
    assert float(run.scores.max()) == 0.0


def test_counter_reset_does_not_page(key: SeriesKey) -> None:
    ts = ticks(600)
    counter = 1000.0 * np.arange(600)
    counter[400:] -= counter[400]
    run = feed(bank_for(), [key], ts, counter)
    assert run.events == []


def test_missing_points_score_zero_and_do_not_count_towards_warmup(key: SeriesKey) -> None:
    ts = ticks(305)
    values = noise(305)
    values[:300:5] = np.nan  # 240 finite points in the first 300 ticks
    bank = bank_for(warmup_points=245, warmup_s=0)
    run = feed(bank, [key], ts[:300], values[:300])
    assert run.events == []
    assert float(run.scores[::5].max()) == 0.0
    assert bank.states() == {"learning": 1, "active": 0, "stale": 0}
    feed(bank, [key], ts[300:], values[300:])
    assert bank.states() == {"learning": 0, "active": 1, "stale": 0}


def test_a_long_gap_does_not_page_when_the_series_resumes_normally(key: SeriesKey) -> None:
    ts = np.concatenate([ticks(300), ticks(200) + 300 * MINUTE_MS + 2 * 3600_000])
    run = feed(bank_for(), [key], ts, noise(500))
    assert run.events == []
