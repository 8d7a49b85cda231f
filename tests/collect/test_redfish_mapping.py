"""The Redfish mapping without a BMC: units, identities, which copy of a reading is kept, log memory."""

from __future__ import annotations

import pytest

from agent.collect import vocabulary as v
from agent.collect.redfish.logs import LogWatch
from agent.collect.redfish.readings import Component, PollReadings, Rank, ident, items
from agent.collect.redfish.sensors import metric_for
from shared.model import Limits, Severity

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("reading_type", "units", "context", "metric", "scale"),
    [
        ("Temperature", "Cel", "CPU", v.TEMPERATURE, 1.0),
        (None, "Cel", "Intake", v.TEMPERATURE, 1.0),  # no ReadingType: the unit says what it is
        ("Voltage", "mV", "", v.VOLTAGE, 1e-3),
        ("Voltage", "Cel", "", v.VOLTAGE, 1.0),  # a unit of another quantity: the type's own unit wins
        ("EnergykWh", "kW.h", "", v.ENERGY, 3.6e6),
        ("EnergyWh", None, "", v.ENERGY, 3600.0),
        ("Humidity", "%", "", v.HUMIDITY, 0.01),
        ("Percent", "%", "Fan", v.FAN_SPEED_RATIO, 0.01),
        ("Percent", "%", "CPU", v.LEVEL, 0.01),
        (None, "%", "Fan", v.FAN_SPEED_RATIO, 0.01),
        ("Rotational", "RPM", "Fan", v.FAN_SPEED_RPM, 1.0),
        (None, "{rev}/min", "Fan", v.FAN_SPEED_RPM, 1.0),
        ("Frequency", "Hz", "", v.FREQUENCY, 1.0),
        ("Current", "A", "", v.CURRENT, 1.0),
        ("PressurekPa", "kPa", "", v.PRESSURE, 1e3),
        ("Heat", "kW", "", v.POWER, 1e3),  # a type this vocabulary lacks: its unit still says watts
    ],
)
def test_a_sensor_maps_by_reading_type_else_by_its_units(
    reading_type: str | None, units: str | None, context: str, metric: v.Metric, scale: float
) -> None:
    assert metric_for(reading_type, units, context) == (metric, pytest.approx(scale))


def test_a_percentage_named_after_a_fan_is_that_fans_speed_wherever_it_sits() -> None:
    assert metric_for("Percent", "%", "CPU", "CPU #1 Fan Speed") == (v.FAN_SPEED_RATIO, 0.01)
    assert metric_for("Percent", "%", "CPU", "CPU1 Utilization") == (v.LEVEL, 0.01)


@pytest.mark.parametrize(("reading_type", "units"), [("Heat", None), (None, "lx"), (None, None), (3, [])])
def test_a_sensor_of_an_unknown_kind_maps_to_nothing(reading_type: object, units: object) -> None:
    assert metric_for(reading_type, units) is None


def test_identity_prefers_member_id_then_id_then_the_odata_tail() -> None:
    assert ident({"MemberId": "0", "Id": "x"}) == "0"
    assert (
        ident({"Id": "PSU2", "@odata.id": "/redfish/v1/Chassis/1/PowerSubsystem/PowerSupplies/2"}) == "PSU2"
    )
    assert ident({"@odata.id": "/redfish/v1/Chassis/1/PowerSubsystem/PowerSupplies/2/"}) == "2"
    assert ident({"DataSourceUri": "/redfish/v1/Chassis/1/Sensors/Inlet"}) == "Inlet"
    assert ident({"MemberId": True}) == ""


def test_array_properties_that_are_not_arrays_read_as_empty() -> None:
    assert items({"Redundancy": None}, "Redundancy") == []
    assert items({"Redundancy": {"Name": "x"}}, "Redundancy") == []
    assert items({"Redundancy": [{"Name": "x"}, "junk", 3]}, "Redundancy") == [{"Name": "x"}]


