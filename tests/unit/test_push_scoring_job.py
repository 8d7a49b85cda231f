"""The push scoring job in-process: pushed points in order per series, anomalies as agents send them,
state that survives a restart, and pushed batches split into bus-sized parts."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from hub.bus.config import MemoryBusConfig
from hub.bus.memory import MemoryBus
from hub.bus.messages import MAX_MESSAGE_BYTES, AnomalyReported, Message, PointsPushed, decode
from hub.detect.config import PushDetectConfig
from hub.detect.service import PushScoringJob
from hub.ingest import publish
from hub.ingest.publish import messages
from hub.store.base import SeriesColumns
from shared.clock import FakeClock
from shared.detect import snapshot
from shared.model import Batch, SeriesKey, SeriesPoints

pytestmark = pytest.mark.unit

SOURCE = "push:telegraf"
CONFIG = PushDetectConfig.model_validate(
    {"bank": {"default": {"warmup_points": 30, "warmup_s": 0, "seasonality": "none"}}}
)
LABELS = (("host", "web1"),)


def _msg(
    batch: str, ts: list[int], values: list[float], metric: str = "cpu_idle", part: int = 0
) -> PointsPushed:
    return PointsPushed.create(
        agent=SOURCE,
        batch_id=batch,
        part=part,
        series=json.dumps([[metric, LABELS]]),
        counts=(len(ts),),
        ts_ms=tuple(ts),
        values=tuple(values),
    )


class Harness:
    def __init__(self, job: PushScoringJob, bus: MemoryBus, seen: list[AnomalyReported]) -> None:
        self.job, self.bus, self.seen = job, bus, seen

    async def push(self, msg: PointsPushed) -> None:
        await self.job.handle(msg)
        await self.job.tick()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    clock = FakeClock()
    bus = MemoryBus(MemoryBusConfig(), clock)
    seen: list[AnomalyReported] = []

    async def collect(msg: Message) -> None:
        assert isinstance(msg, AnomalyReported)
        seen.append(msg)

    bus.subscribe(AnomalyReported.TOPIC, "test", collect)
    await bus.start()
    job = PushScoringJob(CONFIG, bus, clock, tmp_path / "detect")
    try:
        yield Harness(job, bus, seen)
    finally:
        await job.aclose()
        await bus.aclose()


def _learning(n: int = 60, start: int = 1_000) -> tuple[list[int], list[float]]:
    rng = np.random.default_rng(7)
    return [start + 10_000 * i for i in range(n)], (50 + rng.normal(0, 1, n)).tolist()


async def test_points_are_scored_in_time_order_once_each_and_late_or_repeated_ones_are_counted(
    harness: Harness,
) -> None:
    job = harness.job
    await harness.push(_msg("1-1", [3_000, 1_000, 2_000, 2_000, 5_000], [1.0, 1.0, 9.0, 1.0, 1.0]))
    assert job.stats.points["scored"] == 4 and job.stats.points["duplicate"] == 1
    await harness.push(_msg("1-2", [4_000, 6_000], [1.0, 1.0]))  # 4000 is older than what was learned
    assert job.stats.points["late"] == 1 and job.stats.points["scored"] == 5
    await harness.push(_msg("1-2", [4_000, 6_000], [1.0, 1.0]))  # a redelivery: the same id
    assert job.stats.duplicate_messages == 1 and job.stats.points["scored"] == 5
    assert job.stats.series == {"learning": 1, "active": 0, "stale": 0}


async def test_a_spike_after_learning_is_reported_as_an_agents_anomaly_would_be_and_a_flat_series_is_not(
    harness: Harness,
) -> None:
    ts, values = _learning()
    flat = [42.0] * len(ts)
    for i in range(len(ts)):  # one point per push, as Telegraf sends every interval
        await harness.job.handle(_msg(f"1-{i}", [ts[i]], [values[i]]))
        await harness.job.handle(_msg(f"1-{i}", [ts[i]], [flat[i]], metric="mem_used", part=1))
    await harness.job.tick()
    assert harness.seen == []
    spike_ts = ts[-1] + 10_000
    await harness.job.handle(_msg("2-1", [spike_ts], [500.0]))
    await harness.job.handle(_msg("2-1", [spike_ts], [42.0], metric="mem_used", part=1))
    assert await harness.job.tick() == 1
    await harness.bus.aclose()  # delivers what is queued
    (onset,) = harness.seen
    assert (onset.agent, onset.metric, onset.labels, onset.phase) == (SOURCE, "cpu_idle", LABELS, "onset")
    assert onset.ts_ms == spike_ts and onset.value == 500.0 and onset.score >= CONFIG.bank.default.threshold
    assert onset.device == "" and onset.detector
    assert harness.job.stats.anomalies["onset"] == 1


async def test_detector_state_is_saved_0600_at_stop_and_a_new_job_starts_warm(
    harness: Harness, tmp_path: Path
) -> None:
    ts, values = _learning()
    await harness.push(_msg("1-1", ts, values))
    await harness.job.aclose()
    (path,) = (tmp_path / "detect").iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    header, arrays = snapshot.read(path)
    (group,) = [g for g in header["groups"] if g["keys"]]
    assert group["keys"] == [["cpu_idle", [["host", "web1"]]]]
    (seen,) = [a for name, a in arrays.items() if name.endswith(".gate.n")]
    assert seen.tolist() == [60]
    again = PushScoringJob(CONFIG, harness.bus, FakeClock(), tmp_path / "detect")
    await again.handle(_msg("9-1", [ts[-1] + 10_000], [50.0]))
    await again.tick()
    assert again.stats.series == {"learning": 0, "active": 1, "stale": 0}
    # A redelivered message from before the restart is all late: nothing is learned twice.
    await again.handle(_msg("1-1", ts, values))
    await again.tick()
    assert again.stats.points["late"] == 60 and again.stats.points["scored"] == 1


async def test_a_full_queue_drops_whole_messages_and_counts_their_points(tmp_path: Path) -> None:
    clock = FakeClock()
    bus = MemoryBus(MemoryBusConfig(), clock)
    job = PushScoringJob(CONFIG.model_copy(update={"max_queued_points": 5}), bus, clock, tmp_path)
    await job.handle(_msg("1-1", [1, 2, 3, 4], [1.0] * 4))
    await job.handle(_msg("1-2", [5, 6], [1.0] * 2))
    assert job.queued_points == 4 and job.stats.points["dropped_queue"] == 2
    await job.aclose()
    assert job.stats.points["dropped_stop"] == 4


def test_a_pushed_batch_is_split_into_parts_under_the_bus_limit_holding_every_finite_point_once() -> None:
    n = 5_000
    long_values = np.linspace(0.1, 1e300, n)
    long_values[7] = np.nan
    series = (
        SeriesPoints(SeriesKey.of("big", {"host": "a" * 300}), np.arange(n, dtype=np.int64), long_values),
        SeriesPoints(SeriesKey.of("small", {"q": 'quo"te\n'}), np.array([5], np.int64), np.array([1.5])),
    )
    out = messages(SOURCE, "1-1", Batch(boot_epoch=1, seq=1, series=series), pushed=True)
    parts = [m for m in out.messages if isinstance(m, PointsPushed)]
    assert len(parts) > 1 and out.refused == 0
    assert [p.part for p in parts] == list(range(len(parts)))
    assert all(len(p.to_bytes()) <= MAX_MESSAGE_BYTES for p in parts)
    points: dict[str, list[tuple[int, float]]] = {}
    for p in parts:
        keys = json.loads(p.series)
        owners = [k[0] for k, c in zip(keys, p.counts, strict=True) for _ in range(c)]
        for metric, t, v in zip(owners, p.ts_ms, p.values, strict=True):
            points.setdefault(metric, []).append((t, v))
    assert points["big"] == [(t, float(v)) for t, v in enumerate(long_values) if t != 7]
    assert points["small"] == [(5, 1.5)]
    assert json.loads(parts[-1].series)[-1] == ["small", [["q", 'quo"te\n']]]
    # An agent's batch carries no points: its agent scored them.
    agents = messages("dc1/edge", "1-1", Batch(boot_epoch=1, seq=1, series=series))
    assert not any(isinstance(m, PointsPushed) for m in agents.messages)


def test_key_texts_from_many_threads_while_keys_come_and_go_are_always_their_own_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key-text cache files texts by id(): with the cache starting over every few batches and key
    objects freed and their ids reused by new ones, every part still names exactly its own series."""
    monkeypatch.setattr(publish, "MAX_KEY_TEXTS", 40)

    def push(worker: int) -> list[str]:
        wrong = []
        for round_ in range(40):
            keys = [SeriesKey.of("m", {"w": str(worker), "r": str(round_), "i": str(i)}) for i in range(12)]
            series = tuple(SeriesPoints(k, np.array([1], np.int64), np.array([1.0])) for k in keys)
            out = messages(SOURCE, f"{worker}-{round_}", Batch(1, round_, series), pushed=True)
            for part in (m for m in out.messages if isinstance(m, PointsPushed)):
                named = [SeriesKey(m, tuple(map(tuple, labels))) for m, labels in json.loads(part.series)]
                if part.keys is None or named != list(part.keys):
                    wrong.append(part.id)
            del keys, series, out  # their ids are free for the next round's keys
        return wrong

    with ThreadPoolExecutor(6) as pool:
        assert [w for ws in pool.map(push, range(6)) for w in ws] == []


