"""One poll's output: readings labelled per component, kept once per source, plus states and errors.

Why a value rather than samples appended as they come: the same physical sensor is often published by
several resources (a Sensor, the EnvironmentMetrics excerpt whose `DataSourceUri` names it, a power
supply's metrics pointing at it too). Which copy to keep can only be decided once the poll has seen them
all, so readings are gathered first and the one from the most specific resource wins (`Rank`): a
component's own metrics share their labels with that component's health, so its speed and its status
join; a Sensor beats a chassis-wide summary because it carries the thresholds. A dropped copy hands its
thresholds to the winner when the winner has none.

Legacy Thermal and Power members have no `DataSourceUri`. Where a chassis also has the newer resources,
a legacy member that names the same sensor (same metric, chassis and name) as one of them is the same
sensor served twice (iLO 6 and newer iDRACs do this) and is dropped, readings and states alike; legacy
members the newer resources do not name are kept (the DMTF mockup's legacy voltages exist nowhere else).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from agent.collect import vocabulary as v
from shared.model import CollectResult, Event, Limits, MetricKind, Sample, SeriesKey

Resource = dict[str, Any]


class Rank(IntEnum):
    """How specific the resource a reading came from is; the highest copy of a source is kept."""

    LEGACY = 0  # inline members of legacy Thermal / Power: dropped when a newer resource names them
    SUMMARY = 1  # chassis-wide excerpts: EnvironmentMetrics, ThermalMetrics arrays
    SENSOR = 2  # a Sensor resource: the source the excerpts point at
    COMPONENT = 3  # a component's own resource or metrics: a fan, a power supply, a battery


def number(value: object) -> float | None:
    """A finite JSON number, else None (null, strings, booleans and NaN are not readings)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def items(res: Resource, key: str) -> list[Resource]:
    """The objects of an array property; firmware sends `null`, a lone object or junk where a list
    belongs (`"Redundancy": null` on some iDRAC builds), which all read as no items."""
    raw = res.get(key)
    return [x for x in raw if isinstance(x, dict)] if isinstance(raw, list) else []


def obj(res: Resource, key: str) -> Resource:
    """An object property, or {} when absent or not an object."""
    raw = res.get(key)
    return raw if isinstance(raw, dict) else {}


def link(res: Resource, key: str) -> str:
    """The `@odata.id` of a navigation property ("" when absent)."""
    ref = obj(res, key).get("@odata.id")
    return ref if isinstance(ref, str) else ""


def source_of(uri: object) -> str:
    """A resource URI as a de-duplication key: iLO writes trailing slashes, others do not."""
    return uri.rstrip("/") if isinstance(uri, str) else ""


def ident(res: Resource) -> str:
    """A component's identity within its collection: MemberId, Id, else the tail of `@odata.id` (or of
    an excerpt's `DataSourceUri`). Names are not identities: two HPE supplies are both named
    `HpeServerPowerSupply`."""
    for key in ("MemberId", "Id"):
        value = res.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    uri = source_of(res.get("@odata.id") or res.get("DataSourceUri"))
    return uri.rsplit("/", 1)[-1] if uri else ""


@dataclass(frozen=True, slots=True)
class Component:
    """The labels every series of one component shares (its readings and its states alike)."""

    chassis: str
    component: str
    sensor: str
    id: str = ""
    system: str = ""  # the ComputerSystem a processor or memory module belongs to (it has no chassis)

    @classmethod
    def of(cls, chassis: str, res: Resource, default_component: str, system: str = "") -> Component:
        """A component labelled from its own resource: PhysicalContext, Name, identity."""
        context = res.get("PhysicalContext")
        name = res.get("Name") or res.get("FanName") or res.get("DeviceName") or res.get("Id") or ""
        return cls(chassis, str(context or default_component), str(name), ident(res), system)

    def labels(self, prop: str = "") -> dict[str, str]:
        pairs = {
            "system": self.system,
            "chassis": self.chassis,
            "component": self.component,
            "sensor": self.sensor,
            "id": self.id,
            "property": prop,
        }
        return {k: x for k, x in pairs.items() if x}


@dataclass(slots=True)
class _Reading:
    key: SeriesKey
    value: float
    unit: str
    limits: Limits | None
    source: str
    rank: Rank
    kind: MetricKind


