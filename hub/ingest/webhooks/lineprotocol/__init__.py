"""InfluxDB line protocol (what Telegraf's influxdb outputs and the InfluxDB clients write) as columns.

The common case (no escapes, no quotes: what Telegraf writes) is parsed for the whole payload at once
by `bulk` (numpy over the payload's bytes and words), with the measurement and tags of
each distinct series prefix read once and cached across payloads, and the series of each (prefix,
field name) numbered once in `series_cache`. Every other
line goes to `line_protocol_parser` (a maintained C extension: escaping, quoting and field types are
its job), which is the reference the bulk path is property-tested against. Mapping:
`measurement` + `_` + field key -> metric, tags -> labels. Floats, integers (`i`), unsigned (`u`) and
booleans (1/0) are stored; string fields are counted and skipped (the store keeps numbers only).

Like InfluxDB 2.x, a bad line does not spoil the batch: the good lines are kept and the first bad one
is reported with its 1-based line number and reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from line_protocol_parser import LineFormatError, parse_line

from hub.ingest.webhooks.lineprotocol import series_cache
from hub.ingest.webhooks.lineprotocol.bulk import NS_PER_MS, Scan, scan
from hub.ingest.webhooks.lineprotocol.distinct import small_ints
from hub.store.base import SeriesColumns
from shared.model import F64Array, I64Array, SeriesKey, SeriesPoints

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
MAX_REASON = 200  # characters of a bad line quoted back in the answer
# Series prefixes, and the series under them, remembered across payloads (Telegraf pushes the same
# series every interval); past these sizes a cache starts over. The prefixes are a plain dict: every
# get and set is atomic under the GIL, and an entry lost between threads is only recomputed.
MAX_PREFIXES_CACHED = 20_000
MAX_SERIES_CACHED = 200_000


class PrecisionError(ValueError):
    """Raised for a `precision` that InfluxDB does not know."""


@dataclass(frozen=True, slots=True)
class LineError:
    """The first line that could not be parsed: its 1-based number and why."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class ParsedLines:
    """The good lines of a payload as series (in columns), and what was left out."""

    columns: SeriesColumns
    lines: int  # lines parsed (blank lines and comments excluded)
    bad_lines: int
    first_error: LineError | None
    string_fields: int  # skipped: the store holds numbers

    @property
    def series(self) -> tuple[SeriesPoints, ...]:
        """One `SeriesPoints` per series, built on each call (the write path takes `columns`)."""
        return self.columns.series()

    @property
    def points(self) -> int:
        return len(self.columns)


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
Labels = tuple[tuple[str, str], ...]
MAX_CACHED_BYTES = 512  # longer prefixes are resolved every time, so the caches stay small
# A series prefix the bulk path takes: a measurement, then tags, every part non-empty (the scan has
# already refused spaces, escapes and quotes; duplicate tags and the like are the C parser's to judge).
_PREFIX = re.compile(r"[^,=]+(?:,[^,=]+=[^,=]+)*")

Pair = tuple[str, Labels]  # (metric, labels): the identity of a series, hashed in C


class _Prefix:
    """A series prefix as the C parser reads it, with its number in the series cache."""

    __slots__ = ("measurement", "labels", "id")

    def __init__(self, measurement: str, labels: Labels) -> None:
        self.measurement, self.labels = measurement, labels
        self.id = series_cache.new_id()

    def key(self, name: bytes) -> SeriesKey:
        """The series of field `name`: `measurement_name` with the tags as labels."""
        return SeriesKey(f"{self.measurement}_{name.decode('utf-8', 'surrogatepass')}", self.labels)


_prefixes: dict[bytes, _Prefix | None] = {}
_UNRESOLVED = _Prefix("", ())  # a cache miss (None is a cached answer)
_series = series_cache.SeriesCache(MAX_SERIES_CACHED)


