"""A burst well below the series' recent largest is no news; one as large or larger still pages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.detect import DetectConfig, DetectorBank, peaks, snapshot
from shared.model import SeriesKey
from tests.detect.conftest import MINUTE_MS, bank_for, feed, noise, ticks

pytestmark = pytest.mark.unit

STEP_MS = 5 * MINUTE_MS
# Bursts 1,000 points (about 3.5 days at 5-minute polls) apart: past the rarity memory, within the peaks'.
FIRST, SECOND, THIRD = 1000, 2000, 3000


def _bursty(bursts: dict[int, float], n: int = 3500) -> np.ndarray:
    """Noise around 50 with a 3-point burst of the given height at each start."""
    values = noise(n, 50.0, 2.0)
    for at, height in bursts.items():
        values[at : at + 3] += height
    return values


def test_a_burst_a_quarter_of_the_last_ones_size_does_not_page_but_a_larger_one_does(
    key: SeriesKey,
) -> None:
    ts = ticks(3500, STEP_MS)
    run = feed(bank_for(), [key], ts, _bursty({FIRST: 100.0, SECOND: 25.0, THIRD: 150.0}))
    assert run.event_ticks(ts) == [FIRST, THIRD]
    assert run.scores[SECOND : SECOND + 3, 0].max() < 0.5


def test_the_same_small_burst_pages_on_a_series_that_never_had_a_bigger_one(key: SeriesKey) -> None:
    ts = ticks(3500, STEP_MS)
    run = feed(bank_for(), [key], ts, _bursty({SECOND: 25.0}))
    assert run.event_ticks(ts) == [SECOND]


def test_a_repeat_of_the_largest_burst_pages_again(key: SeriesKey) -> None:
    ts = ticks(3500, STEP_MS)
    run = feed(bank_for(), [key], ts, _bursty({FIRST: 100.0, SECOND: 100.0}))
    assert run.event_ticks(ts) == [FIRST, SECOND]


def test_peaks_fade_over_two_weeks_and_a_view_without_a_peak_is_news() -> None:
    peak = np.array([[100.0, 10.0, 0.0]], dtype=np.float32)
    day = 24 * 60
    faded = peaks.remembered(peak, np.array([0]), np.array([14 * day]))
    np.testing.assert_allclose(faded, [[100.0 / np.e, 10.0 / np.e, 0.0]], rtol=1e-6)
    assert peaks.news(np.array([[35.0, 0.0, 0.0]]), np.array([[100.0, 10.0, 5.0]]))[0] == 0.5
    assert peaks.news(np.array([[0.0, 0.0, 1e-9]]), np.array([[100.0, 10.0, 0.0]]))[0] == 1.0
    np.testing.assert_array_equal(
        peaks.learned(np.array([[5.0, 1.0, 0.0]]), np.array([[2.0, 3.0, 0.0]])), [[5, 3, 0]]
    )


def test_a_snapshot_from_before_peaks_restores_and_learns_them(tmp_path: Path, key: SeriesKey) -> None:
    path = tmp_path / "detect.npz"
    ts = ticks(3500, STEP_MS)
    values = _bursty({FIRST: 100.0, SECOND: 25.0})
    bank = bank_for()
    feed(bank, [key], ts[:1500], values[:1500])
    bank.save(path)
    header, arrays = snapshot.read(path)
    old = {k: v for k, v in arrays.items() if not k.endswith(("det.peak", "det.peak_min"))}
    assert len(old) == len(arrays) - 2
    snapshot.write(path, header, old)
    restored = DetectorBank.load(path, DetectConfig())
    assert restored.states() == {"learning": 0, "active": 1, "stale": 0}
    # The peaks start empty, so the small burst after the restore is news again; nothing was relearned.
    run = feed(restored, [key], ts[1500:], values[1500:])
    assert run.event_ticks(ts[1500:]) == [SECOND - 1500]
