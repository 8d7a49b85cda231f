"""Every registered detector honours the same contract (River's checks, vectorized)."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from shared.detect import DETECTORS, DetectRule
from shared.detect.config import DetectorName
from shared.detect.detectors import Detector
from tests.detect.conftest import MINUTE_MS, T0_MS, noise

pytestmark = pytest.mark.unit

ROWS = 4


def _warm(name: str, points: int = 150) -> tuple[Detector, np.ndarray]:
    det = DETECTORS[name](DetectRule(detector=typing.cast(DetectorName, name), warmup_points=20))
    det.grow(ROWS)
    rows = np.arange(ROWS, dtype=np.intp)
    values = np.stack([noise(points, 10.0 * (r + 1), 1.0, seed=r) for r in range(ROWS)], axis=1)
    for i in range(points):
        ts = np.full(ROWS, T0_MS + i * MINUTE_MS, dtype=np.int64)
        det.score_many(rows, ts, values[i])
        det.learn_many(rows, ts, values[i], np.ones(ROWS, dtype=bool))
    return det, rows


def _state(det: Detector) -> dict[str, np.ndarray]:
    return det.export()


def _assert_same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


NEXT_TS = np.full(ROWS, T0_MS + 1000 * MINUTE_MS, dtype=np.int64)
NEXT_X = np.array([10.0, 20.0, 300.0, 40.0])


def test_registry_names_match_the_config_choices() -> None:
    assert sorted(DETECTORS) == sorted(typing.get_args(DetectorName))
    assert all(cls.name == name for name, cls in DETECTORS.items())


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_scores_are_finite_and_within_zero_and_one(name: str) -> None:
    det, rows = _warm(name)
    scores = det.score_many(rows, NEXT_TS, NEXT_X)
    assert scores.shape == (ROWS,)
    assert bool(np.all(np.isfinite(scores))) and bool(np.all((scores >= 0) & (scores <= 1)))


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_an_outlier_scores_higher_than_a_typical_point(name: str) -> None:
    det, rows = _warm(name)
    scores = det.score_many(rows, NEXT_TS, NEXT_X)
    assert scores[2] > max(scores[0], scores[1], scores[3])


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_scoring_does_not_change_state(name: str) -> None:
    det, rows = _warm(name)
    before = _state(det)
    det.score_many(rows, NEXT_TS, NEXT_X)
    _assert_same_state(before, _state(det))


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_learning_a_subset_of_rows_leaves_the_others_alone(name: str) -> None:
    det, _ = _warm(name)
    before = _state(det)
    sub = np.array([1, 3], dtype=np.intp)
    det.score_many(sub, NEXT_TS[:2], NEXT_X[:2])
    det.learn_many(sub, NEXT_TS[:2], NEXT_X[:2], np.ones(2, dtype=bool))
    after = _state(det)
    for name_ in before:
        np.testing.assert_array_equal(before[name_][[0, 2]], after[name_][[0, 2]], err_msg=name_)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_export_restore_round_trip_keeps_every_column(name: str) -> None:
    det, _ = _warm(name)
    saved = _state(det)
    fresh = DETECTORS[name](DetectRule(detector=typing.cast(DetectorName, name), warmup_points=20))
    fresh.restore(saved)
    _assert_same_state(saved, _state(fresh))


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_restore_rejects_columns_of_another_shape(name: str) -> None:
    det, _ = _warm(name, points=5)
    saved = {k: v[..., None] for k, v in _state(det).items()}
    with pytest.raises(ValueError):
        det.restore(saved)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_vanished_rows_are_compacted_and_new_rows_start_fresh(name: str) -> None:
    det, _ = _warm(name)
    before = _state(det)
    keep = np.array([3, 0], dtype=np.intp)
    det.take(keep)
    after = _state(det)
    for col in before:
        np.testing.assert_array_equal(before[col][keep], after[col], err_msg=col)
    det.grow(1)
    blank = DETECTORS[name](DetectRule(detector=typing.cast(DetectorName, name), warmup_points=20))
    blank.grow(1)
    for col, arr in _state(det).items():
        np.testing.assert_array_equal(arr[2], _state(blank)[col][0], err_msg=col)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_state_per_series_is_at_most_two_kib(name: str) -> None:
    det = DETECTORS[name](DetectRule(detector=typing.cast(DetectorName, name), seasonality="weekly"))
    assert det.row_nbytes <= 2048
