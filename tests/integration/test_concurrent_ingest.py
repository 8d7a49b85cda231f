"""Many agents pushing at once lose nothing: a real hub decoding in many threads stores every point once.

The hub decodes envelopes in worker threads (`hub/ingest/service.py`), up to `grpc.max_inflight` at a
time; a codec context shared between those threads once corrupted valid batches, which were refused for
good and dropped by their agents. These tests put many real client identities (one certificate each)
against a real hub process through the agent's real transports, with dozens of pushes in flight, and
check the hub's own account (/metrics, /api/v1/agents) and the store (a count query per batch span).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import numpy as np
import pytest
from nats.aio.client import Client

from agent.transport.base import Transport
from agent.transport.grpc import GrpcTransport
from agent.transport.nats import NatsTransport
from hub.identity import pki
from hub.identity.nats_auth import HUB_NATS_CN
from shared import codec
from shared.errors import TransientError
from shared.model import Batch, SeriesKey, SeriesPoints
from tests.support.outpost import HubHandle, start_hub, wait_for
from tests.support.procs import free_port
from tests.transport.natsd import start_nats

pytestmark = pytest.mark.integration

METRIC = "conc.load"
AGENTS = 8  # separate certificates, so separate identities and separate TLS connections
BATCHES = 80  # per agent
SERIES = 100  # per batch
POINTS = 25  # per series per batch; one batch = SERIES * POINTS points
IN_FLIGHT = 8  # pushes in flight per agent at once (AGENTS * IN_FLIGHT = 64 in the hub at once)
STEP_MS = 1000
SPAN_MS = POINTS * STEP_MS  # the time span one batch covers per series
# A fixed, recent start: inside every retention window, and the same for every agent and run.
START_MS = (int(time.time()) // 3600 - 1) * 3600 * 1000


def _batch(agent: int, seq: int) -> Batch:
    """Batch `seq` (1-based) of agent `agent`: SERIES series, POINTS points each, following batch seq-1."""
    t0 = START_MS + (seq - 1) * SPAN_MS
    ts = t0 + np.arange(POINTS, dtype=np.int64) * STEP_MS
    rng = np.random.default_rng(agent * 100_000 + seq)  # incompressible enough that zstd does real work
    series = tuple(
        SeriesPoints(SeriesKey.of(METRIC, {"s": str(j)}), ts, np.round(rng.normal(50, 10, POINTS), 3))
        for j in range(SERIES)
    )
    return Batch(1, seq, series)


@dataclass
class Tally:
    """What the senders saw, per agent: acknowledged points, refusals, retries (backpressure)."""

    acked: Counter[str] = field(default_factory=Counter)
    acked_batches: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    retries: int = 0


async def _push_all(transports: dict[str, Transport], envelopes: dict[str, list[bytes]]) -> Tally:
    """Every agent sends all its envelopes, IN_FLIGHT at a time; a transient answer is retried, as the
    deliverer does, while a refusal is recorded (the deliverer would drop that batch)."""
    tally = Tally()

    async def worker(agent: str, queue: asyncio.Queue[bytes]) -> None:
        t = transports[agent]
        while not queue.empty():
            env = queue.get_nowait()
            for _attempt in range(50):
                try:
                    result = await t.send(env)
                except TransientError as exc:
                    tally.retries += 1
                    await asyncio.sleep(max(exc.retry_after_s, 0.05))
                    continue
                except Exception as exc:  # DeliveryRejected: the batch would be lost
                    tally.refused.append(f"{agent} {codec.peek(env).batch_id}: {exc}")
                    break
                tally.acked[agent] += result.accepted_points
                tally.acked_batches[agent] += 1
                tally.duplicates[agent] += int(result.duplicate)
                break
            else:
                tally.refused.append(f"{agent} {codec.peek(env).batch_id}: still retried after 50 tries")

    tasks = []
    for agent, envs in envelopes.items():
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for e in envs:
            queue.put_nowait(e)
        tasks += [asyncio.create_task(worker(agent, queue)) for _ in range(IN_FLIGHT)]
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    return tally


def _metrics(hub: HubHandle) -> dict[str, float]:
    """The hub's /metrics samples by name-with-labels (comments dropped)."""
    text = httpx.get(hub.api_url + "/metrics", timeout=10).text
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _sum(samples: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(prefix))


