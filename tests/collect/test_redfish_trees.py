"""The Redfish collector against sushy-static serving trees written from the DMTF schemas: a newer-schema
rack server with every sensor type, a blade enclosure, an HPE iLO 6 and a Supermicro X12 style BMC.

Each tree's readings are counted from its files by redfish_census.py (not by the collector), and a poll
must yield at least 95 % of them, none twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from agent.collect import vocabulary as v
from agent.collect.redfish.collector import MAX_PAGES, RedfishCollector
from agent.collect.redfish.config import RedfishConfig
from agent.collect.traps import TrapStats
from agent.telemetry import LiveCollector, LiveSources
from shared.clock import FakeClock
from shared.model import CollectResult, Sample
from tests.collect.conftest import REDFISH_TREES, RedfishPeer
from tests.collect.redfish_census import held_readings

pytestmark = pytest.mark.integration

StartSushy = Callable[[str], RedfishPeer]
STATES = {v.HEALTH.name, v.HEALTH_ROLLUP.name, v.STATUS.name, v.THROTTLED.name, v.ALARM.name}
RATINGS = {v.PSU_CAPACITY.name}  # what a part can do, not a sensor's reading
COUNTS = {v.ERRORS.name}  # error counters, not readings
CHASSIS = "Chassis/1U"


def collector(url: str, **extra: object) -> RedfishCollector:
    return RedfishCollector(RedfishConfig.model_validate({"name": "bmc", "url": url, **extra}), FakeClock())


async def poll(url: str, **extra: object) -> CollectResult:
    c = collector(url, **extra)
    try:
        return await c.collect()
    finally:
        await c.aclose()


def readings(result: CollectResult) -> list[Sample]:
    return [s for s in result.samples if s.key.metric not in STATES | RATINGS | COUNTS]


def series(result: CollectResult, metric: str, **labels: str) -> dict[str, float]:
    """`sensor` (plus `/property` when set) -> value, for the samples of `metric` matching `labels`."""
    out = {}
    for s in result.samples:
        if s.key.metric == metric and all(s.key.label(k) == x for k, x in labels.items()):
            prop = s.key.label("property")
            out[s.key.label("sensor") + (f"/{prop}" if prop else "")] = s.value
    return out


def state(result: CollectResult, metric: str, **labels: str) -> float:
    (value,) = series(result, metric, **labels).values()
    return value


def write(peer: RedfishPeer, rel: str, text: str) -> None:
    peer.resource(rel).write_text(text)


class _NoScores:
    def rejected_points(self) -> dict[str, int]:
        return {}


def scrape(c: RedfishCollector) -> str:
    """The agent's /metrics text as its LiveCollector renders it for this one collector."""
    registry = CollectorRegistry()
    sources = LiveSources({}, TrapStats(), _NoScores(), lambda: 0, lambda: 0, collectors=[c])
    registry.register(LiveCollector(sources))
    return generate_latest(registry).decode()


@pytest.mark.parametrize(
    ("tree", "quirks"),
    [
        ("dmtf-rack-server", []),
        ("blade-chassis", []),
        ("hpe-ilo6", []),
        ("supermicro-x12", []),
        ("dell-idrac9-legacy", []),
        ("openbmc-subsystems", []),
        ("hpe-ilo4", ["ilo4-thermal"]),
        # DMTF's own mockups (Redfish-Publications, BSD-3-Clause), held out: not written for this collector
        ("dmtf-public-bladed", []),
        ("dmtf-public-rackmount1", []),
    ],
)
async def test_a_tree_yields_at_least_95_percent_of_the_readings_it_holds_each_once(
    sushy_static: StartSushy, tree: str, quirks: list[str]
) -> None:
    held = len(held_readings(REDFISH_TREES / tree))
    result = await poll(sushy_static(tree).url, quirks=quirks)
    yielded = readings(result)
    assert result.errors == []
    assert len({s.key for s in result.samples}) == len(result.samples)
    assert held * 0.95 <= len(yielded) <= held, f"{tree}: {len(yielded)} of {held}"


