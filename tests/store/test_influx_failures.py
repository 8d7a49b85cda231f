"""InfluxDB write failures: nothing is acknowledged until InfluxDB accepted it."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from hub.store.base import RangeQuery
from hub.store.config import InfluxStoreConfig
from hub.store.errors import StoreError
from hub.store.influx.store import InfluxStore
from shared.errors import TransientError
from shared.model import Batch, SeriesKey, SeriesPoints
from tests.store.conftest import T0, start_victoria_metrics
from tests.store.vm_reader import VictoriaMetricsReader
from tests.support.procs import Service, free_port

pytestmark = pytest.mark.integration

BATCH = Batch(
    1, 1, (SeriesPoints(SeriesKey.of("psu_watts", {"psu": "1"}), T0 + np.arange(3) * 10_000, np.ones(3)),)
)


def config(url: str, mode: str, timeout_s: float) -> InfluxStoreConfig:
    return InfluxStoreConfig.model_validate(
        {
            "url": url,
            "write_mode": mode,
            "write_timeout": timedelta(seconds=timeout_s),
            "retry_interval": timedelta(milliseconds=100),
            "max_retries": 20,
            "http_timeout": timedelta(seconds=2),
        }
    )


@pytest.mark.parametrize("mode", ["v1", "v2"])
def test_a_server_that_never_answers_gives_a_transient_error_not_an_ack(tmp_path: Path, mode: str) -> None:
    store = InfluxStore(config(f"http://127.0.0.1:{free_port()}", mode, 1.0), tmp_path / "ledger.sqlite")
    store.open()
    try:
        started = time.monotonic()
        with pytest.raises(TransientError):
            store.write("edge-1", BATCH)
        assert time.monotonic() - started < 5
        # Not recorded as stored: the re-sent batch is tried again rather than called a duplicate.
        with pytest.raises(TransientError):
            store.write("edge-1", BATCH)
    finally:
        store.close()


def test_a_v2_write_is_retried_until_the_server_comes_up(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    store = InfluxStore(
        config(url, "v2", 20.0), tmp_path / "ledger.sqlite", reader=VictoriaMetricsReader(url)
    )
    started: list[Service] = []

    def start_late() -> None:
        time.sleep(0.7)
        started.append(start_victoria_metrics(tmp_path, port))

    late = threading.Thread(target=start_late)
    store.open()
    late.start()
    try:
        assert store.write("edge-1", BATCH).accepted_points == 3
        late.join()
        (result,) = store.query(RangeQuery("psu_watts", T0, T0 + 60_000))
        assert result.values.tolist() == [1.0, 1.0, 1.0]
    finally:
        late.join()
        store.close()
        for svc in started:
            svc.stop()


def test_a_v1_write_to_a_missing_database_is_a_permanent_store_error(
    tmp_path: Path, influxd: Service
) -> None:
    cfg = config(f"http://127.0.0.1:{influxd.port}", "v1", 5.0).model_copy(update={"database": "no_such_db"})
    store = InfluxStore(cfg, tmp_path / "ledger.sqlite")
    store.open()
    try:
        with pytest.raises(StoreError) as err:
            store.write("edge-1", BATCH)
        assert err.value.status == 404
    finally:
        store.close()
