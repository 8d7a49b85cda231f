"""How many readings a Redfish mockup tree holds, counted from its files without the collector.

A reading (issue 15) is one numeric value of a sensor-like property: `Reading` (a Sensor's, or any
excerpt's), `ReadingCelsius`, `ReadingVolts`, `ReadingRPM`, `SpeedRPM`, `PowerConsumedWatts`,
`LineInputVoltage`, `PowerInputWatts`, a supply's output (`PowerOutputWatts`, or its deprecated twin
`LastPowerOutputWatts`: one reading), a battery's actual capacity and discharge cycles, iLO 4's
pre-standard `CurrentReading`, and the bare numbers of ProcessorMetrics and MemoryMetrics (temperature,
power, bandwidth, kernel and user time, throttling margin, capacity used, and a part's current speed
once, wherever the Processor or its metrics give it). Thresholds, ratings, limits, allocations,
statistics (PowerMetrics' min/max/average) and error counts are not readings.

Counted once when several resources point at the same source: an excerpt's `DataSourceUri` names the
Sensor it copies (`SpeedRPM` rides on its excerpt's source, and is the same reading as the Sensor's own
`SpeedRPM`). Legacy Thermal / Power members carry no
such link; one that has the name of a newer resource of its chassis (a Sensor, Fan, PowerSupply,
Battery, Heater, or a ThermalMetrics / EnvironmentMetrics excerpt's DeviceName) is that resource's
sensor served twice and is not counted again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

READING_KEYS = {
    "Reading",
    "ReadingCelsius",
    "ReadingVolts",
    "ReadingRPM",
    "SpeedRPM",
    "PowerConsumedWatts",
    "LineInputVoltage",
    "PowerInputWatts",
    "CapacityActualWattHours",
    "DischargeCycles",
    "CurrentReading",
}
OUTPUT_KEYS = ("PowerOutputWatts", "LastPowerOutputWatts")
PART_METRICS = (
    "TemperatureCelsius",
    "ConsumedPowerWatt",
    "BandwidthPercent",
    "KernelPercent",
    "UserPercent",
    "ThrottlingCelsius",
    "CapacityUtilizationPercent",
)
PART_TYPES = ("#ProcessorMetrics.", "#MemoryMetrics.")
SPEED_KEYS = ("OperatingSpeedMHz", "AverageFrequencyMHz")
NOT_READINGS = {"Thresholds", "Oem", "Actions", "Links", "PowerLimit", "PowerMetrics", "InputRanges"}


def _numeric(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def documents(tree: Path) -> dict[str, dict[str, Any]]:
    """Every document of a mockup tree by its `@odata.id` (pages of one collection kept apart)."""
    return {str(p.parent.relative_to(tree)): json.loads(p.read_text()) for p in tree.rglob("index.json")}


NEWER = (
    "#Sensor.",
    "#Fan.",
    "#PowerSupply.",
    "#Battery.",
    "#Heater.",
    "#ThermalMetrics.",
    "#EnvironmentMetrics.",
)
LEGACY = ("#Thermal.", "#Power.")
LEGACY_MEMBERS = ("Temperatures", "Fans", "Voltages", "PowerSupplies", "PowerControl")


def _chassis_of(odata: str) -> str:
    """`/redfish/v1/Chassis/1U/...` -> `/redfish/v1/Chassis/1U`."""
    parts = odata.rstrip("/").split("/")
    return "/".join(parts[:5])


def _newer_names(docs: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
    """(chassis, name) of every sensor the newer resources describe."""
    names: set[tuple[str, str]] = set()
    for doc in docs.values():
        if not str(doc.get("@odata.type", "")).startswith(NEWER):
            continue
        chassis = _chassis_of(str(doc.get("@odata.id", "")))
        if "Name" in doc and not str(doc["@odata.type"]).startswith(
            ("#ThermalMetrics.", "#EnvironmentMetrics.")
        ):
            names.add((chassis, str(doc["Name"]).casefold()))
        for value in doc.values():
            for x in value if isinstance(value, list) else []:
                if isinstance(x, dict) and x.get("DeviceName"):
                    names.add((chassis, str(x["DeviceName"]).casefold()))
    return names


def _without_repeats(doc: dict[str, Any], newer: set[tuple[str, str]]) -> dict[str, Any]:
    """A legacy document without the members a newer resource of its chassis names."""
    if not str(doc.get("@odata.type", "")).startswith(LEGACY):
        return doc
    chassis = _chassis_of(str(doc.get("@odata.id", "")))
    out = dict(doc)
    for key in LEGACY_MEMBERS:
        members = doc.get(key)
        if isinstance(members, list):
            out[key] = [m for m in members if (chassis, str(m.get("Name", "")).casefold()) not in newer]
    return out


def _part_readings(doc: dict[str, Any], doc_id: str) -> set[str]:
    """A ProcessorMetrics / MemoryMetrics document's bare-number readings, and a Processor's or its
    metrics' current speed keyed by the part (its metrics live one path segment below it)."""
    kind = str(doc.get("@odata.type", ""))
    found: set[str] = set()
    if kind.startswith(PART_TYPES):
        found |= {f"{doc_id}/{k}" for k in PART_METRICS if _numeric(doc.get(k))}
        part = doc_id.rsplit("/", 1)[0]
    elif kind.startswith("#Processor."):
        part = doc_id
    else:
        return found
    if any(_numeric(doc.get(k)) for k in SPEED_KEYS):
        found.add(f"{part}#speed")
    return found


def held_readings(tree: Path) -> set[str]:
    """The distinct readings of a tree: a source URI for sourced ones, a document path otherwise."""
    docs = documents(tree)
    newer = _newer_names(docs)
    found: set[str] = set()

    def walk(node: object, where: str, doc_id: str, is_sensor: bool) -> None:
        if isinstance(node, list):
            for i, x in enumerate(node):
                walk(x, f"{where}/{i}", doc_id, False)
            return
        if not isinstance(node, dict):
            return
        source = str(node.get("DataSourceUri") or "").rstrip("/")
        for key, value in node.items():
            if key in NOT_READINGS:
                continue
            if key in READING_KEYS and _numeric(value):
                if is_sensor and key == "Reading":
                    found.add(doc_id)
                elif is_sensor and key == "SpeedRPM":  # a fan Sensor's RPM beside its percentage
                    found.add(doc_id + "#SpeedRPM")
                elif source and key in ("Reading", "SpeedRPM"):
                    found.add(source + ("#SpeedRPM" if key == "SpeedRPM" else ""))
                else:
                    found.add(f"{where}/{key}")
            elif isinstance(value, dict | list):
                walk(value, f"{where}/{key}", doc_id, False)
        if any(_numeric(node.get(k)) for k in OUTPUT_KEYS):
            found.add(f"{where}/output")

    for rel, doc in docs.items():
        doc_id = str(doc.get("@odata.id", "")).rstrip("/")
        walk(_without_repeats(doc, newer), rel, doc_id, "#Sensor." in str(doc.get("@odata.type")))
        found |= _part_readings(doc, doc_id)
    return found
