"""The SNMP collector: discovers a device's profile from sysObjectID, then GETs scalars and walks tables.

Counters become per-second rates (RateTracker: wrap-aware; sysUpTime going backwards means the device
restarted, so every counter starts over without a spike). A poll that fails half-way still publishes
what it read, with the failures in `errors`. A device that does not answer at all raises SnmpTimeout
(a TimeoutError), which the scheduler counts in `collect_timeouts_total`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping

from agent.collect.base import ConfiguredTarget
from agent.collect.rates import RateTracker
from agent.collect.snmp.ber import Oid, Value, VarBind
from agent.collect.snmp.config import SnmpConfig
from agent.collect.snmp.errors import SnmpError, SnmpTimeout
from agent.collect.snmp.profiles import MetricDef, Profile, ProfileSet, TableDef, profiles_for
from agent.collect.snmp.sanity import Rejection, in_bounds
from agent.collect.snmp.session import SnmpSession, oid_text
from shared.clock import Clock, SystemClock
from shared.model import CollectResult, Event, Limits, MetricKind, Sample, SeriesKey, Severity

log = logging.getLogger(__name__)

SYS_OBJECT_ID: Oid = (1, 3, 6, 1, 2, 1, 1, 2, 0)
SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
# Walk at most this many columns side by side: the GETBULK budget (max_repetitions, 50 by default) is
# shared by the columns, so a dozen still gets 4 rows each per round trip.
_COLUMNS_PER_WALK = 12
_TICKS_SPAN = 1 << 32


def _number(v: Value | None, extract: re.Pattern[str] | None = None) -> float | None:
    """A numeric value as float; a text value only through the profile's `extract` pattern."""
    if isinstance(v, int | float):
        return float(v)
    if extract is not None and isinstance(v, str) and (found := extract.search(v[:200])):
        try:
            return float(found.group(1))
        except ValueError:
            return None
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
        # Raw values not stored, by reason, since start: published as snmp_readings_rejected_total.
        self.rejected: Counter[Rejection] = Counter()

    @property
    def profile(self) -> Profile | None:
        """The profile the first poll chose (None before it)."""
        return self._profile

    @property
    def profile_name(self) -> str | None:
        return self._profile.name if self._profile else None

    @property
    def engine_resets(self) -> int:
        return self._session.engine_resets

    async def start(self) -> None:
        """Nothing to open: the first poll discovers the profile, so 500 targets start instantly."""

    async def _choose_profile(self, sys_object_id: str, result: CollectResult) -> Profile:
        """The pinned profile, else the vendor profile sysObjectID selects plus every device-kind profile
        whose subtree the device answers under (one GETNEXT per kind); generic when neither applies."""
        pinned = self._config.profile
        if pinned is not None:
            if pinned in self._profiles.profiles:
                return self._profiles.profiles[pinned]
            log.warning("%s: pinned profile %s does not exist, using generic", self.target, pinned)
            return self._profiles.generic
        vendor = self._profiles.match(sys_object_id)
        try:
            present = await self._session.present(self._profiles.detect_roots())
        except SnmpTimeout:
            raise
        except SnmpError as exc:
            result.errors.append(str(exc))
            present = set()
        found = self._profiles.compose(vendor, present)
        self.unprofiled = found is None
        if found is None:
            log.info(
                "%s: sysObjectID %s matches no profile and no device kind: polling generic MIBs (unprofiled)",
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
            self._profile = await self._choose_profile(str(oid_vb.value) if oid_vb else "", result)
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
                self._emit(result, now, m, vb, m.tags, {})
        await self._walk_tables(result, now, self._profile)
        for why in Rejection:
            result.samples.append(
                Sample(
                    SeriesKey.of("snmp_readings_rejected_total", {"reason": why.value}),
                    now,
                    float(self.rejected[why]),
                    MetricKind.COUNTER,
                )
            )
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
        empty: Mapping[Oid, VarBind] = {}

        def cell(col: Oid | None, index: Oid) -> Value | None:
            if col is None:
                return None
            vb = cols.get(col, empty).get(index)
            return vb.value if vb is not None else None

        row_labels: dict[Oid, dict[str, str]] = {}

        def labels_of(index: Oid) -> dict[str, str]:
            """The row's labels, once per row: each from the first candidate column with text. The first
            label names the row, so it falls back to the row index rather than to nothing; the others
            are left out when empty."""
            found = row_labels.get(index)
            if found is None:
                text = oid_text(index)
                found = row_labels[index] = {"index": text}
                for n, (label, candidates) in enumerate(table.labels.items()):
                    value = next((t for c in candidates if (t := str(cell(c, index) or "").strip())), None)
                    if value is not None or n == 0:
                        found[label] = value or text
            return found

        for m in table.metrics:
            rows = cols.get(m.oid, empty)
            if m.fallback_oid:
                rows = {**cols.get(m.fallback_oid, empty), **rows}
            for index, vb in rows.items():
                if m.when is not None and not m.when.holds(cell(m.when.oid, index)):
                    continue
                extra = {
                    "multiply": cell(m.multiply_by, index),
                    "precision": cell(m.precision_by, index),
                    "si": cell(m.si_scale_by, index),
                    "at_most": cell(m.at_most, index),
                }
                if m.name_by is not None:
                    code = cell(m.name_by.oid, index)
                    named = m.name_by.names.get(code) if isinstance(code, int) else None
                    if named is None:
                        continue
                    extra["name"], extra["unit"], extra["named_scale"] = named.name, named.unit, named.scale
                limits: dict[str, Value | None] | None = (
                    {k: cell(c, index) for k, c in m.limits.items()} if m.limits else None
                )
                self._emit(result, now, m, vb, labels_of(index), extra, limits)

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
        raw = _number(vb.value, m.extract)
        if raw is None:
            return
        if raw in m.sentinels:
            self._reject(Rejection.SENTINEL)
            return
        if (ceiling := _number(extra.get("at_most"))) is not None and raw > ceiling:
            self._reject(Rejection.INCONSISTENT)
            return
        factor = m.scale * (_number(extra.get("named_scale")) or 1.0)
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
                self._admit(result, Sample(key, now, rate * factor, MetricKind.RATE, unit), m)
            return
        if self._admit(result, Sample(key, now, raw * factor, MetricKind.GAUGE, unit), m) and limits:
            bounds = {k: n * factor for k, v in limits.items() if (n := _number(v)) is not None}
            if bounds:
                result.limits[key] = Limits(**bounds)

    def _admit(self, result: CollectResult, sample: Sample, m: MetricDef) -> bool:
        """Stores a sample whose value is plausible for its unit; counts the others."""
        if not in_bounds(sample.value, sample.unit, m.valid):
            self._reject(Rejection.OUT_OF_RANGE)
            return False
        result.samples.append(sample)
        return True

    def _reject(self, why: Rejection) -> None:
        self.rejected[why] += 1

    def _gauge(
        self, result: CollectResult, now: int, name: str, value: float, unit: str, labels: dict[str, str]
    ) -> None:
        result.samples.append(Sample(SeriesKey.of(name, labels), now, value, MetricKind.GAUGE, unit))

    async def aclose(self) -> None:
        await self._session.aclose()
