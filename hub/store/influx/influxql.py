"""Reads over InfluxQL `/query`, which InfluxDB 1.x, 2.x (v1 compatibility API) and 3.x all answer.

Only `=` matchers are pushed into the WHERE clause; every matcher is then applied to the returned tag
sets in Python, so regex matchers keep PromQL's anchored RE semantics whatever the server's dialect.
Step buckets use `GROUP BY time(<step>ms)`, aligned to epoch multiples like the embedded store.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any, Protocol

import numpy as np

from hub.store.base import Agg, Matcher, MatchOp, RangeQuery, SeriesResult, effective_step
from hub.store.errors import StoreError
from hub.store.influx.http import InfluxHttp
from hub.store.influx.lineproto import FIELD, parse_series_key
from shared.model import SeriesKey

_FUNCTIONS = {
    Agg.AVG: "mean",
    Agg.MIN: "min",
    Agg.MAX: "max",
    Agg.LAST: "last",
    Agg.COUNT: "count",
    Agg.SUM: "sum",
}


class InfluxReader(Protocol):
    """The read half of the InfluxDB backend; pluggable because not every server speaks InfluxQL."""

    def query(self, q: RangeQuery) -> list[SeriesResult]: ...

    def series(self, metric: str | None, matchers: tuple[Matcher, ...]) -> list[SeriesKey]: ...


class InfluxQLReader:
    """Implements `InfluxReader` with InfluxQL over HTTP."""

    def __init__(self, http: InfluxHttp, database: str) -> None:
        self._http = http
        self._db = database

    def query(self, q: RangeQuery) -> list[SeriesResult]:
        step = effective_step(q)
        where = " AND ".join(
            [f"time >= {q.start_ms}ms", f"time <= {q.end_ms}ms"]
            + [f"{ident(m.name)} = {literal(m.value)}" for m in q.matchers if m.op is MatchOp.EQ and m.value]
        )
        if step is None:
            stmt = f"SELECT {ident(FIELD)} FROM {ident(q.metric)} WHERE {where} GROUP BY *"
        else:
            fn = _FUNCTIONS[q.agg]
            stmt = (
                f"SELECT {fn}({ident(FIELD)}) AS {ident(FIELD)} FROM {ident(q.metric)} WHERE {where}"
                f" GROUP BY time({step}ms), * fill(none)"
            )
        out = []
        for s in self._run(stmt):
            tags = {k: v for k, v in (s.get("tags") or {}).items() if v}
            key = SeriesKey.of(s["name"], tags)
            if not all(m.matches(key) for m in q.matchers):
                continue
            rows = s.get("values") or []
            ts = np.array([r[0] for r in rows], dtype=np.int64)
            vals = np.array([r[1] for r in rows], dtype=np.float64)
            if ts.shape[0]:
                out.append(SeriesResult(key, ts, vals))
        return sorted(out, key=lambda r: str(r.key))

    def series(self, metric: str | None, matchers: tuple[Matcher, ...]) -> list[SeriesKey]:
        stmt = "SHOW SERIES" if metric is None else f"SHOW SERIES FROM {ident(metric)}"
        keys = [parse_series_key(row[0]) for s in self._run(stmt) for row in s.get("values") or []]
        return sorted((k for k in keys if all(m.matches(k) for m in matchers)), key=str)

    def _run(self, stmt: str) -> list[dict[str, Any]]:
        """Runs one statement and returns its result series.

        Raises:
            StoreError: when InfluxDB reports an error for the statement.
        """
        body = urllib.parse.urlencode({"q": stmt}).encode()
        raw = self._http.post(
            "/query", {"db": self._db, "epoch": "ms"}, body, "application/x-www-form-urlencoded"
        )
        doc = json.loads(raw)
        if "error" in doc:
            raise StoreError(f"InfluxQL error: {doc['error']}")
        results = doc.get("results") or [{}]
        if "error" in results[0]:
            raise StoreError(f"InfluxQL error: {results[0]['error']}")
        series: list[dict[str, Any]] = results[0].get("series") or []
        return series


def ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