def test_a_push_given_as_columns_publishes_what_the_same_series_publish() -> None:
    series = (
        SeriesPoints(
            SeriesKey.of("cpu_usage", {"host": "a"}), np.array([1, 2], np.int64), np.array([1.0, 2.0])
        ),
        SeriesPoints(SeriesKey.of("hw_health", {"host": "a"}), np.array([3], np.int64), np.array([2.0])),
    )
    columns = SeriesColumns.of_series(series)
    for pushed in (True, False):
        as_series = messages(SOURCE, "1-1", Batch(boot_epoch=1, seq=1, series=series), pushed=pushed)
        as_columns = messages(SOURCE, "1-1", Batch(boot_epoch=1, seq=1), pushed=pushed, columns=columns)
        assert [m.to_json() for m in as_columns.messages] == [m.to_json() for m in as_series.messages]
        assert {type(m).__name__ for m in as_columns.messages} >= {"BatchStored", "LimitCrossed"}


async def test_a_message_whose_columns_disagree_is_dropped_and_counted(harness: Harness) -> None:
    bad = PointsPushed.create(
        agent=SOURCE,
        batch_id="1-1",
        part=0,
        series='[["x", []]]',
        counts=(3,),
        ts_ms=(1, 2),
        values=(1.0, 2.0),
    )
    await harness.push(bad)
    await harness.push(_msg("1-2", [1], [1.0]))
    assert harness.job.stats.malformed_messages == 1 and harness.job.stats.points["scored"] == 1


