"""Property tests: whatever text a client sends, the query parsers answer a bounded value or ValueError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.api.routes.params import parse_int
from hub.api.timeparse import MAX_DURATION_MS, parse_duration_ms, parse_time_ms
from hub.matchers import parse_matchers
from hub.store.base import MAX_POINTS_LIMIT, TIME_MAX_MS, TIME_MIN_MS, RangeQuery, effective_step

pytestmark = pytest.mark.unit

NOW = 1_789_999_200_000
UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
numbers = st.one_of(st.integers(0, 10**25), st.integers(0, 10**6)).map(str)
units = st.sampled_from(["", *UNITS])
texts = st.one_of(
    st.text(max_size=80),
    st.builds(lambda n, u: f"-{n}{u}", numbers, units),
    st.builds(lambda n, u: f"now-{n}{u}", numbers, units),
    st.builds(lambda n, u: f"{n}{u}", numbers, units),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
)


@settings(max_examples=400, deadline=200)
@given(texts)
def test_a_time_is_inside_1970_to_2200_or_a_value_error(text: str) -> None:
    try:
        ms = parse_time_ms(text, NOW)
    except ValueError as exc:
        assert str(exc)
        return
    assert TIME_MIN_MS <= ms <= TIME_MAX_MS


@settings(max_examples=300, deadline=200)
@given(st.integers(0, 10**18), st.sampled_from(list(UNITS)))
def test_a_relative_time_is_exact_when_in_range_and_refused_otherwise(n: int, unit: str) -> None:
    want = NOW - n * UNITS[unit]
    if TIME_MIN_MS <= want and n < 10**16:
        assert parse_time_ms(f"-{n}{unit}", NOW) == want
    else:
        with pytest.raises(ValueError):
            parse_time_ms(f"-{n}{unit}", NOW)


@settings(max_examples=300, deadline=200)
@given(st.integers(TIME_MIN_MS, TIME_MAX_MS))
def test_epoch_milliseconds_in_range_read_back_exactly(ms: int) -> None:
    assert parse_time_ms(str(ms), NOW) == ms


@settings(max_examples=400, deadline=200)
@given(texts)
def test_a_duration_is_1_ms_to_the_whole_range_or_a_value_error(text: str) -> None:
    try:
        ms = parse_duration_ms(text)
    except ValueError:
        return
    assert 0 < ms <= MAX_DURATION_MS


@settings(max_examples=300, deadline=200)
@given(st.one_of(st.text(max_size=40), numbers))
def test_an_integer_parameter_is_within_its_bounds_or_a_value_error(text: str) -> None:
    try:
        value = parse_int("max_points", text, 400, 1, MAX_POINTS_LIMIT)
    except ValueError as exc:
        assert "max_points" in str(exc)
        return
    assert 1 <= value <= MAX_POINTS_LIMIT


@settings(max_examples=300, deadline=500)
@given(st.lists(st.text(max_size=60), max_size=5))
def test_matchers_parse_or_raise_a_value_error_never_anything_else(raw: list[str]) -> None:
    try:
        matchers = parse_matchers(raw)
    except ValueError as exc:
        assert str(exc)
        return
    assert len(matchers) == len(raw)


@settings(max_examples=500, deadline=200)
@given(
    st.integers(TIME_MIN_MS, TIME_MAX_MS),
    st.integers(TIME_MIN_MS, TIME_MAX_MS),
    st.one_of(st.none(), st.integers(1, TIME_MAX_MS)),
    st.integers(1, MAX_POINTS_LIMIT),
)
def test_the_effective_step_always_fits_max_points_and_never_narrows_the_asked_step(
    a: int, b: int, step: int | None, max_points: int
) -> None:
    start, end = min(a, b), max(a, b)
    q = RangeQuery("m", start, end, step_ms=step, max_points=max_points)
    got = effective_step(q)
    if got is None:
        assert step is None and end - start + 1 <= max_points
        return
    assert got > 0
    assert end // got - start // got + 1 <= max_points
    if step is not None:
        assert got >= step


@settings(max_examples=200, deadline=200)
@given(st.integers(TIME_MIN_MS, TIME_MAX_MS - 10**9), st.integers(1, 10**9), st.integers(1, 2000))
def test_a_step_fitted_to_the_data_gives_close_to_max_points_buckets(
    first: int, span: int, max_points: int
) -> None:
    q = RangeQuery("m", TIME_MIN_MS, TIME_MAX_MS, max_points=max_points)
    got = effective_step(q, first, first + span, most_points=max_points + 1)
    assert got is not None
    buckets = (first + span) // got - first // got + 1
    assert buckets <= max_points
    # Rounding to readable units costs at most a factor of about 2 below the cap (5 min -> 10 min).
    assert buckets >= min(max_points, span // got) // 3
