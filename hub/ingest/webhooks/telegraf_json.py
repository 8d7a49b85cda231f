"""Telegraf's JSON serializer (`data_format = "json"` of `outputs.http`) as the hub's series.

A body is one metric `{"name", "tags", "fields", "timestamp"}` or a batch `{"metrics": [...]}`;
`timestamp` is in the unit the output's `json_timestamp_units` names (Telegraf's default: seconds),
which the receiver is told by `precision`. The mapping is line protocol's (`lineprotocol`): name +
`_` + field -> metric, tags -> labels, numbers and booleans stored, strings counted and left out.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hub.ingest.webhooks.lineprotocol import (
    MAX_NS,
    MIN_NS,
    NS_PER_MS,
    LineError,
    ParsedLines,
    Row,
    Shape,
    series_of,
)

MAX_NAME = 256
MAX_INT = 2**64  # line protocol's widest integer (unsigned 64-bit); beyond it a float overflows


def parse(body: str, unit_ns: int, now_ms: int) -> ParsedLines:
    """Parses one body; a bad metric (the n-th of the batch, 1-based) is reported like a bad line.

    Raises:
        ValueError: the body is not JSON, or neither a metric nor `{"metrics": [...]}`.
    """
    try:
        doc = json.loads(body)
    except RecursionError:
        raise ValueError("body nests too deep") from None
    metrics = doc.get("metrics") if isinstance(doc, dict) and "metrics" in doc else [doc]
    if not isinstance(metrics, list):
        raise ValueError('"metrics" must be a list')
    shapes: dict[Shape, tuple[list[int], list[Row]]] = {}
    bad = 0
    first: LineError | None = None
    for number, metric in enumerate(metrics, 1):
        try:
            shape, ts_ms, row = _metric(metric, unit_ns, now_ms)
        except ValueError as exc:
            bad += 1
            if first is None:
                first = LineError(number, str(exc))
            continue
        rows = shapes.setdefault(shape, ([], []))
        rows[0].append(ts_ms)
        rows[1].append(row)
    series, strings = series_of(shapes)
    return ParsedLines(series, len(metrics), bad, first, strings)


def _metric(metric: Any, unit_ns: int, now_ms: int) -> tuple[Shape, int, Row]:
    if not isinstance(metric, dict):
        raise ValueError("a metric must be an object")
    name, tags, fields = metric.get("name"), metric.get("tags", {}), metric.get("fields")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        raise ValueError("name must be a non-empty string")
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise ValueError("tags must be an object of strings")
    if not isinstance(fields, dict) or not fields:
        raise ValueError("fields must be a non-empty object")
    values: list[float | int | bool | str] = []
    for value in fields.values():
        if isinstance(value, bool | str) or (isinstance(value, int) and abs(value) <= MAX_INT):
            values.append(value)
        elif isinstance(value, float) and math.isfinite(value):
            values.append(value)
        else:
            raise ValueError("field values must be finite numbers, booleans or strings")
    stamp = metric.get("timestamp")
    if stamp is None:
        ts_ms = now_ms
    elif isinstance(stamp, int) and not isinstance(stamp, bool) and MIN_NS <= stamp * unit_ns <= MAX_NS:
        ts_ms = stamp * unit_ns // NS_PER_MS
    else:
        raise ValueError("timestamp must be an integer in range")
    return (name, tuple(tags.items()), tuple(fields)), ts_ms, tuple(values)