async def test_a_remembered_key_text_with_columns_that_disagree_is_still_refused(harness: Harness) -> None:
    await harness.push(_msg("1-1", [1, 2], [1.0, 2.0]))
    good = _msg("1-2", [3], [1.0])
    bad = PointsPushed.create(
        agent=SOURCE,
        batch_id="1-3",
        part=0,
        series=good.series,  # the text the job has parsed before
        counts=(2,),
        ts_ms=(4,),
        values=(1.0,),
    )
    await harness.push(good)
    await harness.push(bad)
    assert harness.job.stats.malformed_messages == 1 and harness.job.stats.points["scored"] == 3


async def test_pushed_parts_carry_their_parsed_keys_in_process_and_score_the_same_from_the_wire(
    harness: Harness,
) -> None:
    def parts(batch: int) -> list[PointsPushed]:
        t = np.array([2 * batch, 2 * batch + 1], np.int64)
        series = tuple(
            SeriesPoints(SeriesKey.of(f"m{i}", {"host": "a"}), t, np.array([1.0, 2.0])) for i in range(3)
        )
        out = messages(SOURCE, f"1-{batch}", Batch(1, batch, series), pushed=True).messages
        return [m for m in out if isinstance(m, PointsPushed)]

    (local,) = parts(1)
    assert local.keys == tuple(SeriesKey.of(f"m{i}", {"host": "a"}) for i in range(3))
    assert json.loads(local.series) == [[k.metric, [list(p) for p in k.labels]] for k in local.keys]
    (wire,) = [decode(m.TOPIC, m.to_bytes()) for m in parts(2)]
    assert isinstance(wire, PointsPushed) and wire.keys is None
    await harness.push(local)
    await harness.push(wire)  # its key text is read: the same series, scored on
    assert harness.job.stats.points["scored"] == 12 and harness.job.stats.malformed_messages == 0
    assert sum(harness.job.stats.series.values()) == 3  # one series each, however its keys came


