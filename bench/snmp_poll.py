"""SNMP polling throughput of one agent process against snmpsim, with net-snmp's snmpbulkwalk as baseline.

A ~100-OID switch (8 interfaces of IF-MIB ifTable + ifXTable, counters growing) is served by snmpsim on
loopback; every agent target polls it (distinct target names, same endpoint). Prints OIDs/s and
devices/s for both, p99 poll lateness and the agent's RSS, against the goal of 1,000 devices x 100 OIDs
every 60 s (~1.7k OIDs/s, p99 lateness < 5 s, RSS < 150 MB). snmpsim itself is one Python process: on
a 2-core machine it shares the CPU with the agent, which the baseline line makes visible.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from agent.collect.scheduler import Scheduler
from agent.collect.snmp.collector import SnmpCollector
from agent.collect.snmp.config import SnmpConfig
from shared.model import CollectResult

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("demo_devices", REPO / "packaging" / "demo_devices.py")
assert _spec and _spec.loader
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)

IF_COLUMNS = {
    2: (4, "eth{i}"),
    5: (66, 1000000000),
    7: (2, 1),
    8: (2, 1),
    10: (65, None),
    11: (65, None),
    13: (65, None),
    14: (65, None),
    16: (65, None),
    17: (65, None),
    19: (65, None),
    20: (65, None),
}
IFX_COLUMNS = {
    1: (4, "eth{i}"),
    6: (70, None),
    7: (70, None),
    10: (70, None),
    11: (70, None),
    15: (66, 1000),
    18: (4, "port {i}"),
}


def bench_device(interfaces: int = 8) -> str:
    lines = [
        "1.3.6.1.2.1.1.1.0|4|bench switch",
        "1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.99999.9",
        "1.3.6.1.2.1.1.3.0|67:numeric|rate=100,initial=1000",
    ]
    for base, cols in (("1.3.6.1.2.1.2.2.1", IF_COLUMNS), ("1.3.6.1.2.1.31.1.1.1", IFX_COLUMNS)):
        for col, (tag, value) in cols.items():
            for i in range(1, interfaces + 1):
                if value is None:
                    lines.append(f"{base}.{col}.{i}|{tag}:numeric|rate={100 * i},initial=0")
                else:
                    lines.append(f"{base}.{col}.{i}|{tag}|{str(value).format(i=i)}")
    return "\n".join(lines) + "\n"


def baseline(port: int, rounds: int) -> tuple[float, int]:
    """snmpbulkwalk of both tables, `rounds` times: (seconds, OIDs)."""
    oids, started = 0, time.perf_counter()
    for _ in range(rounds):
        for root in ("1.3.6.1.2.1.2.2", "1.3.6.1.2.1.31.1.1"):
            out = subprocess.run(
                ["snmpbulkwalk", "-v2c", "-c", "bench", "-Cr25", "-On", f"127.0.0.1:{port}", root],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            oids += out.count("\n")
    return time.perf_counter() - started, oids


async def agent_run(port: int, devices: int, interval: float, duration: float) -> dict[str, float]:
    polls = 0

    def sink(result: CollectResult) -> None:
        nonlocal polls
        polls += 1

    collectors = [
        SnmpCollector(
            SnmpConfig(
                name=f"sw{i:04d}",
                address="127.0.0.1",
                port=port,
                community="bench",
                interval_s=interval,
                timeout_s=5,
                retries=1,
                profile="if-mib",
            )
        )
        for i in range(devices)
    ]
    sched = Scheduler(collectors, sink, max_concurrency=64)
    await sched.start()
    started = time.perf_counter()
    await asyncio.sleep(duration)
    elapsed = time.perf_counter() - started
    p99 = sched.lateness_quantile(0.99)
    timeouts = sum(s.timeouts for s in sched.stats.values())
    await sched.aclose()
    return {
        "polls": polls,
        "elapsed": elapsed,
        "p99": p99,
        "timeouts": timeouts,
        "rss_mb": psutil.Process().memory_info().rss / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--interval", type=float, default=20.0)
    ap.add_argument("--duration", type=float, default=60.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="outpost-snmp-bench-"))
    data = work / "data"
    data.mkdir()
    (data / "bench.snmprec").write_text(bench_device())
    port = demo._free_port(socket.SOCK_DGRAM)
    sim = demo.start_snmpsim(data, work / "snmpsim", port)
    try:
        secs, oids = baseline(port, 20)
        per_device = oids / 20
        print(
            f"snmpbulkwalk baseline: {oids / secs:,.0f} OIDs/s, {20 / secs:,.1f} devices/s "
            f"({per_device:.0f} OIDs each)"
        )
        r = asyncio.run(agent_run(port, args.devices, args.interval, args.duration))
        rate = r["polls"] / r["elapsed"]
        print(
            f"agent ({args.devices} devices every {args.interval:.0f}s for {r['elapsed']:.0f}s): "
            f"{rate * per_device:,.0f} OIDs/s, {rate:,.1f} devices/s, p99 lateness {r['p99']:.2f}s, "
            f"timeouts {r['timeouts']:.0f}, RSS {r['rss_mb']:.0f} MB"
        )
        print(
            f"goal: 1,000 devices x 100 OIDs / 60 s = {1000 / 60:.1f} devices/s, ~1,700 OIDs/s, "
            "p99 lateness < 5 s, RSS < 150 MB"
        )
    finally:
        sim.terminate()
        sim.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
