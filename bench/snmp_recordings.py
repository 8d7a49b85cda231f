"""Collector CPU per sample on one real recording (default: the 36k-sample `network/wifi/ruijie-m18000`),
with net-snmp's snmpbulkwalk walking the same columns as the reference measured in the same run.

snmpsim serves the recording (cut to the subtrees profiles read) in its own process, so its CPU is not
counted. The collector polls `--polls` times in this process; the first poll (profile discovery, no
rates yet) is reported apart, the others are the steady state: wall seconds, collector CPU seconds and
CPU microseconds per sample. `--profile` prints the top functions of a cProfile run of one more poll.
Exits non-zero when a poll errs or yields nothing.

`--census` instead polls every recording (or those given with `--recording`) once and prints, for each,
the profile it got and whether that profile yielded readings of its own (beyond IF-MIB), then the counts
issue 15 is judged by: matched, matched and yielding, unmatched. Exits non-zero below 80 % yielding.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.util
import io
import pstats
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.collect.snmp.collector import SnmpCollector  # noqa: E402
from agent.collect.snmp.config import SnmpConfig  # noqa: E402
from agent.collect.snmp.profiles import profiles_for  # noqa: E402
from agent.collect.snmp.session import oid_text  # noqa: E402
from shared.clock import FakeClock  # noqa: E402
from tests.collect.recordings import all_recordings, materialize, profile_prefixes, vendor_metrics  # noqa: E402

_spec = importlib.util.spec_from_file_location("demo_devices", REPO / "packaging" / "demo_devices.py")
assert _spec and _spec.loader
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)

COMMUNITY = "rec"


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def reference(port: int, roots: list[str]) -> tuple[float, int]:
    """snmpbulkwalk of every column the profile walks (one process each): (CPU seconds, OIDs)."""
    before, oids = children_cpu(), 0
    for root in roots:
        out = subprocess.run(
            ["snmpbulkwalk", "-v2c", "-c", COMMUNITY, "-Cr50", "-On", "-t", "10", f"127.0.0.1:{port}", root],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        oids += sum(1 for line in out.splitlines() if line.startswith(f".{root}."))
    return children_cpu() - before, oids


async def poll(
    port: int, polls: int, profile: bool
) -> tuple[list[tuple[float, float, int, int]], list[str], str]:
    """`polls` collects: per poll (wall s, CPU s, samples, errors); the walked roots; the profile's name."""
    clock = FakeClock()
    cfg = SnmpConfig(name="rec", address="127.0.0.1", port=port, community=COMMUNITY, timeout_s=10, retries=1)
    c = SnmpCollector(cfg, clock=clock)
    runs: list[tuple[float, float, int, int]] = []
    try:
        for _ in range(polls):
            wall0, cpu0 = time.perf_counter(), time.process_time()
            result = await c.collect()
            runs.append(
                (
                    time.perf_counter() - wall0,
                    time.process_time() - cpu0,
                    len(result.samples),
                    len(result.errors),
                )
            )
            if result.errors:
                print("errors:", result.errors[:3])
            await clock.advance(60)
        if profile:  # one more poll, outside the numbers: cProfile slows what it watches
            prof = cProfile.Profile()
            prof.enable()
            await c.collect()
            prof.disable()
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
            print(out.getvalue())
        assert c.profile is not None  # discovered by the first poll
        return runs, [oid_text(r) for r in c.profile.walk_roots()], c.profile.name
    finally:
        await c.aclose()


def snmpget_ready(port: int, community: str) -> None:
    """One GET, retried: the first request of a community makes snmpsim index its file."""
    subprocess.run(
        ["snmpget", "-v2c", "-c", community, "-t", "60", "-r", "3", f"127.0.0.1:{port}", "1.3.6.1.2.1.1.3.0"],
        capture_output=True,
        timeout=400,
        check=True,
    )


