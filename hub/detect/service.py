"""The push scoring job: `PointsPushed` in, the pushed series scored by a detector bank per source, and
every anomaly onset and end out as the `AnomalyReported` an agent's would be.

A run-once job in a worker (`hub.pipeline`, lock `detect`): with several workers on NATS exactly one
scores, so each source's series are scored once, in order, by one bank. Messages go into a bounded queue
(counted in points) and are scored every `tick_s` in one worker thread; the anomalies are published from
the loop, so confirmation and the `EdgeAnomaly` rule apply unchanged. Per series, points are scored in
time order: a tick's points of one source are sorted together (one vectorized bank step per point of
a series, not per message), a repeated timestamp keeps its last value, and a point not newer than what
the bank learned last (late, or a redelivered message) is skipped and counted, which also makes a
redelivery after a restart harmless. Queued messages are acknowledged to the bus at once
(batching needs many in hand), so a worker that dies loses at most one tick of them. Scoring runs in
the process that ingests, so it yields: while pushes are being stored, a tick waits (up to
`yield_to_ingest_s`, or until the queue is half full), as the API's queries yield to ingest.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hub.bus.base import Bus
from hub.bus.errors import BusError, MessageError
from hub.bus.job import JobTasks
from hub.bus.messages import AnomalyReported, Message, PointsPushed
from hub.detect.config import PushDetectConfig
from hub.detect.state import BankFiles
from hub.ingest.publish import anomaly_message
from shared.clock import Clock
from shared.detect import DetectorBank
from shared.logging import UpDown
from shared.model import SeriesKey

log = logging.getLogger(__name__)

GROUP = "detect"
# Point results on /metrics: scored; late (not newer than the series' last point); duplicate (a
# timestamp repeated within a message); capped (a new series past max_series_per_source); dropped_queue
# (the queue was full); dropped_source (past max_sources); dropped_stop (queued when the job stopped).
RESULTS = ("scored", "late", "duplicate", "capped", "dropped_queue", "dropped_source", "dropped_stop")
_SEEN_IDS = 100_000
# Anomalies the bus refused are retried next tick, at most this many (then dropped, counted).
MAX_UNSENT = 10_000
# Key texts remembered with their parsed keys: a source pushing the same series every interval sends the
# same texts (same parts), and parsing them is the scorer's largest cost per series.
KEY_CACHE = 128  # at most ~9 MB: a part's key text is under 32 KB


@dataclass(slots=True)
class DetectStats:
    """Counts the job keeps for /metrics (written on the loop and in the scoring thread under its lock;
    the collector copies them)."""

    # Every key present from the start, so a scrape copying them never sees the dict grow.
    points: Counter[str] = field(default_factory=lambda: Counter(dict.fromkeys(RESULTS, 0)))  # by result
    anomalies: Counter[str] = field(default_factory=lambda: Counter({"onset": 0, "end": 0}))  # by phase
    duplicate_messages: int = 0
    malformed_messages: int = 0  # columns that disagree (not from this hub's ingest)
    refused_anomalies: int = 0  # a field the bus refuses
    publish_failures: int = 0  # anomalies the bus did not take (retried)
    unsent_dropped: int = 0
    snapshot_failures: int = 0
    failed_ticks: int = 0
    yielded_ticks: int = 0  # ticks that waited for ingest
    ticks: int = 0
    tick_seconds: float = 0.0
    series: dict[str, int] = field(default_factory=dict)  # by state, after the last tick
    sources: int = 0


class PushScoringJob:
    """`start` subscribes and starts ticking; `aclose` unsubscribes, stops and saves every bank (safe
    twice, safe unstarted). `ingest_busy` says whether this process is storing pushes right now
    (`Ingestor.busy`): ticks then wait, up to `yield_to_ingest_s`."""

    name = "push scoring"

    def __init__(
        self,
        config: PushDetectConfig,
        bus: Bus,
        clock: Clock,
        state_dir: Path,
        ingest_busy: Callable[[], bool] = lambda: False,
    ) -> None:
        self.config = config
        self._ingest_busy = ingest_busy
        self._queued_since: float | None = None  # monotonic time the oldest queued message arrived
        self.stats = DetectStats()
        self._bank_config = config.bank_config()
        self._files = BankFiles(state_dir)
        self._bus = bus
        self._clock = clock
        self._banks: dict[str, DetectorBank] = {}
        self._pending: deque[PointsPushed] = deque()
        self._queued_points = 0
        self._unsent: list[AnomalyReported] = []
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._key_cache: OrderedDict[str, list[SeriesKey]] = OrderedDict()  # scoring thread only
        # One scoring thread at a time: a tick cancelled at stop may still be running when aclose saves.
        self._lock = threading.Lock()
        self._running = JobTasks()
        self._queue_room = UpDown(log, "push scoring queue", clock)
        self._health = UpDown(log, "push scoring", clock)
        self._snapshots = UpDown(log, "push scoring snapshots", clock)
        self._sources_full_logged = False

    async def start(self) -> None:
        self._running.subscribe(self._bus, PointsPushed.TOPIC, GROUP, self.handle)
        self._running.spawn("push-scoring", self._loop())

    async def aclose(self) -> None:
        await self._running.stop()
        # The bus stops before this job (pipeline order): what is queued could not be announced.
        self.stats.points["dropped_stop"] += self._queued_points
        self._pending.clear()
        self._queued_points = 0
        self._queued_since = None
        await asyncio.to_thread(self._save_all)

    @property
    def queued_points(self) -> int:
        return self._queued_points

    async def handle(self, msg: Message) -> None:
        """Queues a message for the next tick; a repeated id or a full queue is not queued (counted)."""
        if not isinstance(msg, PointsPushed):
            return
        if msg.id in self._seen:
            self.stats.duplicate_messages += 1
            return
        n = len(msg.ts_ms)
        if self._queued_points + n > self.config.max_queued_points:
            self.stats.points["dropped_queue"] += n
            self._queue_room.down(f"full ({self.config.max_queued_points} points), dropping pushed points")
            return
        if self._queued_points * 2 <= self.config.max_queued_points:
            self._queue_room.up()  # "back" only once half drained, not at every message near the limit
        self._pending.append(msg)
        self._queued_points += n
        if self._queued_since is None:
            self._queued_since = self._clock.monotonic()
        self._seen[msg.id] = None
        while len(self._seen) > _SEEN_IDS:
            self._seen.popitem(last=False)

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep(self.config.tick_s)
            if self._yields():
                self.stats.yielded_ticks += 1
                continue
            try:
                await self.tick()
            except Exception as exc:  # a failed tick's points go unscored (the tick is counted); it ticks on
                self.stats.failed_ticks += 1
                self._health.down(f"{type(exc).__name__}: {exc}", exc_info=True)
            else:
                self._health.up()

    def _yields(self) -> bool:
        """Whether this tick waits for ingest: pushes are being stored, the oldest queued point has
        waited less than `yield_to_ingest_s` and the queue is less than half full."""
        since = self._queued_since
        return (
            since is not None
            and self._clock.monotonic() - since < self.config.yield_to_ingest_s
            and self._queued_points * 2 < self.config.max_queued_points
            and self._ingest_busy()
        )

    async def tick(self) -> int:
        """Scores everything queued and publishes the anomalies; returns how many were published."""
        batch = list(self._pending)
        self._pending.clear()
        self._queued_points = 0
        self._queued_since = None
        if batch:
            started = time.perf_counter()
            self._unsent += await asyncio.to_thread(self._score, batch)
            self.stats.ticks += 1
            self.stats.tick_seconds += time.perf_counter() - started
        return await self._publish()

    async def _publish(self) -> int:
        published = 0
        for i, msg in enumerate(self._unsent):
            try:
                await self._bus.publish(msg)
            except BusError:
                self.stats.publish_failures += len(self._unsent) - i
                keep = self._unsent[i:]
                self.stats.unsent_dropped += max(0, len(keep) - MAX_UNSENT)
                self._unsent = keep[:MAX_UNSENT]
                return published
            self.stats.anomalies[msg.phase] += 1
            published += 1
        self._unsent = []
        return published

    def _score(self, batch: list[PointsPushed]) -> list[AnomalyReported]:
        """Scores the tick's messages (in a worker thread), each source's together so a series' points of
        several pushes are one vectorized step per point; the anomalies to publish."""
        by_source: dict[str, list[PointsPushed]] = {}
        for msg in batch:
            by_source.setdefault(msg.agent, []).append(msg)
        out: list[AnomalyReported] = []
        with self._lock:
            for source, msgs in by_source.items():
                bank = self._bank(source)
                if bank is None:
                    self.stats.points["dropped_source"] += sum(m.ts_ms.shape[0] for m in msgs)
                    continue
                out += self._score_source(source, bank, msgs)
                try:
                    self._files.maybe_save(source, bank, self._clock.monotonic())
                except OSError as exc:  # a full disk costs the snapshot, never the scoring
                    self.stats.snapshot_failures += 1
                    self._snapshots.down(f"could not save detector state of {source}: {exc.strerror}")
                else:
                    self._snapshots.up()
            self._count_series()
        return out

    def _score_source(
        self, source: str, bank: DetectorBank, msgs: list[PointsPushed]
    ) -> list[AnomalyReported]:
        series, index, ts, values = self._in_order(bank, msgs)
        capped = bank.dropped_series
        obs = bank.observe_series(series, index, ts, values)
        capped = bank.dropped_series - capped  # one per point of a series the bank had no room for
        self.stats.points["capped"] += capped
        self.stats.points["scored"] += index.shape[0] - capped
        out = []
        for event in obs.events:
            try:
                anomaly = anomaly_message(source, event)
            except MessageError:
                self.stats.refused_anomalies += 1
                continue
            if anomaly is not None:
                out.append(anomaly)
        return out

    def _in_order(
        self, bank: DetectorBank, msgs: list[PointsPushed]
    ) -> tuple[list[SeriesKey], np.ndarray, np.ndarray, np.ndarray]:
        """The messages' points to score: their distinct series, then per point its series' number, time
        and value, each series' points in time order: one value per timestamp (the last sent), none older
        than or as old as the bank's latest point of that series. A message whose columns disagree is
        dropped whole (counted)."""
        # Series numbered by key object first: receivers hand over the same SeriesKey objects push after
        # push (the parser caches them), so a tick of many pushes hashes each key once, not once a push.
        numbers: dict[int, int] = {}
        key_list: list[SeriesKey] = []
        kids, stamps, values = [], [], []
        for msg in msgs:
            try:
                keys = self._keys(msg)
            except (ValueError, TypeError):
                self.stats.malformed_messages += 1
                continue
            known = len(numbers)
            per_series = [numbers.setdefault(id(key), len(numbers)) for key in keys]
            if len(numbers) > known:  # new objects, in number order (one appearing twice counted once)
                key_list += {n: key for key, n in zip(keys, per_series, strict=True) if n >= known}.values()
            kids.append(np.repeat(np.asarray(per_series, dtype=np.intp), msg.counts))
            stamps.append(msg.ts_ms)
            values.append(msg.values)
        if not kids:
            return [], np.zeros(0, np.intp), np.zeros(0, np.int64), np.zeros(0, np.float64)
        kid, ts, x = np.concatenate(kids), np.concatenate(stamps), np.concatenate(values)
        if len(set(key_list)) < len(key_list):  # equal keys in different objects (from NATS): one number
            canonical: dict[SeriesKey, int] = {}
            renumber = np.fromiter(
                (canonical.setdefault(key, len(canonical)) for key in key_list), np.intp, len(key_list)
            )
            kid, key_list = renumber[kid], list(canonical)
        total = kid.shape[0]
        order = np.lexsort((np.arange(total), ts, kid))  # by series, then time, then as sent
        kid, ts, x = kid[order], ts[order], x[order]
        repeated = np.zeros(total, dtype=np.bool_)
        repeated[:-1] = (kid[:-1] == kid[1:]) & (ts[:-1] == ts[1:])  # a later copy follows: keep that one
        late = ~repeated & (ts <= bank.last_seen_ms(key_list)[kid])
        self.stats.points["duplicate"] += int(repeated.sum())
        self.stats.points["late"] += int(late.sum())
        keep = ~(repeated | late)
        return key_list, kid[keep], ts[keep], x[keep]

    def _keys(self, msg: PointsPushed) -> list[SeriesKey] | tuple[SeriesKey, ...]:
        """The message's own parsed keys when it carries them (published in this process), else
        `_keys`, remembered by key text (least recently used forgotten first)."""
        if msg.keys is not None:
            _check_columns(msg, len(msg.keys))
            return msg.keys
        keys = self._key_cache.get(msg.series)
        if keys is None:
            keys = self._key_cache[msg.series] = _keys(msg)
            if len(self._key_cache) > KEY_CACHE:
                self._key_cache.popitem(last=False)
        else:
            self._key_cache.move_to_end(msg.series)
            _check_columns(msg, len(keys))
        return keys

    def _bank(self, source: str) -> DetectorBank | None:
        bank = self._banks.get(source)
        if bank is not None:
            return bank
        if len(self._banks) >= self.config.max_sources:
            if not self._sources_full_logged:
                self._sources_full_logged = True
                log.warning("max_sources=%d reached; points of new sources dropped", self.config.max_sources)
            return None
        bank = self._banks[source] = self._files.load(source, self._bank_config)
        return bank

    def _count_series(self) -> None:
        total: Counter[str] = Counter()
        for bank in self._banks.values():
            total.update(bank.states())
        self.stats.series = dict(total)
        self.stats.sources = len(self._banks)

    def _save_all(self) -> None:
        """Saves every bank and forgets them (a job that leads again reloads its files)."""
        with self._lock:
            for source, bank in self._banks.items():
                try:
                    self._files.save(source, bank)
                except OSError as exc:
                    self.stats.snapshot_failures += 1
                    log.warning("could not save detector state of %s: %s", source, exc.strerror)
            self._banks.clear()


def _keys(msg: PointsPushed) -> list[SeriesKey]:
    """The series of a message, checked against its point columns.

    Raises:
        ValueError, TypeError: the key text is not a list of `[metric, [[label, value], ...]]`, or the
            counts do not add up to the points.
    """
    raw = json.loads(msg.series)
    if not isinstance(raw, list):
        raise ValueError("the key text is not a list")
    _check_columns(msg, len(raw))
    keys = []
    for item in raw:
        metric, labels = item
        pairs = tuple(sorted((k, v) for k, v in labels))
        if not (isinstance(metric, str) and all(isinstance(k, str) and isinstance(v, str) for k, v in pairs)):
            raise ValueError("keys are strings")
        keys.append(SeriesKey(metric, pairs))
    return keys


def _check_columns(msg: PointsPushed, n_keys: int) -> None:
    """Raises ValueError unless there is one count per key and the counts add up to the points."""
    counts = msg.counts
    if (
        n_keys != counts.shape[0]
        or msg.ts_ms.shape != msg.values.shape
        or int(counts.sum()) != msg.ts_ms.shape[0]
        or bool((counts < 0).any())
    ):
        raise ValueError("point columns disagree")
