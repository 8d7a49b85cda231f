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
import numpy.typing as npt
from line_protocol_parser import LineFormatError, parse_line

from shared.model import F64Array, SeriesKey, SeriesPoints

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


# Lines of one shape: (measurement, tags as written, field names as written).
Shape = tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]]
Row = tuple[float | int | bool | str, ...]


def parse(text: str, unit_ns: int, now_ms: int) -> ParsedLines:
    """Parses a line-protocol payload; a line without a timestamp is stamped `now_ms`.

    Points of one series at the same timestamp keep the last one written (InfluxDB overwrites too);
    each series comes out sorted by time. Per line only its timestamp and its tuple of values are kept,
    under the line's shape; everything per field (conversion, sorting, de-duplicating, cutting into
    series) is an array operation over a shape's rows or over the whole payload.
    """
    shapes: dict[Shape, tuple[list[int], list[Row]]] = {}
    lines = bad = 0
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
        fields = point["fields"]
        shape = (point["measurement"], tuple(point["tags"].items()), tuple(fields))
        rows = shapes.get(shape)
        if rows is None:
            rows = shapes[shape] = ([], [])
        rows[0].append(ts_ms)
        rows[1].append(tuple(fields.values()))
    series, strings = series_of(shapes)
    return ParsedLines(series, lines, bad, first, strings)


def series_of(shapes: dict[Shape, tuple[list[int], list[Row]]]) -> tuple[tuple[SeriesPoints, ...], int]:
    """The shapes' rows as series (sorted by time, the last value written kept at a repeated time),
    and the number of string values left out."""
    # (metric, labels) -> series number; plain tuples hash in C, a SeriesKey's dataclass hash does not.
    keys: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    parts: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], F64Array]] = []
    strings = 0
    for (measurement, tags, names), (stamps, rows) in shapes.items():
        labels = tuple(sorted(tags))
        sids = np.array(
            [keys.setdefault((f"{measurement}_{name}", labels), len(keys)) for name in names],
            dtype=np.int64,
        )
        ts = np.asarray(stamps, dtype=np.int64)
        try:
            block = np.asarray(rows, dtype=np.float64)
            keep = None
        except (ValueError, TypeError):  # a string field among them: those values are left out
            block, keep = _numeric(rows)
            strings += int(keep.size - np.count_nonzero(keep))
        sid = np.broadcast_to(sids, (ts.shape[0], sids.shape[0])).ravel()
        t, v = np.repeat(ts, sids.shape[0]), block.ravel()
        if keep is not None:
            flat = keep.ravel()
            sid, t, v = sid[flat], t[flat], v[flat]
        parts.append((sid, t, v))
    if not parts:
        return (), strings
    sid = np.concatenate([p[0] for p in parts])
    ts = np.concatenate([p[1] for p in parts])
    vals = np.concatenate([p[2] for p in parts])
    order = np.lexsort((ts, sid))  # stable: equal (series, time) keep the order they were written in
    sid, ts, vals = sid[order], ts[order], vals[order]
    last = np.append((sid[1:] != sid[:-1]) | (ts[1:] != ts[:-1]), True)
    sid, ts, vals = sid[last], ts[last], vals[last]
    if not sid.shape[0]:
        return (), strings
    cuts = (np.flatnonzero(sid[1:] != sid[:-1]) + 1).tolist()
    starts, ends = [0, *cuts], [*cuts, int(sid.shape[0])]
    by_sid = list(keys)
    owners = sid[starts].tolist()
    return tuple(
        SeriesPoints(SeriesKey(*by_sid[o]), ts[a:b], vals[a:b])
        for o, a, b in zip(owners, starts, ends, strict=True)
    ), strings


def _numeric(rows: list[Row]) -> tuple[F64Array, npt.NDArray[np.bool_]]:
    """Rows holding strings as numbers (strings as 0) and the mask of the values that are numbers."""
    keep = np.array([[not isinstance(x, str) for x in row] for row in rows], dtype=np.bool_)
    block = np.array([[0.0 if isinstance(x, str) else float(x) for x in row] for row in rows])
    return block, keep
