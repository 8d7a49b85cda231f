"""SNMP device profiles: YAML data matched on sysObjectID, resolved through `extends:` once at load.

A profile lists scalar OIDs and tables (numeric OIDs only, so start-up compiles no MIB). Table rows
are keyed by index; label columns (ifName, ifAlias, entPhysicalName...) name the rows. The shipped
profiles live next to this module in `profiles/`; a target may add a directory whose files override
shipped ones of the same name. Loading is cached per directory set, so 500 targets load once.

Two kinds of profile: a vendor profile claims devices by `sysobjectid`; a device-kind profile (UPS-MIB,
HOST-RESOURCES, ENTITY-SENSOR, UCD-SNMP) names `detect` subtrees and is added to any device that answers
under one of them, whatever its vendor (`ProfileSet.compose`).
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from agent.collect.device import DEVICE_LABEL
from agent.collect.snmp.session import Oid, oid_text, parse_oid
from shared.config_errors import format_validation_error

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).with_name("profiles")
GENERIC = "generic"


def _oid(v: object) -> object:
    return parse_oid(v) if isinstance(v, str) else v


def _oids(v: object) -> object:
    if isinstance(v, str):
        return (parse_oid(v),)
    if isinstance(v, list):
        return tuple(parse_oid(x) if isinstance(x, str) else x for x in v)
    return v


OidField = Annotated[tuple[int, ...], BeforeValidator(_oid)]
LimitName = Literal["warn_high", "crit_high", "warn_low", "crit_low"]
OidList = Annotated[tuple[tuple[int, ...], ...], BeforeValidator(_oids)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NamedUnit(_Frozen):
    """A metric name and unit chosen by a type column; `scale` converts into that unit (percent -> ratio)."""

    name: str
    unit: str = ""
    scale: float = 1.0


class NameBy(_Frozen):
    """Picks the metric name and unit from another column's value (entPhySensorType 8 -> celsius).
    Rows whose value is not listed are skipped."""

    oid: OidField
    names: dict[int, NamedUnit]


class When(_Frozen):
    """A row condition on another column of the same row: its value is one of `in_`, or above `above`.
    Rows failing it are not readings (entSensorStatus unavailable, a Juniper component with no DRAM)."""

    oid: OidField
    in_: tuple[int, ...] = Field(default=(), alias="in")
    above: float | None = None

    def holds(self, value: object) -> bool:
        if not isinstance(value, int | float):
            return False
        if self.in_ and value not in self.in_:
            return False
        return self.above is None or value > self.above


class MetricDef(_Frozen):
    """One value. `counter` values become per-second rates (the name is the rate's name).

    value = raw * scale * column(multiply_by) / 10**column(precision_by) * 1000**(column(si_scale_by)-9)

    `sentinels` are raw values the MIB documents as "no reading" (UPS-MIB -1); `valid` bounds the value
    after scaling (else the unit's sanity bounds apply, see collect/snmp/sanity.py); `at_most` names a
    sibling column the raw value may not exceed (hrStorageUsed <= hrStorageSize, broken by 32-bit
    overflow); `extract` pulls the number out of a text value ("52 PERCENT").
    """

    name: str = ""
    oid: OidField
    # A 32-bit column to use for rows whose preferred (64-bit HC) column is absent.
    fallback_oid: OidField | None = None
    # Fixed labels of a scalar (the load average's period).
    tags: dict[str, str] = Field(default_factory=dict)
    type: Literal["gauge", "counter"] = "gauge"
    unit: str = ""
    scale: float = 1.0
    multiply_by: OidField | None = None
    precision_by: OidField | None = None
    si_scale_by: OidField | None = None
    name_by: NameBy | None = None
    # Device thresholds from sibling columns: warn_high, crit_high, warn_low, crit_low.
    limits: dict[LimitName, OidField] = Field(default_factory=dict)
    when: When | None = None
    sentinels: frozenset[float] = frozenset()
    valid: tuple[float, float] | None = None
    at_most: OidField | None = None
    extract: re.Pattern[str] | None = None

    @field_validator("extract")
    @classmethod
    def _one_bounded_group(cls, pattern: re.Pattern[str] | None) -> re.Pattern[str] | None:
        """A text value is at most one SNMP string; the pattern must capture exactly the number."""
        if pattern is not None and (pattern.groups != 1 or len(pattern.pattern) > 100):
            raise ValueError("extract: one capture group, at most 100 characters")
        return pattern

    def columns(self) -> list[Oid]:
        """Every column this metric reads for a row, its own first."""
        cols = [self.oid, self.fallback_oid, self.multiply_by, self.precision_by, self.si_scale_by]
        cols += [self.name_by.oid if self.name_by else None, self.when.oid if self.when else None]
        cols += [self.at_most, *self.limits.values()]
        return [c for c in cols if c is not None]


class TableDef(_Frozen):
    """A table: label name -> candidate columns (first non-empty wins), and its metric columns."""

    name: str
    labels: dict[str, OidList] = Field(default_factory=dict)
    metrics: tuple[MetricDef, ...]

    @field_validator("labels")
    @classmethod
    def _device_is_reserved(cls, labels: dict[str, OidList]) -> dict[str, OidList]:
        """`device` is the configured device name on every series (collect/device.py); a row label of that
        name would be silently replaced, so a profile that declares one is refused instead."""
        if DEVICE_LABEL in labels:
            raise ValueError(f"label {DEVICE_LABEL!r} is reserved for the configured device name")
        return labels


class ProfileFile(_Frozen):
    """What one YAML file holds."""

    name: str
    sysobjectid: tuple[str, ...] = ()
    detect: OidList = ()
    extends: tuple[str, ...] = ()
    metrics: tuple[MetricDef, ...] = ()
    tables: tuple[TableDef, ...] = ()


class Profile(_Frozen):
    """A resolved profile: its own plus every ancestor's metrics and tables (a child's table of the same
    name replaces the parent's)."""

    name: str
    sysobjectid: tuple[str, ...]
    detect: tuple[Oid, ...] = ()
    # This profile and every ancestor: a kind profile already included is not added again.
    includes: frozenset[str] = frozenset()
    metrics: tuple[MetricDef, ...]
    tables: tuple[TableDef, ...]

    def walk_roots(self) -> list[Oid]:
        """Every column the tables need, in a stable order, without duplicates."""
        roots: dict[Oid, None] = {}
        for t in self.tables:
            for cols in t.labels.values():
                roots.update(dict.fromkeys(cols))
            for m in t.metrics:
                roots.update(dict.fromkeys(m.columns()))
        return list(roots)


class ProfileSet:
    """All profiles by name plus the sysObjectID matcher."""

    def __init__(self, profiles: dict[str, Profile]) -> None:
        self.profiles = profiles
        # Most specific pattern first: longest literal part wins (`1.3.6.1.4.1.9.1.617` over `...9.*`).
        self._patterns = sorted(
            ((pat, p.name) for p in profiles.values() for pat in p.sysobjectid),
            key=lambda item: -len(item[0].replace("*", "")),
        )

        self.kinds = [p for p in profiles.values() if p.detect]

    def match(self, sys_object_id: str) -> Profile | None:
        """The profile for a device's sysObjectID, or None when no profile claims it."""
        oid = sys_object_id.lstrip(".")
        for pattern, name in self._patterns:
            if fnmatch.fnmatchcase(oid, pattern.lstrip(".")):
                return self.profiles[name]
        return None

    def detect_roots(self) -> list[Oid]:
        """The subtrees whose presence adds a device-kind profile, without duplicates."""
        return list(dict.fromkeys(r for p in self.kinds for r in p.detect))

    def compose(self, vendor: Profile | None, present: set[Oid]) -> Profile | None:
        """`vendor` plus every kind profile with a detect subtree in `present` that it does not already
        include; None when there is neither (the device is unprofiled)."""
        included = set(vendor.includes) if vendor else set()
        parts = [vendor] if vendor else []
        for kind in self.kinds:
            if kind.name not in included and present.intersection(kind.detect):
                parts.append(kind)
                included |= kind.includes
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return _merged("+".join(p.name for p in parts), parts[0].sysobjectid, parts)

    @property
    def generic(self) -> Profile:
        return self.profiles[GENERIC]


def _read(path: Path) -> ProfileFile | None:
    try:
        return ProfileFile.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as exc:
        log.error("profile %s rejected:\n%s", path, format_validation_error(exc))
    except (OSError, yaml.YAMLError, ValueError) as exc:
        log.error("profile %s rejected: %s", path, exc)
    return None


def _resolve(name: str, files: dict[str, ProfileFile], seen: tuple[str, ...] = ()) -> Profile:
    if name in seen:
        raise ValueError(f"profile {name}: extends cycle {' -> '.join((*seen, name))}")
    if name not in files:
        raise ValueError(f"profile {seen[-1] if seen else name}: extends unknown profile {name}")
    f = files[name]
    parents = [_resolve(parent, files, (*seen, name)) for parent in f.extends]
    own = Profile(name=name, sysobjectid=f.sysobjectid, metrics=f.metrics, tables=f.tables)
    merged = _merged(name, f.sysobjectid, [*parents, own])
    return merged.model_copy(update={"detect": f.detect})


def _metric_key(m: MetricDef) -> tuple[str, tuple[tuple[str, str], ...]]:
    return m.name or oid_text(m.oid), tuple(sorted(m.tags.items()))


def _merged(name: str, sysobjectid: tuple[str, ...], parts: list[Profile]) -> Profile:
    """Later parts win: their scalars replace earlier ones of the same name and fixed labels (a vendor's
    own column for what UPS-MIB also offers), their tables earlier tables of the same name. Scalars of
    one part are all kept (a vendor whose products put one reading at different OIDs)."""
    metrics: list[MetricDef] = []
    tables: dict[str, TableDef] = {}
    includes: set[str] = {name}
    for p in parts:
        replaced = {_metric_key(m) for m in p.metrics}
        metrics = [m for m in metrics if _metric_key(m) not in replaced] + list(p.metrics)
        tables.update({t.name: t for t in p.tables})
        includes |= p.includes | {p.name}
    return Profile(
        name=name,
        sysobjectid=sysobjectid,
        includes=frozenset(includes),
        metrics=tuple(metrics),
        tables=tuple(tables.values()),
    )


@functools.lru_cache(maxsize=8)
def load_profiles(extra_dirs: tuple[Path, ...] = ()) -> ProfileSet:
    """Loads the shipped profiles plus `extra_dirs` (later files override earlier ones by name).

    A broken file is logged and skipped; so is a profile whose `extends:` cannot be resolved.
    """
    files: dict[str, ProfileFile] = {}
    for d in (SHIPPED_DIR, *extra_dirs):
        for path in sorted(d.glob("*.yaml")):
            pf = _read(path)
            if pf is not None:
                files[pf.name] = pf
    resolved: dict[str, Profile] = {}
    for name in files:
        try:
            resolved[name] = _resolve(name, files)
        except ValueError as exc:
            log.error("%s", exc)
    return ProfileSet(resolved)


def profiles_for(extra_dir: Path | None) -> ProfileSet:
    """The cached profile set for a target's optional extra directory."""
    return load_profiles((extra_dir,) if extra_dir else ())
