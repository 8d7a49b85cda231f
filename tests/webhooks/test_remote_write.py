"""Prometheus remote write into a running hub: a real Prometheus scraping the hub's /metrics and
remote-writing what it scraped, plus the refusals and a fuzzed parser."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.ingest.webhooks.remote_write import RemoteWriteError, encode, parse
from tests.support.outpost import HubHandle, start_agent, wait_for, write_agent_config
from tests.support.procs import Service, free_port, start_service
from tests.webhooks.conftest import add_key, now_ms, points

PROMETHEUS_CONFIG = """
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: hub
    static_configs:
      - targets: ["127.0.0.1:{hub_port}"]
  - job_name: agent
    static_configs:
      - targets: ["127.0.0.1:{agent_port}"]
remote_write:
  - url: http://127.0.0.1:{hub_port}/api/v1/write
    authorization:
      credentials: {key}
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
"""


@pytest.fixture
def prometheus(hub: HubHandle, tmp_path: Path) -> Iterator[Service]:
    """A real Prometheus scraping the hub's and a running agent's /metrics and remote-writing to the hub."""
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (make apt)")
    agent_port = free_port()
    tls = hub.issue_agent("edge-prom", tmp_path)
    agent_cfg = write_agent_config(
        tmp_path / "agent.yaml", hub, tls, telemetry={"listen": f"127.0.0.1:{agent_port}"}
    )
    key = add_key(hub, "prometheus-dc1", scopes=["ingest:write"])
    conf = tmp_path / "prometheus.yml"
    conf.write_text(PROMETHEUS_CONFIG.format(hub_port=hub.api_port, agent_port=agent_port, key=key))
    port = free_port()
    agent = start_agent(agent_cfg, tmp_path)
    try:
        svc = start_service(
            "prometheus",
            [
                "prometheus",
                f"--config.file={conf}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            tmp_path,
            port=port,
            ready_log="Server is ready to receive web requests",
        )
        try:
            yield svc
        finally:
            svc.stop()
    finally:
        agent.stop()


def post(hub: HubHandle, body: bytes, token: str | None = None, **headers: str) -> httpx.Response:
    sent = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy", **headers}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{hub.api_url}/api/v1/write", content=body, headers=sent)


@pytest.mark.integration
def test_prometheus_scrapes_the_hub_and_an_agent_and_remote_writes_to_the_hub(
    hub: HubHandle, prometheus: Service
) -> None:
    # `up` 1 means Prometheus parsed that /metrics page; the hub's own counters come back through it.
    for job in ("hub", "agent"):
        up = wait_for(
            lambda j=job: points(hub, "up", job=j), timeout=30, what=f"up{{job={job}}} remote-written"
        )
        assert list(up) == ["push:prometheus-dc1"] and {v for _, v in up["push:prometheus-dc1"]} == {1.0}
    scraped = wait_for(
        lambda: points(hub, "outpost_hub_ingest_points_total", transport="prometheus"),
        timeout=30,
        what="the hub's own remote-write counter, scraped and written back",
    )
    assert max(v for _, v in scraped["push:prometheus-dc1"]) > 0
    agents = {a["id"]: a for a in hub.get("/api/v1/agents")["agents"]}
    assert agents["push:prometheus-dc1"]["points_received"] > 0 and agents["push:prometheus-dc1"]["gaps"] == 0


@pytest.mark.integration
def test_remote_write_refusals_are_answered_and_counted(hub: HubHandle) -> None:
    token = add_key(hub, "rw-refused")
    t = now_ms() - 1000
    good = encode([({"__name__": "temp", "room": "a"}, [(t, 21.5)]), ({"room": "b"}, [(t, 1.0)])])
    assert post(hub, good).status_code == 401
    assert post(hub, good, add_key(hub, "rw-viewer", role="viewer")).status_code == 403
    assert post(hub, good, token, **{"Content-Encoding": "gzip"}).status_code == 415
    assert post(hub, good, token, **{"Content-Type": "application/json"}).status_code == 415
    assert post(hub, b"\x05not snappy", token).status_code == 400
    # A block claiming to unpack to 1 GB is refused from its header, never unpacked.
    assert post(hub, b"\x80\x80\x80\x80\x04" + b"\x00" * 16, token).status_code == 413
    assert post(hub, good, token).status_code == 204
    assert points(hub, "temp", room="a") == {"push:rw-refused": [[t, 21.5]]}
    metrics = httpx.get(f"{hub.api_url}/metrics").text
    for reason in ("unsupported_media_type", "invalid", "request_too_large", "nameless_series"):
        assert f'outpost_hub_ingest_rejected_total{{reason="{reason}",transport="prometheus"}}' in metrics


@pytest.mark.unit
def test_samples_are_sorted_deduplicated_and_stale_markers_left_out() -> None:
    body = encode(
        [({"__name__": "up", "job": "x"}, [(2000, 1.0), (1000, 0.0), (2000, 5.0), (3000, float("nan"))])]
    )
    parsed = parse(body, 1_000_000)
    (s,) = parsed.series
    assert s.key.metric == "up" and s.key.labels == (("job", "x"),)
    assert s.timestamps_ms.tolist() == [1000, 2000] and s.values.tolist() == [0.0, 5.0]
    assert parsed.nan_samples == 1 and parsed.points == 2


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_remote_write_error(body: bytes) -> None:
    try:
        parsed = parse(body, 64_000)
    except RemoteWriteError:
        return
    assert parsed.points >= 0


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
            st.lists(st.tuples(st.integers(-(2**40), 2**40), st.floats()), max_size=5),
        ),
        max_size=4,
    )
)
def test_any_write_request_parses(series: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> None:
    parsed = parse(encode(series), 1_000_000)
    for s in parsed.series:
        assert bool((s.timestamps_ms[1:] > s.timestamps_ms[:-1]).all())
