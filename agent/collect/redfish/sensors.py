"""Sensor resources (Chassis/*/Sensors/*) into the hw_* vocabulary, by ReadingType, else by ReadingUnits.

DMTF's Sensor schema gives every ReadingType a fixed unit (Temperature in `Cel`, EnergykWh in `kW.h`,
Rotational in RPM...); `ReadingUnits` is the UCUM spelling of it and the only hint when a firmware leaves
ReadingType out (several report temperatures with just `"ReadingUnits": "Cel"`). The unit also gives the
scale into the metric's base unit: kWh become joules, percentages ratios.
"""

from __future__ import annotations

from agent.collect import vocabulary as v
from agent.collect.redfish.readings import Component, PollReadings, Rank, Resource, number, obj, source_of
from shared.model import Limits

# ReadingType -> (metric, the unit the schema defines for it)
READING_TYPES: dict[str, tuple[v.Metric, str]] = {
    "Temperature": (v.TEMPERATURE, "Cel"),
    "Humidity": (v.HUMIDITY, "%"),
    "Power": (v.POWER, "W"),
    "EnergykWh": (v.ENERGY, "kW.h"),
    "EnergyJoules": (v.ENERGY, "J"),
    "EnergyWh": (v.ENERGY, "W.h"),
    "ChargeAh": (v.CHARGE, "A.h"),
    "Voltage": (v.VOLTAGE, "V"),
    "Current": (v.CURRENT, "A"),
    "Frequency": (v.FREQUENCY, "Hz"),
    "Pressure": (v.PRESSURE, "Pa"),
    "PressurePa": (v.PRESSURE, "Pa"),
    "PressurekPa": (v.PRESSURE, "kPa"),
    "Barometric": (v.PRESSURE, "mm[Hg]"),
    "Rotational": (v.FAN_SPEED_RPM, "RPM"),
    "AirFlow": (v.AIRFLOW, "ft3/min"),
    "AirFlowCMM": (v.AIRFLOW, "m3/min"),
    "LiquidFlow": (v.LIQUID_FLOW, "L/s"),
    "LiquidFlowLPM": (v.LIQUID_FLOW, "L/min"),
    "Altitude": (v.ALTITUDE, "m"),
    "Percent": (v.LEVEL, "%"),
}
# UCUM unit -> (the metric it implies without a ReadingType, factor into that metric's unit)
UNITS: dict[str, tuple[v.Metric, float]] = {
    "Cel": (v.TEMPERATURE, 1.0),
    "%": (v.LEVEL, 0.01),
    "W": (v.POWER, 1.0),
    "kW": (v.POWER, 1e3),
    "mW": (v.POWER, 1e-3),
    "kW.h": (v.ENERGY, 3.6e6),
    "W.h": (v.ENERGY, 3600.0),
    "J": (v.ENERGY, 1.0),
    "kJ": (v.ENERGY, 1e3),
    "A.h": (v.CHARGE, 3600.0),
    "V": (v.VOLTAGE, 1.0),
    "mV": (v.VOLTAGE, 1e-3),
    "A": (v.CURRENT, 1.0),
    "mA": (v.CURRENT, 1e-3),
    "Hz": (v.FREQUENCY, 1.0),
    "kHz": (v.FREQUENCY, 1e3),
    "MHz": (v.FREQUENCY, 1e6),
    "Pa": (v.PRESSURE, 1.0),
    "kPa": (v.PRESSURE, 1e3),
    "mm[Hg]": (v.PRESSURE, 133.322),
    "RPM": (v.FAN_SPEED_RPM, 1.0),
    "{rev}/min": (v.FAN_SPEED_RPM, 1.0),
    "ft3/min": (v.AIRFLOW, 0.000471947),
    "[ft_i]3/min": (v.AIRFLOW, 0.000471947),
    "m3/min": (v.AIRFLOW, 1 / 60),
    "L/s": (v.LIQUID_FLOW, 1e-3),
    "L/min": (v.LIQUID_FLOW, 1e-3 / 60),
    "m": (v.ALTITUDE, 1.0),
}
# Sensor.Thresholds key -> Limits field; each value is `{"Reading": n}` (or, on some firmware, just n)
THRESHOLDS = {
    "UpperCaution": "warn_high",
    "UpperCritical": "crit_high",
    "LowerCaution": "warn_low",
    "LowerCritical": "crit_low",
}


def metric_for(
    reading_type: object, units: object, context: object = "", name: object = ""
) -> tuple[v.Metric, float] | None:
    """The metric and scale of a reading of this type and unit; None when neither is known.

    ReadingType decides the quantity; the unit only scales within it (a Voltage sensor in `mV`). A unit
    of another quantity is a firmware typo, so the schema's unit for the type is trusted instead.
    A percentage whose sensor sits on a fan, or is named after one ("CPU #1 Fan Speed" in the CPU
    context), is that fan's speed.
    """
    typed = READING_TYPES.get(reading_type) if isinstance(reading_type, str) else None
    by_unit = UNITS.get(units) if isinstance(units, str) else None
    if typed is not None:
        metric, default_unit = typed
        same_quantity = by_unit is not None and by_unit[0].unit == metric.unit
        scale = by_unit[1] if by_unit is not None and same_quantity else UNITS[default_unit][1]
    elif by_unit is not None:
        metric, scale = by_unit
    else:
        return None
    if metric == v.LEVEL and (context == "Fan" or "fan" in str(name).casefold()):
        metric = v.FAN_SPEED_RATIO
    return metric, scale


def sensor_limits(sensor: Resource, scale: float) -> Limits:
    """The Sensor's thresholds in the metric's unit."""
    thresholds = obj(sensor, "Thresholds")
    found: dict[str, float | None] = {}
    for key, field_name in THRESHOLDS.items():
        raw = thresholds.get(key)
        x = number(raw.get("Reading") if isinstance(raw, dict) else raw)
        found[field_name] = None if x is None else x * scale
    return Limits(**found)


def read_sensor(out: PollReadings, chassis: str, sensor: Resource) -> bool:
    """One Sensor's reading and state. Returns False for a sensor of a type this vocabulary lacks."""
    who = Component.of(chassis, sensor, "sensor")
    out.status(sensor, who)
    mapped = metric_for(
        sensor.get("ReadingType"),
        sensor.get("ReadingUnits"),
        sensor.get("PhysicalContext"),
        sensor.get("Name"),
    )
    if mapped is None:
        return False
    metric, scale = mapped
    source = source_of(sensor.get("@odata.id"))
    out.reading(
        metric,
        sensor.get("Reading"),
        who,
        Rank.SENSOR,
        scale=scale,
        source=source,
        limits=sensor_limits(sensor, scale),
    )
    # Sensor 1.8+: a fan's Percent sensor also gives its RPM, the same reading a Fan's or an
    # EnvironmentMetrics' SpeedPercent excerpt of this sensor carries (keyed as speed_rpm keys those).
    rpm_source = f"{source}#SpeedRPM" if source else ""
    out.reading(v.FAN_SPEED_RPM, sensor.get("SpeedRPM"), who, Rank.SENSOR, prop="SpeedRPM", source=rpm_source)
    return True
