"""A real `outpost-hub` process with `confirm.enabled`: the job is wired in (its series on /metrics, its
model directory private) and GET /api/v1/confirm answers, with `limit` bounded."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.outpost import HubHandle, start_hub

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubHandle]:
    handle = start_hub(tmp_path_factory.mktemp("confirm-api"), extra={"confirm": {"enabled": True}})
    try:
        yield handle
    finally:
        handle.stop()


def test_confirmation_rates_are_served_and_its_series_exposed(hub: HubHandle) -> None:
    body = hub.get("/api/v1/confirm")
    assert body == {"detectors": [], "devices": [], "queued": 0, "dropped": 0}
    metrics = httpx.get(hub.api_url + "/metrics").text
    assert "outpost_hub_confirm_queued 0.0" in metrics
    assert "outpost_hub_confirm_fits_total 0.0" in metrics


def test_a_limit_out_of_bounds_is_a_400_not_a_scan(hub: HubHandle) -> None:
    r = httpx.get(
        hub.api_url + "/api/v1/confirm",
        params={"limit": 100_000},
        headers={"Authorization": f"Bearer {hub.token}"},
    )
    assert r.status_code in (400, 422)
