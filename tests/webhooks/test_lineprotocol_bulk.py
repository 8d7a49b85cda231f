"""The bulk line-protocol path against the C parser's: the same series, points, counts and first error."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.ingest.webhooks import lineprotocol
from hub.ingest.webhooks.lineprotocol import (
    PRECISION_NS,
    ParsedLines,
    decimals,
    distinct,
    parse,
    parse_per_line,
    series_cache,
    spans,
)
from shared.model import SeriesKey

pytestmark = pytest.mark.unit
NOW_MS = 1_700_000_000_000


def outcome(parsed: ParsedLines) -> tuple[object, ...]:
    """Everything a parse tells, series as a dict (their order is not part of the contract) and values
    as bits (so -0.0 and 0.0 differ)."""
    series = {
        (s.key.metric, s.key.labels): (s.timestamps_ms.tolist(), s.values.tobytes()) for s in parsed.series
    }
    assert len(series) == len(parsed.series), "one series per key"
    return series, parsed.lines, parsed.bad_lines, parsed.first_error, parsed.string_fields


# Names: plain, or with what must be escaped (and sometimes is not), unicode, a tab.
PLAIN = st.text("abcxyz_-.:/0123456789", min_size=1, max_size=6)
NAME = st.one_of(
    PLAIN,
    PLAIN,
    PLAIN,
    st.text('ab\\ ,="#é\tΩ', min_size=1, max_size=5),
    st.sampled_from(["my\\ cpu", "us\\,west", "a\\=b", "x\\\\y", "c\\npu", "#x", "é"]),
)
FLOAT = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda f: f"{f:.3f}"),
    st.sampled_from(
        [
            "1",
            "1.",
            ".5",
            "-.5",
            "-0",
            "0",
            "1e5",
            "1E+5",
            "2.5e-3",
            "+1",
            "1e400",
            "1e-400",
            "4.9e-324",
            "1e",
            "1.2.3",
            "-",
            ".",
            "e5",
            "007",
            "1_0",
            "inf",
            "nan",
            "0x10",
            "1e308",
            "2e-308",
            "-1e-310",
        ]
    ),
)
INT = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(lambda i: f"{i}i"),
    st.sampled_from(
        [
            "0i",
            "-0i",
            "007i",
            "9223372036854775807i",
            "9223372036854775808i",
            "i",
            "-i",
            "+1i",
            "123456789012345678i",
            "-123456789012345678i",
        ]
    ),
)
UINT = st.one_of(
    st.integers(0, 2**64 - 1).map(lambda i: f"{i}u"),
    st.sampled_from(["18446744073709551615u", "18446744073709551616u", "-5u", "u", "0u"]),
)
BOOL = st.sampled_from(["t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE", "tRUE", "yes"])
STRING = st.text('ab ,=\\"x', max_size=6).map(lambda s: '"' + s.replace('"', '\\"') + '"')
VALUE = st.one_of(FLOAT, FLOAT, INT, UINT, BOOL, STRING)
STAMP = st.one_of(
    st.none(),
    st.integers(0, 2_000_000_000_000_000_000).map(str),
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.sampled_from(
        [
            "0",
            "-0",
            "007",
            "9223372036854775806",
            "9223372036854775807",
            "8999999999999999999",
            "9000000000000000000",
            "9999999999999999999",
            "99999999999999999999",
            "1.5",
            "+5",
            "5e3",
            "-",
        ]
    ),
)
SEP = st.sampled_from([" ", " ", " ", " ", " ", "  ", "\t"])


CLEAN_VALUE = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(10**18), 10**18).map(lambda i: f"{i}i"),
    st.integers(0, 2**64 - 1).map(lambda i: f"{i}u"),
    BOOL,
)


@st.composite
def lines(draw: st.DrawFn) -> str:
    """Mostly lines as Telegraf writes them (the bulk path's), the others anything near them."""
    clean = draw(st.integers(0, 2)) > 0
    if not clean and draw(st.integers(0, 9)) == 0:
        return draw(
            st.sampled_from(
                [
                    "",
                    "   ",
                    "# a comment",
                    "#",
                    "cpu",
                    "cpu ",
                    " cpu v=1",
                    "cpu v=1\r",
                    "cpu,a=1,a=2 v=1",
                    "cpu,host v=1",
                    ",cpu v=1",
                    "cpu v=1,",
                    "cpu,=x v=1",
                ]
            )
        )
    name = PLAIN if clean else NAME
    # Few measurements, tags and field names, so series, and points at one time, repeat.
    measurement = draw(st.one_of(st.sampled_from(["cpu", "mem", "a_b", "a"]), name))
    tags = draw(
        st.lists(
            st.tuples(
                st.one_of(st.sampled_from(["host", "cpu", "b_c"]), name),
                st.one_of(st.sampled_from(["h1", "h2"]), name),
            ),
            max_size=3,
        )
    )
    fields = draw(
        st.lists(
            st.tuples(
                st.one_of(st.sampled_from(["v", "b_c", "c"]), name),
                st.one_of(CLEAN_VALUE, CLEAN_VALUE, VALUE) if clean else VALUE,
            ),
            min_size=1,
            max_size=4,
        )
    )
    stamp = draw(st.one_of(st.sampled_from([None, "1000000", "2000000", "1700000000000000000"]), STAMP))
    sep = st.just(" ") if clean else SEP
    head = measurement + "".join(f",{k}={v}" for k, v in tags)
    line = head + draw(sep) + ",".join(f"{k}={v}" for k, v in fields)
    return line if stamp is None else line + draw(sep) + stamp


BODIES = st.lists(lines(), max_size=12).map("\n".join)


def reads_alike(text: str, precision: str) -> None:
    unit_ns = PRECISION_NS[precision]
    assert outcome(parse(text, unit_ns, NOW_MS)) == outcome(parse_per_line(text, unit_ns, NOW_MS))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BODIES, st.sampled_from(sorted(PRECISION_NS)))
