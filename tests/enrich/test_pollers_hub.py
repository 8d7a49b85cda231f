"""A real `outpost-hub` process polling a real local Datadog Logs server (keys from files): the lines are
found through `GET /api/v1/logs` under the agent `poll:<name>`, counted on /metrics, kept once each
across a hub restart that finds new lines (slow), and neither key ever reaches the hub's log."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.enrich.log_sources import DD_API_KEY, DD_APP_KEY, FakeDatadog, serving
from tests.support.outpost import HubHandle, start_hub, wait_for

pytestmark = pytest.mark.e2e


def _add(server: FakeDatadog, n: int, first: int, ago_s: float) -> list[str]:
    base = int(time.time() * 1000) - int(ago_s * 1000)
    messages = [f"cart {first + i} checked out in {100 + i} ms" for i in range(n)]
    for i, m in enumerate(messages):
        server.add(base + i * 200, m, status="warn", host="web-2", service="checkout")
    return messages


def _lines(hub: HubHandle, n: int) -> list[dict[str, Any]] | None:
    got: list[dict[str, Any]] = hub.get("/api/v1/logs", agent="poll:dd")["logs"]
    return got if len(got) >= n else None


def _poller(url: str, tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "dd-api").write_text(DD_API_KEY)
    (tmp_path / "dd-app").write_text(DD_APP_KEY)
    poller = {
        "kind": "datadog",
        "name": "dd",
        "url": url,
        "query": "service:checkout",
        "page_limit": 4,
        "interval_s": 0.3,
        "lag_s": 0,
        "api_key_file": str(tmp_path / "dd-api"),
        "application_key_file": str(tmp_path / "dd-app"),
    }
    return {"log_level": "debug", "logs": {"pollers": [poller]}}


def _assert_no_keys(text: str) -> None:
    assert "log pollers running: datadog 'dd'" in text
    assert DD_API_KEY not in text and DD_APP_KEY not in text


def test_polled_lines_are_served_by_the_hub_api_with_their_fields_and_counted_on_metrics(
    tmp_path: Path,
) -> None:
    with serving(FakeDatadog()) as dd:
        assert isinstance(dd, FakeDatadog)
        messages = _add(dd, 6, 0, ago_s=30)
        hub = start_hub(tmp_path, extra=_poller(dd.url, tmp_path))
        try:
            wait_for(lambda: _lines(hub, 6), what="6 polled lines through the API")
            time.sleep(0.7)  # two more polls over the overlap: still nothing twice
            lines = hub.get("/api/v1/logs", agent="poll:dd")["logs"]
            metrics = httpx.get(hub.api_url + "/metrics").text
        finally:
            hub.stop()
    assert sorted(m["message"] for m in lines) == sorted(messages)
    line = lines[0]
    assert (line["agent"], line["device"], line["host"], line["app"]) == (
        "poll:dd",
        "web-2",
        "web-2",
        "checkout",
    )
    assert line["severity"] == 4 and line["template_id"]
    assert 'outpost_hub_log_poller_lines_total{poller="dd"} 6.0' in metrics
    assert 'outpost_hub_log_poller_pages_total{poller="dd"}' in metrics
    _assert_no_keys(hub.service.log())


@pytest.mark.slow  # two hub starts (~10 s each under load): make soak
def test_polled_lines_are_kept_once_across_a_hub_restart_that_finds_new_ones(tmp_path: Path) -> None:
    with serving(FakeDatadog()) as dd:
        assert isinstance(dd, FakeDatadog)
        extra = _poller(dd.url, tmp_path)
        first = _add(dd, 6, 0, ago_s=30)
        hub = start_hub(tmp_path, extra=extra)
        try:
            wait_for(lambda: _lines(hub, 6), what="6 polled lines through the API")
        finally:
            hub.stop()
        _assert_no_keys(hub.service.log())
        more = _add(dd, 3, 6, ago_s=2)
        hub = start_hub(tmp_path, extra=extra, ports=(hub.api_port, hub.grpc_port))
        try:
            wait_for(lambda: _lines(hub, 9), what="the new lines after the restart")
            time.sleep(0.7)  # two more polls over the overlap: still nothing twice
            lines = hub.get("/api/v1/logs", agent="poll:dd")["logs"]
        finally:
            hub.stop()
        _assert_no_keys(hub.service.log())
    assert sorted(m["message"] for m in lines) == sorted(first + more)
