"""The Redfish collector: walks Systems, Chassis and Managers of one BMC into the hw_* vocabulary.

What is read from where is tabled in docs/redfish.md; the mapping of each resource lives in sensors.py,
thermal.py, power.py and metrics.py, and this module only walks the tree: the newer ThermalSubsystem /
PowerSubsystem / Sensors and the legacy Thermal / Power alike. Readings published by several resources
(`DataSourceUri`, or a legacy member naming a newer one's sensor) are kept once (readings.py).

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
from urllib.parse import urlsplit

from agent.collect.base import ConfiguredTarget
from agent.collect.redfish import quirks
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
from agent.collect.redfish.readings import Component, PollReadings, Rank, Resource, ident, items, link
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
# What a document of the wrong shape raises inside a mapping (a string where an object belongs...).
SHAPE_ERRORS = (TypeError, AttributeError, ValueError, KeyError)

Handler = Callable[[Resource], Awaitable[None] | None]


@dataclass(slots=True)
class RedfishStats:
    """Per-document events since start (each bad or malformed one is also an entry in its poll's errors)."""

    bad_documents: int = 0  # HTTP error, or a body that is not a JSON object
    malformed_documents: int = 0  # JSON of a shape the schema does not allow
    missing_documents: int = 0  # 404 behind a link: firmware links to what it lacks, not an error
    unmapped_sensors: int = 0  # Sensors of a ReadingType the vocabulary has no metric for
    duplicate_readings: int = 0  # copies of one source dropped (DataSourceUri)
    truncated_collections: int = 0  # collections longer than MAX_PAGES pages


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
        try:
            await asyncio.wait_for(self._read_all(out), self._config.deadline_s)
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
        if doc is None:
            return
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

    async def _each(self, out: PollReadings, path: str, handle: Handler) -> None:
        """Every member of a collection, side by side."""
        members: list[str] = []
        async for page in self._pages(out, path):
            members += [m for m in (_local(x.get("@odata.id")) for x in items(page, "Members")) if m]
        await _side_by_side(self._read(out, m, handle) for m in dict.fromkeys(members))

    async def _with_metrics(self, out: PollReadings, doc: Resource) -> Resource | None:
        return await self._doc(out, link(doc, "Metrics"))

    async def _read_all(self, out: PollReadings) -> None:
        """Systems, then Chassis, then Managers (each one's members side by side): in this order, the
        first refusal or busy answer of a poll is always the same request."""
        root = await self._session.get(ROOT)
        for collection, handle in (
            ("Systems", self._system),
            ("Chassis", self._chassis),
            ("Managers", self._manager),
        ):
            await self._each(out, link(root, collection), partial(handle, out))

    async def _system(self, out: PollReadings, system: Resource) -> None:
        out.status(system, Component("", "system", str(system.get("Name") or ident(system))))
        await self._log_services(out, system)

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

    async def _chassis(self, out: PollReadings, chassis: Resource) -> None:
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
