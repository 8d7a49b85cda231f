"""The Redfish collector: Systems and Chassis health, sensors from both schemas, PSU redundancy, SEL events.

One vocabulary across vendors: hw_temperature_celsius, hw_fan_speed_rpm / hw_fan_speed_percent,
hw_power_watts, hw_psu_output_watts, hw_health (0 OK, 1 Warning, 2 Critical), with labels `chassis`,
`component` (PhysicalContext) and `sensor` (the raw name). The newer ThermalSubsystem/PowerSubsystem/
EnvironmentMetrics/Sensors resources are preferred; legacy Thermal/Power are read when they are absent.
Device thresholds (UpperThresholdCritical...) land in CollectResult.limits.
A read has a deadline: whatever was read by then is published, with the rest as an error. On 503/429
the collector backs off for the BMC's Retry-After before asking again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from agent.collect.base import ConfiguredTarget
from agent.collect.redfish import quirks
from agent.collect.redfish.config import RedfishConfig
from agent.collect.redfish.errors import RedfishAuthError, RedfishBusy, RedfishError, RedfishNotFound
from agent.collect.redfish.session import RedfishSession
from shared.clock import Clock, SystemClock
from shared.model import CollectResult, Event, Limits, MetricKind, Sample, SeriesKey, Severity

log = logging.getLogger(__name__)

Resource = dict[str, Any]
ROOT = "/redfish/v1/"
HEALTH = {"OK": 0.0, "Warning": 1.0, "Critical": 2.0}
SEVERITY = {"OK": Severity.INFO, "Warning": Severity.WARNING, "Critical": Severity.CRITICAL}
# legacy Thermal/Power threshold field -> Limits field; Sensor.Thresholds key -> Limits field
LEGACY_LIMITS = {
    "UpperThresholdNonCritical": "warn_high",
    "UpperThresholdCritical": "crit_high",
    "LowerThresholdNonCritical": "warn_low",
    "LowerThresholdCritical": "crit_low",
}
SENSOR_LIMITS = {
    "UpperCaution": "warn_high",
    "UpperCritical": "crit_high",
    "LowerCaution": "warn_low",
    "LowerCritical": "crit_low",
}
# Sensor.ReadingType -> metric name and unit
SENSOR_METRICS = {"Temperature": ("hw_temperature_celsius", "celsius"), "Power": ("hw_power_watts", "watts")}


def _link(res: Resource, name: str) -> str | None:
    ref = res.get(name)
    return ref.get("@odata.id") if isinstance(ref, dict) else None


def _members(res: Resource) -> list[str]:
    return [m["@odata.id"] for m in res.get("Members", []) if isinstance(m, dict) and "@odata.id" in m]


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


async def _side_by_side(jobs: Iterable[Awaitable[None]]) -> None:
    """Awaits all jobs; the first failure cancels the rest, so no request to the BMC outlives its poll
    (plain gather would leave siblings running after a 503 already ended the read)."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _Read:
    """One poll's accumulating output (kept when the deadline cuts the read short)."""

    def __init__(self, target: str, now: int) -> None:
        self.result = CollectResult(target)
        self.now = now

    def gauge(self, name: str, value: object, unit: str, limits: Limits | None = None, **labels: str) -> None:
        v = _number(value)
        if v is None:
            return
        key = SeriesKey.of(name, {k: x for k, x in labels.items() if x})
        self.result.samples.append(Sample(key, self.now, v, MetricKind.GAUGE, unit))
        if limits is not None and limits != Limits():
            self.result.limits[key] = limits

    def health(self, res: Resource, component: str, sensor: str, chassis: str = "") -> None:
        status = res.get("Status")
        health = status.get("Health") if isinstance(status, dict) else None
        if isinstance(health, str) and health in HEALTH:
            self.gauge("hw_health", HEALTH[health], "", component=component, sensor=sensor, chassis=chassis)