def _stored_per_batch(hub: HubHandle, agent: str) -> list[float]:
    """Points stored in each batch's time span, summed over the agent's series: one bucket per batch."""
    r = hub.get(
        "/api/v1/query",
        metric=METRIC,
        match=f"agent={agent}",
        start=str(START_MS),
        end=str(START_MS + BATCHES * SPAN_MS - 1),
        step=str(SPAN_MS),
        agg="count",
        max_points=1_000_000,
    )
    assert len(r["series"]) == SERIES, f"{agent}: {len(r['series'])} series stored, {SERIES} sent"
    per_bucket: Counter[int] = Counter()
    for s in r["series"]:
        for t, v in s["points"]:
            per_bucket[int(t)] += int(v)
    return [float(per_bucket[START_MS + k * SPAN_MS]) for k in range(BATCHES)]


def _issue(hub_ca: pki.CaPaths, out: Path, names: list[str]) -> dict[str, tuple[Path, Path]]:
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in names:
        site, agent = name.split("/")
        pki.write_pair(pki.issue(hub_ca, agent, agent_uri=name), out / f"{agent}.pem", out / f"{agent}.key")
        files[name] = (out / f"{agent}.pem", out / f"{agent}.key")
    return files


def _envelopes(names: list[str]) -> dict[str, list[bytes]]:
    return {name: [codec.encode(_batch(i, k)) for k in range(1, BATCHES + 1)] for i, name in enumerate(names)}


def _settled(hub: HubHandle, sent: int) -> dict[str, float] | None:
    """The hub's metrics once it stored or refused `sent` points, else None."""
    m = _metrics(hub)
    done = _sum(m, "outpost_hub_ingest_points_total") + _sum(m, "outpost_hub_ingest_rejected_points_total")
    return m if done >= sent else None


def _assert_lossless(hub: HubHandle, names: list[str], tally: Tally, transport: str) -> None:
    per_batch = SERIES * POINTS
    sent = AGENTS * BATCHES * per_batch
    assert tally.refused == [], f"{len(tally.refused)} valid batches refused: {tally.refused[:5]}"
    assert dict(tally.acked_batches) == {n: BATCHES for n in names}
    assert sum(tally.duplicates.values()) == 0
    # NATS acknowledges on the stream, before the hub ingests: wait until the hub has dealt with every point.
    m = wait_for(lambda: _settled(hub, sent), timeout=30, what=f"{sent} points stored or refused by the hub")
    assert _sum(m, "outpost_hub_ingest_rejected_total") == 0.0, {
        k: v for k, v in m.items() if "rejected" in k
    }
    assert _sum(m, "outpost_hub_ingest_rejected_points_total") == 0.0
    assert (
        m[f'outpost_hub_ingest_batches_total{{result="stored",transport="{transport}"}}'] == AGENTS * BATCHES
    )
    assert m[f'outpost_hub_ingest_points_total{{transport="{transport}"}}'] == sent
    assert (
        m.get(f'outpost_hub_ingest_batches_total{{result="duplicate",transport="{transport}"}}', 0.0) == 0.0
    )
    agents = {a["id"]: a for a in hub.get("/api/v1/agents")["agents"]}
    assert {n: (a["points_received"], a["batches_received"], a["duplicates"]) for n, a in agents.items()} == {
        n: (BATCHES * per_batch, BATCHES, 0) for n in names
    }
    for name in names:
        assert _stored_per_batch(hub, name) == [float(per_batch)] * BATCHES, name


def _hub(tmp_path: Path, extra: dict[str, Any] | None = None) -> HubHandle:
    """A hub admitting more pushes at once than the senders make, so every push reaches the decoder."""
    api_port, grpc_port = free_port(), free_port()
    grpc = {"listen": f"127.0.0.1:{grpc_port}", "max_inflight": 2 * AGENTS * IN_FLIGHT}
    return start_hub(tmp_path, extra={"grpc": grpc, **(extra or {})}, ports=(api_port, grpc_port))


