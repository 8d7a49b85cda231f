"""Cooling into the hw_* vocabulary: legacy Thermal, ThermalSubsystem, ThermalMetrics, Fans and Heaters.

Legacy Thermal (deprecated since 2020.4, still what iLO 5, Supermicro and most iDRACs serve) lists
temperatures and fans inline; ThermalSubsystem links a Fans collection, a ThermalMetrics resource (the
only temperature source on iLO 6) and Heaters. Thermal.v1_0 fans spell `FanName` and `ReadingRPM`,
later ones `Name`, `Reading` and `ReadingUnits` (RPM or Percent): both are read.
"""

from __future__ import annotations

from agent.collect import vocabulary as v
from agent.collect.redfish.metrics import HEATER, read_table, speed_rpm
from agent.collect.redfish.readings import (
    Component,
    PollReadings,
    Rank,
    Resource,
    items,
    number,
    obj,
    redundancy,
)
from shared.model import Limits

# legacy Thermal/Power threshold property -> Limits field
LEGACY_LIMITS = {
    "UpperThresholdNonCritical": "warn_high",
    "UpperThresholdCritical": "crit_high",
    "LowerThresholdNonCritical": "warn_low",
    "LowerThresholdCritical": "crit_low",
}
SUMMARY_TEMPERATURES = ("Ambient", "Exhaust", "Intake", "Internal")


def legacy_limits(item: Resource, scale: float = 1.0) -> Limits:
    """An inline member's thresholds (bare numbers in legacy Thermal and Power)."""
    found = {f: number(item.get(k)) for k, f in LEGACY_LIMITS.items()}
    return Limits(**{f: None if x is None else x * scale for f, x in found.items()})


def legacy_thermal(out: PollReadings, chassis: str, thermal: Resource) -> None:
    """Temperatures, fans and fan redundancy groups of a legacy Thermal resource."""
    for t in items(thermal, "Temperatures"):
        who = Component.of(chassis, t, "temperature")
        out.reading(v.TEMPERATURE, t.get("ReadingCelsius"), who, Rank.LEGACY, limits=legacy_limits(t))
        out.status(t, who, legacy=True)
    for f in items(thermal, "Fans"):
        who = Component.of(chassis, f, "fan")
        percent = str(f.get("ReadingUnits", "RPM")).lower() == "percent"
        metric, scale = (v.FAN_SPEED_RATIO, 0.01) if percent else (v.FAN_SPEED_RPM, 1.0)
        value = f.get("Reading") if f.get("Reading") is not None else f.get("ReadingRPM")
        out.reading(metric, value, who, Rank.LEGACY, scale=scale, limits=legacy_limits(f, scale))
        out.status(f, who, legacy=True)
    redundancy(out, chassis, items(thermal, "Redundancy"), "fan-redundancy", legacy=True)


def thermal_subsystem(out: PollReadings, chassis: str, sub: Resource) -> None:
    out.status(sub, Component(chassis, "thermal-subsystem", str(sub.get("Name") or "ThermalSubsystem")))
    redundancy(out, chassis, items(sub, "FanRedundancy"), "fan-redundancy")


def thermal_metrics(out: PollReadings, chassis: str, doc: Resource) -> None:
    """Per-sensor temperatures (excerpts of the chassis' Sensors) and the chassis summary temperatures."""
    for t in items(doc, "TemperatureReadingsCelsius"):
        out.excerpt(v.TEMPERATURE, t, Component.of(chassis, t, "temperature"), Rank.SUMMARY)
    summary = obj(doc, "TemperatureSummaryCelsius")
    for place in SUMMARY_TEMPERATURES:
        out.excerpt(v.TEMPERATURE, summary.get(place), Component(chassis, place, "summary"), Rank.SUMMARY)


def fan(out: PollReadings, chassis: str, doc: Resource) -> None:
    """A Fan of ThermalSubsystem/Fans: speed in percent (and RPM when given), its power, its state."""
    who = Component.of(chassis, doc, "fan")
    speed = obj(doc, "SpeedPercent")
    out.excerpt(v.FAN_SPEED_RATIO, speed, who, Rank.COMPONENT, scale=0.01)
    speed_rpm(out, speed, who, Rank.COMPONENT)
    out.excerpt(v.POWER, doc.get("PowerWatts"), who, Rank.COMPONENT)
    out.status(doc, who)


def heater(out: PollReadings, chassis: str, doc: Resource, metrics: Resource | None) -> None:
    who = Component.of(chassis, doc, "heater")
    out.status(doc, who)
    if metrics is not None:
        read_table(out, metrics, who, HEATER, Rank.COMPONENT)
