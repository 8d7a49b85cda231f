"""Alerts bench: the alert path's events/s against a real Prometheus Alertmanager, and its latency to a page.

1. Throughput. One event mix (default 50,000 events: 10,000 fingerprints over 500 devices behind 50
   agents, repeats so dedup matters, ~10 % resolves, one agent offline so inhibition is exercised, a
   silence matching every BMC event at one site) goes
   - through `AlertService.apply` in batches of 100: dedup, offline inhibition, silences, incidents,
     grouping (route to a receiver `null`, group_wait 0) and the durable write (a real SQLite file, WAL,
     synchronous=NORMAL, checkpoints in the background, as the hub runs it; one transaction per step,
     the notify outbox rows included).
     The dispatcher is never started: notifications are generated and written, none is sent.
   - into a real Alertmanager (Debian's `prometheus-alertmanager`, 127.0.0.1, clustering off, its own
     storage dir; the same group_by and timers; an inhibit rule AgentOffline → same agent; the same
     silence; every route to a receiver without integrations, i.e. a blackhole) as v2 `postableAlert`
     JSON, 100 alerts per POST to /api/v2/alerts, bodies encoded before the clock starts.
   Each side runs twice on a fresh state: one client (one call at a time), and `--clients` concurrent
   callers. Goal (issue): the hub at least Alertmanager's rate.
2. Latency. A route with `group_wait_s: 0` to a webhook receiver; a recording HTTP server in a child
   process (its own interpreter, so it does not steal this one's CPU); `--rate` events/s of new groups
   (each event a new device, so each makes one notification) for `--seconds`. Measured from the moment
   the event is handed to `AlertService.apply` to the recorder's arrival time (CLOCK_MONOTONIC, shared
   by both processes); also the part until `apply` returned (durable). Goal: p99 ≤ 100 ms.

Exits non-zero when a phase cannot complete within `--deadline-s` or its counts do not add up.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import multiprocessing as mp
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hub.alerts.models  # noqa: E402, F401  (registers the alerts tables on METADATA)
import hub.notify.models  # noqa: E402, F401  (registers the outbox table on METADATA)
from hub.alerts.config import AlertsConfig, RouteConfig, Timers  # noqa: E402
from hub.alerts.engine import new_id  # noqa: E402
from hub.alerts.model import Signal, labels_of  # noqa: E402
from hub.alerts.service import AlertService  # noqa: E402
from hub.alerts.windows import Window, WindowKind  # noqa: E402
from hub.bus.config import MemoryBusConfig  # noqa: E402
from hub.bus.memory import MemoryBus  # noqa: E402
from hub.bus.messages import AgentSeen  # noqa: E402
from hub.db.checkpoint import WalCheckpointer  # noqa: E402
from hub.db.engine import create_engine  # noqa: E402
from hub.db.metadata import METADATA  # noqa: E402
from hub.matchers import parse_matchers  # noqa: E402
from hub.notify.config import NotifyConfig, WebhookConfig  # noqa: E402
from hub.notify.dispatcher import Dispatcher  # noqa: E402
from tests.notify.alertmanager import alertmanager_binary  # noqa: E402
from tests.notify.recorder import Recorder  # noqa: E402
from tests.support.procs import Service, free_port, start_service  # noqa: E402

BATCH = 100
GOAL_P99_MS = 100.0
GROUP_BY = ("site", "device")
# Both sides: a new group notifies at once, then at most every 5 min (Alertmanager's defaults otherwise).
TIMERS = Timers(group_wait_s=0, group_interval_s=300, repeat_interval_s=4 * 3600)
SILENCED = {"alertname": "BmcEvent", "site": "dc2"}

_AM_CONFIG = """
route:
  receiver: blackhole
  group_by: [site, device]
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
inhibit_rules:
  - source_matchers: ['alertname="AgentOffline"']
    target_matchers: ['alertname!="AgentOffline"']
    equal: [agent]
receivers:
  - name: blackhole
