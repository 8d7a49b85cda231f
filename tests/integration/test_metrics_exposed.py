"""Every process shows its own state: scrape /metrics of a real hub process and a real agent process."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.outpost import HubHandle, start_agent, start_hub, wait_for, write_agent_config
from tests.support.procs import free_port

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(url: str) -> Samples:
    r = httpx.get(url + "/metrics", timeout=5)
    assert r.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubHandle]:
    h = start_hub(tmp_path_factory.mktemp("metrics-hub"))
    try:
        yield h
    finally:
        h.stop()


def test_an_api_request_bumps_its_route_counter_by_exactly_one(hub: HubHandle) -> None:
    labels = {"route": "/api/v1/agents", "method": "GET", "status": "200"}

    def agents_200(s: Samples) -> float:
        return _value(s, "outpost_hub_api_requests_total", **labels) or 0

    before = _scrape(hub.api_url)
    hub.get("/api/v1/agents")
    after = _scrape(hub.api_url)
    assert agents_200(after) - agents_200(before) == 1
    assert _value(after, "outpost_hub_api_request_seconds_count", **labels) == agents_200(after)


def test_requests_are_labelled_by_route_template_and_status_never_by_raw_path(hub: HubHandle) -> None:
    before = _scrape(hub.api_url)
    assert httpx.get(hub.api_url + "/api/v1/agents").status_code == 401  # no token
    assert httpx.get(hub.api_url + "/no/such/page-7731").status_code == 404
    assert httpx.get(hub.api_url + "/static/app.js").status_code == 200
    after = _scrape(hub.api_url)

    def delta(**labels: str) -> float:
        name = "outpost_hub_api_requests_total"
        return (_value(after, name, **labels) or 0) - (_value(before, name, **labels) or 0)

    assert delta(route="/api/v1/agents", method="GET", status="401") == 1
    assert delta(route="<unmatched>", method="GET", status="404") == 1
    assert delta(route="/static/{path}", method="GET", status="200") == 1
    routes = {dict(labels).get("route") for name, labels in after if name == "outpost_hub_api_requests_total"}
    assert "/no/such/page-7731" not in routes and "/static/app.js" not in routes


def test_hub_exports_store_counters_stream_hops_process_and_build_info(hub: HubHandle) -> None:
    s = _scrape(hub.api_url)
    for name in (
        "outpost_hub_store_flush_failures_total",
        "outpost_hub_store_flush_waits_total",
        "outpost_hub_store_rejected_series_total",
        "outpost_hub_store_points_below_retention_total",
        "outpost_hub_store_journal_records_skipped_total",
    ):
        assert _value(s, name) == 0, name
    assert "outpost_hub_store_flushes_total" in _names(s)
    # The stream hops bench/ws.py reads: exported before the first tick, empty.
    assert _value(s, "outpost_hub_ws_tick_wait_seconds_count") == 0
    assert _value(s, "outpost_hub_ws_flush_seconds_count") == 0
    assert {"process_resident_memory_bytes", "process_start_time_seconds", "python_info"} <= _names(s)
    build = [dict(labels) for name, labels in s if name == "outpost_build_info"]
    assert len(build) == 1 and build[0]["side"] == "hub" and build[0]["version"] == "0.1.0"
    assert _value(s, "outpost_build_info", **build[0]) == 1


def test_agent_exports_target_health_poll_duration_and_the_counters_its_stages_keep(
    hub: HubHandle, tmp_path: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:  # bound, never answers: a dead device
        udp.bind(("127.0.0.1", 0))
        dead_port = udp.getsockname()[1]
        tls = hub.issue_agent("metrics-agent", tmp_path)
        telemetry = free_port()
        config = write_agent_config(
            tmp_path / "agent.yaml",
            hub,
            tls,
            devices=[
                {"kind": "host", "interval_s": 1},
                {
                    "kind": "snmp",
                    "name": "dead-sw",
                    "address": "127.0.0.1",
                    "port": dead_port,
                    "version": "2c",
                    "community": "public",
                    "interval_s": 1,
                    "timeout_s": 0.2,
                },
            ],
            telemetry={"listen": f"127.0.0.1:{telemetry}"},
        )
        spool = tmp_path / "agent-data" / "spool"
        spool.mkdir(parents=True)
        (spool / "00000000000000000001.seg").write_bytes(b"\x00garbage, not a spool segment\xff" * 8)
        agent = start_agent(config, tmp_path / "logs")
        try:
            url = f"http://127.0.0.1:{telemetry}"

            def both_polled() -> Samples | None:
                s = _scrape(url)
                polls = [_value(s, "outpost_agent_polls_total", target=t) or 0 for t in ("host", "dead-sw")]
                return s if min(polls) >= 2 else None

            s = wait_for(both_polled, timeout=20, what="both targets polled twice")
        finally:
            agent.stop()
    assert _value(s, "outpost_agent_target_up", target="host") == 1
    assert _value(s, "outpost_agent_target_up", target="dead-sw") == 0
    host_duration = _value(s, "outpost_agent_poll_duration_seconds", target="host")
    assert host_duration is not None and 0 < host_duration < 1
    assert _value(s, "outpost_agent_collect_timeouts_total", target="host") == 0
    assert _value(s, "outpost_agent_collect_timeouts_total", target="dead-sw") is not None
    assert _value(s, "outpost_agent_detect_rejected_points_total", target="host") == 0
    assert _value(s, "outpost_agent_trap_sink_failures_total") == 0
    assert _value(s, "outpost_agent_traps_received_total") == 0
    assert _value(s, "outpost_agent_spool_quarantined_segments_total") == 1
    assert _value(s, "outpost_agent_spool_skipped_records_total") == 0
    assert {"process_resident_memory_bytes", "process_open_fds", "python_info"} <= _names(s)
    build = [dict(labels) for name, labels in s if name == "outpost_build_info"]
    assert len(build) == 1 and build[0]["side"] == "agent"
