"""Token buckets: a burst, then refusals with the wait until the next token, refilled over time; bounded
memory; exact under threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from hub.auth.ratelimit import RateLimiter, retry_after

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_burst_is_allowed_then_refused_with_the_wait_until_a_token_refills() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=0.5, burst=3, monotonic=clock)
    assert [limiter.take("10.0.0.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("10.0.0.1") == pytest.approx(2.0)
    assert retry_after(limiter.take("10.0.0.1")) == "2"
    assert limiter.take("10.0.0.2") == 0.0  # another key has its own bucket
    clock.t += 1.0
    assert limiter.take("10.0.0.1") == pytest.approx(1.0)  # half a token earned, refusals took nothing
    clock.t += 1.0
    assert limiter.take("10.0.0.1") == 0.0
    clock.t += 1000
    assert [limiter.take("10.0.0.1") for _ in range(4)].count(0.0) == 3  # refilled to the burst, not more


def test_buckets_are_bounded_and_evict_the_least_recently_used_key() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, monotonic=clock, max_keys=100)
    limiter.take("first")
    for i in range(100):
        limiter.take(f"ip{i}")
    assert len(limiter._buckets) == 100
    assert limiter.take("first") == 0.0  # evicted, so it starts full again
    assert limiter.take("ip99") > 0


def test_threads_taking_at_once_get_exactly_the_burst() -> None:
    limiter = RateLimiter(rate=1e-9, burst=50, monotonic=Clock())
    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(lambda _: limiter.take("k"), range(400)))
    assert waits.count(0.0) == 50


def test_a_limit_without_rate_or_burst_is_refused() -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        RateLimiter(rate=0, burst=5, monotonic=Clock())