class _Registry:
    """The series of one payload, numbered in the order first seen; one key per (metric, labels).

    The bulk path's series come first, as a list of distinct keys; their numbers by (metric, labels)
    are only made when a line of the C parser's asks for one."""

    def __init__(self, keys: list[SeriesKey] | None = None) -> None:
        self.keys: list[SeriesKey] = keys or []
        self._ids: dict[Pair, int] | None = None

    def sid(self, key: SeriesKey, pair: Pair) -> int:
        if self._ids is None:
            self._ids = {(k.metric, k.labels): i for i, k in enumerate(self.keys)}
        sid = self._ids.get(pair)
        if sid is None:
            sid = self._ids[pair] = len(self.keys)
            self.keys.append(key)
        return sid


@dataclass(frozen=True, slots=True)
class _Fields:
    """Numeric fields in the order they count (the last of a series and time wins): per field its
    series, time, value and the index of its line."""

    sid: I64Array
    ts: I64Array
    values: F64Array
    line: I64Array

    @classmethod
    def empty(cls) -> _Fields:
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, np.zeros(0), none)


def parse(text: str, unit_ns: int, now_ms: int) -> ParsedLines:
    """Parses a line-protocol payload; a line without a timestamp is stamped `now_ms`.

    Points of one series at the same timestamp keep the last one written (InfluxDB overwrites too; of
    a field named twice in one line the first counts, as the C parser reads it); each series comes out
    sorted by time.
    """
    return _parse(text, unit_ns, now_ms, bulk=True)


def parse_per_line(text: str, unit_ns: int, now_ms: int) -> ParsedLines:
    """`parse` with every line through the C parser: the reference the bulk path is tested against
    and the bench's baseline."""
    return _parse(text, unit_ns, now_ms, bulk=False)


def _parse(text: str, unit_ns: int, now_ms: int, bulk: bool) -> ParsedLines:
    data = text.encode("utf-8", "surrogatepass")  # byte offsets for numpy; decoded back exactly
    found = scan(data, unit_ns, now_ms, MAX_NS)
    if not bulk:
        found = found.only(np.zeros(found.taken.shape[0], dtype=np.bool_))
    fast, found, registry = _bulk(found)
    left = np.ones(found.lines, dtype=np.bool_)
    left[found.taken] = False
    index = np.flatnonzero(left)
    # The lines left, as the text has them (its lines and the bytes' lines are the same, newline for newline).
    left_lines = text.split("\n") if index.shape[0] else []
    slow, counted, bad, first, strings = _per_line(
        registry, [(i, left_lines[i]) for i in index.tolist()], unit_ns, now_ms
    )
    if slow.sid.shape[0]:  # interleaved by line, so the last value written is the one kept
        sid = np.concatenate([fast.sid, slow.sid])
        ts = np.concatenate([fast.ts, slow.ts])
        vals = np.concatenate([fast.values, slow.values])
        order = np.lexsort((np.concatenate([fast.line, slow.line]), ts, sid))
    else:
        sid, ts, vals = fast.sid, fast.ts, fast.values
        order = _by_series_and_time(sid, ts, len(registry.keys))  # the bulk path's are in line order
    series = _cut(registry.keys, sid[order], ts[order], vals[order])
    return ParsedLines(series, int(found.taken.shape[0]) + counted, bad, first, strings)


def _by_series_and_time(sid: I64Array, ts: I64Array, n_series: int) -> I64Array:
    """`np.lexsort((ts, sid))`, stable; by one radix sort on the series alone when their numbers fit
    16 bits and each series' times already ascend in the order given (as Telegraf writes them)."""
    if n_series <= 1 << 16:
        order = np.argsort(sid.astype(np.uint16), kind="stable")
        s, t = sid[order], ts[order]
        if ((t[1:] >= t[:-1]) | (s[1:] != s[:-1])).all():
            return order
    return np.lexsort((ts, sid))


