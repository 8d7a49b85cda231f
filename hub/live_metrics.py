"""The hub's scrape-time collector: counters the store keeps itself, read when Prometheus scrapes.

The stores count rejections, flushes and skipped journal records in plain attributes on their hot
path (under their own lock, no prometheus call per point); this collector turns them into series on
each scrape, so nothing is copied between scrapes and a counter that exists always reaches /metrics.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, Metric

from hub.store.base import Store
from hub.store.embedded.store import EmbeddedStore
from hub.store.influx.store import InfluxStore


class StoreCollector:
    """A prometheus_client custom collector over the hub's store (embedded or InfluxDB)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterable[Metric]:
        store = self._store
        if isinstance(store, EmbeddedStore):
            st = store.stats
            for name, doc, value in (
                ("flushes", "Head flushes into chunks", st.flushes),
                ("flush_failures", "Head flushes that failed (retried a minute later)", st.flush_failures),
                (
                    "flush_waits",
                    "Writes that waited for a background head flush (the next head filled first)",
                    st.flush_waits,
                ),
                ("rejected_series", "Malformed series refused in a batch; logged once", st.rejected_series),
                ("points_below_retention", "Points past raw retention, dropped", st.points_below_retention),
                (
                    "journal_records_skipped",
                    "Ingest journal records skipped on replay (damaged or undecodable)",
                    st.journal_records_skipped,
                ),
            ):
                yield CounterMetricFamily(f"outpost_hub_store_{name}", doc, value=value)
        elif isinstance(store, InfluxStore):
            yield CounterMetricFamily(
                "outpost_hub_store_skipped_points",
                "Non-finite values InfluxDB cannot hold, skipped; logged once",
                value=store.skipped_points,
            )
