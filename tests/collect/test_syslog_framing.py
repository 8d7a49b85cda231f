"""TCP syslog framing (RFC 6587): octet counting or LF, decided per connection, bounded per message."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.collect.syslog.framing import Frame, Framer, Framing
from agent.collect.syslog.ratelimit import RateLimiter

pytestmark = pytest.mark.unit


def _feed_in_chunks(framer: Framer, data: bytes, cuts: list[int]) -> list[Frame]:
    out: list[Frame] = []
    prev = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        out += framer.feed(data[prev:cut])
        prev = max(prev, cut)
    last = framer.close()
    return out + ([last] if last else [])


_messages = st.lists(st.binary(min_size=1, max_size=200).map(lambda b: b"<13>" + b), min_size=1, max_size=8)


@settings(max_examples=100, deadline=None)
@given(_messages, st.lists(st.integers(0, 10_000), max_size=6))
def test_octet_counted_messages_come_out_whole_however_the_stream_is_cut(
    messages: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(str(len(m)).encode() + b" " + m for m in messages)
    framer = Framer(max_bytes=4096)
    assert _feed_in_chunks(framer, stream, cuts) == [Frame(m) for m in messages]
    assert framer.framing is Framing.OCTET_COUNTING


@settings(max_examples=100, deadline=None)
@given(_messages, st.lists(st.integers(0, 10_000), max_size=6), st.booleans())
def test_lf_framed_messages_come_out_whole_however_the_stream_is_cut(
    messages: list[bytes], cuts: list[int], final_lf: bool
) -> None:
    messages = [m.replace(b"\n", b" ") for m in messages]
    stream = b"\n".join(messages) + (b"\n" if final_lf else b"")
    framer = Framer(max_bytes=4096)
    assert _feed_in_chunks(framer, stream, cuts) == [Frame(m) for m in messages]
    assert framer.framing is Framing.LF


def test_an_over_long_counted_message_is_cut_and_the_next_one_still_read() -> None:
    framer = Framer(max_bytes=500)
    big = b"<13>" + b"x" * 996
    out = framer.feed(b"1000 " + big[:300]) + framer.feed(big[300:] + b"9 <13>after")
    assert out == [Frame(big[:500], truncated=True), Frame(b"<13>after")]


def test_an_over_long_line_is_cut_and_the_rest_of_it_skipped() -> None:
    framer = Framer(max_bytes=500)
    out = framer.feed(b"<13>" + b"y" * 700) + framer.feed(b"y" * 700 + b"\n<13>next\n")
    assert out == [Frame(b"<13>" + b"y" * 496, truncated=True), Frame(b"<13>next")]


@pytest.mark.parametrize("stream", [b"12x <13>hello", b"12345678901 <13>", b"0 ", b"5 <13>a" + b"b" * 99])
def test_a_broken_octet_count_stops_the_stream_after_the_messages_before_it(stream: bytes) -> None:
    framer = Framer(max_bytes=4096)
    before = framer.feed(stream)
    assert framer.error is not None and before == ([Frame(b"<13>a")] if stream.startswith(b"5 ") else [])
    assert framer.feed(b"5 <13>z") == []


def test_a_sender_over_its_rate_is_limited_and_told_once_each_way() -> None:
    limiter = RateLimiter(rate=10, burst=3, max_sources=2)
    first = [limiter.allow("10.0.0.1", 0.0) for _ in range(5)]
    assert first == [(True, False)] * 3 + [(False, True), (False, False)]
    assert limiter.allow("10.0.0.1", 0.1) == (True, True)  # one token refilled after 0.1 s at 10/s
    assert limiter.allow("10.0.0.2", 0.1) == (True, False)  # another sender has its own bucket


def test_the_least_recently_heard_sender_is_forgotten_past_max_sources() -> None:
    limiter = RateLimiter(rate=0.001, burst=1, max_sources=2)
    assert limiter.allow("a", 0)[0] and not limiter.allow("a", 0)[0]
    limiter.allow("b", 0)
    limiter.allow("c", 0)  # evicts "a"
    assert limiter.allow("a", 0)[0]  # starts again with a full bucket
