"""A ComputerSystem's processors and memory into the hw_* vocabulary: their states and their metrics.

Processors (`Systems/*/Processors/*`) and memory modules (`Systems/*/Memory/*`) are components of a
system, not of a chassis, so their series carry a `system` label (the system's Id) beside `id`. What
they read is spread over three resources: the part itself (Status, `Throttled`), its `Metrics`
(ProcessorMetrics / MemoryMetrics: bare numbers, not excerpts) and, since Processor 1.11 / Memory 1.11,
its `EnvironmentMetrics` (temperature and power as excerpts of the chassis' Sensors, kept once through
`DataSourceUri`). ProcessorMetrics' `TemperatureCelsius` and `ConsumedPowerWatt` are deprecated in
favour of EnvironmentMetrics but still what most firmware serves, so both are read.
`ProcessorSummary` / `MemorySummary` of the system give the state of all parts together, and their own
`Metrics` the system-wide figures.

Error counts (correctable and uncorrectable ECC, core and other errors) are counters: the lifetime
figures where the service gives them, else the current period's (one window, not both of one error).
"""

from __future__ import annotations

from agent.collect import vocabulary as v
from agent.collect.redfish.metrics import ENVIRONMENT, Table, read_table
from agent.collect.redfish.readings import Component, PollReadings, Rank, Resource, ident, number, obj
from shared.model import MetricKind

PROCESSOR_METRICS: Table = {
    "TemperatureCelsius": (v.TEMPERATURE, 1.0),
    "ConsumedPowerWatt": (v.POWER, 1.0),
    "BandwidthPercent": (v.UTILIZATION, 0.01),
    "KernelPercent": (v.UTILIZATION, 0.01),
    "UserPercent": (v.UTILIZATION, 0.01),
    # "The CPU margin to throttle": degrees left before the part slows itself down, not a threshold.
    "ThrottlingCelsius": (v.THROTTLE_MARGIN, 1.0),
    "CoreVoltage": (v.VOLTAGE, 1.0),
}
MEMORY_METRICS: Table = {
    "BandwidthPercent": (v.UTILIZATION, 0.01),
    "CapacityUtilizationPercent": (v.UTILIZATION, 0.01),
}
# The current speed: ProcessorMetrics 1.3+ and MemoryMetrics spell it OperatingSpeedMHz, ProcessorMetrics
# 1.0-1.2 AverageFrequencyMHz (deprecated), the Processor resource 1.9+ OperatingSpeedMHz too. One reading.
SPEED_KEYS = ("OperatingSpeedMHz", "AverageFrequencyMHz")
# error counters: of MemoryMetrics and ProcessorMetrics.CacheMetricsTotal (windowed), of ProcessorMetrics
ECC_ERRORS = ("CorrectableECCErrorCount", "UncorrectableECCErrorCount")
WINDOWS = ("LifeTime", "CurrentPeriod")
CORE_ERRORS = (
    "CorrectableCoreErrorCount",
    "UncorrectableCoreErrorCount",
    "CorrectableOtherErrorCount",
    "UncorrectableOtherErrorCount",
)
ALARM_TRIPS = (
    "Temperature",
    "SpareBlock",
    "UncorrectableECCError",
    "CorrectableECCError",
    "AddressParityError",
)


def part(system: str, doc: Resource, kind: str) -> Component:
    """A processor or memory module labelled by its system, kind, Name and identity."""
    name = doc.get("Name") or doc.get("DeviceLocator") or doc.get("Id") or ""
    return Component("", kind, str(name), ident(doc), system)


def summaries(out: PollReadings, system: Resource, sid: str) -> None:
    """ProcessorSummary / MemorySummary Status: the health of all of a system's parts at once."""
    name = str(system.get("Name") or sid)
    for key, kind in (("ProcessorSummary", "processor-summary"), ("MemorySummary", "memory-summary")):
        out.status(obj(system, key), Component("", kind, name, "", sid))


def _speed(out: PollReadings, docs: tuple[Resource, ...], who: Component) -> None:
    """The first current speed any of `docs` (metrics first) gives, in hertz."""
    for doc in docs:
        for key in SPEED_KEYS:
            if number(doc.get(key)) is not None:
                out.reading(v.FREQUENCY, doc[key], who, Rank.COMPONENT, scale=1e6, prop=key)
                return


def _errors(out: PollReadings, doc: Resource, who: Component, keys: tuple[str, ...], base: str) -> None:
    for key in keys:
        prop = f"{base}/{key}" if base else key
        out.reading(v.ERRORS, doc.get(key), who, Rank.COMPONENT, prop=prop, kind=MetricKind.COUNTER)


def _windowed_errors(out: PollReadings, doc: Resource, who: Component, prefix: str = "") -> None:
    for window in WINDOWS:
        counts = obj(doc, window)
        if counts:
            _errors(out, counts, who, ECC_ERRORS, f"{prefix}{window}")
            return


def processor(
    out: PollReadings, sid: str, doc: Resource, metrics: Resource | None, env: Resource | None
) -> None:
    """A Processor: its state, whether it is throttled, and its metrics and environment readings."""
    who = part(sid, doc, "processor")
    out.status(doc, who)
    out.flag(v.THROTTLED, doc.get("Throttled"), who)
    _metrics(out, who, metrics, doc)
    if env is not None:
        read_table(out, env, who, ENVIRONMENT, Rank.COMPONENT)


def processor_summary(out: PollReadings, sid: str, name: str, metrics: Resource) -> None:
    """The system-wide ProcessorMetrics of `ProcessorSummary.Metrics`."""
    _metrics(out, Component("", "processor-summary", name, "", sid), metrics, {})


def _metrics(out: PollReadings, who: Component, metrics: Resource | None, doc: Resource) -> None:
    docs = (metrics, doc) if metrics is not None else (doc,)
    _speed(out, docs, who)
    if metrics is None:
        return
    read_table(out, metrics, who, PROCESSOR_METRICS, Rank.COMPONENT)
    _errors(out, metrics, who, CORE_ERRORS, "")
    _windowed_errors(out, obj(metrics, "CacheMetricsTotal"), who, "CacheMetricsTotal/")


def memory(
    out: PollReadings, sid: str, doc: Resource, metrics: Resource | None, env: Resource | None
) -> None:
    """A memory module: its state, and its metrics' use, speed, error counts and alarm trips."""
    who = part(sid, doc, "memory")
    out.status(doc, who)
    if metrics is not None:
        memory_metrics(out, who, metrics)
    if env is not None:
        read_table(out, env, who, ENVIRONMENT, Rank.COMPONENT)


def memory_metrics(out: PollReadings, who: Component, metrics: Resource) -> None:
    """A MemoryMetrics resource, of one module or of the whole system (`MemorySummary.Metrics`)."""
    read_table(out, metrics, who, MEMORY_METRICS, Rank.COMPONENT)
    _speed(out, (metrics,), who)
    _windowed_errors(out, metrics, who)
    trips = obj(obj(metrics, "HealthData"), "AlarmTrips")
    for trip in ALARM_TRIPS:
        out.flag(v.ALARM, trips.get(trip), who, f"AlarmTrips/{trip}")
