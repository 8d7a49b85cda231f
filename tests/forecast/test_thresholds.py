"""Default threshold rules against a real embedded store: a power supply's output is forecast against
its own rating (Redfish `PowerCapacityWatts`, collected as `hw_psu_capacity_watts` with the same labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hub.forecast.config import ForecastConfig
from hub.forecast.crossing import Direction
from hub.forecast.thresholds import Threshold, from_rule
from hub.store.base import RangeQuery
from hub.store.config import EmbeddedStoreConfig
from hub.store.factory import build_store
from shared.clock import FakeClock
from shared.model import Batch, SeriesKey, SeriesPoints

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000
T_END = 1_790_000_000_000 // HOUR_MS * HOUR_MS


def test_each_supplys_output_is_held_against_its_own_rating(tmp_path: Path) -> None:
    store = build_store(EmbeddedStoreConfig(), tmp_path, FakeClock(T_END))
    store.open()
    try:
        ts = T_END - HOUR_MS * np.arange(48, 0, -1, dtype=np.int64)
        points = []
        for psu, rating in (("PSU1", 750.0), ("PSU2", 1100.0)):
            labels = {"chassis": "1U", "component": "PowerSupply", "id": psu, "sensor": f"{psu} Status"}
            points.append(SeriesPoints(SeriesKey.of("hw_psu_output_watts", labels), ts, np.full(48, 300.0)))
            points.append(
                SeriesPoints(SeriesKey.of("hw_psu_capacity_watts", labels), ts, np.full(48, rating))
            )
        store.write("dc1/edge1", Batch(1, 1, tuple(points)))
        rule = next(r for r in ForecastConfig().thresholds if r.metric == "hw_psu_output_watts")
        outputs = store.query(RangeQuery("hw_psu_output_watts", int(ts[0]), T_END, ()))
        found = {r.key.label("id"): from_rule(store, rule, r.key, int(ts[0]), T_END) for r in outputs}
    finally:
        store.close()
    source = "capacity hw_psu_capacity_watts"
    assert found == {
        "PSU1": Threshold(750.0, source, Direction.ABOVE),
        "PSU2": Threshold(1100.0, source, Direction.ABOVE),
    }
