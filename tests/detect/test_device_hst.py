"""River HalfSpaceTrees on a device's feature vector: a jointly unusual state pages, other devices don't."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from shared.detect import DetectConfig, DetectorBank, DetectRule
from shared.model import SeriesKey
from tests.detect.conftest import feed, ticks

pytestmark = pytest.mark.unit

N = 400
ODD = 350  # the tick where device sw1's fan and temperature disagree
KEYS = [
    SeriesKey.of("fan.rpm", {"device": "sw1"}),
    SeriesKey.of("temp.c", {"device": "sw1"}),
    SeriesKey.of("fan.rpm", {"device": "sw2"}),
    SeriesKey.of("temp.c", {"device": "sw2"}),
]


def device_rule(**extra: object) -> DetectRule:
    return DetectRule.model_validate(
        {
            "detector": "hst",
            "group_by": "device",
            "seasonality": "none",
            "warmup_points": 50,
            "refractory_points": 0,
            **extra,
        }
    )


def fans_follow_temperature(odd: bool) -> np.ndarray:
    """Per tick: a random temperature and a fan speed that tracks it, on both devices.

    With `odd`, sw1's fan runs fast while its temperature is low once: each value alone (and its step)
    is ordinary for its series, only the pair is unusual.
    """
    u = np.random.default_rng(3).uniform(0.0, 1.0, (N, 2))
    temp = 40.0 + 10.0 * u
    values = np.stack([100.0 * temp[:, 0], temp[:, 0], 100.0 * temp[:, 1], temp[:, 1]], axis=1)
    if odd:
        values[ODD, :2] = [100.0 * 49.0, 41.0]
    return values


def test_a_jointly_unusual_device_state_scores_higher_than_any_normal_one() -> None:
    ts = ticks(N)
    values = fans_follow_temperature(True)
    run = feed(DetectorBank(DetectConfig(default=device_rule())), KEYS, ts, values)
    assert run.scores[ODD, 0] == run.scores[ODD, 1]  # one score per device
    assert run.scores[ODD, 0] > run.scores[100:ODD, :2].max()
    alone = feed(DetectorBank(DetectConfig(default=device_rule(group_by=None))), KEYS, ts, values)
    assert alone.scores[ODD, :2].max() < alone.scores[100:ODD, :2].max()  # per series it looks normal


def test_other_devices_keep_their_own_model() -> None:
    ts = ticks(N)
    odd = feed(DetectorBank(DetectConfig(default=device_rule())), KEYS, ts, fans_follow_temperature(True))
    calm = feed(DetectorBank(DetectConfig(default=device_rule())), KEYS, ts, fans_follow_temperature(False))
    np.testing.assert_array_equal(odd.scores[:, 2:], calm.scores[:, 2:])
    np.testing.assert_array_equal(odd.scores[:ODD, :2], calm.scores[:ODD, :2])


def test_group_by_without_hst_is_rejected() -> None:
    with pytest.raises(ValidationError):
        DetectRule(group_by="device")


def test_a_restored_bank_rebinds_devices_and_relearns_their_models(tmp_path: Path) -> None:
    config = DetectConfig(default=device_rule())
    ts = ticks(N)
    values = fans_follow_temperature(False)
    bank = DetectorBank(config)
    feed(bank, KEYS, ts[:200], values[:200])
    bank.save(tmp_path / "detect.npz")
    restored = DetectorBank.load(tmp_path / "detect.npz", config)
    assert len(restored) == 4
    run = feed(restored, KEYS, ts[200:], values[200:])
    assert float(run.scores[:49].max()) == 0.0  # fresh models score 0 until their first window fills
    assert float(run.scores[60:].max()) > 0.0


def test_a_vanished_series_leaves_its_device_vector_and_the_rest_keep_scoring() -> None:
    config = DetectConfig(default=device_rule(), stale_after_s=60, forget_after_s=120)
    bank = DetectorBank(config)
    ts = ticks(N)
    values = fans_follow_temperature(False)
    feed(bank, KEYS, ts[:200], values[:200])
    survivors = [KEYS[1], KEYS[2], KEYS[3]]  # sw1's fan stops reporting
    run = feed(bank, survivors, ts[200:], values[200:, 1:])
    assert len(bank) == 3
    assert bool(np.all(np.isfinite(run.scores)))
    assert float(run.scores[-50:].max()) > 0.0
