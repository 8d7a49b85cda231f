"""SNMP device profiles: YAML data matched on sysObjectID, resolved through `extends:` once at load.

A profile lists scalar OIDs and tables (numeric OIDs only, so start-up compiles no MIB). Table rows
are keyed by index; label columns (ifName, ifAlias, entPhysicalName...) name the rows. The shipped
profiles live next to this module in `profiles/`; a target may add a directory whose files override
shipped ones of the same name. Loading is cached per directory set, so 500 targets load once.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from agent.collect.device import DEVICE_LABEL
from agent.collect.snmp.session import Oid, parse_oid
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
    name: str
    unit: str = ""


class NameBy(_Frozen):
    """Picks the metric name and unit from another column's value (entPhySensorType 8 -> celsius).
    Rows whose value is not listed are skipped."""

    oid: OidField
    names: dict[int, NamedUnit]


class MetricDef(_Frozen):
    """One value. `counter` values become per-second rates (the name is the rate's name).

    value = raw * scale * column(multiply_by) / 10**column(precision_by) * 1000**(column(si_scale_by)-9)
    """

    name: str = ""
    oid: OidField
    # A 32-bit column to use for rows whose preferred (64-bit HC) column is absent.
    fallback_oid: OidField | None = None
    type: Literal["gauge", "counter"] = "gauge"
    unit: str = ""
    scale: float = 1.0
    multiply_by: OidField | None = None
    precision_by: OidField | None = None
    si_scale_by: OidField | None = None
    name_by: NameBy | None = None
    # Device thresholds from sibling columns: warn_high, crit_high, warn_low, crit_low.
    limits: dict[LimitName, OidField] = Field(default_factory=dict)


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
    extends: tuple[str, ...] = ()
    metrics: tuple[MetricDef, ...] = ()
    tables: tuple[TableDef, ...] = ()


class Profile(_Frozen):
    """A resolved profile: its own plus every ancestor's metrics and tables (a child's table of the same
    name replaces the parent's)."""

    name: str
    sysobjectid: tuple[str, ...]
    metrics: tuple[MetricDef, ...]
    tables: tuple[TableDef, ...]

    def walk_roots(self) -> list[Oid]:
        """Every column the tables need, in a stable order, without duplicates."""
        roots: dict[Oid, None] = {}
        for t in self.tables:
            for cols in t.labels.values():
                roots.update(dict.fromkeys(cols))
            for m in t.metrics:
                for col in (m.oid, m.fallback_oid, m.multiply_by, m.precision_by, m.si_scale_by):
                    if col is not None:
                        roots[col] = None
                if m.name_by is not None:
                    roots[m.name_by.oid] = None
                roots.update(dict.fromkeys(m.limits.values()))
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

    def match(self, sys_object_id: str) -> Profile | None:
        """The profile for a device's sysObjectID, or None when no profile claims it."""
        oid = sys_object_id.lstrip(".")
        for pattern, name in self._patterns:
            if fnmatch.fnmatchcase(oid, pattern.lstrip(".")):
                return self.profiles[name]
        return None

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
    metrics: dict[tuple[str, Oid], MetricDef] = {}
    tables: dict[str, TableDef] = {}
    for parent in f.extends:
        p = _resolve(parent, files, (*seen, name))
        metrics.update({(m.name, m.oid): m for m in p.metrics})
        tables.update({t.name: t for t in p.tables})
    metrics.update({(m.name, m.oid): m for m in f.metrics})
    tables.update({t.name: t for t in f.tables})
    return Profile(
        name=name, sysobjectid=f.sysobjectid, metrics=tuple(metrics.values()), tables=tuple(tables.values())
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
