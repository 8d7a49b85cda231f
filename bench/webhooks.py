"""Pushed-data bench: line-protocol points/s into the hub's embedded store beside a real InfluxDB 1.6.

The same Telegraf-shaped payloads (`cpu`/`mem`/`net` of `--hosts` hosts, 4-6 fields a line, `--lines`
lines a request, nanosecond timestamps) are written by `--clients` concurrent keep-alive clients to:
- a real `outpost-hub run` (embedded store, rate limits opened up): `POST /api/v2/write`, Token auth;
- the real InfluxDB 1.6 of this machine (Debian `influxd`): `POST /write?db=`, its own line-protocol
  ingest into TSM.
Each side gets one warm-up request, then every payload once; points/s = fields written / wall time.
`--rounds` rounds (fresh timestamps each) alternate InfluxDB and the hub, so load from elsewhere on
the machine hits both alike; the median of the rounds' ratios is the number to read. Beside the rate,
each server's points per CPU-second it used (from /proc): on a machine others load, that ratio moves
less than the wall-clock one.
Goal (issue 14): the hub >= 50 % of InfluxDB's rate. Then the same points as Prometheus remote write
(one series per field, snappy protobuf) to the hub's `/api/v1/write`: samples/s beside the
line-protocol rate.

Stages, in this process on the same payloads, show what bounds the hub: the line-protocol parser (bulk
path, and every line through the C parser as before it), and the embedded store's own `write`.

Exits non-zero when a write fails or a server does not start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.ingest.webhooks import lineprotocol, remote_write  # noqa: E402
from hub.store.config import EmbeddedStoreConfig  # noqa: E402
from hub.store.embedded.store import EmbeddedStore  # noqa: E402
from tests.support.influxd import start_influxd  # noqa: E402
from tests.support.outpost import start_hub  # noqa: E402

OPEN = {"rate": 1_000_000, "burst": 1_000_000}
LIMITS = {k: OPEN for k in ("api_per_ip", "read_per_principal", "write_per_principal")}
GOAL_RATIO = 0.5


def payloads(requests: int, lines: int, hosts: int, start_s: int) -> tuple[list[bytes], int]:
    """`requests` bodies of `lines` lines each from `start_s` on, and the number of fields (points)."""
    start_ns = start_s * 1_000_000_000
    out, fields, n = [], 0, 0
    for _ in range(requests):
        rows = []
        for _ in range(lines):
            host, step = n % hosts, n // hosts
            ts = start_ns + step * 10_000_000_000
            kind = n % 3
            if kind == 0:
                rows.append(
                    f"cpu,cpu=cpu-total,host=h{host} usage_user={n % 97 / 3:.3f},usage_system=1.5,"
                    f"usage_idle=90.25,usage_iowait=0.125 {ts}"
                )
                fields += 4
            elif kind == 1:
                rows.append(
                    f"mem,host=h{host} used={n * 4096}i,free=1024i,cached=2048i,buffered=512i,"
                    f"used_percent={n % 100}.5 {ts}"
                )
                fields += 5
            else:
                rows.append(
                    f"net,host=h{host},interface=eth0 bytes_recv={n}i,bytes_sent={2 * n}i,packets_recv=7i,"
                    f"packets_sent=9i,err_in=0i,err_out=0i {ts}"
                )
                fields += 6
            n += 1
        out.append("\n".join(rows).encode())
    return out, fields


def remote_write_bodies(bodies: list[bytes]) -> list[bytes]:
    """The same points as remote-write requests: each series with its labels and `__name__`."""
    out = []
    for body in bodies:
        parsed = lineprotocol.parse(body.decode(), 1, 0)
        pairs = [
            (
                {"__name__": s.key.metric, **dict(s.key.labels)},
                list(zip(s.timestamps_ms.tolist(), s.values.tolist(), strict=True)),
            )
            for s in parsed.series
        ]
        out.append(remote_write.encode(pairs))
    return out


def run(
    url: str, params: dict[str, str], headers: dict[str, str], bodies: list[bytes], clients: int
) -> float:
    """Writes every body once across `clients` keep-alive clients; returns the wall seconds."""
    pool = [httpx.Client(headers=headers, timeout=120) for _ in range(clients)]
    try:
        warm = pool[0].post(url, params=params, content=bodies[0])
        if warm.status_code != 204:
            raise SystemExit(f"warm-up write to {url} failed: {warm.status_code} {warm.text[:300]}")

        def write(i: int) -> None:
            r = pool[i % clients].post(url, params=params, content=bodies[i])
            if r.status_code != 204:
                raise RuntimeError(f"write {i} to {url}: {r.status_code} {r.text[:300]}")

        began = time.perf_counter()
        with ThreadPoolExecutor(clients) as ex:
            list(ex.map(write, range(len(bodies))))
        return time.perf_counter() - began
    finally:
        for c in pool:
            c.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process (all its threads) has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(
    pid: int, url: str, params: dict[str, str], headers: dict[str, str], bodies: list[bytes], clients: int
) -> tuple[float, float]:
    """`run`'s wall seconds, and the CPU seconds the server (process `pid`) spent meanwhile."""
    before = cpu_seconds(pid)
    wall = run(url, params, headers, bodies, clients)
    return wall, cpu_seconds(pid) - before


