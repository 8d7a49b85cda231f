"""Prometheus exposure of `BusStats`: a custom collector read at scrape time (no second set of counters).

The integrator registers one per bus: `registry.register(BusCollector(bus.stats))`.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from hub.bus.base import BusStats

_PREFIX = "outpost_hub_bus"


class BusCollector:
    """A prometheus_client custom collector: `collect()` copies the counters and reports them."""

    def __init__(self, stats: BusStats) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        s = self._stats.snapshot()
        by_topic = (
            ("published", "Messages published (confirmed by the broker, for nats)", s.published),
            ("duplicates", "Published ids the broker already had (stored once)", s.duplicates),
            ("publish_failures", "Publishes the broker did not confirm in time (raised)", s.publish_failures),
            ("decode_errors", "Messages that could not be decoded (dropped)", s.decode_errors),
        )
        for name, doc, values in by_topic:
            family = CounterMetricFamily(f"{_PREFIX}_{name}", doc, labels=["topic"])
            for topic, n in sorted(values.items()):
                family.add_metric([topic], n)
            yield family
        by_group = (
            ("delivered", "Messages a handler processed", s.delivered),
            ("handler_failures", "Handler calls that raised (the message is retried)", s.handler_failures),
            ("dead", "Messages given up after the last attempt", s.dead),
            ("dropped", "Messages dropped because the group's queue was full", s.dropped),
        )
        for name, doc, pairs in by_group:
            family = CounterMetricFamily(f"{_PREFIX}_{name}", doc, labels=["topic", "group"])
            for (topic, group), n in sorted(pairs.items()):
                family.add_metric([topic, group], n)
            yield family
        yield CounterMetricFamily(
            f"{_PREFIX}_tail_failures", "Tail handler calls that raised (message skipped)", s.tail_failures
        )
