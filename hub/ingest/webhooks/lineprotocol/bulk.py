"""Whole-payload scanning of the common line-protocol case into columns, without an object per line.

Telegraf and the InfluxDB clients write lines like `cpu,host=a usage=1.5,n=3i 1700000000000000000`:
no backslash, no quote, one space before the fields and one before the timestamp. For such lines the
payload's bytes are classified and cut by numpy (separator positions, counts per line and per token),
numbers are read from the 8-byte words that end them (`decimals`; `float()` only for exponents and
long ones), and series prefixes and field names are numbered by hashing their words (`distinct`):
Python objects exist per distinct prefix and name, whose meaning (measurement and tags) the caller
decides once.

Every other line is left to the caller's per-line C parser, which stays the reference: for the lines
read here the result is the one the C parser gives (property-tested), so this module may leave a line
to it for any oddity (`1e400`, a 20-digit integer, a tab, a trailing space) but never reads one
differently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hub.ingest.webhooks.lineprotocol.decimals import digits
from hub.ingest.webhooks.lineprotocol.distinct import distinct
from hub.ingest.webhooks.lineprotocol.spans import PAD, U64Array, first_word, padded, spans, words_view
from shared.model import F64Array, I64Array

BoolArray = npt.NDArray[np.bool_]
NS_PER_MS = 1_000_000
MAX_INT_DIGITS = 18  # an `i` integer of up to 18 digits is within int64, so float() of it is exact
MAX_UINT_DIGITS = 19  # and a `u` one of up to 19 within uint64
MAX_STAMP_DIGITS = 19
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
_FLOATY = b"0123456789.eE+-"
_TINY = np.finfo(np.float64).tiny  # strtod reports a subnormal or overflowing result: the C parser refuses


def _words(*spellings: bytes) -> U64Array:
    return np.array([int.from_bytes(w, "little") for w in spellings], dtype=np.uint64)


# The spellings of true and false the C parser takes, as `word_of` reads them.
_BOOLISH = _table(b"tTfF")
_TRUE = _words(b"t", b"T", b"true", b"True", b"TRUE")
_FALSE = _words(b"f", b"F", b"false", b"False", b"FALSE")


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
    for each its series prefix, field count and time, and per field its name and value; prefixes and
    names as numbers into the distinct ones (`heads`, `names`: some may be no taken line's any more)."""

    lines: int  # in the payload, split at newlines
    taken: I64Array
    heads: list[bytes]
    head_ids: I64Array
    counts: I64Array
    stamps_ms: I64Array
    names: list[bytes]
    name_ids: I64Array
    values: F64Array

    def only(self, keep: BoolArray) -> Scan:
        """The scan with only the taken lines `keep` marks (the others become the caller's)."""
        per_field = np.repeat(keep, self.counts)
        return Scan(
            self.lines,
            self.taken[keep],
            self.heads,
            self.head_ids[keep],
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
    buffer = padded(data, b"\n")  # every line, the last too, ends in a newline
    a = buffer[PAD:-PAD]
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
        return Scan(n_lines, none, [], none, none, none, [], none, np.zeros(0))
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
    words = words_view(buffer)
    values, value_bad = _values(a, words, pos[eq] + 1, pos[eq + 1])
    line_bad = np.bincount(field_line[value_bad], minlength=zones.lines.shape[0]) > 0

    # Timestamps: digits after the second space, optionally signed.
    stamped = n_spaces[zones.lines] == 2
    stamp_start = np.where(stamped, sep[zones.end], nl[zones.lines]) + 1
    stamps_ms, stamp_bad = _stamps(a, words, stamp_start, nl[zones.lines], stamped, unit_ns, now_ms, max_ns)
    line_bad |= stamp_bad

    heads, head_ids = _strings(data, words, starts[zones.lines], sep[zones.begin])
    names, name_ids = _strings(data, words, pos[eq - 1] + 1, pos[eq])
    full = Scan(
        n_lines,
        zones.lines,
        heads,
        head_ids,
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
        at = spans(begin, width)
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


def _cut_bytes(a: npt.NDArray[np.uint8], starts: I64Array, ends: I64Array) -> list[bytes]:
    """The byte strings `a[start:end]`, cut out of one joined buffer in one split."""
    if not starts.shape[0]:
        return []
    idx = spans(starts, ends - starts + 1)  # each with the separator that ends it
    buf = a[idx].copy()
    buf[np.cumsum(ends - starts + 1) - 1] = _COMMA
    return buf.tobytes().split(b",")[:-1]


def _strings(data: bytes, words: U64Array, starts: I64Array, ends: I64Array) -> tuple[list[bytes], I64Array]:
    """The distinct byte strings `data[start:end]` (`words` viewing `data`), and the number of each."""
    found = distinct(words, starts, ends - starts)
    if found is None:  # long or hash-alike strings: numbered by a dict
        every = [data[i:j] for i, j in zip(starts.tolist(), ends.tolist(), strict=True)]
        ids = {name: i for i, name in enumerate(dict.fromkeys(every))}
        return list(ids), np.fromiter(map(ids.__getitem__, every), np.int64, len(every))
    firsts = zip(starts[found.first].tolist(), ends[found.first].tolist(), strict=True)
    return [data[i:j] for i, j in firsts], found.number


def _values(
    a: npt.NDArray[np.uint8], words: U64Array, start: I64Array, end: I64Array
) -> tuple[F64Array, BoolArray]:
    """Field values as floats and which ones the bulk path does not read (left to the C parser).

    Integers, booleans and plain decimals are read by array operations (`decimals`); only the other
    decimal-looking values (an exponent, many digits) go through `float()`, one by one."""
    length = end - start
    first, last = a[start], a[end - 1]
    signed = first == _MINUS
    suffixed = (last == ord("i")) | (last == ord("u"))
    body = length - signed - suffixed
    read = digits(words, start + signed, end - suffixed)
    whole = (read.digits == body) & (body >= 1)
    integer = (last == ord("i")) & whole & (body <= MAX_INT_DIGITS)
    unsigned = (last == ord("u")) & whole & ~signed & (body <= MAX_UINT_DIGITS)
    values = read.value(signed)
    values[integer] += 0.0  # "-0i" is the integer 0, not float -0.0
    known = integer | unsigned | (~suffixed & read.plain(body))
    maybe = np.flatnonzero(np.take(_BOOLISH, first))
    word = first_word(words, start[maybe], length[maybe])
    values[maybe] = np.isin(word, _TRUE)
    known[maybe] = np.isin(word, _TRUE) | np.isin(word, _FALSE)
    bad = np.zeros(length.shape[0], dtype=np.bool_)
    rest = np.flatnonzero(~known)
    if rest.shape[0]:
        values[rest], bad[rest] = _floats(_cut_bytes(a, start[rest], end[rest]))
    return values, bad


def _floats(texts: list[bytes]) -> tuple[F64Array, BoolArray]:
    """`float()` of the texts that look decimal (digits, dots, e, E, signs, not a leading +), and
    which texts are not the bulk path's: the others, those `float()` refuses ("1e", "1.2.3", "-"),
    and those not finite, subnormal, or a zero with a digit but 0 (strtod's underflow, which the C
    parser refuses, or an exponent like "0e5", harmless but told apart only by reading it)."""
    texts = [t if not t.translate(None, _FLOATY) and t[:1] != b"+" else b"nan" for t in texts]
    try:
        values = np.fromiter(map(float, texts), np.float64, len(texts))
    except ValueError:
        values = np.array([_float_or_nan(t) for t in texts], dtype=np.float64)
    bad = np.isnan(values) | ~np.isfinite(values) | ((values != 0) & (np.abs(values) < _TINY))
    for i in np.flatnonzero(values == 0).tolist():
        bad[i] |= bool(texts[i].strip(b"0.+-eE"))  # what is left of a decimal-looking text is a digit
    return values, bad


def _float_or_nan(text: bytes) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _stamps(
    a: npt.NDArray[np.uint8],
    words: U64Array,
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
    signed = a[start] == _MINUS
    magnitude = length - signed
    read = digits(words, start + signed, end)
    # 19 digits fit int64 up to 9223372036854775806 (the C parser's bound): those from a 9 are its to judge.
    high = (length == MAX_STAMP_DIGITS) & ~signed & (a[start] > ord("8"))
    wrong = (read.digits != magnitude) | (magnitude < 1) | (length > MAX_STAMP_DIGITS) | high
    raw = np.where(wrong, 0, read.mantissa.astype(np.int64))
    np.negative(raw, out=raw, where=signed)
    bound = max_ns // unit_ns
    inside = (raw >= -bound) & (raw <= bound)
    bad[have] = wrong | ~inside
    ms[have] = np.where(inside, raw, 0) * unit_ns // NS_PER_MS
    return ms, bad
