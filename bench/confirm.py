"""Confirmation bench: edge onsets judged per second by the hub's confirmation job (goal: >= 1,000/s).

A real embedded store in a temporary directory holds `--devices` devices of three one-minute series each
(`--days` of history); every device's forest is fitted first (fit time reported, not counted in the rate).
Then `--onsets` onsets spread over the devices go through the job exactly as the hub runs it: `handle`
(queue) and `tick` (one worker thread: one history read and one forest pass per device, then one
`AnomalyVerdict` published per onset on the in-process bus), in ticks of `--per-tick` onsets.
Baseline in the same run: the same onsets judged one call each (a history read and a forest pass per
onset), which is what confirmation costs without batching.

    python bench/confirm.py [--devices 100 --onsets 10000 --per-tick 2000]

Exits non-zero when a phase cannot complete within `--deadline-s` or a verdict is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.bus.config import MemoryBusConfig  # noqa: E402
from hub.bus.memory import MemoryBus  # noqa: E402
from hub.bus.messages import AnomalyReported, AnomalyVerdict, Message  # noqa: E402
from hub.confirm.config import ConfirmConfig  # noqa: E402
from hub.confirm.jobs import ConfirmJob  # noqa: E402
from hub.store.base import Store  # noqa: E402
from hub.store.config import EmbeddedStoreConfig  # noqa: E402
from hub.store.factory import build_store  # noqa: E402
from shared.clock import FakeClock  # noqa: E402
from shared.model import Batch, SeriesKey, SeriesPoints  # noqa: E402

AGENT = "dc1/bench"
T0 = 1_767_225_600_000
STEP = 60_000
METRICS = ("cpu_util", "if_octets", "temperature")
GOAL = 1000.0


def fill(store: Store, devices: int, steps: int) -> None:
    rng = np.random.default_rng(1)
    ts = T0 + STEP * np.arange(steps, dtype=np.int64)
    for d in range(devices):
        load = 0.3 + 0.1 * np.sin(2 * np.pi * np.arange(steps) / 1440) + 0.03 * rng.standard_normal(steps)
        values = (5 + 80 * load, 1e6 * (0.2 + 2 * load), 30 + 25 * load + 0.3 * rng.standard_normal(steps))
        series = tuple(
            SeriesPoints(SeriesKey.of(m, {"device": f"dev-{d}"}), ts, v)
            for m, v in zip(METRICS, values, strict=True)
        )
        store.write(AGENT, Batch(1, d + 1, series))


def onsets(n: int, devices: int, steps: int) -> list[AnomalyReported]:
    """`n` distinct onsets (device, series and time), spread evenly over the devices."""
    return [
        AnomalyReported.create(
            agent=AGENT,
            device=f"dev-{i % devices}",
            metric=METRICS[(i // devices) % 3],
            labels={"device": f"dev-{i % devices}"},
            ts_ms=T0 + STEP * (steps - 1 - (i // devices // 3) % steps),
            score=0.8,
            severity="warning",
            phase="onset",
            value=1.0,
            detector="robust",
        )  # fmt: skip
        for i in range(n)
    ]


async def run(a: argparse.Namespace) -> int:
    steps = int(a.days * 1440)
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock(T0 + STEP * steps)
        store = build_store(EmbeddedStoreConfig(), Path(tmp), clock)
        store.open()
        bus = MemoryBus(MemoryBusConfig(queue_size=1_000_000), clock)
        published = 0

        async def count(msg: Message) -> None:
            nonlocal published
            published += isinstance(msg, AnomalyVerdict)

        bus.subscribe(AnomalyVerdict.TOPIC, "bench", count)
        await bus.start()
        try:
            fill(store, a.devices, steps)
            config = ConfirmConfig(enabled=True, history_s=a.days * 86_400, max_pending=10_000_000)
            job = ConfirmJob(config, store, bus, clock, None)
            t0 = time.perf_counter()
            for d in range(a.devices):
                job.models.fit((AGENT, f"dev-{d}"), clock.now_ms())
            fit_s = time.perf_counter() - t0
            shape = f"{a.devices} devices x {len(METRICS)} series x {steps} points"
            print(f"{shape}; fits {fit_s / a.devices * 1000:.0f} ms each", flush=True)
            todo = onsets(a.onsets, a.devices, steps)

            t0 = time.perf_counter()
            for i in range(0, len(todo), a.per_tick):
                for m in todo[i : i + a.per_tick]:
                    await job.handle(m)
                await job.tick()
                if time.perf_counter() - t0 > a.deadline_s:
                    print(f"batched: deadline of {a.deadline_s:.0f}s passed", file=sys.stderr)
                    return 1
            batched_s = time.perf_counter() - t0
            await bus.aclose()
            if published != len(todo) or job.queued:
                print(f"batched: {published} verdicts for {len(todo)} onsets", file=sys.stderr)
                return 1

            sample = todo[: a.baseline_onsets]
            t0 = time.perf_counter()
            for m in sample:
                key = (m.agent, m.device)
                model = job.models.model(key, clock.now_ms())
                assert model is not None
                job.models.judge(key, model, [m])
            single_s = time.perf_counter() - t0
        finally:
            await bus.aclose()
            store.close()
    batched, single = len(todo) / batched_s, len(sample) / single_s
    print(
        f"batched, {a.per_tick} onsets per tick: {batched:8.0f} onsets/s  ({len(todo)} in {batched_s:.1f}s)"
    )
    print(f"one call per onset (baseline): {single:8.0f} onsets/s  ({len(sample)} in {single_s:.1f}s)")
    print(f"goal >= {GOAL:.0f} onsets/s: {'met' if batched >= GOAL else 'NOT met'}")
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--days", type=float, default=2.0)
    ap.add_argument("--onsets", type=int, default=10_000)
    ap.add_argument("--per-tick", type=int, default=2000)
    ap.add_argument("--baseline-onsets", type=int, default=500)
    ap.add_argument("--deadline-s", type=float, default=600.0)
    sys.exit(asyncio.run(run(ap.parse_args())))


if __name__ == "__main__":
    main()