"""


class BenchFailed(Exception):
    """A phase missed its deadline or its counts do not add up: the numbers would be a lie."""


# ---- the workload ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    labels: dict[str, str]
    firing: bool
    severity: str
    summary: str


@dataclass(frozen=True, slots=True)
class Workload:
    events: list[Event]
    offline_agent: str
    offline_devices: tuple[str, ...]
    fingerprints: int


def _alert_kinds(per_device: int) -> list[tuple[dict[str, str], str, str]]:
    """(extra labels, severity, summary) of every alert a device can raise: link traps, BMC events,
    anomalies, as the rules in hub/alerts/rules make them."""
    kinds: list[tuple[dict[str, str], str, str]] = []
    for i in range(per_device):
        if i % 10 < 7:
            kinds.append(({"alertname": "LinkDown", "ifIndex": str(i + 1)}, "warning", "linkDown"))
        elif i % 10 < 9:
            msg = ("PSU 1 lost input", "Fan 3 below threshold")[i % 2]
            kinds.append(({"alertname": "BmcEvent", "message": msg + f" #{i}"}, "critical", msg))
        else:
            kinds.append(({"alertname": "EdgeAnomaly", "metric": f"ifHCInOctets.{i}"}, "warning", "anomaly"))
    return kinds


def workload(events: int, fingerprints: int, devices: int, agents: int, seed: int) -> Workload:
    """Events in arrival order: every fingerprint's first event fires; later ones repeat it (dedup) or,
    one in ten, resolve it (a later repeat then reopens it, as a flapping link does)."""
    rng = random.Random(seed)
    per_device = max(1, fingerprints // devices)
    kinds = _alert_kinds(per_device)
    agent_names = [f"dc{a % 5 + 1}/agent{a:02d}" for a in range(agents)]
    alerts: list[tuple[dict[str, str], str, str]] = []
    for d in range(devices):
        agent = agent_names[d % agents]
        base = {"agent": agent, "site": agent.split("/")[0], "device": f"dev{d:04d}"}
        for extra, sev, summary in kinds:
            alerts.append(({**base, **extra}, sev, f"{summary} on dev{d:04d}"))
    alerts = alerts[:fingerprints]
    out: list[Event] = []
    seen: list[int] = []
    order = list(range(len(alerts)))
    rng.shuffle(order)
    pending = iter(order)  # fingerprints not seen yet, introduced at a steady pace through the run
    introduce_every = max(1, events // max(1, len(alerts)))
    for i in range(events):
        k = next(pending, None) if i % introduce_every == 0 or not seen else None
        new = k is not None
        if k is None:
            k = rng.choice(seen)
        else:
            seen.append(k)
        labels, sev, summary = alerts[k]
        out.append(Event(labels, new or rng.random() >= 0.1, sev, summary))
    offline = agent_names[-1]
    behind = tuple(sorted({e.labels["device"] for e in out if e.labels["agent"] == offline}))
    return Workload(out, offline, behind, len(seen))


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def progress(what: str, done: int, total: int, t0: float) -> None:
    rate = done / max(time.perf_counter() - t0, 1e-9)
    print(f"  … {what}: {done:,}/{total:,} ({rate:,.0f}/s)", flush=True)


async def paced(
    what: str, items: list[Any], clients: int, call: Callable[[Any], Awaitable[None]], deadline_s: float
) -> float:
    """Runs `call` on every item with `clients` callers, one call each at a time; seconds taken.

    Raises:
        BenchFailed: not done within `deadline_s`.
    """
    it: Iterator[int] = iter(range(len(items)))
    done = 0
    t0 = time.perf_counter()
    last = t0

    async def caller() -> None:
        nonlocal done, last
        for i in it:
            await call(items[i])
            done += 1
            if time.perf_counter() - last > 2.0:
                last = time.perf_counter()
                progress(what, done * BATCH, len(items) * BATCH, t0)

    try:
        await asyncio.wait_for(asyncio.gather(*(caller() for _ in range(clients))), deadline_s)
    except TimeoutError:
        raise BenchFailed(f"{what}: {done} of {len(items)} batches within {deadline_s:.0f} s") from None
    return time.perf_counter() - t0


# ---- the hub's side -------------------------------------------------------------------------------------


def hub_engine(path: Path) -> sa.Engine:
    """The hub's own engine (hub/db/engine.py: WAL, synchronous=NORMAL), its tables created."""
    engine = create_engine(f"sqlite:///{path}")
    METADATA.create_all(engine)
    return engine