async def test_sensors_map_by_reading_type_else_by_units_into_base_units(sushy_static: StartSushy) -> None:
    result = await poll(sushy_static("dmtf-rack-server").url)
    # no ReadingType, only "ReadingUnits": "Cel"
    assert series(result, v.TEMPERATURE.name, component="Memory") == {"DIMM A1 Temperature": 41.0}
    assert series(result, v.TEMPERATURE.name, component="Exhaust") == {"Exhaust Temperature": 38.0}
    assert series(result, v.ENERGY.name, id="Energy") == {"Chassis Energy": 1234.5 * 3.6e6}
    assert series(result, v.HUMIDITY.name) == {"Inlet Humidity": pytest.approx(0.38)}
    assert series(result, v.FREQUENCY.name, component="PowerSupply") == {"Power Supply 1/FrequencyHz": 50.0}
    assert series(result, v.CURRENT.name, id="CPU1Current") == {"CPU1 VR Current": 118.0}
    assert series(result, v.VOLTAGE.name, id="VBAT") == {"CMOS Battery": pytest.approx(3.01)}  # mV
    assert series(result, v.PRESSURE.name) == {"Coolant Pressure": 128_000.0}  # kPa
    assert series(result, v.AIRFLOW.name) == {"System Airflow": pytest.approx(0.04)}  # m3/min
    assert series(result, v.LEVEL.name, component="CPU") == {"CPU1 Utilization": pytest.approx(0.37)}
    assert series(result, v.FAN_SPEED_RPM.name, id="Fan1Tach") == {"Fan 1 Tach": 8400.0}
    by_key = {s.key.label("id"): s.key for s in result.samples if s.key.metric == v.VOLTAGE.name}
    vbat = result.limits[by_key["VBAT"]]
    assert (vbat.warn_low, vbat.crit_low) == (pytest.approx(2.7), pytest.approx(2.5))
    pch = next(k for k in result.limits if k.label("id") == "PCHTemp")  # thresholds as bare numbers
    assert (result.limits[pch].warn_high, result.limits[pch].crit_high) == (85.0, 95.0)


async def test_a_reading_several_resources_publish_is_kept_once_with_the_most_specific_labels(
    sushy_static: StartSushy,
) -> None:
    c = collector(sushy_static("dmtf-rack-server").url)
    try:
        result = await c.collect()
    finally:
        await c.aclose()
    # TotalPower, EnvironmentMetrics.PowerWatts (DataSourceUri -> TotalPower) and the PSU's input sensor
    # (PSU1 Metrics.InputPowerWatts -> PS1InputPower): two readings, not four. The legacy PowerControl
    # names no source and no newer sensor of its name: a reading of its own.
    watts_374 = {k: x for k, x in series(result, v.POWER.name).items() if x == 374.0}
    assert watts_374 == {
        "Total Power": 374.0,
        "Power Supply 1/InputPowerWatts": 374.0,
        "System Input Power": 374.0,
    }
    # legacy members naming a newer resource's sensor are not read twice; the others are read
    assert series(result, v.TEMPERATURE.name, sensor="CPU1 Temperature") == {}  # kept on the processor
    assert series(result, v.TEMPERATURE.name, sensor="Riser Temp") == {"Riser Temp": 35.0}
    assert series(result, v.VOLTAGE.name, sensor="12V Rail") == {"12V Rail": 12.08}
    assert series(result, v.VOLTAGE.name, sensor="VRM1 Voltage") == {"VRM1 Voltage": 1.8}
    assert series(result, v.FAN_SPEED_RPM.name, sensor="BaseBoard System Fan") == {
        "BaseBoard System Fan": 2100
    }
    # ThermalMetrics and the processor's EnvironmentMetrics repeat CPU1Temp: kept once, on the processor
    # (whose health it joins), with the Sensor's thresholds
    cpu1 = [s.key for s in result.samples if s.key.metric == v.TEMPERATURE.name and s.value == 61.5]
    assert len(cpu1) == 1 and result.limits[cpu1[0]].crit_high == 100.0
    # Fan 1's speed is in its Fan resource, a Percent sensor and EnvironmentMetrics: kept on the fan,
    # whose speed and state share every label
    fan = {"chassis": "1U", "component": "Fan", "id": "1", "sensor": "Fan 1"}
    assert series(result, v.FAN_SPEED_RATIO.name, id="1") == {"Fan 1": pytest.approx(0.42)}
    assert series(result, v.FAN_SPEED_RATIO.name, id="Fan1Speed") == {}
    assert {dict(s.key.labels) == fan for s in result.samples if s.key.label("sensor") == "Fan 1"} == {True}
    assert {s.key.metric for s in result.samples if dict(s.key.labels) == fan} == {
        v.FAN_SPEED_RATIO.name,
        v.FAN_SPEED_RPM.name,
        v.POWER.name,
        v.HEALTH.name,
        v.STATUS.name,
    }
    assert c.stats.duplicate_readings == 28  # PSU1's rating is in legacy Power and in PowerSubsystem