def stages(bodies: list[bytes], points: int, root: Path) -> dict[str, float]:
    """Points per CPU-second of the hub's stages alone, in this process: parse (bulk, per line) and
    store write (its fdatasync waits not counted)."""
    texts = [b.decode() for b in bodies]
    out: dict[str, float] = {}
    parsers: dict[str, Callable[[str, int, int], lineprotocol.ParsedLines]] = {
        "parse (bulk path)": lineprotocol.parse,
        "parse (C parser per line)": lineprotocol.parse_per_line,
    }
    for name, parse in parsers.items():
        began = time.process_time()
        parsed = [parse(t, 1, 0) for t in texts]
        out[name] = points / (time.process_time() - began)
    store = EmbeddedStore(root / "store-stage", EmbeddedStoreConfig())
    store.open()
    try:
        began = time.process_time()
        for seq, p in enumerate(parsed, 1):
            store.write_columns("push:bench", 1, seq, p.columns)
        out["store write (embedded)"] = points / (time.process_time() - began)
    finally:
        store.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--lines", type=int, default=5000)
    ap.add_argument("--hosts", type=int, default=500)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    # Each round's points are new to both servers: an hour apart, all within the last day.
    first_s = int(time.time()) - 86_400
    rounds = [
        payloads(args.requests, args.lines, args.hosts, first_s + 3600 * r) for r in range(args.rounds + 1)
    ]
    points = rounds[0][1]
    print(
        f"{args.requests} requests x {args.lines} lines ({points} points, "
        f"{sum(map(len, rounds[0][0])) / 1e6:.1f} MB), {args.clients} clients, {args.rounds} rounds; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (measured under that load)"
    )
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        root = Path(tmp)
        for name, rate in stages(rounds[-1][0], points, root).items():
            print(f"  stage: {name:<28} {rate:12,.0f} points per CPU-s")
        (root / "influxd").mkdir()
        influxd = start_influxd(root / "influxd")
        hub = start_hub(root / "hub", extra={"auth": {"rate_limits": LIMITS}})
        try:
            influx_url = f"http://127.0.0.1:{influxd.port}"
            httpx.post(f"{influx_url}/query", data={"q": 'CREATE DATABASE "bench"'}).raise_for_status()
            for r, (bodies, _) in enumerate(rounds[:-1], 1):
                influx_s, influx_cpu = timed(
                    influxd.pid, f"{influx_url}/write", {"db": "bench"}, {}, bodies, args.clients
                )
                hub_s, hub_cpu = timed(
                    hub.service.pid,
                    f"{hub.api_url}/api/v2/write",
                    {"org": "bench", "bucket": "bench"},
                    {"Authorization": f"Token {hub.token}"},
                    bodies,
                    args.clients,
                )
                ratios.append(influx_s / hub_s)
                cpu_ratios.append(influx_cpu / hub_cpu)
                print(
                    f"  round {r}: InfluxDB 1.6 /write {points / influx_s:9,.0f} points/s "
                    f"({influx_s:.2f} s, {points / influx_cpu:9,.0f} per CPU-s); hub /api/v2/write "
                    f"{points / hub_s:9,.0f} points/s ({hub_s:.2f} s, {points / hub_cpu:9,.0f} per CPU-s); "
                    f"ratio {ratios[-1]:.2f}, per CPU-s {cpu_ratios[-1]:.2f}"
                )
            rw_headers = {
                "Authorization": f"Bearer {hub.token}",
                "Content-Type": "application/x-protobuf",
                "Content-Encoding": "snappy",
            }
            rw_bodies = remote_write_bodies(rounds[-1][0])
            rw_s = run(f"{hub.api_url}/api/v1/write", {}, rw_headers, rw_bodies, args.clients)
        finally:
            hub.stop()
            influxd.stop()
    print(f"  hub /api/v1/write (remote write) {points / rw_s:12,.0f} samples/s  ({rw_s:.2f} s)")
    ratio = statistics.median(ratios)
    verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
    print(f"  hub / InfluxDB per CPU-second, median = {statistics.median(cpu_ratios):.2f}")
    print(
        f"  hub / InfluxDB, median of {len(ratios)} rounds = {ratio:.2f} "
        f"(goal >= {GOAL_RATIO:.2f}: {verdict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
