"""A real agent process delivers this host's series to a real hub process, every point accounted for."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.support.outpost import HubHandle, start_agent, wait_for, write_agent_config

pytestmark = pytest.mark.e2e


def _stored_points(hub: HubHandle) -> int:
    total = 0
    metrics = {s["metric"] for s in hub.get("/api/v1/series")["series"]}
    for metric in metrics:
        result = hub.get("/api/v1/query", metric=metric, start="-10m", end="now", max_points=1_000_000)
        total += sum(len(s["points"]) for s in result["series"])
    return total


def test_agent_streams_host_series_and_every_point_is_queryable(hub: HubHandle, tmp_path: Path) -> None:
    tls = hub.issue_agent("jump1", tmp_path / "certs", site="dc1")
    cfg = write_agent_config(tmp_path / "agent.yaml", hub, tls)
    agent = start_agent(cfg, tmp_path / "logs")
    try:
        series = wait_for(
            lambda: hub.get("/api/v1/series", metric="host_cpu_utilization_percent")["series"],
            what="host CPU series at the hub",
        )
        assert {s["labels"]["agent"] for s in series} == {"dc1/jump1"}
        wait_for(
            lambda: hub.get("/api/v1/query", metric="host_memory_used_bytes", start="-5m")["series"],
            what="memory points",
        )
    finally:
        agent.kill(signal.SIGTERM)  # graceful: flushes its open batch and drains before exiting
    assert agent.proc.returncode == 0, agent.log()[-2000:]
    (info,) = hub.get("/api/v1/agents")["agents"]
    assert info["id"] == "dc1/jump1"
    assert info["gaps"] == 0 and info["duplicates"] == 0
    assert info["points_received"] > 0
    assert _stored_points(hub) == info["points_received"]
    # The agent said how many points the hub acknowledged; they are exactly the ones stored.
    assert "undelivered" not in agent.log()


def test_api_refuses_requests_without_a_valid_token(hub: HubHandle) -> None:
    assert httpx.get(hub.api_url + "/api/v1/agents").status_code == 401
    bad = httpx.get(hub.api_url + "/api/v1/agents", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert "nope" not in bad.text
    assert httpx.get(hub.api_url + "/healthz").status_code == 200