async def census_polls(port: int, names: list[str]) -> list[tuple[str, str, bool]]:
    """One poll of each recording (served under its path as community): (recording, profile, yields)."""
    out = []
    for rel in names:
        community = rel.replace("/", "-")
        cfg = SnmpConfig(name=community, address="127.0.0.1", port=port, community=community, timeout_s=10)
        c = SnmpCollector(cfg, clock=FakeClock())
        try:
            result = await c.collect()
        finally:
            await c.aclose()
        profile = "" if c.unprofiled else (c.profile_name or "")
        out.append((rel, profile, bool(profile) and bool(vendor_metrics(result))))
    return out


def census(names: list[str]) -> int:
    work = Path(tempfile.mkdtemp(prefix="outpost-snmp-census-"))
    proc = None
    try:
        (work / "data").mkdir()
        prefixes = profile_prefixes(profiles_for(None))
        for rel in names:
            materialize(rel, work / "data" / f"{rel.replace('/', '-')}.snmprec", prefixes)
        port = demo._free_port(socket.SOCK_DGRAM)
        proc = demo.start_snmpsim(work / "data", work / "snmpsim", port)
        for rel in names:
            snmpget_ready(port, rel.replace("/", "-"))
        rows = asyncio.run(census_polls(port, names))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    for rel, profile, yields in rows:
        print(f"{rel:60} {profile or '(unmatched)':32} {'yields' if yields else '-'}")
    matched = sum(1 for _, p, _ in rows if p)
    yielding = sum(1 for *_, y in rows if y)
    print(
        f"matched {matched}, matched and yielding {yielding} ({yielding / len(rows):.1%}), "
        f"unmatched {len(rows) - matched}, of {len(rows)} recordings"
    )
    return 0 if yielding >= 0.8 * len(rows) else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recording", action="append", help="default: network/wifi/ruijie-m18000")
    ap.add_argument("--polls", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="cProfile the last poll")
    ap.add_argument("--census", action="store_true", help="profile share of all (or the given) recordings")
    args = ap.parse_args()
    if args.census:
        return census(args.recording or all_recordings())
    recording = (args.recording or ["network/wifi/ruijie-m18000"])[-1]
    work = Path(tempfile.mkdtemp(prefix="outpost-snmp-rec-"))
    proc = None
    try:
        (work / "data").mkdir()
        records = materialize(
            recording, work / "data" / f"{COMMUNITY}.snmprec", profile_prefixes(profiles_for(None))
        )
        port = demo._free_port(socket.SOCK_DGRAM)
        proc = demo.start_snmpsim(work / "data", work / "snmpsim", port)
        snmpget_ready(port, COMMUNITY)
        runs, roots, profile = asyncio.run(poll(port, args.polls, args.profile))
        ref_cpu, ref_oids = reference(port, roots)
        print(f"{recording}: {records:,} records served, profile {profile}, {len(roots)} columns walked")
        print(
            f"snmpbulkwalk reference: {ref_oids:,} OIDs, {ref_cpu:.2f} CPU-s, "
            f"{1e6 * ref_cpu / max(ref_oids, 1):.1f} us per OID"
        )
        for i, (wall, cpu, samples, errors) in enumerate(runs):
            label = "first poll (discovery)" if i == 0 else f"poll {i + 1}"
            print(
                f"{label}: {samples:,} samples, {errors} errors, {wall:.2f} s wall, "
                f"{cpu:.2f} s collector CPU, {1e6 * cpu / max(samples, 1):.1f} us CPU per sample"
            )
        steady = runs[1:] or runs
        cpu = sum(r[1] for r in steady) / len(steady)
        samples = sum(r[2] for r in steady) / len(steady)
        ref_same = ref_cpu / max(ref_oids, 1) * samples
        print(
            f"steady state: {1e6 * cpu / max(samples, 1):.1f} us collector CPU per sample "
            f"({cpu / max(ref_same, 1e-9):.1f}x snmpbulkwalk's CPU for as many OIDs)"
        )
        failed = any(r[3] for r in runs) or any(r[2] == 0 for r in runs)
        return 1 if failed else 0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
