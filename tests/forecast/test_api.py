"""GET /api/v1/forecast on a running `outpost-hub` process over real HTTP: history written to its store
beforehand, thresholds from a capacity series, the forecast job's predictive alert, bad parameters as
counted 400s, and many clients at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from hub.config import HubConfig
from hub.store.factory import build_store
from shared.model import Batch, SeriesKey, SeriesPoints
from tests.support.outpost import HubHandle, start_hub, wait_for

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000
DAYS = 20
USED = "device_storage_used_bytes"
SIZE = "device_storage_size_bytes"
TB = 1e12


def _write_history(data_dir: Path) -> None:
    """Twenty days of hourly points ending now: nas1 fills 2 % of its 1 TB a day from 50 %, nas2 is flat."""
    store = build_store(HubConfig(data_dir=data_dir).store, data_dir)
    store.open()
    now = int(time.time() * 1000) // HOUR_MS * HOUR_MS
    ts = now - HOUR_MS * np.arange(DAYS * 24, 0, -1, dtype=np.int64)
    t = np.arange(ts.shape[0])
    rng = np.random.default_rng(5)
    cycle = 0.02 * TB * np.sin(2 * np.pi * t / 24)
    series = []
    for device, used in (
        ("nas1", 0.5 * TB + 0.02 * TB * t / 24 + cycle + rng.normal(0, 0.005 * TB, t.shape[0])),
        ("nas2", 0.4 * TB + cycle + rng.normal(0, 0.005 * TB, t.shape[0])),
    ):
        labels = {"device": device, "storage": "/data"}
        series.append(SeriesPoints(SeriesKey.of(USED, labels), ts, used))
        series.append(SeriesPoints(SeriesKey.of(SIZE, labels), ts, np.full(ts.shape[0], TB)))
    store.write("dc1/edge1", Batch(1, 1, tuple(series)))
    store.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> HubHandle:
    """One hub for the module: starting one is most of these tests' time."""
    tmp = tmp_path_factory.mktemp("forecast-api")
    _write_history(tmp / "hub")
    handle = start_hub(tmp)
    try:
        yield handle  # type: ignore[misc]
    finally:
        handle.stop()


def _by_device(body: dict) -> dict[str, dict]:
    return {s["labels"]["device"]: s for s in body["series"]}


def test_forecast_answers_bands_method_error_and_time_to_the_capacity(hub: HubHandle) -> None:
    body = hub.get("/api/v1/forecast", metric=USED, horizon="14d")
    assert body["total"] == 2 and body["horizon_steps"] == 14 * 24
    series = _by_device(body)
    for s in series.values():
        assert s["error"] == "" and s["history_points"] >= DAYS * 24 - 1
        assert len(s["yhat"]) == len(s["p10"]) == len(s["p90"]) == 14 * 24
        assert all(lo <= y <= hi for lo, y, hi in zip(s["p10"], s["yhat"], s["p90"], strict=True))
        assert s["step_ms"] == HOUR_MS and s["start_ms"] > body["now_ms"] - HOUR_MS
        assert s["backtest"]["mase"] > 0 and s["method"] in s["backtest"]["candidates"]
        assert s["threshold"] == {"value": TB, "source": f"capacity {SIZE}", "direction": "above"}
    growing, flat = series["nas1"]["time_to_threshold"], series["nas2"]["time_to_threshold"]
    days_left = (growing["p50_ms"] - body["now_ms"]) / 86_400_000
    # 50 % + 2 %/day x 20 days = 90 % now, 1 % of swing above: about 4.5 days to go.
    assert 3 <= days_left <= 6.5, days_left
    assert 0 < growing["p10_ms"] <= growing["p50_ms"]
    assert flat == {"p10_ms": 0, "p50_ms": 0, "p90_ms": 0}
    one = hub.get("/api/v1/forecast", metric=USED, match="device=nas2", method="seasonal_naive")
    assert [s["method"] for s in one["series"]] == ["seasonal_naive"]


def test_the_forecast_job_raises_a_predictive_alert_carrying_its_forecast(hub: HubHandle) -> None:
    def predicted() -> list[dict]:
        alerts = hub.get("/api/v1/alerts")["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "PredictedCrossing"]

    (alert,) = wait_for(predicted, timeout=30, what="the predictive alert")
    assert alert["labels"]["device"] == "nas1" and alert["labels"]["metric"] == USED
    notes = alert["annotations"]
    assert notes["summary"].startswith(f"{USED} on nas1 reaches 1e+12 (capacity {SIZE}) in about ")
    assert int(notes["crossing_p10_ms"]) <= int(notes["crossing_p50_ms"])
    assert notes["method"] and float(notes["backtest_mase"]) > 0
    metrics = httpx.get(hub.api_url + "/metrics").text
    assert 'outpost_hub_forecast_fits_total{result="ok"} 2.0' in metrics
    assert "outpost_hub_forecast_fit_cpu_seconds_count 2.0" in metrics


def test_bad_parameters_are_counted_400s_saying_why(hub: HubHandle) -> None:
    headers = {"Authorization": f"Bearer {hub.token}"}
    cases = {
        "metric is required": {},
        "not a duration": {"metric": USED, "horizon": "soon"},
        "horizon must be": {"metric": USED, "horizon": "400d"},
        "method must be auto": {"metric": USED, "method": "crystal_ball"},
        "max_series must be an integer in 1..100": {"metric": USED, "max_series": "1000"},
    }
    for reason, params in cases.items():
        r = httpx.get(hub.api_url + "/api/v1/forecast", params=params, headers=headers)
        assert r.status_code == 400 and reason in r.json()["detail"], (params, r.text)
    assert httpx.get(hub.api_url + "/api/v1/forecast", params={"metric": USED}).status_code == 401
    metrics = httpx.get(hub.api_url + "/metrics").text
    assert 'outpost_hub_api_rejected_total{endpoint="forecast",reason="bad_request"} 5.0' in metrics


async def test_many_clients_at_once_get_the_same_forecast(hub: HubHandle) -> None:
    headers = {"Authorization": f"Bearer {hub.token}"}
    params = {"metric": USED, "match": "device=nas1", "horizon": "2d"}
    async with httpx.AsyncClient(base_url=hub.api_url, headers=headers, timeout=60) as client:
        answers = await asyncio.gather(*(client.get("/api/v1/forecast", params=params) for _ in range(16)))
    assert {r.status_code for r in answers} <= {200, 429}
    ok = [r.json()["series"][0] for r in answers if r.status_code == 200]
    assert len(ok) >= 8
    assert all(s["yhat"] == ok[0]["yhat"] and s["method"] == ok[0]["method"] for s in ok)
