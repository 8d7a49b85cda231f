"""Push-back: agents honour the hub's retry_after with jitter (no retry storm), and the hub's gap
tracking closes gaps filled out of order by a backfill, counting each batch once."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from agent.outbox.deliver import Backoff, Deliverer
from agent.outbox.outbox import MemoryOutbox
from hub.fleet.agents import Fleet
from shared.clock import FakeClock
from shared.codec import PushResult
from shared.errors import TransientError
from tests.support.hubdb import migrated_engine
from tests.transport.items import metrics_item

RETRY_AFTER_S = 2.0


class OverloadedHub:
    """Our own Transport: answers every push with retry_after until `busy_until` (fake clock seconds)."""

    def __init__(self, clock: FakeClock, busy_until: float) -> None:
        self.clock = clock
        self.busy_until = busy_until
        self.attempts: list[tuple[str, float]] = []

    def for_agent(self, name: str) -> _AgentView:
        return _AgentView(self, name)


class _AgentView:
    def __init__(self, hub: OverloadedHub, name: str) -> None:
        self.hub, self.name = hub, name

    async def start(self) -> None:
        return None

    async def send(self, envelope: bytes) -> PushResult:
        now = self.hub.clock.monotonic()
        self.hub.attempts.append((self.name, now))
        if now < self.hub.busy_until:
            raise TransientError("hub overloaded", retry_after_s=RETRY_AFTER_S)
        return PushResult(accepted_points=1)

    async def aclose(self) -> None:
        return None


@pytest.mark.unit
async def test_fifty_agents_told_to_retry_later_wait_and_spread_out_instead_of_storming() -> None:
    clock = FakeClock()
    hub = OverloadedHub(clock, busy_until=10.0)
    deliverers = []
    for i in range(50):
        box = MemoryOutbox()
        for seq in range(1, 4):
            box.put(metrics_item(seq, epoch=i))
        d = Deliverer(box, hub.for_agent(f"a{i}"), clock, workers=1)  # type: ignore[arg-type]
        d.start()
        deliverers.append((d, box))
    for _ in range(200):
        await clock.advance(0.1)
    for d, _ in deliverers:
        await d.aclose()
    assert all(box.pending() == 0 for _, box in deliverers)
    per_agent: dict[str, list[float]] = {}
    for name, t in hub.attempts:
        per_agent.setdefault(name, []).append(t)
    for times in per_agent.values():
        busy = [t for t in times if t < 10.0]
        assert all(b - a >= RETRY_AFTER_S - 1e-9 for a, b in zip(busy, busy[1:], strict=False))
    during = sum(1 for _, t in hub.attempts if t < 10.0)
    assert during <= 50 * (1 + 10.0 / RETRY_AFTER_S)  # at most one try per agent per retry_after
    # Jitter: the agents' first tries after the overload do not land in one instant (a storm: all 50).
    first_after = {name: min(t for n, t in hub.attempts if n == name and t >= 10.0) for name in per_agent}
    buckets = Counter(round(t, 1) for t in first_after.values())
    assert len(first_after) == 50 and max(buckets.values()) <= 15


@pytest.mark.unit
def test_backoff_keeps_the_server_hint_as_a_floor_and_adds_up_to_half_again_as_jitter() -> None:
    b = Backoff(rng=random.Random(3))
    delays = [b.next_delay(2.0) for _ in range(1000)]
    assert min(delays) >= 2.0 and max(delays) <= 3.0
    assert len({round(d, 2) for d in delays}) > 50


@pytest.mark.integration
def test_gaps_from_out_of_order_backfill_close_and_duplicates_count_once(tmp_path: Path) -> None:
    engine = migrated_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    state = Fleet(engine)
    try:
        for seq in (1, 2, 5, 6):  # live lane got ahead while 3 and 4 wait in the spool
            state.record_batch("dc1/a", 77, seq, 10, 1000 + seq)
        assert [(a.gaps, a.points_received) for a in state.agents()] == [(2, 40)]
        for seq in (4, 3, 3, 5):  # backfill, plus re-sends after a hub restart
            state.record_batch("dc1/a", 77, seq, 10, 2000 + seq)
        (info,) = state.agents()
        assert (info.gaps, info.points_received, info.batches_received, info.duplicates) == (0, 60, 6, 2)
        state.record_batch("dc1/a", 78, 2, 10, 3000)  # a restarted agent whose batch 1 is still on its way
        assert state.total_gaps() == 1
    finally:
        engine.dispose()