async def test_many_agents_pushing_at_once_over_grpc_have_every_point_stored_once(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    names = [f"dc{i % 2}/edge{i}" for i in range(AGENTS)]
    try:
        certs = _issue(hub.ca, tmp_path / "certs", names)
        ca_pem = hub.ca.cert.read_bytes()
        transports: dict[str, Transport] = {
            n: GrpcTransport(
                hub.grpc_address,
                ca_pem=ca_pem,
                cert_pem=cert.read_bytes(),
                key_pem=key.read_bytes(),
                server_name="localhost",
            )
            for n, (cert, key) in certs.items()
        }
        envelopes = _envelopes(names)
        for t in transports.values():
            await t.start()
        try:
            tally = await _push_all(transports, envelopes)
        finally:
            for t in transports.values():
                await t.aclose()
        _assert_lossless(hub, names, tally, "grpc")
        assert hub.service.proc.poll() is None
    finally:
        hub.stop()


async def test_many_agents_publishing_at_once_over_nats_have_every_point_stored_once(tmp_path: Path) -> None:
    names = [f"dc{i % 2}/edge{i}" for i in range(AGENTS)]
    ca = pki.CaPaths(tmp_path / "hub" / "pki")  # the hub adopts this CA; nats-server trusts it too
    pki.init_ca(ca)
    natsd = start_nats(tmp_path, ca, names)
    try:
        # A fetch of 32 messages is ingested at once: 32 decodes in flight in the hub's threads.
        nats_cfg = {"enabled": True, "servers": [natsd.url], "server_name": "localhost", "fetch_batch": 32}
        hub = _hub(tmp_path, {"nats": nats_cfg})
        try:
            certs = _issue(ca, tmp_path / "certs", names)
            transports: dict[str, Transport] = {
                n: NatsTransport(
                    (natsd.url,),
                    "outpost.ingest",
                    ca_file=ca.cert,
                    cert_file=cert,
                    key_file=key,
                    server_name="localhost",
                )
                for n, (cert, key) in certs.items()
            }
            envelopes = _envelopes(names)
            try:
                tally = await _push_all(transports, envelopes)
            finally:
                for t in transports.values():
                    await t.aclose()
            _assert_lossless(hub, names, tally, "nats")
            assert hub.service.proc.poll() is None
        finally:
            hub.stop()
    finally:
        natsd.stop()


async def test_two_agents_sending_the_same_batch_id_over_nats_are_both_stored_not_deduplicated(
    tmp_path: Path,
) -> None:
    """JetStream dedups per stream: agents started in the same millisecond share (boot_epoch, seq) ids."""
    names = ["dc1/twin1", "dc1/twin2"]
    ca = pki.CaPaths(tmp_path / "ca")
    pki.init_ca(ca)
    natsd = start_nats(tmp_path, ca, names)
    try:
        certs = _issue(ca, tmp_path / "certs", names)
        transports = [
            NatsTransport(
                (natsd.url,),
                "outpost.ingest",
                ca_file=ca.cert,
                cert_file=c,
                key_file=k,
                server_name="localhost",
            )
            for c, k in certs.values()
        ]
        nc = await _hub_client(ca, tmp_path / "certs", natsd.url)
        try:
            await nc.jetstream().add_stream(name="OUTPOST_INGEST", subjects=["outpost.ingest.>"])
            same = codec.encode(_batch(0, 1))
            results = [await t.send(same) for t in transports]
            again = await transports[0].send(same)  # a true re-send is still deduplicated
            info = await nc.jetstream().stream_info("OUTPOST_INGEST")
        finally:
            await nc.close()
            for t in transports:
                await t.aclose()
        assert [(r.accepted_points, r.duplicate) for r in results] == [(SERIES * POINTS, False)] * 2
        assert again.duplicate is True
        assert info.state.messages == 2
    finally:
        natsd.stop()


async def _hub_client(ca: pki.CaPaths, out: Path, url: str) -> Client:
    """A NATS connection as the hub's user (the one allowed to manage streams)."""
    pki.write_pair(pki.issue(ca, HUB_NATS_CN), out / "hub-nats.pem", out / "hub-nats.key")
    ctx = ssl.create_default_context(cafile=str(ca.cert))
    ctx.load_cert_chain(str(out / "hub-nats.pem"), str(out / "hub-nats.key"))
    return await nats.connect(servers=[url], tls=ctx, tls_hostname="localhost", allow_reconnect=False)
