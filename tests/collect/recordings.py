"""The 116 real device walks of `snmpsim-data`, made servable: decompressed, cut to what profiles read,
time-varying records pinned to one recorded value.

Shared by the recording tests (tests/collect/test_snmp_recordings.py) and bench/snmp_recordings.py.
"""

from __future__ import annotations

import bz2
from collections.abc import Iterable
from pathlib import Path

from agent.collect.snmp.profiles import ProfileSet
from agent.collect.snmp.session import oid_text
from shared.model import CollectResult

# sysUpTime/sysObjectID and the rest of the system group are read by every poll.
SYSTEM_PREFIX = "1.3.6.1.2.1.1."
# What every poll publishes whatever its profile (every profile extends IF-MIB): not a profile's readings.
BASELINE_METRICS = {"snmp_uptime_seconds", "snmp_device_unprofiled", "snmp_readings_rejected_total"}


def vendor_metrics(result: CollectResult) -> set[str]:
    """The metrics a poll yielded beyond IF-MIB and the collector's own: what its profile is there for."""
    names = {s.key.metric for s in result.samples} - BASELINE_METRICS
    return {m for m in names if not m.startswith("net_if_")}


def data_dir() -> Path:
    """Where the `snmpsim-data` wheel keeps its recordings (the wheel has no API but its directory)."""
    import snmpsim_data

    return Path(snmpsim_data.__file__).parent / "data"


def all_recordings() -> list[str]:
    """Every recording as its path under the data dir without suffix (`network/wifi/ruijie-m18000`)."""
    base = data_dir()
    names = {
        str(p.relative_to(base)).removesuffix(".bz2").removesuffix(".snmprec")
        for p in base.rglob("*.snmprec*")
    }
    return sorted(names)


def profile_prefixes(profiles: ProfileSet) -> tuple[str, ...]:
    """Every subtree a shipped profile GETs, walks or probes, as `1.3.6...` text ending in a dot (or the
    exact scalar text): the records a poll can possibly reach."""
    out: set[str] = {SYSTEM_PREFIX}
    for p in profiles.profiles.values():
        out.update(oid_text(r) + "." for r in p.walk_roots())
        out.update(oid_text(m.oid) for m in p.metrics)
        out.update(oid_text(r) + "." for r in p.detect)
    return tuple(sorted(out))


def pinned(line: str) -> str:
    """A record with a snmpsim variation module replaced by one recorded value.

    `numeric` computes `initial + rate x (seconds since snmpsim booted)` wrapped into [min, max] (the APC
    recording's outlet states flip between 1 and 2 every wall-clock second), so values would depend on
    when a test ran; it is pinned to `initial` (or `min`, else 0, when the recording gave none).
    `writecache` serves its recorded `value` until something SETs it, so it is pinned to that value.
    Other modules are refused, so a new recording cannot bring time-dependent values in unnoticed.
    """
    oid, tag, value = line.split("|", 2)
    if ":" not in tag:
        return line
    base, module = tag.split(":", 1)
    settings = dict(kv.split("=", 1) for kv in value.strip().split(",") if "=" in kv)
    if module == "numeric":
        initial = settings.get("initial", settings.get("min", "0"))
        return f"{oid}|{base}|{int(float(initial))}\n"
    if module == "writecache" and "value" in settings:
        return f"{oid}|{base}|{settings['value']}\n"
    raise ValueError(f"unexpected variated record in a recorded device: {line.strip()}")


def read_recording(rel: str) -> str:
    base = data_dir()
    plain, packed = base / f"{rel}.snmprec", base / f"{rel}.snmprec.bz2"
    raw = plain.read_bytes() if plain.exists() else bz2.decompress(packed.read_bytes())
    return raw.decode(errors="surrogateescape")


def materialize(rel: str, dest: Path, prefixes: Iterable[str]) -> int:
    """Writes recording `rel` to `dest` keeping only records under `prefixes`; returns how many."""
    keep = tuple(prefixes)
    kept = [
        pinned(line)
        for line in read_recording(rel).splitlines(keepends=True)
        if line.startswith(keep) and not line.startswith("#")
    ]
    dest.write_bytes("".join(kept).encode(errors="surrogateescape"))
    return len(kept)
