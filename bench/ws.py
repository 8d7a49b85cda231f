"""WebSocket streams bench: onset-to-client latency and deliveries/s with 1,000 clients under ingest load.

Real processes: an `outpost-hub` (role all, embedded store, memory bus), `--procs` client processes
holding `--clients` WebSocket streams in all (subscribed to `alerts` and `anomalies`, no filters), and
this process as the agent: over gRPC with mTLS it ingests `--points` points/s (envelopes of 1000 series
× 10 points) and sends `--onsets` anomaly onsets/s (`anomaly.onset` events, one small batch each),
each stamped with the wall time it was sent. A client records, for each onset, its arrival time minus
that stamp: the path agent → hub ingest → bus → stream tick → socket → client.

Two phases in the same run:
  1. baseline: one client, onsets only, no ingest load;
  2. loaded: every client, with the ingest load.
Prints p50/p99 onset → client of both, deliveries/s (events handed to clients), the achieved ingest
rate, clients the hub cut, and the goal (issue 13: p99 ≤ 1 s). Then the hops of the loaded phase:
onset → hub ack (ingest: decode, durable write, bookkeeping, bus publish), the stream tick's wait and
its flush (the hub's `outpost_hub_ws_tick_wait_seconds` / `_flush_seconds`, bucket bounds), and per
onset its first and last client (their difference is the sending to 1,000 sockets and the clients'
own parsing, which share the machine's 2 cores with the hub). Exits non-zero when a run cannot
complete: clients that cannot connect, an onset that reaches no client, streams closed by the hub.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing as mp
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.codec import make_batch  # noqa: E402
from hub.identity import pki  # noqa: E402
from shared import codec  # noqa: E402
from shared.model import Batch, Event, Severity  # noqa: E402
from tests.support.outpost import HubHandle, start_hub  # noqa: E402

GOAL_P99_S = 1.0
ONSET_METRIC = "bench_onset"
ENVELOPE_POINTS = 10_000  # 1000 series x 10 points


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _envelopes(count: int, first_seq: int) -> list[bytes]:
    """Pre-encoded ingest load: `count` envelopes whose timestamps follow each other."""
    proto = make_batch(1000, 10)
    out = []
    for k in range(count):
        off = k * 100_000
        series = tuple(replace(s, timestamps_ms=s.timestamps_ms + off) for s in proto.series)
        out.append(codec.encode(Batch(1, first_seq + k, series)))
    return out


def _onset(seq: int, n: int) -> bytes:
    """One anomaly onset, stamped now (encoding a one-event batch takes microseconds)."""
    labels = json.dumps({"device": f"dev{n % 50}", "port": str(n % 7)})
    attrs = {"metric": ONSET_METRIC, "labels": labels, "score": "0.97", "value": str(n), "detector": "bench"}
    event = Event.of(_now_ms(), "anomaly.onset", Severity.WARNING, f"dev{n % 50}", "", attrs)
    return codec.encode(Batch(2, seq, (), (event,)))


class Agent:
    """This process as one agent: a gRPC channel with the agent's certificate."""

    def __init__(self, hub: HubHandle) -> None:
        pair = pki.issue(hub.ca, "bench", agent_uri="bench/ws")
        self._creds = grpc.ssl_channel_credentials(hub.ca.cert.read_bytes(), pair.key_pem, pair.cert_pem)
        self._address = hub.grpc_address
        self.seq = itertools.count(1)

    async def __aenter__(self) -> Agent:
        opts = [("grpc.ssl_target_name_override", "localhost")]
        self._ch = grpc.aio.secure_channel(self._address, self._creds, options=opts)
        self.push = self._ch.unary_unary(
            codec.PUSH_METHOD, request_serializer=bytes, response_deserializer=bytes
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ch.close()

    async def send(self, envelope: bytes) -> None:
        while True:
            result = codec.parse_push_response(await self.push(codec.push_request(envelope), timeout=60))
            if result.error_message:
                raise RuntimeError(f"hub refused a batch: {result.error_message}")
            if not result.retry_after_ms:
                return
            await asyncio.sleep(result.retry_after_ms / 1000)


async def onsets_for(agent: Agent, seconds: float, rate: float, acks: list[float]) -> int:
    """Sends `rate` onsets/s for `seconds`, each in its own batch; returns how many. `acks` gets each
    one's time to the hub's acknowledgement: the hub publishes on the bus before it acks, so this is
    the ingest part of the path (the rest is the stream's)."""
    start, n = time.monotonic(), 0
    while (due := start + n / rate) < start + seconds:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        t = time.monotonic()
        await agent.send(_onset(next(agent.seq), n))
        acks.append(time.monotonic() - t)
        n += 1
    return n


async def ingest_for(agent: Agent, seconds: float, points_per_s: float) -> int:
    """Keeps `points_per_s` flowing (4 pushers, each envelope acknowledged once durable) for `seconds`;
    returns the points the hub accepted."""
    per_s = points_per_s / ENVELOPE_POINTS
    count = int(per_s * seconds) + 1
    envelopes = _envelopes(count, 1_000_000)
    start = time.monotonic()
    sent = itertools.count()

    async def pusher() -> int:
        done = 0
        for i in sent:
            if i >= count or time.monotonic() > start + seconds:
                return done
            await asyncio.sleep(max(0.0, start + i / per_s - time.monotonic()))
            await agent.send(envelopes[i])
            done += ENVELOPE_POINTS
        return done

    return sum(await asyncio.gather(*(pusher() for _ in range(4))))


def _client_process(url: str, token: str, clients: int, ready: Any, stop: Any, out: Any) -> None:
    """Holds `clients` streams; reports onset latencies (s), events received, and closes by the hub."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    latencies: list[tuple[int, float]] = []  # (event id, seconds from the onset's stamp)
    events = 0
    closed: list[str] = []

    async def one(i: int, started: asyncio.Event) -> None:
        nonlocal events
        async with connect(url + "/ws", open_timeout=60, max_size=None) as ws:
            await ws.send(json.dumps({"type": "auth", "token": token}))
            await ws.send(json.dumps({"type": "subscribe", "topics": ["alerts", "anomalies"]}))
            answer = json.loads(await ws.recv())
            if answer.get("type") != "subscribed":
                raise RuntimeError(f"stream {i}: {answer}")
            started.set()
            try:
                while True:
                    frame = await ws.recv()
                    now = time.time_ns() / 1e9
                    for e in json.loads(frame).get("events", ()):
                        events += 1
                        d = e["data"]
                        if d.get("metric") == ONSET_METRIC and d.get("phase") == "onset":
                            latencies.append((e["id"], now - d["ts_ms"] / 1000))
            except ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code != 1000 and not stop.is_set():
                    closed.append(f"{exc.rcvd.code} {exc.rcvd.reason}")

    async def main() -> None:
        flags = [asyncio.Event() for _ in range(clients)]
        tasks = []
        for i, flag in enumerate(flags):
            tasks.append(asyncio.create_task(one(i, flag)))
            if i % 25 == 24:
                await asyncio.sleep(0.05)  # do not open them all in one instant
        await asyncio.wait_for(asyncio.gather(*(f.wait() for f in flags)), 120)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
            failed = [t for t in tasks if t.done() and t.exception() is not None]
            if failed:
                raise RuntimeError(f"a stream failed: {failed[0].exception()}")
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        asyncio.run(main())
        out.put((latencies, events, closed, ""))
    except Exception as exc:  # reported to the parent, which exits non-zero
        out.put((latencies, events, closed, f"{type(exc).__name__}: {exc}"))


class Clients:
    """`total` streams spread over `procs` processes (so parsing frames never slows the agent)."""

    def __init__(self, hub: HubHandle, total: int, procs: int) -> None:
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        self._out: Any = ctx.Queue()
        self._readies = []
        self._procs = []
        url = f"ws://127.0.0.1:{hub.api_port}"
        for k in range(procs):
            n = total // procs + (1 if k < total % procs else 0)
            ready = ctx.Event()
            p = ctx.Process(target=_client_process, args=(url, hub.token, n, ready, self._stop, self._out))
            p.start()
            self._readies.append(ready)
            self._procs.append(p)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for ready in self._readies:
            if not ready.wait(max(0.0, deadline - time.monotonic())):
                raise RuntimeError("client processes did not connect every stream in time")

    def finish(self) -> tuple[list[tuple[int, float]], int, list[str], list[str]]:
        self._stop.set()
        latencies: list[tuple[int, float]] = []
        events = 0
        closed: list[str] = []
        errors: list[str] = []
        for _ in self._procs:
            lat, ev, cl, err = self._out.get(timeout=120)
            latencies += lat
            events += ev
            closed += cl
            if err:
                errors.append(err)
        for p in self._procs:
            p.join(timeout=10)
        return latencies, events, closed, errors


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


WS_HISTOGRAMS = ("outpost_hub_ws_tick_wait_seconds", "outpost_hub_ws_flush_seconds")
FRAMES = "outpost_hub_ws_frames_total"


def _scrape(hub: HubHandle) -> dict[str, float]:
    """The hub's stream histograms' buckets (as `name le`) and the frames counter, from /metrics."""
    out = {}
    for line in httpx.get(f"{hub.api_url}/metrics", timeout=30).text.splitlines():
        series, _, value = line.rpartition(" ")
        name, _, labels = series.partition("_bucket{le=")
        if name in WS_HISTOGRAMS:
            out[name + " " + labels.strip('"}')] = float(value)
        elif series == FRAMES:
            out[series] = float(value)
    return out


def _bucket_pcts(before: dict[str, float], after: dict[str, float], name: str) -> tuple[float, float]:
    """Bucket bounds (s) holding the p50 and p99 of what `name` observed between the two scrapes."""
    rows = sorted(
        (float(k.split()[1]), after[k] - before.get(k, 0.0)) for k in after if k.startswith(f"{name} ")
    )
    total = rows[-1][1] if rows else 0.0
    if not total:
        return float("nan"), float("nan")
    p50, p99 = (next(le for le, n in rows if n >= q * total) for q in (0.5, 0.99))
    return p50, p99


async def phase(
    hub: HubHandle, agent: Agent, clients: int, procs: int, seconds: float, onsets: float, points: float
) -> dict[str, Any]:
    load = Clients(hub, clients, procs)
    before: dict[str, float] = {}
    try:
        load.wait_ready(180)
        await asyncio.sleep(1.0)
        before = await asyncio.to_thread(_scrape, hub)
        t = time.monotonic()
        acks: list[float] = []
        tasks = [onsets_for(agent, seconds, onsets, acks)]
        if points:
            tasks.append(ingest_for(agent, seconds, points))
        counts = await asyncio.gather(*tasks)
        await asyncio.sleep(2.0)  # the last onsets reach the clients
        elapsed = time.monotonic() - t
        after = await asyncio.to_thread(_scrape, hub)
    finally:
        arrivals, events, closed, errors = load.finish()
    sent = counts[0]
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    for event_id, latency in arrivals:
        first[event_id] = min(latency, first.get(event_id, latency))
        last[event_id] = max(latency, last.get(event_id, latency))
    return {
        "clients": clients,
        "onsets": sent,
        "latencies": [latency for _, latency in arrivals],
        "first": list(first.values()),
        "last": list(last.values()),
        "tick_wait": _bucket_pcts(before, after, WS_HISTOGRAMS[0]),
        "flush": _bucket_pcts(before, after, WS_HISTOGRAMS[1]),
        "frames_per_s": (after[FRAMES] - before[FRAMES]) / elapsed,
        "acks": acks,
        "expected": sent * clients,
        "deliveries_per_s": events / elapsed,
        "points_per_s": (counts[1] / seconds) if points else 0.0,
        "closed": closed,
        "errors": errors,
    }


def report(name: str, r: dict[str, Any]) -> None:
    lat = r["latencies"]
    print(
        f"{name:9s} clients={r['clients']:5d} onsets={r['onsets']:4d}"
        f" received={len(lat):7d}/{r['expected']:7d}"
        f"  p50={_pct(lat, 50) * 1000:7.1f} ms  p99={_pct(lat, 99) * 1000:7.1f} ms"
        f"  deliveries/s={r['deliveries_per_s']:9.0f}  ingest={r['points_per_s']:8.0f} points/s"
        f"  cut={len(r['closed'])}"
    )
    acks = r["acks"]
    print(
        f"{'':9s} onset -> hub ack (ingest, which publishes before it acks):"
        f" p50={_pct(acks, 50) * 1000:7.1f} ms  p99={_pct(acks, 99) * 1000:7.1f} ms"
    )
    for hop, key in (("stream tick wait", "tick_wait"), ("tick flush (all clients)", "flush")):
        p50, p99 = r[key]
        print(f"{'':9s} {hop} (hub buckets): p50 <= {p50 * 1000:6.1f} ms  p99 <= {p99 * 1000:6.1f} ms")
    spread = [b - a for a, b in zip(r["first"], r["last"], strict=True)]
    for hop, values in (("onset -> first client", r["first"]), ("onset -> last client", r["last"])):
        print(f"{'':9s} {hop}: p50={_pct(values, 50) * 1000:7.1f} ms  p99={_pct(values, 99) * 1000:7.1f} ms")
    print(
        f"{'':9s} first -> last client of an onset: p50={_pct(spread, 50) * 1000:7.1f} ms"
        f"  p99={_pct(spread, 99) * 1000:7.1f} ms  frames/s={r['frames_per_s']:7.0f}"
    )


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="outpost-bench-ws-") as d:
        hub = start_hub(Path(d))
        try:
            async with Agent(hub) as agent:
                print(
                    f"workload: {args.onsets} onsets/s for {args.seconds} s; loaded phase adds"
                    f" {args.points} points/s ingest and {args.clients} clients in {args.procs} processes"
                )
                base = await phase(hub, agent, 1, 1, args.seconds, args.onsets, 0)
                loaded = await phase(
                    hub, agent, args.clients, args.procs, args.seconds, args.onsets, args.points
                )
        finally:
            hub.stop()
    report("baseline", base)
    report("loaded", loaded)
    p99 = _pct(loaded["latencies"], 99)
    verdict = "met" if p99 <= GOAL_P99_S else "NOT met"
    print(f"goal: p99 onset -> client <= {GOAL_P99_S:.1f} s with {args.clients} clients: {verdict}")
    problems = [*base["errors"], *loaded["errors"]]
    for r in (base, loaded):
        if not r["latencies"]:
            problems.append(f"no onset reached a client ({r['clients']} clients)")
        elif len(r["latencies"]) < r["expected"]:
            problems.append(
                f"{r['expected'] - len(r['latencies'])} onset deliveries missing ({r['clients']} clients)"
            )
        problems += [f"hub closed a stream: {c}" for c in r["closed"][:5]]
    for p in problems:
        print(f"run incomplete: {p}", file=sys.stderr)
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--onsets", type=float, default=10.0, help="anomaly onsets per second")
    parser.add_argument("--points", type=float, default=100_000.0, help="ingested points per second")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