def test_bulk_path_reads_every_body_as_the_c_parser_does(text: str, precision: str) -> None:
    reads_alike(text, precision)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BODIES, st.sampled_from(sorted(PRECISION_NS)))
def test_bulk_path_reads_thousands_of_bodies_as_the_c_parser_does(text: str, precision: str) -> None:
    reads_alike(text, precision)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_bulk_path_reads_any_text_as_the_c_parser_does(text: str) -> None:
    assert outcome(parse(text, 1, NOW_MS)) == outcome(parse_per_line(text, 1, NOW_MS))


TELEGRAF_LIKE = "\n".join(
    f"cpu,cpu=cpu{n % 4},host=h{n % 7} usage_user={n / 3:.3f},usage_idle=90.25,n={n}i,up=true "
    f"{1_700_000_000_000_000_000 + n * 10_000_000_000}"
    for n in range(200)
)


def test_common_lines_are_all_taken_by_the_bulk_path() -> None:
    from hub.ingest.webhooks.lineprotocol.bulk import scan

    found = scan(TELEGRAF_LIKE.encode(), 1, NOW_MS, lineprotocol.MAX_NS)
    assert found.taken.tolist() == list(range(200))
    assert found.counts.tolist() == [4] * 200
    assert [found.names[i] for i in found.name_ids[:4]] == [b"usage_user", b"usage_idle", b"n", b"up"]
    assert found.values[:4].tolist() == [0.0, 90.25, 0.0, 1.0]
    parsed = parse(TELEGRAF_LIKE, 1, NOW_MS)
    assert (parsed.lines, parsed.bad_lines, parsed.points) == (200, 0, 800)
    assert outcome(parsed) == outcome(parse_per_line(TELEGRAF_LIKE, 1, NOW_MS))


def test_a_field_named_twice_in_a_line_keeps_the_first_and_a_later_line_wins() -> None:
    text = "cpu v=1,v=2 5000000\ncpu v=3 5000000\ncpu v=4,v=5 6000000"
    (s,) = parse(text, 1, NOW_MS).series
    assert s.timestamps_ms.tolist() == [5, 6] and s.values.tolist() == [3.0, 4.0]


