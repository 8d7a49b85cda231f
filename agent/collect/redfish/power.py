"""Power into the hw_* vocabulary: legacy Power, PowerSubsystem, its PowerSupplies and Batteries.

Legacy Power lists PowerControl (the chassis' consumption), Voltages and PowerSupplies inline. A supply
reports its output as `LastPowerOutputWatts` (deprecated) or `PowerOutputWatts`; Dell leaves the former
null and fills the latter, with `PowerInputWatts` and `LineInputVoltage` beside it. A supply's
`PowerCapacityWatts` is kept as a rating (`hw_psu_capacity_watts`): the limit the hub forecasts its output
against. PowerSubsystem links supplies and batteries whose readings live in their `Metrics` resources. A
supply that is `Absent` has no readings, only its state, which is what shows an empty bay in a
redundancy group.
"""

from __future__ import annotations

from agent.collect import vocabulary as v
from agent.collect.redfish.metrics import BATTERY, BATTERY_UNIT, POWER_SUPPLY, read_table
from agent.collect.redfish.readings import Component, PollReadings, Rank, Resource, ident, items, redundancy
from agent.collect.redfish.thermal import legacy_limits

PSU = "PowerSupply"


def legacy_power(out: PollReadings, chassis: str, power: Resource) -> None:
    """PowerControl, Voltages, supplies and redundancy groups of a legacy Power resource."""
    for pc in items(power, "PowerControl"):
        who = Component.of(chassis, pc, "chassis")
        out.reading(v.POWER, pc.get("PowerConsumedWatts"), who, Rank.LEGACY)
        out.status(pc, who, legacy=True)
    for volt in items(power, "Voltages"):
        who = Component.of(chassis, volt, "voltage")
        out.reading(v.VOLTAGE, volt.get("ReadingVolts"), who, Rank.LEGACY, limits=legacy_limits(volt))
        out.status(volt, who, legacy=True)
    for psu in items(power, "PowerSupplies"):
        who = Component(chassis, PSU, str(psu.get("Name") or ""), ident(psu))
        last = psu.get("LastPowerOutputWatts")
        output = last if last is not None else psu.get("PowerOutputWatts")
        out.reading(v.PSU_OUTPUT, output, who, Rank.LEGACY)
        _rating(out, psu, who, Rank.LEGACY)
        out.reading(v.POWER, psu.get("PowerInputWatts"), who, Rank.LEGACY, prop="PowerInputWatts")
        out.reading(v.VOLTAGE, psu.get("LineInputVoltage"), who, Rank.LEGACY, prop="LineInputVoltage")
        out.status(psu, who, legacy=True)
        redundancy(out, chassis, items(psu, "Redundancy"), "psu-redundancy", legacy=True)
    redundancy(out, chassis, items(power, "Redundancy"), "psu-redundancy", legacy=True)


def power_subsystem(out: PollReadings, chassis: str, sub: Resource) -> None:
    out.status(sub, Component(chassis, "power-subsystem", str(sub.get("Name") or "PowerSubsystem")))
    redundancy(out, chassis, items(sub, "PowerSupplyRedundancy"), "psu-redundancy")


def power_supply(out: PollReadings, chassis: str, psu: Resource, metrics: Resource | None) -> None:
    """A PowerSubsystem supply: its state (Absent included) and every reading of its Metrics."""
    who = Component(chassis, PSU, str(psu.get("Name") or psu.get("Id") or ""), ident(psu))
    out.status(psu, who)
    _rating(out, psu, who, Rank.COMPONENT)
    if metrics is not None:
        read_table(out, metrics, who, POWER_SUPPLY, Rank.COMPONENT)


def _rating(out: PollReadings, psu: Resource, who: Component, rank: Rank) -> None:
    """A supply's capacity, unless its bay is empty (an absent supply's rating limits nothing)."""
    status = psu.get("Status")
    if not (isinstance(status, dict) and status.get("State") == "Absent"):
        out.reading(v.PSU_CAPACITY, psu.get("PowerCapacityWatts"), who, rank)


def battery(out: PollReadings, chassis: str, doc: Resource, metrics: Resource | None) -> None:
    """A PowerSubsystem battery: state of health and capacity, state, and its Metrics' readings."""
    who = Component.of(chassis, doc, "battery")
    out.status(doc, who)
    read_table(out, doc, who, BATTERY_UNIT, Rank.COMPONENT)
    if metrics is not None:
        read_table(out, metrics, who, BATTERY, Rank.COMPONENT)
