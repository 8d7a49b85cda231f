"""Every series reaching the hub carries the device it came from: two SNMP devices of one profile stay two.

One real agent polls two snmpsim devices serving the same recording (same profile, same label sets),
a sushy-static BMC and its own host; the hub's `/api/v1/series` must list each metric once per device.
"""

from __future__ import annotations

import shutil
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.collect.conftest import FIXTURES, RedfishPeer, snmp_get_cli, start_snmpsim, start_sushy_static
from tests.support.outpost import HubHandle, start_agent, wait_for, write_agent_config
from tests.support.procs import Service, free_port

pytestmark = pytest.mark.e2e

TWINS = ("lab-a", "lab-b")  # both serve fixtures/snmprec/lab-growing.snmprec (Arista sysObjectID)


@pytest.fixture
def twin_snmp(tmp_path: Path) -> Iterator[tuple[Service, int]]:
    data = tmp_path / "snmp-data"
    data.mkdir()
    for community in TWINS:
        shutil.copyfile(FIXTURES / "snmprec" / "lab-growing.snmprec", data / f"{community}.snmprec")
    port = free_port(socket.SOCK_DGRAM)
    svc = start_snmpsim(data, tmp_path / "snmp-cache", tmp_path / "logs", port)
    try:
        for community in TWINS:
            snmp_get_cli(port, community, "1.3.6.1.2.1.1.3.0")
        yield svc, port
    finally:
        svc.stop()


@pytest.fixture
def bmc(tmp_path: Path) -> Iterator[RedfishPeer]:
    peer = start_sushy_static("dell-idrac9-legacy", tmp_path / "bmc")
    try:
        yield peer
    finally:
        peer.service.stop()


def _by_metric(hub: HubHandle) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for s in hub.get("/api/v1/series", limit=100_000)["series"]:
        out.setdefault(s["metric"], []).append(s)
    return out


def test_two_devices_of_one_profile_give_two_series_per_metric_and_every_series_names_its_device(
    hub: HubHandle, tmp_path: Path, twin_snmp: tuple[Service, int], bmc: RedfishPeer
) -> None:
    _, snmp_port = twin_snmp
    devices: list[dict[str, Any]] = [
        {"kind": "host", "name": "edge-host", "interval_s": 1},
        *(
            {
                "kind": "snmp",
                "name": name,
                "address": "127.0.0.1",
                "port": snmp_port,
                "community": name,
                "interval_s": 1,
                "timeout_s": 2,
            }
            for name in TWINS
        ),
        {"kind": "redfish", "name": "bmc-r740", "url": bmc.url, "interval_s": 1},
    ]
    tls = hub.issue_agent("edge1", tmp_path / "certs", site="lab")
    cfg = write_agent_config(tmp_path / "agent.yaml", hub, tls, devices=devices)
    agent = start_agent(cfg, tmp_path / "logs")
    try:
        # the interface rate needs two polls of each twin; the BMC's temperatures one
        wait_for(
            lambda: (
                {
                    s["labels"].get("device")
                    for s in _by_metric(hub).get("net_if_receive_bytes_per_second", [])
                }
                == set(TWINS)
                and "hw_temperature_celsius" in _by_metric(hub)
            ),
            timeout=40,
            interval=0.5,
            what="both twins' interface rates and the BMC's temperatures at the hub",
        )
        series = _by_metric(hub)
    finally:
        agent.kill(signal.SIGTERM)
    assert agent.proc.returncode == 0, agent.log()[-2000:]

    uptime = series["snmp_uptime_seconds"]
    assert sorted(s["labels"]["device"] for s in uptime) == ["lab-a", "lab-b"]
    assert all(s["labels"]["agent"] == "lab/edge1" for s in uptime)
    # Per metric and label set (without `device`), exactly one series per twin: nothing merged.
    snmp = {m: ss for m, ss in series.items() if m.startswith(("snmp_", "net_"))}
    assert len(snmp) >= 3, sorted(snmp)
    for metric, ss in snmp.items():
        per_device = {d: len([s for s in ss if s["labels"]["device"] == d]) for d in TWINS}
        assert per_device["lab-a"] == per_device["lab-b"] >= 1, (metric, per_device)
        assert len(ss) == 2 * per_device["lab-a"], (metric, ss)

    hw = {m: ss for m, ss in series.items() if m.startswith("hw_")}
    assert {"hw_temperature_celsius", "hw_health"} <= set(hw)
    assert {s["labels"]["device"] for ss in hw.values() for s in ss} == {"bmc-r740"}

    host = {m: ss for m, ss in series.items() if m.startswith("host_")}
    assert "host_memory_used_bytes" in host
    assert {s["labels"]["device"] for ss in host.values() for s in ss} == {"edge-host"}

    # No series of any collector lacks its device.
    collected = [s for m, ss in series.items() if m.startswith(("snmp_", "net_", "hw_", "host_")) for s in ss]
    assert [s for s in collected if "device" not in s["labels"]] == []