def test_a_series_written_back_in_time_comes_out_sorted_by_time() -> None:
    text = "cpu v=1 3000000\nmem v=9 1000000\ncpu v=2 1000000\ncpu v=3 2000000\ncpu v=4 2000000"
    cpu = next(s for s in parse(text, 1, NOW_MS).series if s.key.metric == "cpu_v")
    assert cpu.timestamps_ms.tolist() == [1, 2, 3] and cpu.values.tolist() == [2.0, 4.0, 1.0]


def test_one_series_written_under_two_tag_orders_is_one_series() -> None:
    parsed = parse("cpu,a=1,b=2 v=1 1000000\ncpu,b=2,a=1 v=2 2000000", 1, NOW_MS)
    (s,) = parsed.series
    assert s.key.labels == (("a", "1"), ("b", "2")) and s.values.tolist() == [1.0, 2.0]


def test_parsing_from_many_threads_while_the_caches_start_over_gives_the_same_series(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lineprotocol, "MAX_PREFIXES_CACHED", 3)
    monkeypatch.setattr(lineprotocol._series, "limit", 5)  # every payload starts a new generation
    bodies = [TELEGRAF_LIKE.replace("cpu,", f"cpu{i},") for i in range(8)]
    expected = [outcome(parse_per_line(b, 1, NOW_MS)) for b in bodies]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: outcome(parse(bodies[i % 8], 1, NOW_MS)), range(64)))
    assert got == [expected[i % 8] for i in range(64)]


class StartsOverFirst:
    """The series cache's lock, letting `before` run (another payload) just before it is first taken."""

    def __init__(self, real: AbstractContextManager[object], before: Callable[[], object]) -> None:
        self.real, self.before = real, before

    def __enter__(self) -> None:
        before, self.before = self.before, lambda: None
        before()
        self.real.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.real.__exit__(None, None, None)


def test_a_payload_whose_series_cache_starts_over_while_it_adds_series_takes_all_from_the_new_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = series_cache.SeriesCache(150)  # the 112 series of one body fit, those of two do not
    monkeypatch.setattr(lineprotocol, "_series", cache)
    parse(TELEGRAF_LIKE, 1, NOW_MS)
    other = TELEGRAF_LIKE.replace("cpu,", "gpu,")
    grown = TELEGRAF_LIKE + "\ncpu,host=new v=1 1000000"  # known series and one new: only that one misses
    first_generation = cache._now.keys
    monkeypatch.setattr(cache, "_lock", StartsOverFirst(cache._lock, lambda: parse(other, 1, NOW_MS)))
    assert outcome(parse(grown, 1, NOW_MS)) == outcome(parse_per_line(grown, 1, NOW_MS))
    assert cache._now.keys is not first_generation and len(cache._now.keys) == 113


def test_the_series_cache_starts_over_past_its_limit_of_codes_even_when_they_share_keys() -> None:
    cache = series_cache.SeriesCache(4)
    key = SeriesKey("cpu_v", ())
    for code in range(10):  # a prefix read again after its cache started over: a new code, the same key
        numbers, keys = cache.numbers(np.array([code, 100]), lambda missing: [key] * missing.shape[0])
        assert [keys[i] for i in numbers.tolist()] == [key, key] and cache._now.codes.shape[0] <= 4
    numbers, _ = cache.numbers(np.array([100, 9, 7]), lambda missing: [SeriesKey("x", ())] * missing.shape[0])
    assert cache._now.codes.tolist() == sorted(cache._now.codes.tolist())


def test_a_payload_of_only_blank_lines_and_comments_has_no_lines() -> None:
    parsed = parse("\n\n# x\n   \n", 1, NOW_MS)
    assert (parsed.lines, parsed.bad_lines, parsed.series) == (0, 0, ())
    assert np.asarray(parse("", 1, NOW_MS).series).shape == (0,)