def _bulk(found: Scan) -> tuple[_Fields, Scan, _Registry]:
    """The fields of the lines the bulk scan took whose series prefix it can use, that scan, and the
    registry of their series.

    Per distinct prefix this is one dict lookup (and one C parse of it the first time); the series of
    the distinct (prefix, field name) pairs are one lookup in the series cache; everything per line
    and per field is an array operation.
    """
    # One C-level get per prefix, a call only for those not cached (or cached as the C parser's). A
    # prefix left to the C parser stands as _UNRESOLVED: its lines are dropped here, never keyed.
    cached = map(_prefixes.get, found.heads)
    prefixes = [p or _prefix(h) or _UNRESOLVED for p, h in zip(cached, found.heads, strict=True)]
    usable = np.array([p is not _UNRESOLVED for p in prefixes], dtype=np.bool_)[found.head_ids]
    if not usable.all():
        found = found.only(usable)
    if not found.name_ids.shape[0]:
        return _Fields.empty(), found, _Registry()
    counts = found.counts
    line_of = np.repeat(np.arange(found.taken.shape[0]), counts)
    width = len(found.names)
    pairs, inverse = small_ints(found.head_ids[line_of] * width + found.name_ids, len(prefixes) * width)
    head, name = np.divmod(pairs, width)
    prefix_ids = np.array([p.id for p in prefixes], dtype=np.int64)
    codes = series_cache.codes(prefix_ids[head], series_cache.name_ids(found.names)[name])

    def keys_of(missing: I64Array) -> list[SeriesKey]:
        pairs_missing = zip(head[missing].tolist(), name[missing].tolist(), strict=True)
        return [prefixes[h].key(found.names[m]) for h, m in pairs_missing]

    numbers, keys = _series.numbers(codes, keys_of)
    used, sid_of_pair = small_ints(numbers, len(keys))
    registry = _Registry(list(map(keys.__getitem__, used.tolist())))
    sid = sid_of_pair[inverse]
    # Fields of a line in reverse, so that of a name repeated in one line the first written is kept.
    starts = np.cumsum(counts) - counts
    reverse = (2 * starts + counts - 1)[line_of] - np.arange(line_of.shape[0])
    fields = _Fields(
        sid[reverse], np.repeat(found.stamps_ms, counts), found.values[reverse], found.taken[line_of]
    )
    return fields, found, registry


def _prefix(head: bytes) -> _Prefix | None:
    """A series prefix's measurement and sorted tags as the C parser reads them; None when the bulk
    path leaves its lines to the C parser. Cached: a prefix means the same in every payload."""
    got = _prefixes.get(head, _UNRESOLVED)  # one get: another thread may empty the cache meanwhile
    if got is not _UNRESOLVED:
        return got
    got = None
    text = head.decode("utf-8", "surrogatepass")
    if _PREFIX.fullmatch(text) is not None:
        try:
            point = parse_line(text + " _=0")
        except (LineFormatError, UnicodeError):
            pass
        else:
            got = _Prefix(point["measurement"], tuple(sorted(point["tags"].items())))
    if len(head) <= MAX_CACHED_BYTES:
        if len(_prefixes) >= MAX_PREFIXES_CACHED:
            _prefixes.clear()
        _prefixes[head] = got
    return got


def _per_line(
    registry: _Registry, lines: list[tuple[int, str]], unit_ns: int, now_ms: int
) -> tuple[_Fields, int, int, LineError | None, int]:
    """Lines `(index, text)` parsed one by one by the C parser: their numeric fields,
    the number of lines (blank ones and comments left out), of bad lines, the first bad one and the
    number of string values left out.

    Per line only its index, time and tuple of values are kept, under the line's shape; everything per
    field is an array operation over a shape's rows.
    """
    shapes: dict[Shape, tuple[list[int], list[Row]]] = {}
    lines_of: dict[Shape, list[int]] = {}
    counted = bad = 0
    first: LineError | None = None
    for index, raw in lines:
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        counted += 1
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
        except (LineFormatError, UnicodeError) as exc:
            bad += 1
            if first is None:
                first = LineError(index + 1, f"{exc} (line: {line[:MAX_REASON]!r})")
            continue
        fields = point["fields"]
        shape = (point["measurement"], tuple(point["tags"].items()), tuple(fields))
        rows = shapes.get(shape)
        if rows is None:
            rows = shapes[shape] = ([], [])
            lines_of[shape] = []
        rows[0].append(ts_ms)
        rows[1].append(tuple(fields.values()))
        lines_of[shape].append(index)
    found, strings = _shape_fields(registry, shapes, lines_of)
    return found, counted, bad, first, strings


