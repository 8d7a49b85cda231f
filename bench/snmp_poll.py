"""SNMP polling throughput of one agent process, with net-snmp's snmpbulkwalk as reference in the same run.

Every simulated device is the same ~110-OID switch: the ifTable/ifXTable columns the IF-MIB profile reads,
for `--interfaces` ports. Devices are spread over `--sims` simulator processes on their own UDP ports, so
the simulator is not what is measured:
  * `--sim snmpd` (default): Debian's snmpd, the device built from `override` lines (C, thousands of OIDs/s
    per process; counters are static, which costs the agent the same as moving ones).
  * `--sim snmpsim`: snmpsim processes serving a .snmprec with growing counters (Python: one process tops
    out near the agent's own rate, hence several).
The agent (real SnmpCollector + Scheduler at the goal's interval) runs in a child process of its own, and
reports OIDs/s, devices/s, p99 poll lateness, timeouts, RSS and CPU seconds per 1k OIDs; snmpbulkwalk walks
the same device tables as the physical reference. Goal: 1,000 devices x 100 OIDs every 60 s (~1.7k OIDs/s)
with p99 lateness < 5 s and RSS < 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from pydantic import SecretStr

from agent.collect.scheduler import Scheduler
from agent.collect.snmp.collector import SnmpCollector
from agent.collect.snmp.config import SnmpConfig
from agent.collect.snmp.profiles import profiles_for
from shared.model import CollectResult

REPO = Path(__file__).resolve().parents[1]

_spec = importlib.util.spec_from_file_location("demo_devices", REPO / "packaging" / "demo_devices.py")
assert _spec and _spec.loader
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)

IF_TABLE, IFX_TABLE = "1.3.6.1.2.1.2.2.1", "1.3.6.1.2.1.31.1.1.1"
# The columns the if-mib profile walks: (table, column) -> (snmpd override type, snmprec tag, value or None
# for a counter).
COLUMNS: dict[tuple[str, int], tuple[str, int, str | None]] = {
    (IF_TABLE, 2): ("octet_str", 4, "Ethernet{i}"),
    (IF_TABLE, 7): ("integer", 2, "1"),
    (IF_TABLE, 8): ("integer", 2, "1"),
    **{(IF_TABLE, c): ("counter", 65, None) for c in (10, 11, 13, 14, 16, 17, 19, 20)},
    (IFX_TABLE, 1): ("octet_str", 4, "eth{i}"),
    **{(IFX_TABLE, c): ("counter", 70, None) for c in (6, 7, 10, 11)},
    (IFX_TABLE, 15): ("uinteger", 66, "1000"),
    (IFX_TABLE, 18): ("octet_str", 4, "port {i}"),
}
SCALARS = 2  # sysUpTime and sysObjectID, read by every poll's first GET


def oids_per_device(interfaces: int) -> int:
    """What one poll reads: every profile column for every port, plus the scalars."""
    return len(COLUMNS) * interfaces + SCALARS


def snmpd_conf(port: int, interfaces: int) -> str:
    """snmpd's own ifTable/ifXTable are switched off (-I) and the device is written with `override`.
    override knows no Counter64, so the HC columns are Counter32 here: same OIDs, same work per OID."""
    lines = [
        f"agentaddress udp:127.0.0.1:{port}",
        "rocommunity bench 127.0.0.1",
        "dontLogTCPWrappersConnects yes",
    ]
    for (table, col), (kind, _, value) in COLUMNS.items():
        for i in range(1, interfaces + 1):
            v = str(1000 * i * col) if value is None else value.format(i=i)
            lines.append(f".{table}.{col}.{i} {kind} {json.dumps(v) if kind == 'octet_str' else v}")
    return "\n".join(f"override {line}" if line.startswith(".") else line for line in lines) + "\n"


def snmprec(interfaces: int) -> str:
    """The same device for snmpsim, with counters growing at 100 x port index per second."""
    lines = ["1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.99999.9", "1.3.6.1.2.1.1.3.0|67:numeric|rate=100,initial=1000"]
    for (table, col), (_, tag, value) in sorted(
        COLUMNS.items(), key=lambda kv: (kv[0][0] == IFX_TABLE, kv[0][1])
    ):
        for i in range(1, interfaces + 1):
            if value is None:
                lines.append(f"{table}.{col}.{i}|{tag}:numeric|rate={100 * i},initial=0")
            else:
                lines.append(f"{table}.{col}.{i}|{tag}|{value.format(i=i)}")
    return "\n".join(lines) + "\n"


def wait_answering(port: int) -> None:
    """One GET retried every second: a just-started simulator drops the first requests."""
    subprocess.run(
        ["snmpget", "-v2c", "-c", "bench", "-t", "1", "-r", "60", f"127.0.0.1:{port}", "1.3.6.1.2.1.1.3.0"],
        capture_output=True,
        timeout=90,
        check=True,
    )


def start_simulators(
    kind: str, count: int, interfaces: int, work: Path
) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    """`count` simulator processes of `kind`, each on its own UDP port, each answering: (processes, ports)."""
    procs, ports = [], []
    for n in range(count):
        port = demo._free_port(socket.SOCK_DGRAM)
        d = work / f"sim{n}"
        d.mkdir(parents=True)
        if kind == "snmpd":
            (d / "snmpd.conf").write_text(snmpd_conf(port, interfaces))
            proc = subprocess.Popen(
                [
                    "/usr/sbin/snmpd",
                    "-f",
                    "-Lf",
                    "/dev/null",
                    "-C",
                    "-c",
                    str(d / "snmpd.conf"),
                    "-M",
                    "/dev/null",
                    "-m",
                    "",
                    "-I",
                    "-ifTable,ifXTable,smux",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "SNMP_PERSISTENT_DIR": str(d)},
            )
        else:
            (d / "data").mkdir()
            (d / "data" / "bench.snmprec").write_text(snmprec(interfaces))
            proc = demo.start_snmpsim(d / "data", d / "snmpsim", port)
        procs.append(proc)
        ports.append(port)
        wait_answering(port)
    return procs, ports


def baseline(port: int, rounds: int) -> tuple[float, int]:
    """snmpbulkwalk of both tables (one process per table, as a cron job would), `rounds` times."""
    oids, started = 0, time.perf_counter()
    for _ in range(rounds):
        for root in (IF_TABLE.rsplit(".", 1)[0], IFX_TABLE.rsplit(".", 1)[0]):
            out = subprocess.run(
                ["snmpbulkwalk", "-v2c", "-c", "bench", "-Cr50", "-On", f"127.0.0.1:{port}", root],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            oids += sum(1 for line in out.splitlines() if line.startswith("."))
    return time.perf_counter() - started, oids + rounds * SCALARS


async def agent_run(ports: list[int], devices: int, interval: float, duration: float) -> dict[str, float]:
    polls = errors = 0

    def sink(result: CollectResult) -> None:
        nonlocal polls, errors
        polls += 1
        errors += bool(result.errors)

    profiles = profiles_for(None)
    collectors = [
        SnmpCollector(
            SnmpConfig(
                name=f"sw{i:04d}",
                address="127.0.0.1",
                port=ports[i % len(ports)],
                community=SecretStr("bench"),
                interval_s=interval,
                timeout_s=5,
                retries=1,
                profile="if-mib",
            ),
            profiles=profiles,
        )
        for i in range(devices)
    ]
    sched = Scheduler(collectors, sink, max_concurrency=64)
    cpu0, started = time.process_time(), time.perf_counter()
    await sched.start()
    await asyncio.sleep(duration)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    p99 = sched.lateness_quantile(0.99)
    timeouts = sum(s.timeouts for s in sched.stats.values())
    rss = psutil.Process().memory_info().rss / 2**20
    await sched.aclose()
    return {
        "polls": polls,
        "errors": errors,
        "elapsed": elapsed,
        "cpu": cpu,
        "p99": p99,
        "timeouts": timeouts,
        "rss_mb": rss,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=60.0)
    ap.add_argument("--duration", type=float, default=75.0, help="seconds the agent polls (> interval)")
    ap.add_argument("--interfaces", type=int, default=6, help="ports per device (18 OIDs each)")
    ap.add_argument("--sim", choices=("snmpd", "snmpsim"), default="snmpd")
    ap.add_argument("--sims", type=int, default=2, help="simulator processes (devices spread over them)")
    ap.add_argument("--agent-child", metavar="PORTS", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.agent_child:  # the agent side, in its own process
        ports = [int(p) for p in args.agent_child.split(",")]
        print(json.dumps(asyncio.run(agent_run(ports, args.devices, args.interval, args.duration))))
        return

    work = Path(tempfile.mkdtemp(prefix="outpost-snmp-bench-"))
    sims: list[subprocess.Popen[bytes]] = []
    try:
        sims, ports = start_simulators(args.sim, args.sims, args.interfaces, work)
        per_device = oids_per_device(args.interfaces)
        rounds = 50
        secs, oids = baseline(ports[0], rounds)
        print(
            f"snmpbulkwalk reference ({args.sim}): {oids / secs:,.0f} OIDs/s, {rounds / secs:,.1f} devices/s "
            f"({oids / rounds:.0f} OIDs each, sequential, one process per table walk)"
        )
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--agent-child",
                ",".join(map(str, ports)),
                "--devices",
                str(args.devices),
                "--interval",
                str(args.interval),
                "--duration",
                str(args.duration),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(child.stdout.strip().splitlines()[-1])
        sim_cpu = sum(
            psutil.Process(p.pid).cpu_times().user + psutil.Process(p.pid).cpu_times().system for p in sims
        )
        rate = r["polls"] / r["elapsed"]
        print(
            f"agent ({args.devices} devices x {per_device} OIDs every {args.interval:.0f}s, "
            f"{args.sims} {args.sim}, "
            f"{r['elapsed']:.0f}s): {rate * per_device:,.0f} OIDs/s, {rate:,.1f} devices/s, "
            f"p99 lateness {r['p99']:.2f}s, timeouts {r['timeouts']:.0f}, "
            f"polls with errors {r['errors']:.0f}, "
            f"RSS {r['rss_mb']:.0f} MB (peak {r['max_rss_mb']:.0f})"
        )
        print(
            f"agent CPU: {r['cpu']:.1f}s for {r['polls'] * per_device:,.0f} OIDs = "
            f"{1e6 * r['cpu'] / max(1, r['polls'] * per_device):.0f} us per OID "
            f"(one core would poll ~{r['polls'] * per_device / max(r['cpu'], 1e-9):,.0f} OIDs/s); "
            f"simulators used {sim_cpu:.1f} CPU-s in all"
        )
        met = (
            r["p99"] < 5
            and r["rss_mb"] < 150
            and r["timeouts"] == r["errors"] == 0
            and args.devices >= 1000
            and args.interval <= 60
        )
        print(
            f"goal: 1,000 devices x 100 OIDs / 60 s = {1000 / 60:.1f} devices/s, "
            f"~{1000 * 100 / 60:,.0f} OIDs/s, "
            f"p99 lateness < 5 s, RSS < 150 MB, no timeouts: {'met' if met else 'NOT met'}"
        )
    finally:
        for p in sims:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