def test_the_most_specific_copy_of_a_source_is_kept_and_inherits_the_thresholds() -> None:
    out = PollReadings("bmc", 1000)
    uri = "/redfish/v1/Chassis/1/Sensors/Fan1"
    chassis_wide = Component("1", "chassis", "EnvironmentMetrics")
    fan = Component("1", "Fan", "Fan 1", "1")
    sensor = Component("1", "Fan", "Fan 1 Speed", "Fan1")
    out.excerpt(
        v.FAN_SPEED_RATIO, {"Reading": 42, "DataSourceUri": uri}, chassis_wide, Rank.SUMMARY, scale=0.01
    )
    out.reading(
        v.FAN_SPEED_RATIO, 42, sensor, Rank.SENSOR, scale=0.01, source=uri, limits=Limits(crit_low=0.1)
    )
    out.excerpt(
        v.FAN_SPEED_RATIO, {"Reading": 42, "DataSourceUri": uri + "/"}, fan, Rank.COMPONENT, scale=0.01
    )
    out.reading(v.TEMPERATURE, None, fan, Rank.COMPONENT)  # null: not a reading
    out.reading(v.TEMPERATURE, float("nan"), fan, Rank.COMPONENT)
    out.reading(v.TEMPERATURE, True, fan, Rank.COMPONENT)
    result = out.result()
    assert [(dict(s.key.labels), s.value) for s in result.samples] == [
        ({"chassis": "1", "component": "Fan", "sensor": "Fan 1", "id": "1"}, pytest.approx(0.42))
    ]
    assert result.limits[result.samples[0].key] == Limits(crit_low=0.1)
    assert out.duplicates == 2


def test_a_legacy_member_naming_a_newer_resources_sensor_is_dropped_and_a_unique_one_kept() -> None:
    out = PollReadings("bmc", 1000)
    sensor = Component("1U", "CPU", "CPU1 Temp", "CPU1Temp")
    out.reading(v.TEMPERATURE, 61.5, sensor, Rank.SENSOR, source="/redfish/v1/Chassis/1U/Sensors/CPU1Temp")
    out.status({"Status": {"Health": "OK"}}, sensor)
    for i, name in enumerate(("cpu1 temp", "Riser Temp")):
        legacy = Component("1U", "CPU", name, str(i))
        out.reading(v.TEMPERATURE, 61.5, legacy, Rank.LEGACY)
        out.status({"Status": {"Health": "OK"}}, legacy, legacy=True)
    out.reading(v.VOLTAGE, 1.8, Component("1U", "CPU", "CPU1 Temp", "0"), Rank.LEGACY)  # another metric
    kept = {(s.key.metric, s.key.label("sensor")) for s in out.result().samples}
    assert kept == {
        ("hw_temperature_celsius", "CPU1 Temp"),
        ("hw_health", "CPU1 Temp"),
        ("hw_temperature_celsius", "Riser Temp"),
        ("hw_health", "Riser Temp"),
        ("hw_voltage_volts", "CPU1 Temp"),
    }


def test_states_are_codes_and_unknown_words_are_not_states() -> None:
    out = PollReadings("bmc", 1000)
    psu = Component("1", "PowerSupply", "PSU 2", "2")
    out.status({"Status": {"State": "Absent"}}, psu)
    out.status({"Status": {"Health": "Critical", "HealthRollup": "Warning", "State": "Sleeping"}}, psu)
    out.status({"Status": "OK"}, psu)
    got = {s.key.metric: s.value for s in out.result().samples}
    assert got == {"hw_status": 6.0, "hw_health": 2.0, "hw_health_rollup": 1.0}


def test_a_log_remembers_a_bounded_number_of_entries() -> None:
    watch = LogWatch(max_remembered=3)
    path = "/redfish/v1/Managers/1/LogServices/Log/Entries"
    assert not watch.known(path)
    assert watch.news(path, [{"Id": str(i)} for i in range(5)], False, 0, "bmc", "Log") == []
    assert watch.known(path)
    news = watch.news(
        path, [{"Id": "4"}, {"Id": "5", "Severity": "Warning", "Message": "m"}], True, 7, "bmc", "Log"
    )
    assert [(e.severity, e.message, dict(e.attributes)) for e in news] == [
        (Severity.WARNING, "m", {"Id": "5", "log": "Log"})
    ]
    # ids 0..2 were forgotten to keep three; 3 and 4 and 5 are remembered
    assert [
        dict(e.attributes)["Id"] for e in watch.news(path, [{"Id": "0"}, {"Id": "4"}], True, 8, "b", "L")
    ] == ["0"]