async def test_an_absent_supply_and_a_group_that_lost_redundancy_are_visible_states(
    sushy_static: StartSushy,
) -> None:
    result = await poll(sushy_static("dmtf-rack-server").url)
    psu2 = {"component": "PowerSupply", "id": "PSU2"}
    assert state(result, v.STATUS.name, **psu2) == v.STATUS_CODES["Absent"]
    assert {s.key.metric for s in result.samples if s.key.label("id") == "PSU2"} == {v.STATUS.name}
    group = {"component": "psu-redundancy", "sensor": "NPlusM"}
    assert state(result, v.STATUS.name, **group) == v.STATUS_CODES["UnavailableOffline"]
    assert state(result, v.HEALTH.name, **group) == 0.0  # what the BMC says; the state shows the loss
    assert state(result, v.HEALTH.name, component="power-subsystem") == v.HEALTH_CODES["Warning"]
    assert state(result, v.HEALTH_ROLLUP.name, component="chassis") == v.HEALTH_CODES["Warning"]
    assert (
        state(result, v.STATUS.name, component="fan-redundancy", sensor="NPlusM") == v.STATUS_CODES["Enabled"]
    )
    assert state(result, v.HEALTH.name, component="manager") == 0.0
    bbu = series(result, v.BATTERY_CHARGE.name) | series(result, v.BATTERY_HEALTH.name)
    assert bbu == {
        "Backup Battery Unit/ChargePercent": 1.0,
        "Backup Battery Unit/StateOfHealthPercent": pytest.approx(0.93),
    }


async def test_supplies_of_one_name_stay_apart_and_thermal_metrics_are_the_temperatures(
    sushy_static: StartSushy,
) -> None:
    result = await poll(sushy_static("hpe-ilo6").url)
    supplies = {
        s.key.label("id"): s.value
        for s in result.samples
        if s.key.metric == v.PSU_OUTPUT.name and s.key.label("sensor") == "HpeServerPowerSupply"
    }
    assert supplies == {"1": 181.0, "2": 163.0}
    temps = series(result, v.TEMPERATURE.name)
    # from ThermalMetrics; the legacy Thermal beside it describes the same sensors and is not read again
    assert len(temps) == 8 and temps["01-Inlet Ambient"] == 21.0
    assert series(result, v.FAN_SPEED_RATIO.name, id="3") == {"Fan 3": pytest.approx(0.30)}
    assert state(result, v.HEALTH.name, component="fan", id="3") == 0.0


async def test_blades_are_chassis_of_their_own_and_an_empty_bay_is_a_state(sushy_static: StartSushy) -> None:
    result = await poll(sushy_static("blade-chassis").url)
    cpu1 = {
        s.key.label("chassis"): s.value
        for s in result.samples
        if s.key.metric == v.TEMPERATURE.name and s.key.label("id") == "CPU1Temp"
    }
    assert cpu1 == {"Blade1": 56.0, "Blade2": 57.0}
    assert state(result, v.STATUS.name, chassis="Blade3", component="chassis") == v.STATUS_CODES["Absent"]
    enclosure = series(result, v.POWER.name, chassis="Enclosure", component="PowerSupply")
    assert len(enclosure) == 4  # bays 5 and 6 are empty
    bays = {
        s.key.label("id"): s.value
        for s in result.samples
        if s.key.metric == v.STATUS.name and s.key.label("component") == "PowerSupply"
    }
    assert bays == {f"PSU{i}": 0.0 for i in range(1, 5)} | {"PSU5": 6.0, "PSU6": 6.0}
    assert state(result, v.HEALTH.name, component="PowerSupply", id="PSU4") == v.HEALTH_CODES["Critical"]
    assert state(result, v.STATUS.name, component="psu-redundancy") == v.STATUS_CODES["Degraded"]
    assert state(result, v.STATUS.name, component="Fan", id="Fan6") == v.STATUS_CODES["Absent"]


