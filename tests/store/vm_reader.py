"""Reads an InfluxDB backend's writes back from VictoriaMetrics, which takes `/api/v2/write` but not InfluxQL.

Plugged into `InfluxStore` as its reader so the conformance suite can check what influxdb-client wrote.
Raw points come from VictoriaMetrics' export API; step buckets are aggregated here with the store's own
`aggregate`, as VictoriaMetrics has no InfluxQL-style GROUP BY time.
"""

from __future__ import annotations

import json
import re

import httpx
import numpy as np

from hub.matchers import Matcher
from hub.store.base import RangeQuery, SeriesResult, aggregate, effective_step
from shared.model import SeriesKey

_ALL_TIME = {"start": "0", "end": "4102444800"}


class VictoriaMetricsReader:
    """Implements `hub.store.influx.influxql.InfluxReader` over `/api/v1/export`."""

    def __init__(self, url: str) -> None:
        self._url = url

    def query(self, q: RangeQuery) -> list[SeriesResult]:
        found = []
        for key, ts, vals in self._export(q.metric):
            keep = (ts >= q.start_ms) & (ts <= q.end_ms)
            ts, vals = ts[keep], vals[keep]
            if all(m.matches(key) for m in q.matchers) and ts.shape[0]:
                found.append((key, ts, vals))
        if not found:
            return []
        # The step fits the data present, as in the stores: first/last point and the longest series.
        step = effective_step(
            q,
            min(int(ts[0]) for _, ts, _ in found),
            max(int(ts[-1]) for _, ts, _ in found),
            max(ts.shape[0] for _, ts, _ in found),
        )
        out = []
        for key, ts, vals in found:
            if step:
                ts, vals = aggregate(ts, vals, step, q.agg)
            out.append(SeriesResult(key, ts, vals))
        return sorted(out, key=lambda r: str(r.key))

    def series(self, metric: str | None, matchers: tuple[Matcher, ...]) -> list[SeriesKey]:
        keys = [key for key, _, _ in self._export(metric)]
        return sorted((k for k in keys if all(m.matches(k) for m in matchers)), key=str)

    def _export(self, metric: str | None) -> list[tuple[SeriesKey, np.ndarray, np.ndarray]]:
        # Written rows become searchable after an in-memory flush; force it so reads see every ack'd write.
        httpx.get(f"{self._url}/internal/force_flush").raise_for_status()
        name = ".+" if metric is None else re.escape(metric).replace("\\", "\\\\")
        match = f'{{__name__=~"{name}"}}'
        resp = httpx.post(f"{self._url}/api/v1/export", data={"match[]": match, **_ALL_TIME})
        resp.raise_for_status()
        out = []
        for line in resp.text.splitlines():
            row = json.loads(line)
            labels = dict(row["metric"])
            name = labels.pop("__name__")
            ts = np.asarray(row["timestamps"], dtype=np.int64)
            vals = np.asarray(row["values"], dtype=np.float64)
            order = np.argsort(ts, kind="stable")
            out.append((SeriesKey.of(name, labels), ts[order], vals[order]))
        return out