def spans_of(strings: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The strings back to back in one padded buffer: its words view, and each string's start and length."""
    lengths = np.array([len(s) for s in strings], dtype=np.int64)
    return spans.words_view(spans.padded(b"".join(strings))), np.cumsum(lengths) - lengths, lengths


@pytest.mark.parametrize("kinds", [3, 5000])  # told apart by hash buckets, and by sorting the hashes
def test_spans_spelling_one_string_get_one_number(kinds: int) -> None:
    strings = [f"name_{i % kinds}_{'x' * (i % 23)}".encode()[: 5 + i % kinds % 40] for i in range(6000)]
    found = distinct.distinct(*spans_of(strings))
    assert found is not None
    assert [strings[i] for i in found.first[found.number]] == strings
    assert len({strings[i] for i in found.first}) == found.first.shape[0]


def test_long_or_hash_alike_names_are_numbered_by_their_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    long = "x" * (8 * distinct.MAX_WORDS + 1)
    assert distinct.distinct(*spans_of([long.encode(), b"v"])) is None
    text = f"cpu {long}=1,v=2,w=3 1000000\ncpu v=4,{long}=5 2000000"
    assert outcome(parse(text, 1, NOW_MS)) == outcome(parse_per_line(text, 1, NOW_MS))
    text = "cpu,host=a_longer_name v=1\nm v=2"  # the short last prefix's third word is past the buffer
    assert outcome(parse(text, 1, NOW_MS)) == outcome(parse_per_line(text, 1, NOW_MS))
    monkeypatch.setattr(distinct, "_MIX", np.uint64(0))  # every string hashes alike
    assert distinct.distinct(*spans_of([b"v", b"w"])) is None
    text = "cpu v=1,w=2 1000000\ncpu w=3,vv=4 2000000"
    assert outcome(parse(text, 1, NOW_MS)) == outcome(parse_per_line(text, 1, NOW_MS))


# Where the array reading of values stops and float() or the C parser takes over: 2**53 and 16 digits,
# 19 bytes, 22 and 23 digits after the dot, -0.0 against the integer 0, 18/19-digit i and 19/20-digit u.
EDGE_VALUES = [
    "123456789012345",
    "1234567890123456",
    "9007199254740992",
    "9007199254740993",
    "0.9007199254740993",
    "12345678.12345678",
    "1234567890.12345678",
    "0.123456789012345678",
    "0.1234567890123456789",
    "0.0000000000000000000001",
    "0.00000000000000000000001",
    "1.0000000000000000000001",
    "-0.0",
    "-0",
    "-.0",
    "-0.",
    "0.0",
    "-0i",
    "0i",
    "00000000000000000000000001.5",
    "999999999999999999i",
    "-999999999999999999i",
    "1000000000000000000i",
    "9007199254740993i",
    "9999999999999999999u",
    "9007199254740993u",
    "12345678901234567u",
    "18446744073709551615u",
    "1.5.",
    "..5",
    "1-5",
    "--5",
]


@pytest.mark.parametrize("value", EDGE_VALUES)
def test_values_at_the_edges_of_the_array_reading_read_as_the_c_parser_reads_them(value: str) -> None:
    text = f"cpu v={value} 1000000\ncpu,host=b v={value}"
    assert outcome(parse(text, 1, NOW_MS)) == outcome(parse_per_line(text, 1, NOW_MS))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10**19), st.integers(0, 20), st.booleans()), min_size=1, max_size=30)
)
def test_plain_decimals_read_by_words_are_what_float_reads(numbers: list[tuple[int, int, bool]]) -> None:
    texts = []
    for digits, fraction, negative in numbers:
        body = str(digits).zfill(fraction + 1)
        texts.append(
            ("-" if negative else "") + (f"{body[:-fraction]}.{body[-fraction:]}" if fraction else body)
        )
    data = ",".join(texts).encode()
    ends = np.cumsum([len(t) + 1 for t in texts]) - 1
    starts = ends - [len(t) for t in texts]
    signed = np.array([t.startswith("-") for t in texts])
    read = decimals.digits(spans.words_view(spans.padded(data)), starts + signed, ends)
    plain = read.plain(ends - starts - signed)
    assert read.value(signed)[plain].tobytes() == np.array([float(t) for t in texts])[plain].tobytes()
    assert plain.tolist() == [
        len(t) - (t[0] == "-") <= 19 and int(t.replace(".", "").replace("-", "")) <= 2**53 for t in texts
    ]
