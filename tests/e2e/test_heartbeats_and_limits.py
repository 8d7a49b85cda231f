"""What a real agent sends for alerting: heartbeats every interval, and its devices' limits with the series.

A real agent heartbeats to a real hub (counted on the hub's /metrics and /api/v1/agents as batches without
points, and no seq gap); with the hub down, the agent's spool holds exactly one heartbeat however many
intervals pass, and the metrics batches it spooled from a real (sushy-static) BMC carry the BMC's
thresholds for their series.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from agent.config import SpoolConfig
from agent.outbox.spool import Spool
from shared import codec
from shared.model import Batch, BatchClass, Limits
from tests.collect.conftest import start_sushy_static
from tests.support.outpost import HubHandle, start_agent, start_hub, wait_for, write_agent_config
from tests.support.procs import free_port

pytestmark = pytest.mark.e2e


def _metric(url: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text exposition; 0 while never incremented."""
    want = [f'{k}="{v}"' for k, v in labels.items()]
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name + "{") and all(w in line for w in want):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_the_agent_heartbeats_to_a_real_hub_every_interval_and_the_hub_stores_no_points(
    hub: HubHandle, tmp_path: Path
) -> None:
    tls = hub.issue_agent("beat1", tmp_path / "certs", site="lab")
    # No devices: every batch this agent sends is a heartbeat.
    cfg = write_agent_config(tmp_path / "agent.yaml", hub, tls, devices=[], heartbeat_s=1)
    agent = start_agent(cfg, tmp_path / "logs")
    try:
        t0 = time.monotonic()
        stored = "outpost_hub_ingest_batches_total"
        wait_for(lambda: _metric(hub.api_url, stored, result="stored") >= 4, timeout=20, what="4 heartbeats")
        elapsed = time.monotonic() - t0
        count = _metric(hub.api_url, stored, result="stored")
        (a,) = [a for a in hub.get("/api/v1/agents")["agents"] if a["id"] == "lab/beat1"]
    finally:
        agent.kill(signal.SIGTERM)
    assert agent.proc.returncode == 0, agent.log()[-2000:]
    # One per second since start (plus the one at start): not a burst, not fewer.
    assert 4 <= count <= elapsed + 3
    assert _metric(hub.api_url, "outpost_hub_ingest_points_total") == 0.0
    assert a["points_received"] == 0
    assert a["batches_received"] >= 4
    assert a["gaps"] == 0
    assert a["duplicates"] == 0


async def _spooled(spool_dir: Path) -> list[Batch]:
    spool = Spool(spool_dir, SpoolConfig())
    spool.open()
    try:
        return [codec.decode((await spool.get()).envelope)[1] for _ in range(spool.pending())]
    finally:
        spool.close()


def test_with_the_hub_down_the_spool_holds_one_heartbeat_and_bmc_limits_ride_with_their_series(
    tmp_path: Path,
) -> None:
    hub = start_hub(tmp_path)  # only to issue the agent's certificate: the agent never reaches it
    tls = hub.issue_agent("edge9", tmp_path / "certs", site="lab")
    hub.stop()
    bmc = start_sushy_static("dell-idrac9-legacy", tmp_path / "bmc")
    telemetry = free_port()
    try:
        devices = [{"kind": "redfish", "name": "bmc-r740", "url": bmc.url, "interval_s": 1}]
        cfg = write_agent_config(
            tmp_path / "agent.yaml",
            hub,
            tls,
            devices=devices,
            heartbeat_s=1,
            telemetry={"listen": f"127.0.0.1:{telemetry}"},
        )
        agent = start_agent(cfg, tmp_path / "logs")
        try:
            url = f"http://127.0.0.1:{telemetry}"
            replaced = "outpost_agent_dropped_batches_total"
            wait_for(
                lambda: _metric(url, replaced, **{"class": "heartbeat", "reason": "replaced"}) >= 4,
                timeout=30,
                what="four heartbeats replaced in the spool while the hub is down",
            )
        finally:
            agent.kill()  # SIGKILL: the spool on disk is what a crash leaves
    finally:
        bmc.service.stop()

    batches = asyncio.run(_spooled(tmp_path / "agent-data" / "spool"))
    beats = [b for b in batches if b.batch_class is BatchClass.HEARTBEAT]
    assert len(beats) == 1
    hb = beats[0].heartbeat
    assert hb is not None and beats[0].series == () and beats[0].events == ()
    assert hb.interval_ms == 1000
    assert [(t.name, t.up) for t in hb.targets] == [("bmc-r740", True)]
    assert hb.targets[0].last_poll_ms >= 0
    cert = x509.load_pem_x509_certificate(Path(tls["cert_file"]).read_bytes())
    assert hb.cert_not_after_ms == int(cert.not_valid_after_utc.timestamp() * 1000)
    assert hb.spool_records >= 1 and hb.spool_bytes > 0
    assert hb.agent_version != ""

    data = (BatchClass.METRICS, BatchClass.ROLLUP)
    series = [s for b in batches if b.batch_class in data for s in b.series]
    inlet = [
        s
        for s in series
        if s.key.metric == "hw_temperature_celsius" and s.key.label("sensor") == "System Board Inlet Temp"
    ]
    assert inlet, sorted({s.key.metric for s in series})
    assert {s.key.label("device") for s in inlet} == {"bmc-r740"}
    assert {s.limits for s in inlet} == {Limits(warn_high=38.0, crit_high=42.0, warn_low=8.0, crit_low=3.0)}
    # Series the BMC gives no thresholds for carry none.
    assert {s.limits for s in series if s.key.metric == "hw_power_watts"} == {None}
