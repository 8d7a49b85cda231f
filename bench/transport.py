"""Transport bench: end-to-end points/s agent → hub store over gRPC and over NATS JetStream, in one run.

Real processes: an `outpost-hub` (embedded store) and a nats-server, mTLS everywhere, zstd on. The
"agent" is this process running the agent's delivery path for real: encode → disk spool → Deliverer →
transport; a run ends when the hub's API reports every point stored (so NATS includes the hub consumer).
Data: bench/codec.py's realistic shapes, 1000 series × 10 points per batch.

Also measured: bytes per point on the wire (TLS bytes counted by a relay, agent → hub/NATS), and the
spool's overhead per point (put + get + ack) against the in-memory outbox as the baseline, same run.
Goals (issue 5): ≥ 200k points/s end-to-end, ≤ 8 bytes/point on the wire, spool ≤ 1 µs/point.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.outbox.deliver import Deliverer  # noqa: E402
from agent.outbox.outbox import MemoryOutbox, OutboxItem  # noqa: E402
from agent.outbox.spool import Spool  # noqa: E402
from agent.transport.base import Transport  # noqa: E402
from agent.transport.grpc import GrpcTransport  # noqa: E402
from agent.transport.nats import NatsTransport  # noqa: E402
from bench.codec import make_batch  # noqa: E402
from hub.identity import pki  # noqa: E402
from shared import codec  # noqa: E402
from shared.clock import SystemClock  # noqa: E402
from shared.model import Batch  # noqa: E402
from tests.chaos.proxy import LinkProxy  # noqa: E402
from tests.support.outpost import HubHandle, start_hub  # noqa: E402
from tests.transport.natsd import NatsServer, start_nats  # noqa: E402


def batches(count: int, series: int, points: int, epoch: int) -> list[Batch]:
    """`count` batches whose timestamps follow each other (distinct points, as a stream would send)."""
    base = make_batch(series, points)
    span = points * 10_000
    out = []
    for k in range(count):
        shifted = tuple(replace(s, timestamps_ms=s.timestamps_ms + k * span) for s in base.series)
        out.append(Batch(epoch, k + 1, shifted))
    return out


def stored_points(hub: HubHandle, agent: str) -> int:
    for a in hub.get("/api/v1/agents")["agents"]:
        if a["id"] == agent:
            return int(a["points_received"])
    return 0


async def deliver(
    transport: Transport, spool_dir: Path, work: list[Batch], hub: HubHandle, agent: str
) -> float:
    """Seconds from the first encode to the hub reporting every point stored."""
    clock = SystemClock()
    spool = Spool(spool_dir)
    spool.open()
    await transport.start()
    deliverer = Deliverer(spool, transport, clock, workers=4)
    total = sum(b.point_count for b in work)
    before = stored_points(hub, agent)
    t0 = time.perf_counter()
    deliverer.start()
    for b in work:
        spool.put(OutboxItem.of(b, codec.encode(b)))
        await asyncio.sleep(0)
    sent_at = None
    while await asyncio.to_thread(stored_points, hub, agent) - before < total:
        if sent_at is None and spool.pending() == 0:
            sent_at = time.perf_counter() - t0
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - t0
    print(f"  (agent side acknowledged after {sent_at or elapsed:.2f} s, stored after {elapsed:.2f} s)")
    await deliverer.aclose()
    await transport.aclose()
    spool.close()
    return elapsed


async def spool_overhead(work: list[Batch], tmp: Path) -> tuple[float, float]:
    """µs per point for put + get + ack of pre-encoded envelopes: disk spool vs the in-memory outbox."""
    items = [OutboxItem.of(b, codec.encode(b)) for b in work]
    points = sum(i.points for i in items)
    spool = Spool(tmp / "spool-bench")
    spool.open()
    results = []
    for box in (MemoryOutbox(max_items=len(items) + 1), spool):
        t = time.perf_counter()
        for it in items:
            box.put(it)
        for _ in items:
            box.ack(await box.get())
        if isinstance(box, Spool):
            box.sync(force=True)  # the group commit is part of the cost
        results.append((time.perf_counter() - t) / points * 1e6)
    spool.close()
    return results[0], results[1]


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="outpost-bench-") as d:
        tmp = Path(d)
        ca = pki.CaPaths(tmp / "hub" / "pki")
        pki.init_ca(ca)
        nats: NatsServer = start_nats(tmp, ca, ["bench/grpc", "bench/nats"])
        extra = {"nats": {"enabled": True, "servers": [nats.url], "server_name": "localhost"}}
        hub = start_hub(tmp, extra=extra)
        try:
            certs = tmp / "certs"
            for name in ("grpc", "nats"):
                pki.write_pair(
                    pki.issue(ca, name, agent_uri=f"bench/{name}"),
                    certs / f"{name}.pem",
                    certs / f"{name}.key",
                )

            def grpc_t(address: str) -> GrpcTransport:
                return GrpcTransport(
                    address,
                    ca_pem=ca.cert.read_bytes(),
                    cert_pem=(certs / "grpc.pem").read_bytes(),
                    key_pem=(certs / "grpc.key").read_bytes(),
                    server_name="localhost",
                )

            def nats_t(url: str) -> NatsTransport:
                return NatsTransport(
                    (url,),
                    "outpost.ingest",
                    ca_file=ca.cert,
                    cert_file=certs / "nats.pem",
                    key_file=certs / "nats.key",
                    server_name="localhost",
                )

            work = batches(args.batches, args.series, args.points, epoch=1)
            points = sum(b.point_count for b in work)
            envelope_bytes = sum(len(codec.encode(b)) for b in work[:20]) / sum(
                b.point_count for b in work[:20]
            )
            print(f"workload: {len(work)} batches × {args.series} series × {args.points} points = {points}")
            print(f"envelope (protobuf + zstd): {envelope_bytes:.2f} bytes/point")
            rates = {}
            for name, transport in (("grpc", grpc_t(hub.grpc_address)), ("nats", nats_t(nats.url))):
                elapsed = await deliver(transport, tmp / f"spool-{name}", work, hub, f"bench/{name}")
                rates[name] = points / elapsed
                print(f"{name:5s} end-to-end: {rates[name]:>10,.0f} points/s ({elapsed:.2f} s, mTLS, zstd)")
            wire = batches(args.wire_batches, args.series, args.points, epoch=2)
            wire_points = sum(b.point_count for b in wire)
            per_point = {}
            for name, port in (("grpc", hub.grpc_port), ("nats", nats.port)):
                proxy = LinkProxy(port)
                url = f"127.0.0.1:{proxy.port}"
                transport = grpc_t(url) if name == "grpc" else nats_t(f"tls://{url}")
                await deliver(transport, tmp / f"wire-{name}", wire, hub, f"bench/{name}")
                proxy.close()
                per_point[name] = proxy.bytes_up / wire_points
                print(
                    f"{name:5s} on the wire: {proxy.bytes_up / wire_points:.2f} bytes/point (TLS, agent→peer)"
                )
            mem_us, spool_us = await spool_overhead(work[: args.spool_batches], tmp)
            print(f"spool put+get+ack: {spool_us:.3f} µs/point (in-memory outbox: {mem_us:.3f} µs/point)")
            print(
                f"goals: e2e ≥ 200k/s: grpc {'met' if rates['grpc'] >= 2e5 else 'MISSED'}, "
                f"nats {'met' if rates['nats'] >= 2e5 else 'MISSED'}; spool ≤ 1 µs/point: "
                f"{'met' if spool_us <= 1 else 'MISSED'}; wire ≤ 8 bytes/point: "
                f"{'met' if max(per_point.values()) <= 8 else 'MISSED'}"
            )
        finally:
            hub.stop()
            nats.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--series", type=int, default=1000)
    p.add_argument("--points", type=int, default=10)
    p.add_argument("--wire-batches", type=int, default=20)
    p.add_argument("--spool-batches", type=int, default=100)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