@dataclass(slots=True)
class PollReadings:
    """What one poll produced so far (kept as is when the deadline cuts the read short)."""

    target: str
    now_ms: int
    errors: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    duplicates: int = 0  # readings dropped because another resource published the same source
    _readings: list[_Reading] = field(default_factory=list)
    _states: dict[SeriesKey, tuple[float, bool]] = field(default_factory=dict)  # key -> (code, legacy)

    def reading(
        self,
        metric: v.Metric,
        value: object,
        who: Component,
        rank: Rank,
        *,
        scale: float = 1.0,
        prop: str = "",
        source: object = "",
        limits: Limits | None = None,
        kind: MetricKind = MetricKind.GAUGE,
    ) -> None:
        """One reading, scaled into the metric's unit; not a number (null, a string): nothing."""
        x = number(value)
        if x is None:
            return
        key = SeriesKey.of(metric.name, who.labels(prop))
        kept = limits if limits is not None and limits != Limits() else None
        self._readings.append(_Reading(key, x * scale, metric.unit, kept, source_of(source), rank, kind))

    def excerpt(
        self,
        metric: v.Metric,
        excerpt: object,
        who: Component,
        rank: Rank,
        *,
        scale: float = 1.0,
        prop: str = "",
    ) -> None:
        """A SensorExcerpt (`{"Reading": n, "DataSourceUri": ...}`); a bare number is read as a reading."""
        if isinstance(excerpt, dict):
            value, source = excerpt.get("Reading"), excerpt.get("DataSourceUri")
            self.reading(metric, value, who, rank, scale=scale, prop=prop, source=source)
        else:
            self.reading(metric, excerpt, who, rank, scale=scale, prop=prop)

    def status(self, res: Resource, who: Component, legacy: bool = False) -> None:
        """The component's Status as states: Health, HealthRollup and State (Absent is a state too)."""
        status = obj(res, "Status")
        for metric, codes, raw in (
            (v.HEALTH, v.HEALTH_CODES, status.get("Health")),
            (v.HEALTH_ROLLUP, v.HEALTH_CODES, status.get("HealthRollup")),
            (v.STATUS, v.STATUS_CODES, status.get("State")),
        ):
            code = codes.get(raw) if isinstance(raw, str) else None
            if code is not None:
                self._states[SeriesKey.of(metric.name, who.labels())] = (code, legacy)

    def flag(self, metric: v.Metric, value: object, who: Component, prop: str = "") -> None:
        """A yes/no condition as a 0/1 state; anything but a JSON boolean is no state."""
        if isinstance(value, bool):
            self._states[SeriesKey.of(metric.name, who.labels(prop))] = (float(value), False)

    def result(self) -> CollectResult:
        """The poll as samples: each source once, each series key once, legacy repeats dropped."""
        newer = {_named(r.key) for r in self._readings if r.rank > Rank.LEGACY}
        newer |= {_named(key) for key, (_, legacy) in self._states.items() if not legacy}
        best: dict[str, _Reading] = {}
        for r in self._readings:
            if not r.source:
                continue
            held = best.get(r.source)
            if held is None or r.rank > held.rank:
                if held is not None and r.limits is None:
                    r.limits = held.limits
                best[r.source] = r
            elif held.limits is None:
                held.limits = r.limits
        out = CollectResult(self.target, events=self.events, errors=self.errors)
        seen: set[SeriesKey] = set()
        for r in self._readings:
            repeated = r.rank == Rank.LEGACY and _named(r.key) in newer
            if (r.source and best[r.source] is not r) or r.key in seen or repeated:
                self.duplicates += 1
                continue
            seen.add(r.key)
            out.samples.append(Sample(r.key, self.now_ms, r.value, r.kind, r.unit))
            if r.limits is not None:
                out.limits[r.key] = r.limits
        for key, (code, legacy) in self._states.items():
            if not (legacy and _named(key) in newer):
                out.samples.append(Sample(key, self.now_ms, code, MetricKind.GAUGE, ""))
        return out


def _named(key: SeriesKey) -> tuple[str, str, str]:
    """What identifies a sensor across schemas that share no link: metric, chassis and name."""
    return key.metric, key.label("chassis"), key.label("sensor").casefold()


def redundancy(
    out: PollReadings, chassis: str, groups: list[Resource], component: str, legacy: bool = False
) -> None:
    """Redundancy groups as states: legacy `Redundancy` (Name, MemberId) and newer `RedundantGroup`
    (RedundancyType, no name); a group that lost a member says so in its State (UnavailableOffline)."""
    for i, group in enumerate(groups):
        name = str(group.get("Name") or group.get("RedundancyType") or component)
        out.status(group, Component(chassis, component, name, ident(group) or str(i)), legacy)
