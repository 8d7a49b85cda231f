"""Whole-payload scanning of the common line-protocol case into columns, without an object per line.

Telegraf and the InfluxDB clients write lines like `cpu,host=a usage=1.5,n=3i 1700000000000000000`:
no backslash, no quote, one space before the fields and one before the timestamp. For such lines the
payload's bytes are classified and cut by numpy (separator positions, counts per line and per token)
and the field values of the whole payload are converted by one `float` pass over one joined buffer;
Python objects exist per field name and per line's series prefix, whose meaning (measurement and tags)
the caller decides once per distinct prefix.

Every other line is left to the caller's per-line C parser, which stays the reference: for the lines
read here the result is the one the C parser gives (property-tested), so this module may leave a line
to it for any oddity (`1e400`, a 20-digit integer, a tab, a trailing space) but never reads one
differently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hub.ingest.webhooks.distinct import PAD, distinct, words_view
from shared.model import F64Array, I64Array

BoolArray = npt.NDArray[np.bool_]
NS_PER_MS = 1_000_000
MAX_INT_DIGITS = 18  # an `i` integer of up to 18 digits is within int64, so float() of it is exact
MAX_UINT_DIGITS = 19  # and a `u` one of up to 19 within uint64
MAX_STAMP_DIGITS = 19
# The spellings the C parser takes, as the number stored.
BOOLEANS = dict.fromkeys([b"t", b"T", b"true", b"True", b"TRUE"], b"1")
BOOLEANS |= dict.fromkeys([b"f", b"F", b"false", b"False", b"FALSE"], b"0")
_NL, _SP, _COMMA, _EQ, _MINUS, _PLUS = 10, 32, 44, 61, 45, 43
_BACKSLASH, _QUOTE, _DEL = 0x5C, 0x22, 0x7F


def _table(chars: bytes | range | list[int]) -> BoolArray:
    table = np.zeros(256, dtype=np.bool_)
    table[list(chars)] = True
    return table


# Byte classes, read with np.take (twice as fast as indexing the table with an array).
# A line's first byte: printable ASCII that starts a measurement (not a comment, nothing Python's
# str.strip() would take off, which the C path applies first).
_FIRST = _table(range(33, 127)) & ~_table(b',=#\\"')
_DIGIT = _table(b"0123456789")
_FLOATY = _table(b"0123456789.eE+-")
_NONZERO = _table(b"123456789")
_TINY = np.finfo(np.float64).tiny  # strtod reports a subnormal or overflowing result: the C parser refuses


def _separators(a: npt.NDArray[np.uint8]) -> BoolArray:
    """Newlines, spaces, commas and equals signs (over a whole payload: four comparisons cost a fifth
    of a table lookup per byte, as do `_odd`'s)."""
    return (a == _NL) | (a == _SP) | (a == _COMMA) | (a == _EQ)


def _odd(a: npt.NDArray[np.uint8]) -> BoolArray:
    """Bytes that make a line the C parser's: escapes, quotes, control characters (tabs, CR, NUL), DEL."""
    return ((a < _SP) & (a != _NL)) | (a == _BACKSLASH) | (a == _QUOTE) | (a == _DEL)


@dataclass(frozen=True, slots=True)
class Scan:
    """What the bulk path read of a payload split at newlines: the lines it took (ascending indices),
    for each its series prefix (byte span), field count and time, and per field its name (a number
    into the distinct `names`) and value."""

    lines: int  # in the payload, split at newlines
    taken: I64Array
    head_starts: I64Array
    head_ends: I64Array
    counts: I64Array
    stamps_ms: I64Array
    names: list[bytes]  # distinct, possibly some no field of the taken lines has any more
    name_ids: I64Array
    values: F64Array

    def only(self, keep: BoolArray) -> Scan:
        """The scan with only the taken lines `keep` marks (the others become the caller's)."""
        per_field = np.repeat(keep, self.counts)
        return Scan(
            self.lines,
            self.taken[keep],
            self.head_starts[keep],
            self.head_ends[keep],
            self.counts[keep],
            self.stamps_ms[keep],
            self.names,
            self.name_ids[per_field],
            self.values[per_field],
        )


def scan(data: bytes, unit_ns: int, now_ms: int, max_ns: int) -> Scan:
    """Reads the lines of `data` (UTF-8 line protocol) that are in the common case.

    A line is taken when it has no odd byte, exactly one or two spaces (prefix, fields, timestamp),
    fields of `name=value` with a value the C parser reads like Python's float() (decimal float, `i`
    integer, `u` unsigned, boolean) and a timestamp, in nanoseconds within `max_ns` either way, of
    plain digits; a line without one is stamped `now_ms`.
    """
    padded = np.frombuffer(data + b"\n" + bytes(PAD), dtype=np.uint8)
    a = padded[:-PAD]  # every line, the last too, ends in a newline
    # Separators in order; the newline closing each line is its last.
    sep = np.flatnonzero(_separators(a))
    kind = a[sep]
    term = np.flatnonzero(kind == _NL)  # index in `sep` of each line's newline
    nl = sep[term]
    starts = np.concatenate(([0], nl[:-1] + 1))
    n_lines = nl.shape[0]
    odd_lines = np.zeros(n_lines, dtype=np.bool_)
    odd_lines[np.searchsorted(nl, np.flatnonzero(_odd(a)))] = True
    ok = (nl > starts) & ~odd_lines & np.take(_FIRST, a[starts])
    if not ok.any():  # escapes or quotes everywhere: all the C parser's
        none = np.zeros(0, dtype=np.int64)
        return Scan(n_lines, none, none, none, none, none, [], none, np.zeros(0))
    line_of_sep = np.repeat(np.arange(n_lines), np.diff(np.concatenate(([-1], term))))
    spaces = np.flatnonzero(kind == _SP)
    n_spaces = np.bincount(line_of_sep[spaces], minlength=n_lines)
    ok &= (n_spaces >= 1) & (n_spaces <= 2)
    zones = _Zones.of(np.flatnonzero(ok), sep, kind, term, spaces, line_of_sep, n_spaces)
    zones = zones.only(~zones.malformed())

    # Fields: each '=' of a zone, with the separators either side of it.
    eq = np.flatnonzero(zones.inner & (zones.rank % 2 == 1))
    field_line = zones.zone_of_item[eq]
    pos = zones.pos
    values, value_bad = _values(a, pos[eq] + 1, pos[eq + 1])
    line_bad = np.bincount(field_line[value_bad], minlength=zones.lines.shape[0]) > 0

    # Timestamps: digits after the second space, optionally signed.
    stamped = n_spaces[zones.lines] == 2
    stamp_start = np.where(stamped, sep[zones.end], nl[zones.lines]) + 1
    stamps_ms, stamp_bad = _stamps(a, stamp_start, nl[zones.lines], stamped, unit_ns, now_ms, max_ns)
    line_bad |= stamp_bad

    names, name_ids = _names(padded, pos[eq - 1] + 1, pos[eq])
    full = Scan(
        n_lines,
        zones.lines,
        starts[zones.lines],
        sep[zones.begin],
        (zones.width - 1) // 2,
        stamps_ms,
        names,
        name_ids,
        values,
    )
    return full.only(~line_bad) if line_bad.any() else full


@dataclass(frozen=True, slots=True)
class _Zones:
    """The field zones of lines: from a line's first space to its second space or its newline, the
    run of separators (indices into the payload's separators) that must read ' ' '=' (',' '=')* then
    ' ' or newline, with a non-empty token between any two."""

    lines: I64Array
    begin: I64Array  # per line: its first space
    end: I64Array  # per line: its second space, or its newline
    width: I64Array  # per line: separators in the zone, both ends included
    pos: I64Array  # per item (a separator of a zone): its byte offset
    kind: npt.NDArray[np.uint8]
    rank: I64Array  # its place in its zone
    zone_of_item: I64Array
    inner: BoolArray  # neither end of its zone

    @classmethod
    def of(
        cls,
        lines: I64Array,
        sep: I64Array,
        kind: npt.NDArray[np.uint8],
        term: I64Array,
        spaces: I64Array,
        line_of_sep: I64Array,
        n_spaces: I64Array,
    ) -> _Zones:
        first = np.searchsorted(line_of_sep[spaces], lines)  # into `spaces`: each line's first space
        begin = spaces[first]
        two = n_spaces[lines] == 2
        end = np.where(two, spaces[np.minimum(first + 1, spaces.shape[0] - 1)], term[lines])
        # After a second space only the newline: a timestamp holds no separator.
        fine = ~two | (term[lines] == end + 1)
        lines, begin, end = lines[fine], begin[fine], end[fine]
        width = end - begin + 1
        at = _spans(begin, width)
        rank = np.arange(at.shape[0]) - np.repeat(np.cumsum(width) - width, width)
        inner = (rank > 0) & (rank < np.repeat(width - 1, width))
        zone_of_item = np.repeat(np.arange(lines.shape[0]), width)
        return cls(lines, begin, end, width, sep[at], kind[at], rank, zone_of_item, inner)

    def malformed(self) -> BoolArray:
        """Per line: its zone does not read `name=value(,name=value)*` with non-empty tokens."""
        want = np.where(self.rank % 2 == 1, _EQ, _COMMA)
        spaced = np.append(np.diff(self.pos) > 1, True)
        spaced[np.cumsum(self.width) - 1] = True  # a zone's last item has no successor in it
        bad = (self.inner & (self.kind != want)) | ~spaced
        short = (self.width < 3) | (self.width % 2 == 0)
        return (np.bincount(self.zone_of_item[bad], minlength=self.lines.shape[0]) > 0) | short

    def only(self, keep: BoolArray) -> _Zones:
        per_item = np.repeat(keep, self.width)
        zone_of_item = np.repeat(np.arange(int(np.count_nonzero(keep))), self.width[keep])
        return _Zones(
            self.lines[keep],
            self.begin[keep],
            self.end[keep],
            self.width[keep],
            self.pos[per_item],
            self.kind[per_item],
            self.rank[per_item],
            zone_of_item,
            self.inner[per_item],
        )


def _spans(starts: I64Array, lengths: I64Array) -> I64Array:
    """The indices of every element of the spans `[start, start + length)`, span after span."""
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return offsets + np.arange(int(lengths.sum()))


def _cut_bytes(a: npt.NDArray[np.uint8], starts: I64Array, ends: I64Array) -> list[bytes]:
    """The byte strings `a[start:end]`, cut out of one joined buffer in one split."""
    if not starts.shape[0]:
        return []
    idx = _spans(starts, ends - starts + 1)  # each with the separator that ends it
    buf = a[idx].copy()
    buf[np.cumsum(ends - starts + 1) - 1] = _COMMA
    return buf.tobytes().split(b",")[:-1]


def _names(padded: npt.NDArray[np.uint8], starts: I64Array, ends: I64Array) -> tuple[list[bytes], I64Array]:
    """The distinct field names of the spans `[start, end)` of `padded`, and the number of each span's."""
    found = distinct(words_view(padded), starts, ends - starts)
    if found is not None:
        firsts = zip(starts[found.first].tolist(), ends[found.first].tolist(), strict=True)
        return [padded[a:b].tobytes() for a, b in firsts], found.number
    every = _cut_bytes(padded, starts, ends)  # long or hash-alike names: numbered by a dict
    ids = {name: i for i, name in enumerate(dict.fromkeys(every))}
    return list(ids), np.fromiter(map(ids.__getitem__, every), np.int64, len(every))


def _values(a: npt.NDArray[np.uint8], start: I64Array, end: I64Array) -> tuple[F64Array, BoolArray]:
    """Field values as floats and which ones the bulk path does not read (left to the C parser)."""
    length = end - start
    # One buffer of every value with the separator after it (never a digit, never in a float).
    buf = a[_spans(start, length + 1)].copy()
    stops = np.cumsum(length + 1) - 1
    first, last = a[start], a[end - 1]
    body_digits = _per_segment(np.take(_DIGIT, buf), stops - length) - np.take(_DIGIT, last)  # but the last
    signed = first == _MINUS
    magnitude = length - 1 - signed
    suffixed = (body_digits == magnitude) & (magnitude >= 1)
    integer = (last == ord("i")) & suffixed & (magnitude <= MAX_INT_DIGITS)
    unsigned = (last == ord("u")) & suffixed & ~signed & (magnitude <= MAX_UINT_DIGITS)
    boolean = np.isin(first, np.frombuffer(b"tTfF", np.uint8))
    floaty = _per_segment(np.take(_FLOATY, buf), stops - length) == length
    # A zero from a token with a digit other than 0 underflowed (strtod says ERANGE), or has an exponent
    # with one (harmless, but told apart only by reading it): the C parser's.
    nonzero = _per_segment(np.take(_NONZERO, buf), stops - length) > 0
    decimal = floaty & (first != _PLUS) & ~integer & ~unsigned
    bad = ~(integer | unsigned | boolean | decimal)
    # A suffix becomes a space (float() ignores it), booleans are put aside.
    buf[stops] = _COMMA
    buf[(stops - 1)[integer | unsigned]] = _SP
    texts = buf.tobytes().split(b",")[:-1]
    words = np.flatnonzero(boolean | bad).tolist()
    for i in words:
        if boolean[i] and texts[i] in BOOLEANS:
            texts[i] = BOOLEANS[texts[i]]
        else:
            bad[i] = True
            texts[i] = b"0"
    try:
        values = np.fromiter(map(float, texts), np.float64, len(texts))
    except ValueError:  # a decimal-looking token float() refuses ("1e", "1.2.3", "-"): find which
        values = np.array([_float_or_nan(t) for t in texts], dtype=np.float64)
        bad |= np.isnan(values)
    bad |= ~np.isfinite(values) | ((values != 0) & (np.abs(values) < _TINY)) | ((values == 0) & nonzero)
    values[integer] += 0.0  # "-0i" is the integer 0, not float -0.0
    return values, bad


def _per_segment(mask: BoolArray, starts: I64Array) -> I64Array:
    """How many of `mask` are set in each of the back-to-back non-empty segments starting at `starts`."""
    if not starts.shape[0]:
        return np.zeros(0, dtype=np.int64)
    return np.add.reduceat(mask.astype(np.int64), starts)


def _float_or_nan(text: bytes) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _stamps(
    a: npt.NDArray[np.uint8],
    start: I64Array,
    end: I64Array,
    stamped: BoolArray,
    unit_ns: int,
    now_ms: int,
    max_ns: int,
) -> tuple[I64Array, BoolArray]:
    """Timestamps in milliseconds (`now_ms` where a line has none) and which lines the bulk path does
    not read: a stamp that is not plain digits (one leading minus allowed) or out of range."""
    ms = np.full(start.shape[0], now_ms, dtype=np.int64)
    bad = np.zeros(start.shape[0], dtype=np.bool_)
    have = np.flatnonzero(stamped)
    if not have.shape[0]:
        return ms, bad
    start, end = start[have], end[have]
    length = end - start  # 0 after a trailing space: refused below, as strip() would change the line
    buf = a[_spans(start, length + 1)]  # each with its newline
    signed = a[start] == _MINUS
    magnitude = length - signed
    digits = _per_segment(np.take(_DIGIT, buf), np.cumsum(length + 1) - (length + 1))
    # 19 digits fit int64 up to 9223372036854775806 (the C parser's bound): those from a 9 are its to judge.
    high = (length == MAX_STAMP_DIGITS) & ~signed & (a[start] > ord("8"))
    wrong = (digits != magnitude) | (magnitude < 1) | (length > MAX_STAMP_DIGITS) | high
    texts = np.array(buf.tobytes().split(b"\n")[:-1])
    raw = np.where(wrong, b"0", texts).astype(np.int64)
    bound = max_ns // unit_ns
    inside = (raw >= -bound) & (raw <= bound)
    bad[have] = wrong | ~inside
    ms[have] = np.where(inside, raw, 0) * unit_ns // NS_PER_MS
    return ms, bad
