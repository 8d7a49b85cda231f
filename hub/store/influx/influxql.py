"""Reads over InfluxQL `/query`, which InfluxDB 1.x, 2.x (v1 compatibility API) and 3.x all answer.

`=` matchers and regex matchers that cannot match the empty string are pushed into the WHERE clause
(regexes anchored, `=~ /^(?:re)$/`: InfluxDB's Go regexps speak RE2's syntax); every matcher is then
applied to the returned tag sets in Python too, so matching keeps PromQL's anchored RE2 semantics
whatever the server's dialect (a series without the tag has the value "", which InfluxDB does not
compare the same way, hence no push-down for regexes matching ""). Step buckets use
`GROUP BY time(<step>ms)`, aligned to epoch multiples like the embedded store. With `max_points`, one
request first asks each series' point count and first and last timestamps, so the step fits the data
present (raw points when they fit), exactly as the embedded store does.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any, Protocol

import numpy as np

from hub.matchers import Matcher, MatchOp
from hub.store.base import Agg, RangeQuery, SeriesResult, effective_step
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
        where = " AND ".join([f"time >= {q.start_ms}ms", f"time <= {q.end_ms}ms", *_pushed(q.matchers)])
        step = effective_step(q)
        if q.max_points:
            extent = self._extent(q, where)
            if extent is None:
                return []
            step = effective_step(q, *extent)
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

    def _extent(self, q: RangeQuery, where: str) -> tuple[int, int, int] | None:
        """First and last timestamp over the matching series and the most points of one, or None if none."""
        src = f"FROM {ident(q.metric)} WHERE {where} GROUP BY *"
        field = ident(FIELD)
        parts = self._run_many(
            [f"SELECT count({field}) {src}", f"SELECT first({field}) {src}", f"SELECT last({field}) {src}"]
        )
        by_key: dict[str, list[int]] = {}
        for col, rows in enumerate(parts):
            for row in rows:
                key = SeriesKey.of(row["name"], {k: v for k, v in (row.get("tags") or {}).items() if v})
                if not row.get("values") or not all(m.matches(key) for m in q.matchers):
                    continue
                first = row["values"][0]
                # count() answers (range start, n); first() and last() answer (time of the point, value).
                by_key.setdefault(str(key), [0, 0, 0])[col] = int(first[1] if col == 0 else first[0])
        found = [v for v in by_key.values() if v[0] > 0]
        if not found:
            return None
        return min(v[1] for v in found), max(v[2] for v in found), max(v[0] for v in found)

    def series(self, metric: str | None, matchers: tuple[Matcher, ...]) -> list[SeriesKey]:
        stmt = "SHOW SERIES" if metric is None else f"SHOW SERIES FROM {ident(metric)}"
        keys = [parse_series_key(row[0]) for s in self._run(stmt) for row in s.get("values") or []]
        return sorted((k for k in keys if all(m.matches(k) for m in matchers)), key=str)

    def _run(self, stmt: str) -> list[dict[str, Any]]:
        """Runs one statement and returns its result series.

        Raises:
            StoreError: when InfluxDB reports an error for the statement.
        """
        return self._run_many([stmt])[0]

    def _run_many(self, stmts: list[str]) -> list[list[dict[str, Any]]]:
        """Runs statements in one request (`;`-separated); the result series of each, in order.

        Raises:
            StoreError: when InfluxDB reports an error for any statement.
        """
        body = urllib.parse.urlencode({"q": "; ".join(stmts)}).encode()
        raw = self._http.post(
            "/query", {"db": self._db, "epoch": "ms"}, body, "application/x-www-form-urlencoded"
        )
        doc = json.loads(raw)
        if "error" in doc:
            raise StoreError(f"InfluxQL error: {doc['error']}")
        results = doc.get("results") or []
        out = []
        for i in range(len(stmts)):
            result = results[i] if i < len(results) else {}
            if "error" in result:
                raise StoreError(f"InfluxQL error: {result['error']}")
            out.append(result.get("series") or [])
        return out


def _pushed(matchers: tuple[Matcher, ...]) -> list[str]:
    """WHERE conditions for the matchers InfluxDB can apply with the same result (see the module doc)."""
    out = []
    for m in matchers:
        if m.op is MatchOp.EQ and m.value:
            out.append(f"{ident(m.name)} = {literal(m.value)}")
        elif m.op is MatchOp.RE and "/" not in m.value and not m.matches(SeriesKey.of("x", {})):
            out.append(f"{ident(m.name)} =~ {regex_literal(m.value)}")
    return out


def regex_literal(pattern: str) -> str:
    """An InfluxQL regex literal matching the whole value, `/^(?:pattern)$/`; `pattern` holds no `/`
    (InfluxQL's escaping of `/` next to backslashes is ambiguous, so such patterns are not pushed)."""
    return "/^(?:" + pattern + ")$/"


def ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
