"""Metrics resources as property tables: Environment-, PowerSupply-, Battery- and HeaterMetrics.

Every reading property of these schemas is a SensorExcerpt (`{"Reading": n, "DataSourceUri": ...}`) or an
array of them (a power supply's rails, a battery's cells, a chassis' fans), so one table per schema says
which metric each property is and how to scale it, and one reader walks them all. Array members that
name their device (`DeviceName`, as FanSpeedsPercent does) become components of their own; the others
are told apart by a `property` label (`RailVoltage/1`).
"""

from __future__ import annotations

from agent.collect import vocabulary as v
from agent.collect.redfish.readings import Component, PollReadings, Rank, Resource, source_of

# property -> (metric, scale into the metric's unit)
Table = dict[str, tuple[v.Metric, float]]

ENVIRONMENT: Table = {
    "TemperatureCelsius": (v.TEMPERATURE, 1.0),
    "HumidityPercent": (v.HUMIDITY, 0.01),
    "DewPointCelsius": (v.DEW_POINT, 1.0),
    "AbsoluteHumidity": (v.ABSOLUTE_HUMIDITY, 1.0),
    "PowerWatts": (v.POWER, 1.0),
    "EnergykWh": (v.ENERGY, 3.6e6),
    "EnergyJoules": (v.ENERGY, 1.0),
    "PowerLoadPercent": (v.LEVEL, 0.01),
    "FanSpeedsPercent": (v.FAN_SPEED_RATIO, 0.01),
}
POWER_SUPPLY: Table = {
    "InputVoltage": (v.VOLTAGE, 1.0),
    "InputCurrentAmps": (v.CURRENT, 1.0),
    "InputPowerWatts": (v.POWER, 1.0),
    "OutputPowerWatts": (v.PSU_OUTPUT, 1.0),
    "EnergykWh": (v.ENERGY, 3.6e6),
    "FrequencyHz": (v.FREQUENCY, 1.0),
    "TemperatureCelsius": (v.TEMPERATURE, 1.0),
    "FanSpeedPercent": (v.FAN_SPEED_RATIO, 0.01),
    "FanSpeedsPercent": (v.FAN_SPEED_RATIO, 0.01),
    "RailVoltage": (v.VOLTAGE, 1.0),
    "RailCurrentAmps": (v.CURRENT, 1.0),
    "RailPowerWatts": (v.POWER, 1.0),
}
BATTERY: Table = {
    "InputVoltage": (v.VOLTAGE, 1.0),
    "InputCurrentAmps": (v.CURRENT, 1.0),
    "OutputVoltages": (v.VOLTAGE, 1.0),
    "OutputCurrentAmps": (v.CURRENT, 1.0),
    "CellVoltages": (v.VOLTAGE, 1.0),
    "ChargePercent": (v.BATTERY_CHARGE, 0.01),
    "StoredEnergyWattHours": (v.BATTERY_ENERGY, 3600.0),
    "StoredChargeAmpHours": (v.CHARGE, 3600.0),
    "TemperatureCelsius": (v.TEMPERATURE, 1.0),
    "DischargeCycles": (v.BATTERY_CYCLES, 1.0),
}
# The Battery resource itself carries a few readings besides its Metrics link.
BATTERY_UNIT: Table = {
    "StateOfHealthPercent": (v.BATTERY_HEALTH, 0.01),
    "CapacityActualWattHours": (v.BATTERY_CAPACITY, 3600.0),
}
HEATER: Table = {"PowerWatts": (v.POWER, 1.0), "TemperatureReadingsCelsius": (v.TEMPERATURE, 1.0)}


def speed_rpm(out: PollReadings, excerpt: Resource, who: Component, rank: Rank, prop: str = "") -> None:
    """A fan excerpt's `SpeedRPM`: the same fan's speed in RPM beside its percentage. It has no source of
    its own, so it is keyed by the percentage's: the fan and the chassis' FanSpeedsPercent keep one."""
    uri = source_of(excerpt.get("DataSourceUri"))
    source = f"{uri}#SpeedRPM" if uri else ""
    out.reading(v.FAN_SPEED_RPM, excerpt.get("SpeedRPM"), who, rank, prop=prop, source=source)


def read_table(out: PollReadings, doc: Resource, who: Component, table: Table, rank: Rank) -> None:
    """Every property of `table` that `doc` has, excerpt or array of excerpts."""
    for prop, (metric, scale) in table.items():
        raw = doc.get(prop)
        if not isinstance(raw, list):
            out.excerpt(metric, raw, who, rank, scale=scale, prop=prop)
            if isinstance(raw, dict):
                speed_rpm(out, raw, who, rank, prop)
            continue
        for i, member in enumerate(raw):
            if not isinstance(member, dict):
                continue
            if member.get("DeviceName"):
                part, where = Component.of(who.chassis, member, who.component, who.system), prop
            else:
                part, where = who, f"{prop}/{i}"
            out.excerpt(metric, member, part, rank, scale=scale, prop=where)
            speed_rpm(out, member, part, rank, where)
