"""Notify's counters, kept as plain numbers by the dispatcher and exported at scrape time.

`NotifyStats` is what the dispatcher bumps (under a lock: `submit_in` may run in a caller's thread);
`NotifyCollector` turns a snapshot into Prometheus families when /metrics is scraped, so nothing is
registered globally and several dispatchers (tests, several hubs in one process) never collide.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

# created -> sent: from sub-second (receiver up) to the retry deadline (an hour by default).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, value)] += 1
        self.total += value


@dataclass(frozen=True)
class StatsSnapshot:
    sent: dict[str, int]
    retried: dict[str, int]
    dead_lettered: dict[tuple[str, str], int]
    dropped: dict[tuple[str, str], int]
    duplicates: dict[str, int]
    outbox_errors: int
    latency: dict[str, tuple[list[int], float]]


class NotifyStats:
    """Per-receiver counters: sent, retried, dead-lettered (by reason), dropped (by reason), duplicates."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: Counter[str] = Counter()
        self._retried: Counter[str] = Counter()
        self._dead: Counter[tuple[str, str]] = Counter()
        self._dropped: Counter[tuple[str, str]] = Counter()
        self._duplicates: Counter[str] = Counter()
        self._outbox_errors = 0
        self._latency: dict[str, _Histogram] = {}

    def sent(self, receiver: str, latency_s: float) -> None:
        with self._lock:
            self._sent[receiver] += 1
            self._latency.setdefault(receiver, _Histogram()).observe(max(0.0, latency_s))

    def retried(self, receiver: str) -> None:
        with self._lock:
            self._retried[receiver] += 1

    def dead_lettered(self, receiver: str, reason: str) -> None:
        with self._lock:
            self._dead[(receiver, reason)] += 1

    def dropped(self, receiver: str, reason: str) -> None:
        with self._lock:
            self._dropped[(receiver, reason)] += 1

    def duplicate(self, receiver: str) -> None:
        with self._lock:
            self._duplicates[receiver] += 1

    def outbox_error(self) -> None:
        with self._lock:
            self._outbox_errors += 1

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                dict(self._sent),
                dict(self._retried),
                dict(self._dead),
                dict(self._dropped),
                dict(self._duplicates),
                self._outbox_errors,
                {r: (list(h.counts), h.total) for r, h in self._latency.items()},
            )


class NotifyCollector(Collector):
    """Register on the hub's registry: `registry.register(NotifyCollector(dispatcher.stats, ...))`."""

    def __init__(self, stats: NotifyStats, queued: Callable[[], int] | None = None) -> None:
        self._stats = stats
        self._queued = queued

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        s = self._stats.snapshot()
        for name, doc, values in (
            ("outpost_hub_notify_sent", "Notifications a receiver acknowledged", s.sent),
            ("outpost_hub_notify_retried", "Failed attempts scheduled for a retry", s.retried),
            ("outpost_hub_notify_duplicates", "Submits of a (receiver, id) already queued", s.duplicates),
        ):
            fam = CounterMetricFamily(name, doc, labels=["receiver"])
            for receiver, v in sorted(values.items()):
                fam.add_metric([receiver], v)
            yield fam
        for name, doc, pairs in (
            ("outpost_hub_notify_dead_lettered", "Notifications given up on, by reason", s.dead_lettered),
            ("outpost_hub_notify_dropped", "Notifications refused by submit, by reason", s.dropped),
        ):
            fam = CounterMetricFamily(name, doc, labels=["receiver", "reason"])
            for (receiver, reason), v in sorted(pairs.items()):
                fam.add_metric([receiver, reason], v)
            yield fam
        yield CounterMetricFamily(
            "outpost_hub_notify_outbox_errors",
            "Outbox reads/writes that failed (retried)",
            value=s.outbox_errors,
        )
        hist = HistogramMetricFamily(
            "outpost_hub_notify_latency_seconds",
            "From notification created to acknowledged",
            labels=["receiver"],
        )
        for receiver, (counts, total) in sorted(s.latency.items()):
            cumulative, buckets = 0, []
            for le, c in zip([*map(str, LATENCY_BUCKETS), "+Inf"], counts, strict=True):
                cumulative += c
                buckets.append((le, float(cumulative)))
            hist.add_metric([receiver], buckets, total)
        yield hist
        if self._queued is not None:
            yield GaugeMetricFamily(
                "outpost_hub_notify_intake", "Submitted, not yet in the outbox", value=self._queued()
            )