async def hub_throughput(w: Workload, path: Path, clients: int, deadline_s: float) -> float:
    """Events/s through `AlertService.apply` (batches of `BATCH`), durable write included."""
    db = hub_engine(path)
    config = AlertsConfig(
        group_by=GROUP_BY,
        timers=TIMERS,
        routes=(RouteConfig(receiver="null"),),
        late_after_s=3600,  # the events are stamped once, before the clock starts: none is a replay
    )
    # Never started: submit_in writes each notification's outbox row in the step's transaction, and
    # nothing sends it (the receivers are excluded from the measurement, as the blackhole is for AM).
    dispatcher = Dispatcher(
        db, NotifyConfig(receivers=[WebhookConfig(name="null", url="http://127.0.0.1:9/")])
    )
    bus = MemoryBus(MemoryBusConfig())
    service = AlertService(config, db, bus, dispatcher)
    checkpoints = WalCheckpointer(db)  # as the hub runs: the log copied back in the background
    await checkpoints.start()
    await service.start(subscribe=False)
    try:
        now = int(time.time() * 1000)
        silence = Window(
            new_id(now),
            WindowKind.SILENCE,
            parse_matchers([f'{k}="{v}"' for k, v in SILENCED.items()]),
            now - 1000,
            now + 3_600_000,
            "bench",
            now,
        )
        await service.add_window(silence)
        # The offline agent, the way the hub finds out: its last heartbeat was 40 s ago (3 x 10 s missed).
        await service.handle(
            AgentSeen.create(
                agent=w.offline_agent,
                ts_ms=now - 40_000,
                heartbeat_s=10,
                version="bench",
                spool_depth=0,
                cert_expiry_ms=0,
                targets_up=w.offline_devices,
                targets_down=(),
            )
        )
        t_off = time.monotonic()
        while w.offline_agent not in service.core.engine.offline:
            if time.monotonic() - t_off > 10:
                raise BenchFailed("hub: the offline agent was not detected within 10 s")
            await asyncio.sleep(0.01)
        ts = int(time.time() * 1000)
        signals = [
            Signal(labels_of(e.labels), e.firing, ts, e.severity, (("summary", e.summary),), "bench")
            for e in w.events
        ]
        batches = [signals[i : i + BATCH] for i in range(0, len(signals), BATCH)]

        async def call(batch: list[Signal]) -> None:
            await service.apply(batch)

        # As the hub does once started (hub/cli.py), what exists now leaves the collector's generations:
        # here that is also the bench's own workload (its 50,000 events and signals, which no hub holds
        # at once), so full passes scan what a hub's would (the alerts the run creates), not the bench.
        gc.freeze()
        try:
            elapsed = await paced(f"hub, {clients} client(s)", batches, clients, call, deadline_s)
        finally:
            gc.unfreeze()
        stats = service.core.engine.stats
        with db.connect() as conn:
            rows = conn.execute(sa.text("SELECT count(*) FROM alerts WHERE status != 'resolved'")).scalar()
            outbox = conn.execute(sa.text("SELECT count(*) FROM notify_outbox")).scalar()
        if rows != len(service.core.engine.open) or stats["signals"] < len(signals):
            raise BenchFailed(
                f"hub: {rows} open rows in the database, {len(service.core.engine.open)} open in memory,"
                f" {stats['signals']} signals applied of {len(signals)}"
            )
        if not stats["inhibited"] or not stats["deduplicated"]:
            raise BenchFailed(f"hub: the mix did not exercise inhibition and dedup: {dict(stats)}")
        suppressed = sum(1 for a in service.core.engine.open.values() if a.silenced_by is not None)
        print(
            f"  hub applied {stats['signals']:,} signals: {stats['created']:,} created,"
            f" {stats['deduplicated']:,} deduplicated, {stats['resolved']:,} resolved,"
            f" {stats['reopened']:,} reopened, {stats['inhibited']:,} inhibited, {suppressed:,} open"
            f" alerts silenced; {rows:,} open alert rows, {outbox:,} outbox rows (not sent)"
        )
        return elapsed
    finally:
        await service.aclose()
        await dispatcher.aclose()
        await bus.aclose()
        await checkpoints.aclose()
        db.dispose()