class RedfishCollector(ConfiguredTarget[RedfishConfig]):
    """Polls one BMC through one reused session.

    A refused login or request (401/403) is retried after AUTH_RETRY_S rather than every poll.
    """

    AUTH_RETRY_S = 900.0

    def __init__(self, config: RedfishConfig, clock: Clock | None = None) -> None:
        self._config = config
        self._clock = clock or SystemClock()
        self._session = RedfishSession(config)
        self._seen_logs: dict[str, set[str]] = {}
        self._not_before = 0.0
        self._backoff_reason = ""

    @property
    def session(self) -> RedfishSession:
        return self._session

    async def start(self) -> None:
        if not self._config.verify_tls:
            log.warning(
                "%s: TLS certificate verification is OFF for %s (verify_tls: false)",
                self.target,
                self._config.url,
            )

    async def collect(self) -> CollectResult:
        read = _Read(self.target, self._clock.now_ms())
        wait = self._not_before - self._clock.monotonic()
        if wait > 0:
            read.result.errors.append(f"backing off for {wait:.0f}s after {self._backoff_reason}")
            return read.result
        try:
            await asyncio.wait_for(self._read_all(read), self._config.deadline_s)
        except TimeoutError:
            read.result.errors.append(f"deadline of {self._config.deadline_s:g}s: partial read")
        except RedfishBusy as exc:
            self._back_off(exc.retry_after_s, "the BMC said busy")
            read.result.errors.append(str(exc))
        except RedfishAuthError as exc:
            # Permanent until someone fixes the config; BMCs lock an account after a few failed logins.
            self._back_off(self.AUTH_RETRY_S, "the BMC refused our credentials")
            read.result.errors.append(str(exc))
            await self._session.reset()
        except RedfishError as exc:
            read.result.errors.append(str(exc))
            await self._session.reset()  # a fresh session next time; the old one is DELETEd
        return read.result

    def _back_off(self, seconds: float, reason: str) -> None:
        self._not_before = self._clock.monotonic() + seconds
        self._backoff_reason = reason

    async def _get(self, path: str) -> Resource | None:
        """A linked resource, or None when the firmware links to something that is not there."""
        if not path:
            return None
        try:
            return await self._session.get(path)
        except RedfishNotFound:
            return None

    async def _each(self, paths: list[str], fn: Callable[[Resource], Awaitable[None]]) -> None:
        async def one(path: str) -> None:
            res = await self._get(path)
            if res is not None:
                await fn(res)

        await _side_by_side(one(p) for p in paths)

    async def _read_all(self, read: _Read) -> None:
        root = await self._session.get(ROOT)
        systems = await self._get(_link(root, "Systems") or "")
        chassis = await self._get(_link(root, "Chassis") or "")
        if systems:
            await self._each(_members(systems), lambda s: self._system(read, s))
        if chassis:
            await self._each(_members(chassis), lambda c: self._chassis(read, c))

    async def _system(self, read: _Read, system: Resource) -> None:
        read.health(system, "system", str(system.get("Name") or system.get("Id", "")))
        logs = _link(system, "LogServices")
        if logs and self._config.read_logs:
            services = await self._get(logs)
            if services:
                await self._each(_members(services), lambda s: self._log_service(read, s))

    async def _log_service(self, read: _Read, service: Resource) -> None:
        entries_path = _link(service, "Entries")
        if not entries_path:
            return
        entries = await self._get(entries_path)
        if entries is None:
            return
        first_read = entries_path not in self._seen_logs
        seen = self._seen_logs.setdefault(entries_path, set())
        for entry in entries.get("Members", []):
            entry_id = str(entry.get("Id") or entry.get("@odata.id", ""))
            if not entry_id or entry_id in seen:
                continue
            seen.add(entry_id)
            if first_read:  # history from before we started watching: remembered, not re-announced
                continue
            sev = SEVERITY.get(str(entry.get("Severity")), Severity.INFO)
            attrs = {
                k: str(entry[k])
                for k in ("Id", "Created", "EntryType", "SensorType", "MessageId")
                if entry.get(k) is not None
            }
            attrs["log"] = str(service.get("Id", ""))
            read.result.events.append(
                Event.of(read.now, "redfish.sel", sev, self.target, str(entry.get("Message", "")), attrs)
            )

    async def _chassis(self, read: _Read, chassis: Resource) -> None:
        cid = str(chassis.get("Id", ""))
        read.health(chassis, "chassis", str(chassis.get("Name") or cid), cid)
        new_thermal, new_power = _link(chassis, "ThermalSubsystem"), _link(chassis, "PowerSubsystem")
        sensors, env = _link(chassis, "Sensors"), _link(chassis, "EnvironmentMetrics")
        jobs: list[Awaitable[None]] = []
        if sensors:
            jobs.append(self._sensors(read, cid, sensors))
        if env:
            jobs.append(self._environment(read, cid, env))
        if new_thermal:
            jobs.append(self._thermal_subsystem(read, cid, new_thermal))
        elif thermal := _link(chassis, "Thermal"):
            jobs.append(self._legacy_thermal(read, cid, thermal, with_temps=not sensors))
        if new_power:
            jobs.append(self._power_subsystem(read, cid, new_power))
        elif power := _link(chassis, "Power"):
            jobs.append(self._legacy_power(read, cid, power))
        await _side_by_side(jobs)

    async def _legacy_thermal(self, read: _Read, cid: str, path: str, with_temps: bool) -> None:
        thermal = await self._get(path)
        if thermal is None:
            return
        thermal = quirks.apply("Thermal", thermal, self._config.quirks)
        for t in thermal.get("Temperatures", []) if with_temps else []:
            name, ctx = str(t.get("Name", "")), str(t.get("PhysicalContext", ""))
            limits = Limits(**{f: _number(t.get(k)) for k, f in LEGACY_LIMITS.items()})
            read.gauge(
                "hw_temperature_celsius",
                t.get("ReadingCelsius"),
                "celsius",
                limits,
                chassis=cid,
                component=ctx,
                sensor=name,
            )
            read.health(t, ctx or "temperature", name, cid)
        for f in thermal.get("Fans", []):
            name, ctx = str(f.get("Name", "")), str(f.get("PhysicalContext", ""))
            percent = str(f.get("ReadingUnits", "RPM")).lower() == "percent"
            metric, unit = ("hw_fan_speed_percent", "percent") if percent else ("hw_fan_speed_rpm", "rpm")
            limits = Limits(**{fld: _number(f.get(k)) for k, fld in LEGACY_LIMITS.items()})
            read.gauge(
                metric, f.get("Reading"), unit, limits, chassis=cid, component=ctx or "fan", sensor=name
            )
            read.health(f, "fan", name, cid)

    async def _legacy_power(self, read: _Read, cid: str, path: str) -> None:
        power = await self._get(path)
        if power is None:
            return
        power = quirks.apply("Power", power, self._config.quirks)
        for pc in power.get("PowerControl", []):
            read.gauge(
                "hw_power_watts",
                pc.get("PowerConsumedWatts"),
                "watts",
                chassis=cid,
                component=str(pc.get("PhysicalContext", "chassis")),
                sensor=str(pc.get("Name", "")),
            )
        for psu in power.get("PowerSupplies", []):
            name = str(psu.get("Name", ""))
            read.gauge(
                "hw_psu_output_watts",
                psu.get("LastPowerOutputWatts"),
                "watts",
                chassis=cid,
                component="PowerSupply",
                sensor=name,
            )
            read.health(psu, "PowerSupply", name, cid)
        for red in power.get("Redundancy", []):
            read.health(red, "psu-redundancy", str(red.get("Name", "")), cid)

    async def _sensors(self, read: _Read, cid: str, path: str) -> None:
        collection = await self._get(path)

        async def one(sensor: Resource) -> None:
            metric = SENSOR_METRICS.get(str(sensor.get("ReadingType")))
            if metric is None:
                return
            raw = sensor.get("Thresholds")
            thresholds: Resource = raw if isinstance(raw, dict) else {}
            limits = Limits(
                **{f: _number((thresholds.get(k) or {}).get("Reading")) for k, f in SENSOR_LIMITS.items()}
            )
            read.gauge(
                metric[0],
                sensor.get("Reading"),
                metric[1],
                limits,
                chassis=cid,
                component=str(sensor.get("PhysicalContext", "")),
                sensor=str(sensor.get("Name", "")),
            )

        if collection:
            await self._each(_members(collection), one)

    async def _environment(self, read: _Read, cid: str, path: str) -> None:
        env = await self._get(path)
        if env is not None:
            read.gauge(
                "hw_power_watts",
                (env.get("PowerWatts") or {}).get("Reading"),
                "watts",
                chassis=cid,
                component="chassis",
                sensor="EnvironmentMetrics",
            )

    async def _thermal_subsystem(self, read: _Read, cid: str, path: str) -> None:
        sub = await self._get(path)
        fans = await self._get(_link(sub, "Fans") or "") if sub else None
        if sub:
            read.health(sub, "thermal-subsystem", str(sub.get("Name", "ThermalSubsystem")), cid)

        async def fan(f: Resource) -> None:
            name = str(f.get("Name") or f.get("Id", ""))
            read.gauge(
                "hw_fan_speed_percent",
                (f.get("SpeedPercent") or {}).get("Reading"),
                "percent",
                chassis=cid,
                component=str(f.get("PhysicalContext", "fan")),
                sensor=name,
            )
            read.health(f, "fan", name, cid)

        if fans:
            await self._each(_members(fans), fan)

    async def _power_subsystem(self, read: _Read, cid: str, path: str) -> None:
        sub = await self._get(path)
        supplies = await self._get(_link(sub, "PowerSupplies") or "") if sub else None

        async def supply(psu: Resource) -> None:
            name = str(psu.get("Name") or psu.get("Id", ""))
            read.health(psu, "PowerSupply", name, cid)
            metrics = await self._get(_link(psu, "Metrics") or "") if _link(psu, "Metrics") else None
            if metrics:
                read.gauge(
                    "hw_psu_output_watts",
                    (metrics.get("OutputPowerWatts") or {}).get("Reading"),
                    "watts",
                    chassis=cid,
                    component="PowerSupply",
                    sensor=name,
                )

        if supplies:
            await self._each(_members(supplies), supply)
        if sub:
            for red in sub.get("PowerSupplyRedundancy", []):
                read.health(red, "psu-redundancy", str(red.get("RedundancyType", "")), cid)

    async def aclose(self) -> None:
        await self._session.aclose()
