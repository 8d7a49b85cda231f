"""What a NOC operator expects of the edge detector, whatever scoring scheme sits underneath.

Written from the user's side (not tuned to NAB): a gross departure from a well-learned baseline is
always an anomaly, and an extreme one is critical, even when the baseline was perfectly flat.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared.detect import DetectConfig, DetectorBank, DetectRule
from shared.model import SeriesKey, Severity

pytestmark = pytest.mark.unit

T0 = 1_700_000_000_000


def _feed(values: list[float]) -> list[tuple[float, list[Severity]]]:
    bank = DetectorBank(DetectConfig(default=DetectRule(warmup_points=10, warmup_s=0, seasonality="none")))
    key = (SeriesKey.of("hw_temperature_celsius", {"sensor": "CPU1"}),)
    out = []
    for i, v in enumerate(values):
        obs = bank.observe(key, np.array([T0 + i * 10_000]), np.array([v]))
        out.append((float(obs.scores[0]), [e.severity for e in obs.events]))
    return out


def test_a_flat_series_that_jumps_far_raises_an_event_at_once_after_warm_up() -> None:
    results = _feed([40.0] * 15 + [95.0])  # warm-up is 10 points: 15 flat readings are a learned baseline
    score, severities = results[-1]
    assert severities, f"no event for 40 -> 95 after a flat baseline (score {score:.3f})"


def test_an_extreme_departure_from_a_noisy_baseline_is_critical() -> None:
    rng = np.random.default_rng(7)
    results = _feed([*(40.0 + rng.normal(0, 0.5, 200)).tolist(), 95.0])
    score, severities = results[-1]
    assert Severity.CRITICAL in severities, f"a ~110-sigma jump scored {score:.3f}, events {severities}"


def test_ordinary_noise_after_warm_up_raises_nothing() -> None:
    rng = np.random.default_rng(11)
    results = _feed((40.0 + rng.normal(0, 0.5, 300)).tolist())
    assert [i for i, (_, sev) in enumerate(results[50:]) if sev] == []