# ---- Alertmanager's side --------------------------------------------------------------------------------


def start_am(root: Path) -> Service:
    binary = alertmanager_binary()
    if binary is None:
        raise BenchFailed("prometheus-alertmanager not found: install Debian's package (make apt)")
    root.mkdir(parents=True, exist_ok=True)
    config = root / "alertmanager.yml"
    config.write_text(_AM_CONFIG)
    port = free_port()
    cmd = [
        binary,
        f"--config.file={config}",
        f"--storage.path={root / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    return start_service("alertmanager", cmd, root, port=port, timeout=30)


def am_bodies(w: Workload) -> list[bytes]:
    """The workload as v2 postableAlert batches; a resolve is an alert whose endsAt has passed."""
    now = int(time.time() * 1000)
    starts = _rfc3339(now)
    offline = {
        "labels": {
            "alertname": "AgentOffline",
            "agent": w.offline_agent,
            "site": w.offline_agent.split("/")[0],
        },
        "annotations": {"summary": f"agent {w.offline_agent} offline"},
        "startsAt": _rfc3339(now - 40_000),
    }
    alerts: list[dict[str, Any]] = [offline]
    for e in w.events:
        a: dict[str, Any] = {
            "labels": {**e.labels, "severity": e.severity},
            "annotations": {"summary": e.summary},
            "startsAt": starts,
        }
        if not e.firing:
            a["endsAt"] = starts
        alerts.append(a)
    return [json.dumps(alerts[i : i + BATCH]).encode() for i in range(0, len(alerts), BATCH)]


async def am_throughput(w: Workload, root: Path, clients: int, deadline_s: float) -> float:
    am = start_am(root)
    url = f"http://127.0.0.1:{am.port}"
    try:
        now = int(time.time() * 1000)
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
            silence = {
                "matchers": [
                    {"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in SILENCED.items()
                ],
                "startsAt": _rfc3339(now - 1000),
                "endsAt": _rfc3339(now + 3_600_000),
                "createdBy": "bench",
                "comment": "bench",
            }
            r = await client.post("/api/v2/silences", json=silence)
            if r.status_code != 200:
                raise BenchFailed(f"alertmanager refused the silence: {r.status_code} {r.text[:200]}")
            bodies = am_bodies(w)
            headers = {"Content-Type": "application/json"}

            async def call(body: bytes) -> None:
                resp = await client.post("/api/v2/alerts", content=body, headers=headers)
                if resp.status_code != 200:
                    raise BenchFailed(f"alertmanager answered {resp.status_code}: {resp.text[:200]}")

            elapsed = await paced(f"alertmanager, {clients} client(s)", bodies, clients, call, deadline_s)
            r = await client.get("/api/v2/alerts", params={"silenced": "true", "inhibited": "true"})
            listed = r.json()
        last: dict[tuple[tuple[str, str], ...], bool] = {}
        for e in w.events:
            last[tuple(sorted(e.labels.items()))] = e.firing
        expected = sum(last.values()) + 1  # + AgentOffline
        silenced = sum(1 for a in listed if a["status"]["silencedBy"])
        # Concurrent clients do not keep the order between batches: a resolve may land after the repeat
        # that followed it, so only one client's result is exact.
        if len(listed) != expected and (clients == 1 or abs(len(listed) - expected) > len(bodies)):
            raise BenchFailed(f"alertmanager lists {len(listed)} active alerts, expected {expected}")
        held = f"{len(listed):,} active alerts ({expected:,} in arrival order)"
        print(f"  alertmanager holds {held}, {silenced:,} silenced")
        return elapsed
    finally:
        am.stop()


# ---- latency --------------------------------------------------------------------------------------------


def _recorder_process(ready: Any, stop: Any, count: Any, out: Any) -> None:
    """A `Recorder` in its own interpreter; hands back (arrival time, device) per request once stopped."""
    rec = Recorder().start()
    ready.put(rec.port)
    while not stop.wait(0.05):
        count.value = len(rec.requests())
    got = rec.requests()
    rec.stop()
    out.put([(r.at, r.json()["groupLabels"].get("device", ""), r.json()["status"]) for r in got])


async def latency(args: argparse.Namespace, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Milliseconds from `apply` to the receiver (and to `apply` returning) for each event."""
    ctx = mp.get_context("spawn")
    ready, out, stop, count = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value("i", 0)
    proc = ctx.Process(target=_recorder_process, args=(ready, stop, count, out), daemon=True)
    proc.start()
    db = hub_engine(path)
    dispatcher: Dispatcher | None = None
    service: AlertService | None = None
    bus = MemoryBus(MemoryBusConfig())
    checkpoints = WalCheckpointer(db)
    await checkpoints.start()
    try:
        port = await asyncio.to_thread(ready.get, True, 30)
        url = f"http://127.0.0.1:{port}/hook"
        config = AlertsConfig(group_by=GROUP_BY, routes=(RouteConfig(receiver="noc", timers=TIMERS),))
        notify = NotifyConfig(
            receivers=[WebhookConfig(name="noc", url=url, concurrency=args.concurrency)],
            poll_interval_s=args.poll_interval_s,
        )
        dispatcher = Dispatcher(db, notify)
        service = AlertService(config, db, bus, dispatcher)
        await dispatcher.start()
        await service.start(subscribe=False)
        total = int(args.rate * args.seconds)
        handed: dict[str, float] = {}
        durable: dict[str, float] = {}
        # Only the calls still running: holding every finished one (and the step it returned) kept 10,000
        # steps alive, and the collector's full passes over them stalled the loop for up to 300 ms.
        tasks: set[asyncio.Task[Any]] = set()
        failed: list[BaseException] = []

        def finished(task: asyncio.Task[Any], device: str) -> None:
            durable[device] = time.monotonic()
            tasks.discard(task)
            error = None if task.cancelled() else task.exception()
            if error is not None:
                failed.append(error)

        def offer(i: int) -> None:
            device = f"lat{i:06d}"
            agent = f"dc{i % 5 + 1}/agent{i % 50:02d}"
            labels = {
                "alertname": "LinkDown",
                "agent": agent,
                "site": agent[:3],
                "device": device,
                "ifIndex": "1",
            }
            sig = Signal(
                labels_of(labels), True, int(time.time() * 1000), "warning", (("summary", "x"),), "bench"
            )
            assert service is not None
            handed[device] = time.monotonic()
            task = asyncio.create_task(service.apply([sig]))
            task.add_done_callback(functools.partial(finished, device=device))
            tasks.add(task)

        t0 = time.monotonic()
        last = t0
        i = 0
        while i < total:
            due = min(total, int((time.monotonic() - t0) * args.rate) + 1)
            while i < due:
                offer(i)
                i += 1
            if time.monotonic() - last > 2.0:
                last = time.monotonic()
                print(f"  … offered {i:,}/{total:,}, received {count.value:,}", flush=True)
            if time.monotonic() - t0 > args.deadline_s:
                raise BenchFailed(f"latency: could not offer {total} events within {args.deadline_s:.0f} s")
            await asyncio.sleep(0.001)
        offered_s = time.monotonic() - t0
        while count.value < total:
            if time.monotonic() - t0 > args.deadline_s:
                raise BenchFailed(f"latency: {count.value} of {total} notifications received in time")
            if time.monotonic() - last > 2.0:
                last = time.monotonic()
                print(f"  … received {count.value:,}/{total:,}", flush=True)
            await asyncio.sleep(0.05)
        await asyncio.gather(*tasks)
        if failed:
            raise BenchFailed(f"latency: {len(failed)} apply calls failed, the first: {failed[0]!r}")
        stop.set()
        got = await asyncio.to_thread(out.get, True, 60)
        print(f"  offered {total:,} events in {offered_s:.2f} s ({total / offered_s:,.0f}/s)")
        received = [(at, device) for at, device, status in got if status == "firing"]
        devices = [d for _, d in received]
        if len(received) != total or len(set(devices)) != total or set(devices) != set(handed):
            raise BenchFailed(
                f"latency: {len(received)} firing notifications for {len(set(devices))} devices"
            )
        lat = np.asarray([(at - handed[d]) * 1000 for at, d in received])
        dur = np.asarray([(durable[d] - handed[d]) * 1000 for d in handed])
        return lat, dur
    finally:
        stop.set()
        if service is not None:
            await service.aclose()
        if dispatcher is not None:
            await dispatcher.aclose()
        await bus.aclose()
        await checkpoints.aclose()
        db.dispose()
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()


def pcts(ms: np.ndarray) -> str:
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, max {ms.max():.1f} ms"


async def run(args: argparse.Namespace) -> int:
    w = workload(args.events, args.fingerprints, args.devices, args.agents, args.seed)
    n = len(w.events)
    print(
        f"workload: {n:,} events, {w.fingerprints:,} fingerprints over {args.devices} devices and"
        f" {args.agents} agents, {sum(not e.firing for e in w.events):,} resolves;"
        f" agent {w.offline_agent} offline ({len(w.offline_devices)} devices behind it);"
        f" silence {SILENCED}; batches of {BATCH}"
    )
    rates: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory(prefix="outpost-bench-alerts-") as d:
        tmp = Path(d)
        if not args.skip_throughput:
            for clients in (1, args.clients):
                elapsed = await hub_throughput(w, tmp / f"hub-{clients}.sqlite", clients, args.deadline_s)
                rates["hub", clients] = n / elapsed
                print(
                    f"hub, {clients:2d} client(s):          {n / elapsed:>9,.0f} events/s ({elapsed:.2f} s)"
                )
                elapsed = await am_throughput(w, tmp / f"am-{clients}", clients, args.deadline_s)
                rates["am", clients] = (n + 1) / elapsed
                rate = (n + 1) / elapsed
                print(f"alertmanager, {clients:2d} client(s): {rate:>9,.0f} alerts/s ({elapsed:.2f} s)")
        # A hub holds no such list: kept, its 50,000 events would be in every full pass of the collector
        # during the latency phase (those passes are that phase's longest pauses).
        del w
        gc.collect()
        if not args.skip_latency:
            print(
                f"latency: {args.rate:,.0f} events/s of new groups for {args.seconds:.0f} s, group_wait 0,"
                f" webhook (concurrency {args.concurrency}), poll_interval_s {args.poll_interval_s}"
            )
            lat, dur = await latency(args, tmp / "latency.sqlite")
            print(f"event → durable (apply returned): {pcts(dur)}")
            print(f"event → notification received:    {pcts(lat)}")
    goals = []
    for clients in sorted({1, args.clients}):
        if ("hub", clients) in rates:
            ratio = rates["hub", clients] / rates["am", clients]
            verdict = "met" if ratio >= 1 else "MISSED"
            goals.append(f"hub ≥ Alertmanager with {clients} client(s): {ratio:.2f}x, {verdict}")
    if not args.skip_latency:
        p99 = float(np.percentile(lat, 99))
        goals.append(f"p99 ≤ {GOAL_P99_MS:.0f} ms: {p99:.1f} ms, {'met' if p99 <= GOAL_P99_MS else 'MISSED'}")
    print("goals: " + "; ".join(goals))
    return 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--fingerprints", type=int, default=10_000)
    p.add_argument("--devices", type=int, default=500)
    p.add_argument("--agents", type=int, default=50)
    p.add_argument("--clients", type=int, default=8, help="concurrent callers in the second run of each side")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--rate", type=float, default=1000.0, help="latency: events/s offered")
    p.add_argument("--seconds", type=float, default=10.0, help="latency: how long")
    concurrency = WebhookConfig.model_fields["concurrency"].default
    p.add_argument(
        "--concurrency", type=int, default=concurrency, help="latency: webhook sends at once (hub default)"
    )
    p.add_argument(
        "--poll-interval-s", type=float, default=1.0, help="latency: the dispatcher's (hub default)"
    )
    p.add_argument("--deadline-s", type=float, default=120.0, help="per phase: fail beyond this")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-latency", action="store_true")
    try:
        sys.exit(uvloop.run(run(p.parse_args())))  # the loop the hub runs on (hub/cli.py)
    except BenchFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
    except (OSError, TimeoutError) as exc:
        print(f"FAILED: the run could not complete: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
