"""InfluxDB line protocol (what Telegraf's influxdb outputs and the InfluxDB clients write) as a Batch.

Lines are parsed by `line_protocol_parser` (a maintained C extension: escaping, quoting and field
types are its job); this module only groups the parsed fields into columns. Mapping:
`measurement` + `_` + field key -> metric, tags -> labels. Floats, integers (`i`), unsigned (`u`) and
booleans (1/0) are stored; string fields are counted and skipped (the store keeps numbers only).

Like InfluxDB 2.x, a bad line does not spoil the batch: the good lines are kept and the first bad one
is reported with its 1-based line number and reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from line_protocol_parser import LineFormatError, parse_line

from shared.model import SeriesKey, SeriesPoints

# Nanoseconds per unit of each `precision` InfluxDB accepts (v2 spells ns/us/ms/s, v1 also n/u/m/h).
PRECISION_NS = {
    "ns": 1,
    "n": 1,
    "us": 1_000,
    "u": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
# InfluxDB's own bounds for a timestamp (int64 nanoseconds less its two reserved values).
MIN_NS = -9_223_372_036_854_775_806
MAX_NS = 9_223_372_036_854_775_806
NS_PER_MS = 1_000_000
MAX_REASON = 200  # characters of a bad line quoted back in the answer


class PrecisionError(ValueError):
    """Raised for a `precision` that InfluxDB does not know."""


@dataclass(frozen=True, slots=True)
class LineError:
    """The first line that could not be parsed: its 1-based number and why."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class ParsedLines:
    """The good lines of a payload as series, and what was left out."""

    series: tuple[SeriesPoints, ...]
    lines: int  # lines parsed (blank lines and comments excluded)
    bad_lines: int
    first_error: LineError | None
    string_fields: int  # skipped: the store holds numbers

    @property
    def points(self) -> int:
        return sum(len(s) for s in self.series)


def ns_per_unit(precision: str) -> int:
    """Nanoseconds in one unit of `precision` (empty means nanoseconds, as InfluxDB defaults).

    Raises:
        PrecisionError: an unknown precision.
    """
    try:
        return PRECISION_NS[precision or "ns"]
    except KeyError:
        raise PrecisionError(f"precision must be one of {', '.join(PRECISION_NS)}") from None


def parse(text: str, unit_ns: int, now_ms: int) -> ParsedLines:
    """Parses a line-protocol payload; a line without a timestamp is stamped `now_ms`.

    Points of one series at the same timestamp keep the last one written (InfluxDB overwrites too);
    each series comes out sorted by time.
    """
    columns: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[list[int], list[float]]] = {}
    lines = bad = strings = 0
    first: LineError | None = None
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        lines += 1
        try:
            point = parse_line(line)
            ts = point["time"]
            if ts is None:
                ts_ms = now_ms
            else:
                ns = ts * unit_ns
                if not MIN_NS <= ns <= MAX_NS:
                    raise LineFormatError("timestamp out of range.")
                ts_ms = ns // NS_PER_MS
        except LineFormatError as exc:
            bad += 1
            if first is None:
                first = LineError(number, f"{exc} (line: {line[:MAX_REASON]!r})")
            continue
        tags = tuple(sorted(point["tags"].items()))
        measurement = point["measurement"]
        for field, value in point["fields"].items():
            if isinstance(value, str):
                strings += 1
                continue
            col = columns.get((f"{measurement}_{field}", tags))
            if col is None:
                col = columns[(f"{measurement}_{field}", tags)] = ([], [])
            col[0].append(ts_ms)
            col[1].append(float(value))
    series = tuple(_series(metric, tags, ts, vals) for (metric, tags), (ts, vals) in columns.items())
    return ParsedLines(series, lines, bad, first, strings)


def _series(
    metric: str, labels: tuple[tuple[str, str], ...], ts: list[int], vals: list[float]
) -> SeriesPoints:
    """One series' columns, sorted by time with the last value written at a repeated timestamp."""
    t = np.asarray(ts, dtype=np.int64)
    v = np.asarray(vals, dtype=np.float64)
    if t.shape[0] > 1 and not bool(np.all(t[1:] > t[:-1])):
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        last = np.append(t[1:] != t[:-1], True)
        t, v = t[last], v[last]
    return SeriesPoints(SeriesKey(metric, labels), t, v)
