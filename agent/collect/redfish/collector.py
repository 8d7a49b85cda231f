"""The Redfish collector: walks Systems, Chassis and Managers of one BMC into the hw_* vocabulary.

What is read from where is tabled in docs/redfish.md; the mapping of each resource lives in sensors.py,
thermal.py, power.py and metrics.py, and this module only walks the tree: the newer ThermalSubsystem /
PowerSubsystem / Sensors and the legacy Thermal / Power alike. Readings published by several resources
(`DataSourceUri`, or a legacy member naming a newer one's sensor) are kept once (readings.py).

Chassis are read from the Chassis collection and from the `Links.Contains` / `ContainedBy` of each one
read (a blade enclosure may list only itself), each chassis once per poll however it was reached.
A system's processors and memory (compute.py) draw on a request budget per poll (budget.py).

A bad document costs only its own readings: an HTTP error, a body that is not JSON or JSON of the wrong
shape becomes one entry in the poll's errors and one count in `stats`, and the session is kept. A read
has a deadline: whatever was read by then is published, with the rest as an error. On 503/429 the whole
poll backs off for the BMC's Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from functools import partial
from typing import TypeVar
from urllib.parse import urlsplit

from agent.collect.base import ConfiguredTarget
from agent.collect.redfish import quirks
from agent.collect.redfish.budget import Budget, expand_query, inline
from agent.collect.redfish.compute import memory, memory_metrics, processor, processor_summary, summaries
from agent.collect.redfish.config import RedfishConfig
from agent.collect.redfish.errors import (
    RedfishAuthError,
    RedfishBadResponse,
    RedfishBusy,
    RedfishError,
    RedfishNotFound,
)
from agent.collect.redfish.logs import LogWatch
from agent.collect.redfish.metrics import ENVIRONMENT, read_table
from agent.collect.redfish.power import battery, legacy_power, power_subsystem, power_supply
from agent.collect.redfish.readings import (
    Component,
    PollReadings,
    Rank,
    Resource,
    ident,
    items,
    link,
    obj,
    source_of,
)
from agent.collect.redfish.sensors import read_sensor
from agent.collect.redfish.session import RedfishSession
from agent.collect.redfish.thermal import fan, heater, legacy_thermal, thermal_metrics, thermal_subsystem
from shared.clock import Clock, SystemClock
from shared.model import CollectResult

log = logging.getLogger(__name__)

ROOT = "/redfish/v1/"
# Pages of one collection followed per poll (`Members@odata.nextLink`): bounds a BMC whose links loop
# or whose log holds years of entries.
MAX_PAGES = 20
# Chassis reached through `Links.Contains` / `ContainedBy` are followed this many links away from a
# listed one (an enclosure's blades are 1, a blade's mezzanine chassis 2): bounds a linked loop.
MAX_CHASSIS_DEPTH = 4
# What a document of the wrong shape raises inside a mapping (a string where an object belongs...).
SHAPE_ERRORS = (TypeError, AttributeError, ValueError, KeyError)

Handler = Callable[[Resource], Awaitable[None] | None]
T = TypeVar("T")
# A processor or memory module with its Metrics and EnvironmentMetrics (None where it has none).
PartHandler = Callable[[Resource, Resource | None, Resource | None], None]


@dataclass(slots=True)
class RedfishStats:
    """Per-document events since start (each bad or malformed one is also an entry in its poll's errors)."""

    bad_documents: int = 0  # HTTP error, or a body that is not a JSON object
    malformed_documents: int = 0  # JSON of a shape the schema does not allow
    missing_documents: int = 0  # 404 behind a link: firmware links to what it lacks, not an error
    unmapped_sensors: int = 0  # Sensors of a ReadingType the vocabulary has no metric for
    duplicate_readings: int = 0  # copies of one source dropped (DataSourceUri)
    truncated_collections: int = 0  # collections longer than MAX_PAGES pages
    skipped_requests: int = 0  # processor/memory reads the poll's request budget left for a later poll
    chassis_beyond_depth: int = 0  # chassis linked more than MAX_CHASSIS_DEPTH links away: not read


async def _side_by_side(jobs: Iterable[Awaitable[T]]) -> list[T]:
    """Awaits all jobs (their results in order); the first failure cancels the rest, so no request to
    the BMC outlives its poll (plain gather would leave siblings running after a 503 ended the read)."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        return await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _local(uri: object) -> str:
    """A link as a path on this BMC: an absolute nextLink is reduced to its path, so a link naming
    another host never receives our session token."""
    if not isinstance(uri, str) or not uri:
        return ""
    parts = urlsplit(uri)
    return parts.path + (f"?{parts.query}" if parts.query else "") if parts.scheme else uri


class RedfishCollector(ConfiguredTarget[RedfishConfig]):
    """Polls one BMC through one reused session.

    A refused login or request (401/403) is retried after AUTH_RETRY_S rather than every poll.
    """

    AUTH_RETRY_S = 900.0

    def __init__(self, config: RedfishConfig, clock: Clock | None = None) -> None:
        self._config = config
        self._clock = clock or SystemClock()
        self._session = RedfishSession(config)
        self._logs = LogWatch()
        self._not_before = 0.0
        self._backoff_reason = ""
        # collection path -> the member a poll starts at: where the last poll's budget ran out
        self._cursor: dict[str, int] = {}
        self._expand = ""  # this poll's `$expand` query; "" when not advertised or once it failed
        self._expand_failed = False
        self.stats = RedfishStats()

    @property
    def session(self) -> RedfishSession:
        return self._session

    def counters(self) -> dict[str, int]:
        """`stats` for the agent's /metrics (see agent.collect.base.Counted)."""
        return asdict(self.stats)

    async def start(self) -> None:
        if not self._config.verify_tls:
            log.warning(
                "%s: TLS certificate verification is OFF for %s (verify_tls: false)",
                self.target,
                self._config.url,
            )

    async def collect(self) -> CollectResult:
        out = PollReadings(self.target, self._clock.now_ms())
        wait = self._not_before - self._clock.monotonic()
        if wait > 0:
            out.errors.append(f"backing off for {wait:.0f}s after {self._backoff_reason}")
            return out.result()
        budget = Budget(self._config.component_requests)
        try:
            await asyncio.wait_for(self._read_all(out, budget), self._config.deadline_s)
        except TimeoutError:
            out.errors.append(f"deadline of {self._config.deadline_s:g}s: partial read")
        except RedfishBusy as exc:
            self._back_off(exc.retry_after_s, "the BMC said busy")
            out.errors.append(str(exc))
        except RedfishAuthError as exc:
            # Permanent until someone fixes the config; BMCs lock an account after a few failed logins.
            self._back_off(self.AUTH_RETRY_S, "the BMC refused our credentials")
            out.errors.append(str(exc))
            await self._session.reset()
        except RedfishBadResponse as exc:  # the service root itself: nothing to follow, the session is fine
            self.stats.bad_documents += 1
            out.errors.append(str(exc))
        except RedfishError as exc:
            out.errors.append(str(exc))
            await self._session.reset()  # a fresh session next time; the old one is DELETEd
        result = out.result()
        self.stats.duplicate_readings += out.duplicates
        self.stats.skipped_requests += budget.skipped
        return result

    def _back_off(self, seconds: float, reason: str) -> None:
        self._not_before = self._clock.monotonic() + seconds
        self._backoff_reason = reason

    async def _doc(self, out: PollReadings, path: str) -> Resource | None:
        """One document; None when there is no link, nothing behind it (404) or it is bad (counted)."""
        if not path:
            return None
        try:
            return await self._session.get(path)
        except RedfishNotFound:
            self.stats.missing_documents += 1
            return None
        except RedfishBadResponse as exc:
            self.stats.bad_documents += 1
            out.errors.append(str(exc))
            return None

    async def _read(self, out: PollReadings, path: str, handle: Handler) -> None:
        """Hands one document to `handle`; a document of the wrong shape costs only its own readings."""
        doc = await self._doc(out, path)
        if doc is not None:
            await self._apply(out, path, handle, doc)

    async def _apply(self, out: PollReadings, path: str, handle: Handler, doc: Resource) -> None:
        try:
            pending = handle(doc)
            if pending is not None:
                await pending
        except SHAPE_ERRORS as exc:
            self.stats.malformed_documents += 1
            out.errors.append(f"{self.target}: unexpected document shape ({type(exc).__name__}) ({path})")

    async def _pages(self, out: PollReadings, path: str) -> AsyncIterator[Resource]:
        """A collection page by page, following `Members@odata.nextLink` (at most MAX_PAGES, no loops)."""
        followed: set[str] = set()
        while path and path not in followed:
            if len(followed) == MAX_PAGES:
                self.stats.truncated_collections += 1
                return
            followed.add(path)
            page = await self._doc(out, path)
            if page is None:
                return
            yield page
            path = _local(page.get("Members@odata.nextLink") or page.get("@odata.nextLink"))

    async def _members(self, out: PollReadings, path: str) -> list[str]:
        """The member paths of a collection, across its pages, each once."""
        members: list[str] = []
        async for page in self._pages(out, path):
            members += [m for m in (_local(x.get("@odata.id")) for x in items(page, "Members")) if m]
        return list(dict.fromkeys(members))

    async def _each(self, out: PollReadings, path: str, handle: Handler) -> None:
        """Every member of a collection, side by side."""
        await _side_by_side(self._read(out, m, handle) for m in await self._members(out, path))

    async def _with_metrics(self, out: PollReadings, doc: Resource) -> Resource | None:
        return await self._doc(out, link(doc, "Metrics"))

    async def _read_all(self, out: PollReadings, budget: Budget) -> None:
        """Systems, then Chassis, then Managers (each one's members side by side): in this order, the
        first refusal or busy answer of a poll is always the same request."""
        root = await self._session.get(ROOT)
        self._expand = "" if self._expand_failed else expand_query(root)
        await self._each(out, link(root, "Systems"), partial(self._system, out, budget))
        seen: set[str] = set()
        listed = await self._members(out, link(root, "Chassis"))
        await _side_by_side(self._chassis_at(out, seen, path, 0) for path in listed)
        await self._each(out, link(root, "Managers"), partial(self._manager, out))

    async def _system(self, out: PollReadings, budget: Budget, system: Resource) -> None:
        sid = ident(system)
        name = str(system.get("Name") or sid)
        out.status(system, Component("", "system", name))
        summaries(out, system, sid)
        await _side_by_side([self._log_services(out, system), self._compute(out, budget, system, sid, name)])

    async def _compute(
        self, out: PollReadings, budget: Budget, system: Resource, sid: str, name: str
    ) -> None:
        """The summaries' metrics (two requests for the whole system), then processors, then memory: in
        this order when the budget is short, so a host with many DIMMs still gets its summaries read."""
        cpus, _ = await self._linked(out, budget, obj(system, "ProcessorSummary"), "Metrics")
        if cpus is not None:
            processor_summary(out, sid, name, cpus)
        dimms, _ = await self._linked(out, budget, obj(system, "MemorySummary"), "Metrics")
        if dimms is not None:
            memory_metrics(out, Component("", "memory-summary", name, "", sid), dimms)
        if path := link(system, "Processors"):
            await self._parts(out, budget, path, partial(processor, out, sid))
        if path := link(system, "Memory"):
            await self._parts(out, budget, path, partial(memory, out, sid))

    async def _parts(self, out: PollReadings, budget: Budget, path: str, handle: PartHandler) -> None:
        """Each member of a Processors or Memory collection with its Metrics and EnvironmentMetrics,
        within the budget. Members are read a few at a time (as many as may be in flight), starting
        where the last poll's budget ran out, so a budget too small for one poll covers all in turn."""
        members = await self._part_members(out, budget, path)
        if not members:
            return
        start = self._cursor.get(path, 0) % len(members)
        order = members[start:] + members[:start]
        width = self._config.max_concurrent_requests
        complete: list[bool] = []
        for i in range(0, len(order), width):
            chunk = order[i : i + width]
            complete += await _side_by_side(self._part(out, budget, path, m, handle) for m in chunk)
        if not all(complete):
            self._cursor[path] = (start + complete.index(False)) % len(members)

    async def _part_members(self, out: PollReadings, budget: Budget, path: str) -> list[Resource]:
        """The members of a collection, expanded in place when the service offers `$expand` (a service
        that advertises it but fails the request is asked plainly from then on)."""
        if self._expand and budget.take():
            expanded = [
                m async for page in self._pages(out, path + self._expand) for m in items(page, "Members")
            ]
            if expanded:
                return list(
                    {source_of(m.get("@odata.id")) or str(i): m for i, m in enumerate(expanded)}.values()
                )
            self._expand, self._expand_failed = "", True
        if not budget.take():
            return []
        return [{"@odata.id": m} for m in await self._members(out, path)]

    async def _part(
        self, out: PollReadings, budget: Budget, path: str, member: Resource, handle: PartHandler
    ) -> bool:
        """One part and its metrics; False when the budget ran out before all of it was read. An absent
        part (an empty DIMM slot) has a state and nothing else to read."""
        doc = inline(member)
        if doc is None:
            if not budget.take():
                return False
            doc = await self._doc(out, _local(member.get("@odata.id")))
            if doc is None:
                return True
        absent = obj(doc, "Status").get("State") == "Absent"
        metrics, env, complete = None, None, True
        if not absent:
            metrics, got_metrics = await self._linked(out, budget, doc, "Metrics")
            env, got_env = await self._linked(out, budget, doc, "EnvironmentMetrics")
            complete = got_metrics and got_env
        await self._apply(out, path, lambda d: handle(d, metrics, env), doc)
        return complete

    async def _linked(
        self, out: PollReadings, budget: Budget, doc: Resource, key: str
    ) -> tuple[Resource | None, bool]:
        """A navigation property's resource: inline when expanded, else one GET from the budget.
        Returns (the resource or None, False when the budget refused the request)."""
        ref = doc.get(key)
        if (expanded := inline(ref)) is not None:
            return expanded, True
        path = link(doc, key)
        if not path:
            return None, True
        if not budget.take():
            return None, False
        return await self._doc(out, path), True

    async def _manager(self, out: PollReadings, manager: Resource) -> None:
        out.status(manager, Component("", "manager", str(manager.get("Name") or ident(manager))))
        await self._log_services(out, manager)

    async def _log_services(self, out: PollReadings, owner: Resource) -> None:
        if self._config.read_logs and (path := link(owner, "LogServices")):
            await self._each(out, path, lambda service: self._log(out, service))

    async def _log(self, out: PollReadings, service: Resource) -> None:
        entries = link(service, "Entries")
        announce = self._logs.known(entries)
        log_id = str(service.get("Id", ""))
        async for page in self._pages(out, entries):
            members = items(page, "Members")
            out.events += self._logs.news(entries, members, announce, out.now_ms, self.target, log_id)

    async def _chassis_at(self, out: PollReadings, seen: set[str], path: str, depth: int) -> None:
        """One chassis, unless this poll already read it; then the chassis it links to."""
        key = source_of(path)
        if not key or key in seen:
            return
        if depth > MAX_CHASSIS_DEPTH:
            self.stats.chassis_beyond_depth += 1
            return
        seen.add(key)
        await self._read(out, path, lambda d: self._chassis(out, d, seen, depth))

    async def _chassis(self, out: PollReadings, chassis: Resource, seen: set[str], depth: int) -> None:
        cid = str(chassis.get("Id") or ident(chassis))
        out.status(chassis, Component(cid, "chassis", str(chassis.get("Name") or cid)))
        sensors = link(chassis, "Sensors")
        enabled = self._config.quirks
        jobs: list[Awaitable[None]] = []
        if sensors:
            jobs.append(self._each(out, sensors, lambda s: self._sensor(out, cid, s)))
        if env := link(chassis, "EnvironmentMetrics"):
            who = Component(cid, "chassis", "EnvironmentMetrics")
            jobs.append(self._read(out, env, lambda d: read_table(out, d, who, ENVIRONMENT, Rank.SUMMARY)))
        if path := link(chassis, "ThermalSubsystem"):
            jobs.append(self._read(out, path, lambda d: self._thermal_subsystem(out, cid, d)))
        if path := link(chassis, "Thermal"):
            thermal = partial(quirks.apply, "Thermal", enabled=enabled)
            jobs.append(self._read(out, path, lambda d: legacy_thermal(out, cid, thermal(d))))
        if path := link(chassis, "PowerSubsystem"):
            jobs.append(self._read(out, path, lambda d: self._power_subsystem(out, cid, d)))
        if path := link(chassis, "Power"):
            power = partial(quirks.apply, "Power", enabled=enabled)
            jobs.append(self._read(out, path, lambda d: legacy_power(out, cid, power(d))))
        links = obj(chassis, "Links")
        linked = [*items(links, "Contains"), obj(links, "ContainedBy")]
        jobs += [self._chassis_at(out, seen, _local(x.get("@odata.id")), depth + 1) for x in linked]
        await _side_by_side(jobs)

    def _sensor(self, out: PollReadings, cid: str, sensor: Resource) -> None:
        if not read_sensor(out, cid, sensor):
            self.stats.unmapped_sensors += 1

    async def _thermal_subsystem(self, out: PollReadings, cid: str, sub: Resource) -> None:
        thermal_subsystem(out, cid, sub)

        async def with_metrics(doc: Resource) -> None:
            heater(out, cid, doc, await self._with_metrics(out, doc))

        await _side_by_side(
            [
                self._each(out, link(sub, "Fans"), lambda d: fan(out, cid, d)),
                self._read(out, link(sub, "ThermalMetrics"), lambda d: thermal_metrics(out, cid, d)),
                self._each(out, link(sub, "Heaters"), with_metrics),
            ]
        )

    async def _power_subsystem(self, out: PollReadings, cid: str, sub: Resource) -> None:
        power_subsystem(out, cid, sub)

        async def supply(doc: Resource) -> None:
            power_supply(out, cid, doc, await self._with_metrics(out, doc))

        async def cell(doc: Resource) -> None:
            battery(out, cid, doc, await self._with_metrics(out, doc))

        supplies, batteries = link(sub, "PowerSupplies"), link(sub, "Batteries")
        await _side_by_side([self._each(out, supplies, supply), self._each(out, batteries, cell)])

    async def aclose(self) -> None:
        await self._session.aclose()
