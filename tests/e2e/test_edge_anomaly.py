"""A reading that jumps on a simulated BMC reaches the hub as an anomaly event within seconds."""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.support.outpost import HubHandle, start_agent, wait_for, write_agent_config
from tests.support.procs import free_port, start_service

pytestmark = pytest.mark.e2e

TREE = Path(__file__).resolve().parents[1] / "collect" / "fixtures" / "redfish" / "dell-idrac9-legacy"
THERMAL = Path("Chassis/System.Embedded.1/Thermal/index.json")
SENSOR = "System Board Inlet Temp"


def _set_inlet(root: Path, celsius: float, thresholds: bool) -> None:
    path = root / THERMAL
    doc = json.loads(path.read_text())
    for t in doc["Temperatures"]:
        if t["Name"] == SENSOR:
            t["ReadingCelsius"] = celsius
            if not thresholds:  # so the event comes from the learned baseline, not the device's limits
                for k in [k for k in t if k.endswith(("ThresholdCritical", "ThresholdNonCritical"))]:
                    del t[k]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


def test_an_injected_temperature_jump_is_flagged_at_the_edge_and_reaches_the_hub(
    hub: HubHandle, tmp_path: Path
) -> None:
    root = tmp_path / "bmc"
    shutil.copytree(TREE, root)
    _set_inlet(root, 23.0, thresholds=False)
    port = free_port()
    bmc = start_service(
        "sushy-static",
        [
            str(Path(sys.executable).parent / "sushy-static"),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            str(root),
        ],
        tmp_path / "logs",
        port=port,
    )
    tls = hub.issue_agent("edge1", tmp_path / "certs")
    cfg = write_agent_config(
        tmp_path / "agent.yaml",
        hub,
        tls,
        devices=[{"kind": "redfish", "name": "bmc1", "url": f"http://127.0.0.1:{port}", "interval_s": 0.5}],
        detect={"default": {"warmup_points": 10, "warmup_s": 0, "seasonality": "none"}},
    )
    agent = start_agent(cfg, tmp_path / "logs")
    try:
        wait_for(
            lambda: (
                len(
                    (
                        hub.get("/api/v1/query", metric="hw_temperature_celsius", start="-5m")["series"]
                        or [{"points": []}]
                    )[0]["points"]
                )
                >= 15
            ),
            timeout=40,
            what="15 learned temperature readings at the hub",
        )
        assert hub.get("/api/v1/events", kind="anomaly")["events"] == []
        injected = time.time()
        _set_inlet(root, 95.0, thresholds=False)
        events = wait_for(
            lambda: hub.get("/api/v1/events", kind="anomaly.onset")["events"],
            timeout=15,
            what="anomaly event",
        )
        latency = time.time() - injected
    finally:
        agent.kill(signal.SIGTERM)
        bmc.stop()
    onset = events[0]
    assert onset["agent"] == "default/edge1"
    assert onset["attributes"]["metric"] == "hw_temperature_celsius"
    assert SENSOR in onset["source"]
    assert float(onset["attributes"]["value"]) == 95.0
    assert onset["severity"] in ("warning", "critical")
    assert latency < 5.0, f"anomaly took {latency:.1f}s to reach the hub"
