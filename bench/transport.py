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
import re
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
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
from shared.codec import PushResult  # noqa: E402
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


class BenchFailed(Exception):
    """A phase lost batches (refused by the hub) or missed its deadline: the numbers would be a lie."""


@dataclass
class Tally:
    """What one delivery phase saw, agent side (the deliverer's outcomes) and hub side (its /metrics)."""

    batches: int
    points: int
    acked: int = 0
    duplicates: int = 0
    retries: int = 0
    refused: int = 0
    stored: int = 0
    hub_refused: dict[str, int] = field(default_factory=dict)

    def on_result(self, _item: OutboxItem, _result: PushResult | None, outcome: str) -> None:
        if outcome == "sent":
            self.acked += 1
        elif outcome == "duplicate":
            self.duplicates += 1
        elif outcome == "retry":
            self.retries += 1
        elif outcome == "rejected":
            self.refused += 1

    def line(self) -> str:
        reasons = ", ".join(f"{r}={n}" for r, n in sorted(self.hub_refused.items())) or "none"
        return (
            f"sent {self.batches} batches / {self.points} points; acknowledged {self.acked} "
            f"(+{self.duplicates} duplicate, {self.retries} retries); refused {self.refused} "
            f"(hub, by reason: {reasons}); stored {self.stored} points"
        )


def stored_points(hub: HubHandle, agent: str) -> int:
    for a in hub.get("/api/v1/agents")["agents"]:
        if a["id"] == agent:
            return int(a["points_received"])
    return 0


def hub_refused(hub: HubHandle, transport: str) -> dict[str, int]:
    """The hub's rejected-envelope counters for `transport`, by reason (all reasons the hub exported)."""
    text = httpx.get(hub.api_url + "/metrics", timeout=10).text
    out: dict[str, int] = {}
    for m in re.finditer(r"^outpost_hub_ingest_rejected_total\{(.*)\} (\S+)$", text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("transport") == transport and float(m.group(2)):
            out[labels["reason"]] = int(float(m.group(2)))
    return out


async def deliver(
    transport: Transport,
    spool_dir: Path,
    work: list[Batch],
    hub: HubHandle,
    agent: str,
    kind: str,
    deadline_s: float,
) -> float:
    """Seconds from the first encode to the hub reporting every point stored.

    Raises:
        BenchFailed: a batch was refused (by the hub or, over NATS, by the hub's consumer after the stream
            took it), or every point was not stored within `deadline_s`; the message carries the counts.
    """
    clock = SystemClock()
    spool = Spool(spool_dir)
    spool.open()
    total = sum(b.point_count for b in work)
    tally = Tally(len(work), total)
    refused_before = hub_refused(hub, kind)
    before = stored_points(hub, agent)
    deliverer = Deliverer(spool, transport, clock, workers=4, on_result=tally.on_result)
    t0 = time.perf_counter()
    try:
        try:
            await asyncio.wait_for(transport.start(), deadline_s)
        except TimeoutError:
            raise BenchFailed(f"{kind}: transport did not start within {deadline_s:.0f} s") from None
        deliverer.start()
        for b in work:
            spool.put(OutboxItem.of(b, codec.encode(b)))
            await asyncio.sleep(0)
        sent_at = None
        while True:
            tally.stored = await asyncio.to_thread(stored_points, hub, agent) - before
            now = await asyncio.to_thread(hub_refused, hub, kind)
            tally.hub_refused = {r: n - refused_before.get(r, 0) for r, n in now.items()}
            tally.hub_refused = {r: n for r, n in tally.hub_refused.items() if n}
            if tally.stored >= total:
                break
            if tally.refused or tally.hub_refused:
                raise BenchFailed(f"{kind}: batches refused: {tally.line()}")
            if time.perf_counter() - t0 > deadline_s:
                raise BenchFailed(f"{kind}: not every point stored within {deadline_s:.0f} s: {tally.line()}")
            if sent_at is None and spool.pending() == 0 and deliverer.inflight == 0:
                sent_at = time.perf_counter() - t0
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
        if tally.stored != total or tally.refused or tally.hub_refused:
            raise BenchFailed(f"{kind}: stored {tally.stored} points, sent {total}: {tally.line()}")
        print(f"  (agent side acknowledged after {sent_at or elapsed:.2f} s, stored after {elapsed:.2f} s)")
        print(f"  {tally.line()}")
        return elapsed
    finally:
        await _closed(deliverer.aclose(), f"{kind} deliverer")
        await _closed(transport.aclose(), f"{kind} transport")
        spool.close()


async def _closed(closing: Coroutine[Any, Any, None], what: str) -> None:
    """Awaits a close for at most 10 s; a stuck close is reported, never allowed to hang the bench or to
    hide the error that ended the phase."""
    try:
        await asyncio.wait_for(closing, 10)
    except TimeoutError:
        print(f"warning: {what} did not close within 10 s", file=sys.stderr)


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
                elapsed = await deliver(
                    transport, tmp / f"spool-{name}", work, hub, f"bench/{name}", name, args.deadline_s
                )
                rates[name] = points / elapsed
                print(f"{name:5s} end-to-end: {rates[name]:>10,.0f} points/s ({elapsed:.2f} s, mTLS, zstd)")
            wire = batches(args.wire_batches, args.series, args.points, epoch=2)
            wire_points = sum(b.point_count for b in wire)
            per_point = {}
            for name, port in (("grpc", hub.grpc_port), ("nats", nats.port)):
                proxy = LinkProxy(port)
                url = f"127.0.0.1:{proxy.port}"
                transport = grpc_t(url) if name == "grpc" else nats_t(f"tls://{url}")
                try:
                    await deliver(
                        transport, tmp / f"wire-{name}", wire, hub, f"bench/{name}", name, args.deadline_s
                    )
                finally:
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
    p.add_argument("--deadline-s", type=float, default=120.0, help="per phase: fail beyond this")
    try:
        asyncio.run(run(p.parse_args()))
    except BenchFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
