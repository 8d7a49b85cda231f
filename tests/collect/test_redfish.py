"""The Redfish collector against sushy-static serving mockup trees of three vendors and both schemas."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from agent.collect.redfish.collector import RedfishCollector
from agent.collect.redfish.config import RedfishConfig
from shared.clock import FakeClock
from shared.model import CollectResult, SeriesKey, Severity
from tests.collect.conftest import RedfishPeer
from tests.collect.snapshot import assert_snapshot

pytestmark = pytest.mark.integration

StartSushy = Callable[[str], RedfishPeer]


async def poll(url: str, clock: FakeClock | None = None, **extra: object) -> CollectResult:
    c = RedfishCollector(
        RedfishConfig.model_validate({"name": "bmc", "url": url, **extra}), clock or FakeClock()
    )
    try:
        await c.start()
        return await c.collect()
    finally:
        await c.aclose()


def values(result: CollectResult, metric: str) -> dict[str, float]:
    return {s.key.label("sensor"): s.value for s in result.samples if s.key.metric == metric}


@pytest.mark.parametrize(
    ("tree", "quirks"),
    [("dell-idrac9-legacy", []), ("hpe-ilo4", ["ilo4-thermal"]), ("openbmc-subsystems", [])],
)
async def test_mockup_tree_yields_the_snapshot_samples(
    sushy_static: StartSushy, tree: str, quirks: list[str]
) -> None:
    peer = sushy_static(tree)
    result = await poll(peer.url, quirks=quirks)
    assert result.errors == []
    assert_snapshot(f"redfish-{tree}", result)


async def test_legacy_thermal_and_power_speak_the_common_vocabulary(sushy_static: StartSushy) -> None:
    result = await poll(sushy_static("dell-idrac9-legacy").url)
    assert values(result, "hw_temperature_celsius") == {"System Board Inlet Temp": 23.0, "CPU1 Temp": 61.0}
    assert values(result, "hw_fan_speed_rpm") == {"System Board Fan1A": 7560.0, "System Board Fan2A": 7440.0}
    assert values(result, "hw_psu_output_watts") == {"PS1 Status": 236.0, "PS2 Status": 0.0}
    assert values(result, "hw_power_watts") == {"System Power Control": 238.0}
    inlet = SeriesKey.of(
        "hw_temperature_celsius",
        {
            "chassis": "System.Embedded.1",
            "component": "Intake",
            "id": "iDRAC.Embedded.1#SystemBoardInletTemp",
            "sensor": "System Board Inlet Temp",
        },
    )
    lim = result.limits[inlet]
    assert (lim.warn_high, lim.crit_high, lim.warn_low, lim.crit_low) == (38.0, 42.0, 8.0, 3.0)
    health = {
        (s.key.label("component"), s.key.label("sensor")): s.value
        for s in result.samples
        if s.key.metric == "hw_health"
    }
    assert health[("psu-redundancy", "System Board PS Redundancy")] == 1.0
    assert health[("PowerSupply", "PS2 Status")] == 2.0
    assert health[("system", "System")] == 1.0


async def test_newer_subsystem_schema_speaks_the_same_vocabulary(sushy_static: StartSushy) -> None:
    result = await poll(sushy_static("openbmc-subsystems").url)
    assert values(result, "hw_temperature_celsius") == {"Inlet Temp": 24.5, "CPU0 Temp": 55.25}
    assert values(result, "hw_fan_speed_ratio") == pytest.approx({"Fan 0": 0.41, "Fan 1": 0.395})
    assert values(result, "hw_psu_output_watts") == {"PSU 0": 305.5, "PSU 1": 0.0}
    # EnvironmentMetrics.PowerWatts names total_power as its DataSourceUri: one reading, kept once
    assert values(result, "hw_power_watts") == {"total power": 312.0}
    cpu = SeriesKey.of(
        "hw_temperature_celsius",
        {"chassis": "chassis", "component": "CPU", "id": "CPU0_Temp", "sensor": "CPU0 Temp"},
    )
    assert (result.limits[cpu].crit_high, result.limits[cpu].crit_low) == (100.0, 5.0)


async def test_ilo4_fans_need_the_ilo4_thermal_quirk(sushy_static: StartSushy) -> None:
    url = sushy_static("hpe-ilo4").url
    without = await poll(url)
    with_quirk = await poll(url, quirks=["ilo4-thermal"])
    assert values(without, "hw_fan_speed_ratio") == {}
    assert values(with_quirk, "hw_fan_speed_ratio") == pytest.approx({"Fan 1": 0.23, "Fan 2": 0.25})
    assert values(with_quirk, "hw_temperature_celsius") == {"01-Inlet Ambient": 21.0, "02-CPU 1": 40.0}


async def test_only_new_sel_entries_become_events_and_readings_follow_the_files(
    sushy_static: StartSushy,
) -> None:
    peer = sushy_static("dell-idrac9-legacy")
    clock = FakeClock()
    c = RedfishCollector(RedfishConfig(name="bmc", url=peer.url), clock)
    entries = peer.resource("Systems/System.Embedded.1/LogServices/Sel/Entries")
    thermal = peer.resource("Chassis/System.Embedded.1/Thermal")
    try:
        first = await c.collect()
        assert first.events == []  # history is remembered, not re-announced
        doc = json.loads(entries.read_text())
        doc["Members"].append(
            {
                "Id": "3",
                "EntryType": "SEL",
                "Severity": "Critical",
                "Created": "2026-11-27T11:00:00Z",
                "SensorType": "Temperature",
                "Message": "CPU1 Temp exceeded the critical threshold.",
            }
        )
        entries.write_text(json.dumps(doc))
        t = json.loads(thermal.read_text())
        t["Temperatures"][1]["ReadingCelsius"] = 96
        thermal.write_text(json.dumps(t))
        await clock.advance(60)
        second = await c.collect()
        await clock.advance(60)
        third = await c.collect()
    finally:
        await c.aclose()
    assert [(e.kind, e.severity, e.message, dict(e.attributes)["Id"]) for e in second.events] == [
        ("redfish.sel", Severity.CRITICAL, "CPU1 Temp exceeded the critical threshold.", "3")
    ]
    assert third.events == []
    assert values(second, "hw_temperature_celsius")["CPU1 Temp"] == 96.0
