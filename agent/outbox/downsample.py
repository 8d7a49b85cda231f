"""Downsampling raw metric batches into 5-minute min/max/avg/count rollups, the spool's first relief valve.

Why: when the spool nears its size limit (a long WAN outage), keeping a coarse shape of every series is
worth more than keeping full resolution for some series and nothing for others. A rollup batch keeps the
original batch id, so the hub's dedup and gap tracking treat it as the batch it replaces.
"""

from __future__ import annotations

import numpy as np

from shared.model import Batch, BatchClass, MetricKind, SeriesKey, SeriesPoints

ROLLUP_BUCKET_MS = 5 * 60 * 1000
# Label added to every rollup series; its value names the aggregate, so `agg` queries stay per series.
ROLLUP_LABEL = "rollup"
_AGGS = ("min", "max", "avg", "count")


def rollup_batch(batch: Batch, bucket_ms: int = ROLLUP_BUCKET_MS) -> Batch:
    """Returns the batch with each series replaced by four per-bucket aggregate series (class ROLLUP).

    Buckets are aligned to multiples of `bucket_ms` and stamped with their start; events ride along.
    """
    series: list[SeriesPoints] = []
    suffix = f"_{bucket_ms // 60_000}m" if bucket_ms % 60_000 == 0 else f"_{bucket_ms}ms"
    for s in batch.series:
        if not len(s):
            continue
        buckets = (s.timestamps_ms // bucket_ms) * bucket_ms
        starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
        counts = np.diff(np.r_[starts, s.values.shape[0]]).astype(np.float64)
        values = {
            "min": np.minimum.reduceat(s.values, starts),
            "max": np.maximum.reduceat(s.values, starts),
            "avg": np.add.reduceat(s.values, starts) / counts,
            "count": counts,
        }
        labels = dict(s.key.labels)
        for agg in _AGGS:
            key = SeriesKey.of(s.key.metric, {**labels, ROLLUP_LABEL: agg + suffix})
            kind = MetricKind.GAUGE if agg == "count" else s.kind
            unit = "" if agg == "count" else s.unit
            series.append(SeriesPoints(key, buckets[starts], values[agg].astype(np.float64), kind, unit))
    return Batch(batch.boot_epoch, batch.seq, tuple(series), batch.events, BatchClass.ROLLUP)
