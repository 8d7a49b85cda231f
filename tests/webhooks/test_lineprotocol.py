"""The line-protocol parser: Telegraf's own serializer output, precisions, bad lines, and fuzzing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.ingest.webhooks import telegraf_json
from hub.ingest.webhooks.lineprotocol import ParsedLines, PrecisionError, ns_per_unit, parse

pytestmark = pytest.mark.unit
NOW_MS = 1_700_000_000_000


def values(parsed: ParsedLines) -> dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[int, float]]]:
    return {
        (s.key.metric, s.key.labels): list(zip(s.timestamps_ms.tolist(), s.values.tolist(), strict=True))
        for s in parsed.series
    }


# Outputs of Telegraf's influx serializer (plugins/serializers/influx/influx_test.go), as Telegraf's
# `outputs.influxdb` and `outputs.influxdb_v2` send them, with what the hub stores for each.
TELEGRAF_PAYLOADS = [
    ("cpu value=42 0\n", {("cpu_value", ()): [(0, 42.0)]}),
    (
        "cpu,cpu=CPU0,host=localhost value=42 0\n",
        {("cpu_value", (("cpu", "CPU0"), ("host", "localhost"))): [(0, 42.0)]},
    ),
    ("cpu x=42,y=42 0\n", {("cpu_x", ()): [(0, 42.0)], ("cpu_y", ()): [(0, 42.0)]}),
    ("cpu y=42i 0\n", {("cpu_y", ()): [(0, 42.0)]}),
    ("cpu value=123456789012345i 0\n", {("cpu_value", ()): [(0, 123456789012345.0)]}),
    ("cpu value=42u 0\n", {("cpu_value", ()): [(0, 42.0)]}),
    ("cpu value=18446744073709551615u 0\n", {("cpu_value", ()): [(0, 18446744073709551615.0)]}),
    ("cpu value=9223372036854775807i 0\n", {("cpu_value", ()): [(0, 9223372036854775807.0)]}),
    ("cpu value=true 0\n", {("cpu_value", ()): [(0, 1.0)]}),
    ("cpu value=42 1519194109000000042\n", {("cpu_value", ()): [(1519194109000, 42.0)]}),
    (
        "cpu abc=123i 1519194109000000042\ncpu def=456i 1519194109000000042\n",
        {("cpu_abc", ()): [(1519194109000, 123.0)], ("cpu_def", ()): [(1519194109000, 456.0)]},
    ),
    ("c\\npu value=42i 0\n", {("c\\npu_value", ()): [(0, 42.0)]}),
    ("cpu,host=x\\ny value=42i 0\n", {("cpu_value", (("host", "x\\ny"),)): [(0, 42.0)]}),
    ("cpu value=42 0\ncpu value=42 0\n", {("cpu_value", ()): [(0, 42.0)]}),
]


@pytest.mark.parametrize(("payload", "expected"), TELEGRAF_PAYLOADS)
def test_telegraf_serializer_output_is_stored_as_numbers(
    payload: str, expected: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[int, float]]]
) -> None:
    parsed = parse(payload, ns_per_unit("ns"), NOW_MS)
    assert parsed.first_error is None and parsed.bad_lines == 0
    assert values(parsed) == expected


def test_telegraf_procstat_line_gives_one_series_per_field() -> None:
    fields = ",".join(f"f{i}={i}i" for i in range(56)) + ",cpu_time_user=0.02"
    parsed = parse(f"procstat,exe=bash,process_name=bash {fields} 1517620624000000000", 1, NOW_MS)
    got = values(parsed)
    assert len(got) == 57
    assert got[("procstat_cpu_time_user", (("exe", "bash"), ("process_name", "bash")))] == [
        (1517620624000, 0.02)
    ]


def test_string_fields_are_counted_and_skipped() -> None:
    parsed = parse('cpu value="howdy" 0\ncpu msg="x\\ny",n=1i 0\n', 1, NOW_MS)
    assert parsed.string_fields == 2
    assert values(parsed) == {("cpu_n", ()): [(0, 1.0)]}


def test_escaped_measurement_tags_and_spaces_are_unescaped() -> None:
    parsed = parse(
        'my\\ cpu,location=us\\,midwest,a\\=b=c\\ d temp=82,s="a b" 1465839830100400200', 1, NOW_MS
    )
    assert values(parsed) == {
        ("my cpu_temp", (("a=b", "c d"), ("location", "us,midwest"))): [(1465839830100, 82.0)]
    }


@pytest.mark.parametrize(
    ("precision", "stamp", "expected_ms"),
    [
        ("ns", 1_700_000_000_123_456_789, 1_700_000_000_123),
        ("n", 1_700_000_000_123_456_789, 1_700_000_000_123),
        ("us", 1_700_000_000_123_456, 1_700_000_000_123),
        ("u", 1_700_000_000_123_456, 1_700_000_000_123),
        ("ms", 1_700_000_000_123, 1_700_000_000_123),
        ("s", 1_700_000_000, 1_700_000_000_000),
        ("m", 28_333_333, 1_699_999_980_000),
        ("h", 472_222, 1_699_999_200_000),
        ("", 1_700_000_000_123_456_789, 1_700_000_000_123),
    ],
)
def test_every_precision_is_read_as_milliseconds(precision: str, stamp: int, expected_ms: int) -> None:
    parsed = parse(f"cpu v=1 {stamp}", ns_per_unit(precision), NOW_MS)
    assert values(parsed) == {("cpu_v", ()): [(expected_ms, 1.0)]}


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(PrecisionError, match="precision must be one of"):
        ns_per_unit("fortnight")


def test_line_without_timestamp_is_stamped_now() -> None:
    assert values(parse("cpu v=1", 1, NOW_MS)) == {("cpu_v", ()): [(NOW_MS, 1.0)]}


def test_bad_lines_are_named_by_number_and_good_lines_kept() -> None:
    payload = (
        "# a comment\ncpu v=1 1000000\n\ncpu v=\ncpu,host v=2\ncpu v=3 3000000\ncpu v=1 99999999999999999999"
    )
    parsed = parse(payload, 1, NOW_MS)
    assert (parsed.lines, parsed.bad_lines) == (5, 3)
    assert parsed.first_error is not None and parsed.first_error.line == 4
    assert (
        "Failed to parse value of field" in parsed.first_error.reason
        and "cpu v=" in parsed.first_error.reason
    )
    assert values(parsed) == {("cpu_v", ()): [(1, 1.0), (3, 3.0)]}


def test_timestamp_beyond_influx_range_is_a_bad_line() -> None:
    parsed = parse("cpu v=2 9000000\ncpu v=3 10", ns_per_unit("h"), NOW_MS)
    assert parsed.bad_lines == 1 and parsed.first_error is not None
    assert "timestamp out of range" in parsed.first_error.reason
    assert values(parsed) == {("cpu_v", ()): [(36_000_000, 3.0)]}


def test_points_come_out_sorted_and_a_repeated_timestamp_keeps_the_last_value() -> None:
    parsed = parse("cpu v=3 3000000\ncpu v=1 1000000\ncpu v=9 3000000\ncpu v=2 2000000", 1, NOW_MS)
    (s,) = parsed.series
    assert s.timestamps_ms.tolist() == [1, 2, 3] and s.values.tolist() == [1.0, 2.0, 9.0]
    assert s.timestamps_ms.dtype == np.int64 and parsed.points == 3


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_without_raising(text: str) -> None:
    parsed = parse(text, 1, NOW_MS)
    assert parsed.bad_lines <= parsed.lines
    assert (parsed.first_error is None) == (parsed.bad_lines == 0)
    for s in parsed.series:
        assert len(s) and bool(np.all(s.timestamps_ms[1:] > s.timestamps_ms[:-1]))


JSON_KEYS = ["metrics", "name", "tags", "fields", "timestamp", "host", "v"]
LINE_ALPHABET = st.sampled_from(list('cpu,host=a b\\"=1.5ei tf-0\n#'))


@settings(max_examples=300, deadline=None)
@given(st.lists(LINE_ALPHABET, max_size=120).map("".join), st.sampled_from(sorted({"ns", "s", "h"})))
def test_near_line_protocol_parses_without_raising(text: str, precision: str) -> None:
    parsed = parse(text, ns_per_unit(precision), NOW_MS)
    assert parsed.points >= 0 and parsed.string_fields >= 0


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(JSON_KEYS), inner, max_size=4)
        ),
        max_leaves=16,
    )
)
def test_any_json_parses_as_telegraf_metrics_or_raises_value_error(doc: object) -> None:
    try:
        parsed = telegraf_json.parse(json.dumps(doc), ns_per_unit("s"), NOW_MS)
    except ValueError:
        return
    assert parsed.bad_lines <= parsed.lines
