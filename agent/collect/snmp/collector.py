"""The SNMP collector: discovers a device's profile from sysObjectID, then GETs scalars and walks tables.

Counters become per-second rates (RateTracker: wrap-aware; sysUpTime going backwards means the device
restarted, so every counter starts over without a spike). A poll that fails half-way still publishes
what it read, with the failures in `errors`. A device that does not answer at all raises SnmpTimeout
(a TimeoutError), which the scheduler counts in `collect_timeouts_total`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from agent.collect.base import ConfiguredTarget
from agent.collect.rates import RateTracker
from agent.collect.snmp.config import SnmpConfig
from agent.collect.snmp.errors import SnmpError, SnmpTimeout
from agent.collect.snmp.profiles import MetricDef, Profile, ProfileSet, TableDef, profiles_for
from agent.collect.snmp.session import Oid, SnmpSession, Value, VarBind, oid_text
from shared.clock import Clock, SystemClock
from shared.model import CollectResult, Event, Limits, MetricKind, Sample, SeriesKey, Severity

log = logging.getLogger(__name__)

SYS_OBJECT_ID: Oid = (1, 3, 6, 1, 2, 1, 1, 2, 0)
SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
# Walk at most this many columns side by side: the GETBULK budget (max_repetitions, 50 by default) is
# shared by the columns, so a dozen still gets 4 rows each per round trip.
_COLUMNS_PER_WALK = 12
_TICKS_SPAN = 1 << 32


def _number(v: Value | None) -> float | None:
    if isinstance(v, int | float):
        return float(v)
    return None


def _restarted(prev_ticks: int | None, ticks: int) -> bool:
    """sysUpTime went backwards and it is not the 497-day TimeTicks wrap."""
    if prev_ticks is None or ticks >= prev_ticks:
        return False
    return not (prev_ticks >= _TICKS_SPAN * 3 // 4 and ticks < _TICKS_SPAN // 4)


class SnmpCollector(ConfiguredTarget[SnmpConfig]):
    """Polls one SNMP device with the profile its sysObjectID selects (or the one the config pins)."""

    def __init__(
        self, config: SnmpConfig, clock: Clock | None = None, profiles: ProfileSet | None = None
    ) -> None:
        self._config = config
        self._clock = clock or SystemClock()
        self._profiles = profiles or profiles_for(config.profiles_dir)
        self._session = SnmpSession(config, self._clock)
        self._rates = RateTracker()
        self._profile: Profile | None = None
        self._uptime: int | None = None
        self.unprofiled = False

    @property
    def profile_name(self) -> str | None:
        return self._profile.name if self._profile else None

    @property
    def engine_resets(self) -> int:
        return self._session.engine_resets

    async def start(self) -> None:
        """Nothing to open: the first poll discovers the profile, so 500 targets start instantly."""

    def _choose_profile(self, sys_object_id: str) -> Profile:
        pinned = self._config.profile
        if pinned is not None:
            if pinned in self._profiles.profiles:
                return self._profiles.profiles[pinned]
            log.warning("%s: pinned profile %s does not exist, using generic", self.target, pinned)
        found = self._profiles.match(sys_object_id)
        self.unprofiled = found is None and pinned is None
        if self.unprofiled:
            log.info(
                "%s: sysObjectID %s matches no profile: polling generic MIBs (unprofiled)",
                self.target,
                sys_object_id or "?",
            )
        return found or self._profiles.generic

    async def collect(self) -> CollectResult:
        now = self._clock.now_ms()
        result = CollectResult(self.target)
        scalars = [m.oid for m in self._profile.metrics] if self._profile else []
        first = await self._session.get([SYS_UPTIME, SYS_OBJECT_ID, *scalars])  # SnmpTimeout propagates
        ticks = first.get(SYS_UPTIME)
        if ticks is not None and isinstance(ticks.value, int):
            if _restarted(self._uptime, ticks.value):
                self._restart(now, ticks.value, result)
            self._uptime = ticks.value
            self._gauge(result, now, "snmp_uptime_seconds", ticks.value / 100.0, "seconds", {})
        if self._profile is None:
            oid_vb = first.get(SYS_OBJECT_ID)
            self._profile = self._choose_profile(str(oid_vb.value) if oid_vb else "")
            try:
                first.update(await self._session.get([m.oid for m in self._profile.metrics]))
            except SnmpError as exc:
                result.errors.append(str(exc))
        self._gauge(
            result,
            now,
            "snmp_device_unprofiled",
            1.0 if self.unprofiled else 0.0,
            "",
            {"profile": self._profile.name},
        )
        for m in self._profile.metrics:
            vb = first.get(m.oid)
            if vb is not None:
                self._emit(result, now, m, vb, {}, {})
        await self._walk_tables(result, now, self._profile)
        return result

    def _restart(self, now: int, ticks: int, result: CollectResult) -> None:
        log.info(
            "%s: device restarted (sysUpTime %ss -> %ss): counters start over",
            self.target,
            (self._uptime or 0) // 100,
            ticks // 100,
        )
        self._rates.reset_all()
        self._profile = None  # a firmware upgrade may have changed sysObjectID
        result.events.append(
            Event.of(
                now,
                "snmp.restart",
                Severity.WARNING,
                self.target,
                "device restarted (sysUpTime went backwards)",
            )
        )

    async def _walk_tables(self, result: CollectResult, now: int, profile: Profile) -> None:
        roots = profile.walk_roots()
        columns: dict[Oid, dict[Oid, VarBind]] = {}
        for i in range(0, len(roots), _COLUMNS_PER_WALK):
            group = roots[i : i + _COLUMNS_PER_WALK]
            try:
                walked = await self._session.walk(group)
            except SnmpTimeout as exc:  # it answered the GET, then went quiet: publish what we have
                result.errors.append(str(exc))
                break
            except SnmpError as exc:
                result.errors.append(str(exc))
                continue
            for root, rows in walked.items():
                columns[root] = {vb.oid[len(root) :]: vb for vb in rows}
        for table in profile.tables:
            self._table(result, now, table, columns)

    def _table(
        self, result: CollectResult, now: int, table: TableDef, cols: Mapping[Oid, Mapping[Oid, VarBind]]
    ) -> None:
        def cell(col: Oid | None, index: Oid) -> Value | None:
            if col is None:
                return None
            vb = cols.get(col, {}).get(index)
            return vb.value if vb is not None else None

        for m in table.metrics:
            rows = dict(cols.get(m.fallback_oid, {})) if m.fallback_oid else {}
            rows.update(cols.get(m.oid, {}))
            for index, vb in rows.items():
                labels = {"index": oid_text(index)}
                for label, candidates in table.labels.items():
                    text = next((t for c in candidates if (t := str(cell(c, index) or "").strip())), None)
                    if text is not None:
                        labels[label] = text
                extra = {
                    "multiply": cell(m.multiply_by, index),
                    "precision": cell(m.precision_by, index),
                    "si": cell(m.si_scale_by, index),
                }
                if m.name_by is not None:
                    code = cell(m.name_by.oid, index)
                    named = m.name_by.names.get(code) if isinstance(code, int) else None
                    if named is None:
                        continue
                    extra["name"], extra["unit"] = named.name, named.unit
                limits: dict[str, Value | None] = {k: cell(c, index) for k, c in m.limits.items()}
                self._emit(result, now, m, vb, labels, extra, limits)

    def _emit(
        self,
        result: CollectResult,
        now: int,
        m: MetricDef,
        vb: VarBind,
        labels: dict[str, str],
        extra: Mapping[str, Value | None],
        limits: Mapping[str, Value | None] | None = None,
    ) -> None:
        raw = _number(vb.value)
        if raw is None:
            return
        factor = m.scale
        if (mult := _number(extra.get("multiply"))) is not None:
            factor *= mult
        if (prec := _number(extra.get("precision"))) is not None:
            factor /= 10**prec
        if (si := _number(extra.get("si"))) is not None:
            factor *= 1000.0 ** (si - 9)
        name = str(extra.get("name") or m.name)
        unit = str(extra.get("unit") or m.unit)
        key = SeriesKey.of(name, labels)
        if m.type == "counter":
            counter = vb.value if isinstance(vb.value, int) else raw
            rate = self._rates.update(key, now, counter, vb.counter_bits or 64)
            if rate is not None:
                result.samples.append(Sample(key, now, rate * factor, MetricKind.RATE, unit))
            return
        result.samples.append(Sample(key, now, raw * factor, MetricKind.GAUGE, unit))
        bounds = {k: n * factor for k, v in (limits or {}).items() if (n := _number(v)) is not None}
        if bounds:
            result.limits[key] = Limits(**bounds)

    def _gauge(
        self, result: CollectResult, now: int, name: str, value: float, unit: str, labels: dict[str, str]
    ) -> None:
        result.samples.append(Sample(SeriesKey.of(name, labels), now, value, MetricKind.GAUGE, unit))

    async def aclose(self) -> None:
        await self._session.aclose()
