"""The query answer written from numpy columns parses to exactly what the stdlib writes from objects."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.api.query_json import query_answer
from hub.store.base import SeriesResult
from shared.model import SeriesKey

pytestmark = pytest.mark.unit

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-7, 1e20, 23.4, 0.1 + 0.2, 5e-324, 1.7976931348623157e308]),
)
series = st.lists(
    st.tuples(
        st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=3),
        st.lists(st.tuples(st.integers(0, 7_258_118_400_000), values), max_size=40, unique_by=lambda p: p[0]),
    ),
    max_size=6,
)


def _reference(start_ms: int, end_ms: int, results: list[SeriesResult]) -> object:
    """The answer as `json` would write it from a dict per series and a list per point."""
    return {
        "start_ms": start_ms,
        "end_ms": end_ms,
        "series": [
            {
                "metric": r.key.metric,
                "labels": dict(r.key.labels),
                "points": [
                    [t, v if np.isfinite(v) else None]
                    for t, v in zip(r.timestamps_ms.tolist(), r.values.tolist(), strict=True)
                ],
            }
            for r in results
        ],
    }


def _result(labels: dict[str, str], points: list[tuple[int, float]]) -> SeriesResult:
    points = sorted(points)
    return SeriesResult(
        SeriesKey.of("m", labels),
        np.asarray([p[0] for p in points], np.int64),
        np.asarray([p[1] for p in points], np.float64),
    )


@settings(max_examples=300, deadline=None)
@given(series, st.integers(0, 10**13))
def test_answer_parses_to_what_json_writes_from_objects(shape: list, start_ms: int) -> None:
    results = [_result(labels, points) for labels, points in shape]
    body = query_answer(start_ms, start_ms + 1, results)
    doc = json.loads(body)
    assert doc == _reference(start_ms, start_ms + 1, results)
    assert list(doc) == ["start_ms", "end_ms", "series"]
    assert all(type(p[0]) is int for s in doc["series"] for p in s["points"])


def test_answer_is_compact_and_keeps_non_ascii_labels_as_utf8() -> None:
    r = SeriesResult(
        SeriesKey.of("temp", {"site": "Zürich"}), np.asarray([1000, 2000]), np.asarray([1.5, np.nan])
    )
    assert (
        query_answer(0, 5000, [r])
        == (
            '{"start_ms":0,"end_ms":5000,"series":[{"metric":"temp","labels":{"site":"Zürich"},'
            '"points":[[1000,1.5],[2000,null]]}]}'
        ).encode()
    )
    assert query_answer(1, 2, []) == b'{"start_ms":1,"end_ms":2,"series":[]}'


def test_answer_takes_strided_columns() -> None:
    ts, vals = np.arange(0, 20_000, 1000), np.arange(20.0)
    body = query_answer(0, 1, [SeriesResult(SeriesKey.of("m"), ts[::2], vals[::2])])
    assert json.loads(body)["series"][0]["points"] == [
        [t, v] for t, v in zip(range(0, 20_000, 2000), range(0, 20, 2), strict=True)
    ]
