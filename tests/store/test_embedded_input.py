"""Malformed input reaching the embedded store is rejected per series and counted, never a crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hub.store.base import RangeQuery
from hub.store.config import EmbeddedStoreConfig
from hub.store.embedded.store import EmbeddedStore
from shared.model import Batch, SeriesKey, SeriesPoints

pytestmark = pytest.mark.integration

T0 = 1_789_999_200_000


@pytest.mark.parametrize(
    ("ts", "vals"),
    [
        (np.array([T0, T0 + 1]), np.array([1.0])),
        (np.array(T0), np.array(1.0)),
        (np.array([[T0, T0 + 1]]), np.array([[1.0, 2.0]])),
    ],
    ids=["lengths-differ", "scalars", "two-dimensional"],
)
def test_a_malformed_series_is_dropped_and_counted_while_the_rest_is_stored(
    tmp_path: Path, ts: np.ndarray, vals: np.ndarray
) -> None:
    store = EmbeddedStore(tmp_path, EmbeddedStoreConfig())
    store.open()
    try:
        good = SeriesPoints(SeriesKey.of("ok"), np.array([T0, T0 + 10_000]), np.array([1.0, 2.0]))
        bad = SeriesPoints(SeriesKey.of("bad"), ts, vals)
        assert store.write("edge-1", Batch(1, 1, (bad, good))).accepted_points == 2
        assert store.stats.rejected_series == 1
        (result,) = store.query(RangeQuery("ok", T0, T0 + 60_000))
        assert result.values.tolist() == [1.0, 2.0]
        assert store.query(RangeQuery("bad", T0, T0 + 60_000)) == []
    finally:
        store.close()