def _shape_fields(
    registry: _Registry,
    shapes: dict[Shape, tuple[list[int], list[Row]]],
    lines_of: dict[Shape, list[int]] | None = None,
) -> tuple[_Fields, int]:
    """The shapes' rows as fields (with the line of each when `lines_of` is given; else 0), and the
    number of string values left out."""
    parts: list[tuple[I64Array, I64Array, F64Array, I64Array]] = []
    strings = 0
    for shape, (stamps, rows) in shapes.items():
        measurement, tags, names = shape
        labels = tuple(sorted(tags))
        keys = [SeriesKey(f"{measurement}_{name}", labels) for name in names]
        sids = np.array([registry.sid(k, (k.metric, k.labels)) for k in keys], dtype=np.int64)
        width = sids.shape[0]
        ts = np.asarray(stamps, dtype=np.int64)
        try:
            block = np.asarray(rows, dtype=np.float64)
            keep = None
        except (ValueError, TypeError):  # a string field among them: those values are left out
            block, keep = _numeric(rows)
            strings += int(keep.size - np.count_nonzero(keep))
        sid = np.broadcast_to(sids, (ts.shape[0], width)).ravel()
        t, v = np.repeat(ts, width), block.ravel()
        line = np.repeat(
            np.asarray(lines_of[shape], dtype=np.int64) if lines_of else np.zeros_like(ts), width
        )
        if keep is not None:
            flat = keep.ravel()
            sid, t, v, line = sid[flat], t[flat], v[flat], line[flat]
        parts.append((sid, t, v, line))
    if not parts:
        return _Fields.empty(), strings
    return _Fields(*(np.concatenate([p[i] for p in parts]) for i in range(4))), strings


def _cut(keys: list[SeriesKey], sid: I64Array, ts: I64Array, vals: F64Array) -> SeriesColumns:
    """Fields sorted by (series, time), in the order they count, as columns: per series and time the
    last one is kept."""
    if not sid.shape[0]:
        return SeriesColumns((), np.zeros(1, np.int64), sid, vals)
    last = np.append((sid[1:] != sid[:-1]) | (ts[1:] != ts[:-1]), True)
    sid, ts, vals = sid[last], ts[last], vals[last]
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    owners = tuple(map(keys.__getitem__, sid[starts].tolist()))
    return SeriesColumns(owners, np.append(starts, sid.shape[0]), ts, vals)


def series_of(shapes: dict[Shape, tuple[list[int], list[Row]]]) -> tuple[SeriesColumns, int]:
    """The shapes' rows (Telegraf's JSON metrics) as series (sorted by time, the last value written
    kept at a repeated time), and the number of string values left out."""
    registry = _Registry()
    found, strings = _shape_fields(registry, shapes)
    order = np.lexsort((found.ts, found.sid))  # stable: equal (series, time) keep the order written
    return _cut(registry.keys, found.sid[order], found.ts[order], found.values[order]), strings


def _numeric(rows: list[Row]) -> tuple[F64Array, npt.NDArray[np.bool_]]:
    """Rows holding strings as numbers (strings as 0) and the mask of the values that are numbers."""
    keep = np.array([[not isinstance(x, str) for x in row] for row in rows], dtype=np.bool_)
    block = np.array([[0.0 if isinstance(x, str) else float(x) for x in row] for row in rows])
    return block, keep
