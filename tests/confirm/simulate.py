"""A simulated server whose CPU, traffic and temperature move together under load, with coupled load
surges (normal for it) and lone temperature jumps (a fan failing: nothing else moves)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.model import F64Array, I64Array

STEP_MS = 60_000
T0_MS = 1_767_225_600_000  # 2026-01-01
SERIES = ("cpu_util{}", "if_octets{}", "temperature{}")


@dataclass(frozen=True, slots=True, eq=False)
class Device:
    """Readings (series x steps) on a one-minute grid and where the events of each kind start."""

    ts_ms: I64Array
    values: F64Array  # rows in SERIES order
    surges: list[int]  # step index where a coupled load surge starts
    jumps: list[int]  # step index where a lone temperature jump starts


def simulate(days: float, seed: int, surges_per_day: float = 8.0, jumps: tuple[int, ...] = ()) -> Device:
    """`days` of one-minute readings from T0_MS; `jumps` are the steps of lone temperature jumps."""
    rng = np.random.default_rng(seed)
    n = int(days * 1440)
    t = np.arange(n)
    load = 0.3 + 0.15 * np.sin(2 * np.pi * t / 1440) + 0.03 * rng.standard_normal(n)
    starts = sorted(
        rng.choice(np.arange(300, n - 60), size=int(days * surges_per_day), replace=False).tolist()
    )
    for s in starts:
        length = int(rng.integers(10, 40))
        load[s : s + length] += rng.uniform(0.35, 0.6)
    cpu = 5 + 80 * load + 1.5 * rng.standard_normal(n)
    traffic = 1e6 * (0.2 + 2.0 * load) * (1 + 0.03 * rng.standard_normal(n))
    # Temperature follows load with a few minutes of thermal lag.
    heat = np.zeros(n)
    for i in range(1, n):
        heat[i] = heat[i - 1] + 0.35 * (load[i] - heat[i - 1])
    temp = 30 + 25 * heat + 0.3 * rng.standard_normal(n)
    for j in jumps:
        temp[j : j + 30] += 9.0
    ts = (T0_MS + t * STEP_MS).astype(np.int64)
    return Device(ts, np.stack([cpu, traffic, temp]), starts, list(jumps))