async def test_the_manager_log_is_read_across_its_pages_and_only_new_entries_are_announced(
    sushy_static: StartSushy,
) -> None:
    peer = sushy_static("supermicro-x12")
    last_page = "Managers/1/LogServices/Log1/Entries?$skip=4"
    c = collector(peer.url)
    try:
        first = await c.collect()
        page = json.loads(peer.resource(last_page).read_text())
        entry = dict(page["Members"][-1], Id="7", Severity="Critical", Message="[SEL] PS2 failure detected.")
        page["Members"].append(entry)
        write(peer, last_page, json.dumps(page))
        second = await c.collect()
        third = await c.collect()
    finally:
        await c.aclose()
    assert first.events == [] and first.errors == []
    assert [(e.message, dict(e.attributes)["Id"], dict(e.attributes)["log"]) for e in second.events] == [
        ("[SEL] PS2 failure detected.", "7", "Log1")
    ]
    assert third.events == []


async def test_every_page_of_a_log_is_history_on_the_first_read(sushy_static: StartSushy) -> None:
    peer = sushy_static("dmtf-rack-server")
    c = collector(peer.url)
    rel = "Managers/BMC/LogServices/Journal/Entries?$skip=6"
    try:
        await c.collect()
        page = json.loads(peer.resource(rel).read_text())
        page["Members"][0] = dict(page["Members"][0], Id="8", Message="Fan 2 replaced.")
        write(peer, rel, json.dumps(page))
        second = await c.collect()
    finally:
        await c.aclose()
    assert [e.message for e in second.events] == ["Fan 2 replaced."]


async def test_a_bad_document_costs_only_its_own_readings_every_poll_alike(sushy_static: StartSushy) -> None:
    peer = sushy_static("dmtf-rack-server")
    good = await poll(peer.url)
    write(peer, "Systems/1", "<html>502 Bad Gateway</html>")
    write(peer, f"{CHASSIS}/ThermalSubsystem/ThermalMetrics", "[1, 2, 3]")
    truncated = '{"Id": "CPU1Power", "Reading": 141.0, "ReadingType": "Power"'
    write(peer, f"{CHASSIS}/Sensors/CPU1Power", truncated)
    c = collector(peer.url)
    try:
        polls = [await c.collect() for _ in range(3)]
    finally:
        await c.aclose()
    assert [sorted(p.errors) for p in polls] == [
        [
            "bmc: body is not JSON (/redfish/v1/Chassis/1U/Sensors/CPU1Power)",
            "bmc: body is not JSON (/redfish/v1/Systems/1)",
            "bmc: body is not a JSON object (/redfish/v1/Chassis/1U/ThermalSubsystem/ThermalMetrics)",
        ]
    ] * 3
    assert c.stats.bad_documents == 9
    assert 'outpost_agent_collect_item_events_total{event="bad_documents",target="bmc"} 9.0' in scrape(c)
    # the processors and memory of the bad system are lost with it (their own test is test_redfish_compute)
    lost = {s.key for s in good.samples if not s.key.label("system")} - {s.key for s in polls[0].samples}
    assert not [s for p in polls for s in p.samples if s.key.label("system")]
    # the system's states, CPU1 Power and its states, and ThermalMetrics' only own reading (Internal)
    assert {(k.metric, k.label("sensor")) for k in lost} == {
        (v.HEALTH.name, "1U Rack Server"),
        (v.HEALTH_ROLLUP.name, "1U Rack Server"),
        (v.STATUS.name, "1U Rack Server"),
        (v.POWER.name, "CPU1 Power"),
        (v.HEALTH.name, "CPU1 Power"),
        (v.STATUS.name, "CPU1 Power"),
        (v.TEMPERATURE.name, "summary"),
    }
    assert len({len(p.samples) for p in polls}) == 1


async def test_null_redundancy_absent_sensors_and_a_looping_next_link_are_no_trouble(
    sushy_static: StartSushy,
) -> None:
    peer = sushy_static("supermicro-x12")
    entries = "Systems/1/LogServices/Log1/Entries"
    page = json.loads(peer.resource(entries).read_text())
    page["Members@odata.nextLink"] = f"/redfish/v1/{entries}"  # a firmware bug: the page links to itself
    write(peer, entries, json.dumps(page))
    result = await poll(peer.url)
    assert result.errors == []
    assert state(result, v.STATUS.name, sensor="P1_DIMMB1 Temp") == v.STATUS_CODES["Absent"]
    assert series(result, v.TEMPERATURE.name, sensor="P1_DIMMB1 Temp") == {}
    assert state(result, v.STATUS.name, sensor="FAN3") == v.STATUS_CODES["Absent"]
    # LastPowerOutputWatts is null: the output comes from PowerOutputWatts, with input and line voltage
    assert series(result, v.PSU_OUTPUT.name) == {"Power Supply 1": 144.0, "Power Supply 2": 137.0}
    assert series(result, v.POWER.name, property="PowerInputWatts") == {
        "Power Supply 1/PowerInputWatts": 158.0,
        "Power Supply 2/PowerInputWatts": 150.0,
    }
    assert len(series(result, v.VOLTAGE.name, component="SystemBoard")) == 10
    assert len(series(result, v.VOLTAGE.name, property="LineInputVoltage")) == 2


