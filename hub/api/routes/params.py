"""Query-parameter parsing shared by the routes: every parameter bounded, a bad one a ValueError saying why.

Routes turn the ValueError into a counted 400 (`outpost_hub_api_rejected_total`).
"""

from __future__ import annotations

import re

from hub.api.deps import HubContext
from hub.api.timeparse import parse_time_ms
from hub.store.base import MAX_NAME_LEN, Agg

_AGGS = ", ".join(a.value for a in Agg)


def parse_int(name: str, text: str | None, default: int, lo: int, hi: int) -> int:
    """An integer parameter within [lo, hi].

    Raises:
        ValueError: not a decimal integer of at most 16 digits, or out of bounds.
    """
    if text is None:
        return default
    t = text.strip()
    if not re.fullmatch(r"\d{1,16}", t) or not lo <= int(t) <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {text[:32]!r}")
    return int(t)


def parse_agg(text: str) -> Agg:
    try:
        return Agg(text)
    except ValueError:
        raise ValueError(f"agg must be one of {_AGGS}, got {text[:32]!r}") from None


def parse_metric(text: str | None) -> str | None:
    if text is not None and not 0 < len(text) <= MAX_NAME_LEN:
        raise ValueError(f"metric name must be 1 to {MAX_NAME_LEN} characters")
    return text


def time_range(ctx: HubContext, start: str, end: str) -> tuple[int, int]:
    """Resolves `start`/`end` parameters.

    Raises:
        ValueError: unparsable, out of bounds, or reversed.
    """
    now = ctx.clock.now_ms()
    start_ms, end_ms = parse_time_ms(start, now), parse_time_ms(end, now)
    if end_ms < start_ms:
        raise ValueError("end is before start")
    return start_ms, end_ms