async def test_one_tick_numbers_a_series_once_however_many_objects_and_parts_carry_its_key(
    harness: Harness,
) -> None:
    """Keys are numbered by object first (cheap), then by value: the same key object twice in one part
    (a long series in two slices), and an equal key decoded from the wire, are all one series."""
    key = SeriesKey.of("cpu_idle", {"host": "web1"})
    twice = PointsPushed.create(
        agent=SOURCE,
        batch_id="1-1",
        part=0,
        series=json.dumps([[key.metric, key.labels]] * 2),
        counts=(2, 2),
        ts_ms=(1_000, 2_000, 3_000, 4_000),
        values=(1.0, 2.0, 3.0, 4.0),
        keys=(key, key),
    )
    wire = decode(PointsPushed.TOPIC, _msg("1-2", [5_000, 6_000], [5.0, 6.0]).to_bytes())
    assert isinstance(wire, PointsPushed) and wire.keys is None
    await harness.job.handle(twice)
    await harness.job.handle(wire)
    await harness.job.tick()
    assert harness.job.stats.points["scored"] == 6 and harness.job.stats.malformed_messages == 0
    assert harness.job.stats.series == {"learning": 1, "active": 0, "stale": 0}


async def _ticks(clock: FakeClock, n: int) -> None:
    for _ in range(n):
        await clock.advance(1.0)


async def _until(check: Callable[[], bool]) -> None:
    """Waits (up to 30 s of wall time: the scoring thread shares a loaded CI machine) for a tick to score."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the tick did not score in time")


async def _ticking_until(clock: FakeClock, check: Callable[[], bool]) -> None:
    """Advances the clock a tick at a time (up to 30 s of wall time) until `check()` holds."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if check():
            return
        await clock.advance(1.0)
        await asyncio.sleep(0.01)
    raise AssertionError("no tick scored in time")


async def test_ticks_wait_while_ingest_is_busy_for_at_most_yield_to_ingest_s(tmp_path: Path) -> None:
    clock = FakeClock()
    bus = MemoryBus(MemoryBusConfig(), clock)
    busy = [True]
    config = CONFIG.model_copy(update={"tick_s": 1.0, "yield_to_ingest_s": 5.0})
    job = PushScoringJob(config, bus, clock, tmp_path, ingest_busy=lambda: busy[0])
    await job.start()
    await asyncio.sleep(0)  # the loop starts its first sleep
    try:
        await job.handle(_msg("1-1", [1, 2], [1.0, 2.0]))
        await _ticks(clock, 4)
        assert job.stats.points["scored"] == 0 and job.stats.yielded_ticks == 4
        await _ticks(clock, 1)  # waited yield_to_ingest_s: scored although ingest is still busy
        await _until(lambda: job.stats.points["scored"] == 2)
        busy[0] = False
        await job.handle(_msg("1-2", [3], [1.0]))
        # Ticks until it scores: the loop may still be on its way back to its sleep when a single
        # advance of the clock comes, and would then wait for the next one.
        await _ticking_until(clock, lambda: job.stats.points["scored"] == 3)
        assert job.stats.yielded_ticks == 4  # ingest idle: no tick yielded since
    finally:
        await job.aclose()