async def test_a_document_of_the_wrong_shape_costs_only_its_own_readings(sushy_static: StartSushy) -> None:
    peer = sushy_static("hpe-ilo4")
    thermal = json.loads(peer.resource("Chassis/1/Thermal").read_text())
    write(peer, "Chassis/1/Thermal", json.dumps(thermal | {"Fans": 5}))  # the quirk iterates Fans
    c = collector(peer.url, quirks=["ilo4-thermal"])
    try:
        result = await c.collect()
    finally:
        await c.aclose()
    assert result.errors == ["bmc: unexpected document shape (TypeError) (/redfish/v1/Chassis/1/Thermal)"]
    assert c.stats.malformed_documents == 1
    assert series(result, v.TEMPERATURE.name) == {}
    assert series(result, v.PSU_OUTPUT.name) == {"HpServerPowerSupply": 95.0, "HpServerPowerSupply 2": 92.0}


async def test_a_collection_longer_than_the_page_limit_is_read_up_to_it_and_counted(
    sushy_static: StartSushy,
) -> None:
    peer = sushy_static("supermicro-x12")
    entries = "Systems/1/LogServices/Log1/Entries"
    first = json.loads(peer.resource(entries).read_text())
    for n in range(MAX_PAGES + 5):  # page n links to page n + 1, one new entry each
        rel = entries if n == 0 else f"{entries}?$skip={n}"
        page = dict(first, Members=[dict(first["Members"][0], Id=f"p{n}")])
        page["Members@odata.nextLink"] = f"/redfish/v1/{entries}?$skip={n + 1}"
        peer.resource(rel).parent.mkdir(exist_ok=True)
        write(peer, rel, json.dumps(page))
    c = collector(peer.url)
    try:
        await c.collect()
        page = json.loads(peer.resource(entries).read_text())
        page["Members"].append(dict(page["Members"][0], Id="new", Message="seen on the first page"))
        write(peer, entries, json.dumps(page))
        second = await c.collect()
    finally:
        await c.aclose()
    assert c.stats.truncated_collections == 2
    assert [e.message for e in second.events] == ["seen on the first page"]


async def test_dmtfs_rack_mockup_keeps_each_source_once_and_its_parts_identifiable(
    sushy_static: StartSushy,
) -> None:
    """public-rackmount1 as DMTF publishes it: three DIMMs' EnvironmentMetrics all name DIMM1Temp, a
    processor's fan excerpt names a chassis Sensor, CPU2 and DIMM4 are empty sockets."""
    result = await poll(sushy_static("dmtf-public-rackmount1").url)
    assert result.errors == []
    dimm1 = [
        s
        for s in result.samples
        if s.key.metric == v.TEMPERATURE.name and s.key.label("component") == "memory"
    ]
    assert [(s.key.label("id"), s.value) for s in dimm1] == [("DIMM1", 44.0)]
    fan = series(result, v.FAN_SPEED_RATIO.name, system="437XR1138R2")
    assert fan == {"CPU #1 Fan Speed/FanSpeedsPercent": pytest.approx(0.8)}
    for part in ("CPU2", "DIMM4"):
        of_part = [
            s for s in result.samples if (s.key.label("system"), s.key.label("id")) == ("437XR1138R2", part)
        ]
        assert {s.key.metric: s.value for s in of_part} == {v.STATUS.name: v.STATUS_CODES["Absent"]}
    # a fan Sensor's own SpeedRPM is the reading its Fan's excerpt carries (DataSourceUri): once
    assert series(result, v.FAN_SPEED_RPM.name, id="Bay2") == {"Fan Bay 2": 2400.0}
    assert series(result, v.FAN_SPEED_RPM.name, id="FanBay2") == {}
