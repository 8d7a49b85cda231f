"""How many readings a Redfish mockup tree holds, counted from its files without the collector.

A reading (issue 15) is one numeric value of a sensor-like property: `Reading` (a Sensor's, or any
excerpt's), `ReadingCelsius`, `ReadingVolts`, `ReadingRPM`, `SpeedRPM`, `PowerConsumedWatts`,
`LineInputVoltage`, `PowerInputWatts`, a supply's output (`PowerOutputWatts`, or its deprecated twin
`LastPowerOutputWatts`: one reading), a battery's actual capacity and discharge cycles, and iLO 4's
pre-standard `CurrentReading`. Thresholds,
ratings, limits, allocations and statistics (PowerMetrics' min/max/average) are not readings.

Counted once when several resources point at the same source: an excerpt's `DataSourceUri` names the
Sensor it copies (`SpeedRPM` rides on its excerpt's source). Resources the schema superseded describe
the same sensors again without saying so, so they are not counted when their successor is there: a
legacy Thermal when its chassis has a ThermalSubsystem, a legacy Power when it has a PowerSubsystem,
and legacy inline Temperatures / Voltages when the chassis has a Sensors collection.
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
NOT_READINGS = {"Thresholds", "Oem", "Actions", "Links", "PowerLimit", "PowerMetrics", "InputRanges"}


def _numeric(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def documents(tree: Path) -> dict[str, dict[str, Any]]:
    """Every document of a mockup tree by its `@odata.id` (pages of one collection kept apart)."""
    return {str(p.parent.relative_to(tree)): json.loads(p.read_text()) for p in tree.rglob("index.json")}


def _superseded(doc: dict[str, Any], chassis_links: dict[str, dict[str, Any]]) -> set[str]:
    """Which parts of `doc` a newer resource of its chassis replaces ("*" for all of it)."""
    kind = str(doc.get("@odata.type", ""))
    odata = str(doc.get("@odata.id", "")).rstrip("/")
    chassis = chassis_links.get(odata.rsplit("/", 1)[0], {})
    out: set[str] = set()
    if kind.startswith("#Thermal.") and "ThermalSubsystem" in chassis:
        out.add("*")
    if kind.startswith("#Power.") and "PowerSubsystem" in chassis:
        out.add("*")
    if kind.startswith(("#Thermal.", "#Power.")) and "Sensors" in chassis:
        out |= {"Temperatures", "Voltages"}
    return out


def held_readings(tree: Path) -> set[str]:
    """The distinct readings of a tree: a source URI for sourced ones, a document path otherwise."""
    docs = documents(tree)
    chassis_links = {
        str(d.get("@odata.id", "")).rstrip("/"): d
        for d in docs.values()
        if "#Chassis." in str(d.get("@odata.type"))
    }
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
                elif source and key in ("Reading", "SpeedRPM"):
                    found.add(source + ("#SpeedRPM" if key == "SpeedRPM" else ""))
                else:
                    found.add(f"{where}/{key}")
            elif isinstance(value, dict | list):
                walk(value, f"{where}/{key}", doc_id, False)
        if any(_numeric(node.get(k)) for k in OUTPUT_KEYS):
            found.add(f"{where}/output")

    for rel, doc in docs.items():
        skip = _superseded(doc, chassis_links)
        if "*" in skip:
            continue
        body = {k: x for k, x in doc.items() if k not in skip}
        doc_id = str(doc.get("@odata.id", "")).rstrip("/")
        walk(body, rel, doc_id, "#Sensor." in str(doc.get("@odata.type")))
    return found
