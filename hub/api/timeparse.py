"""Parses API time parameters: epoch milliseconds, RFC 3339, `now`, or relative (`-15m`, `-2h`, `-7d`).

Every value is bounded: times must fall in 1970-01-01 .. 2200-01-01 (`TIME_MIN_MS` .. `TIME_MAX_MS`)
and durations must be at most that whole range, so no parameter can make a query loop, overflow or
ask for a bucket stamped in another century. Out of bounds is a ValueError naming the text.
"""

from __future__ import annotations

import datetime as dt
import re

from hub.store.base import TIME_MAX_MS, TIME_MIN_MS

# Longest parameter text looked at; anything longer is refused before any regex or int() runs.
MAX_TEXT_LEN = 64
MAX_DURATION_MS = TIME_MAX_MS - TIME_MIN_MS
_REL = re.compile(r"(?:now)?-(\d{1,16})(ms|s|m|h|d|w)")
_DURATION = re.compile(r"(\d{1,16})(ms|s|m|h|d|w)?")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_RANGE = "1970-01-01 .. 2200-01-01"


def parse_duration_ms(text: str) -> int:
    """`30s`, `5m`, `1h`, or a bare number of milliseconds; 1 ms up to the whole range of times.

    Raises:
        ValueError: not a duration, zero, or longer than `MAX_DURATION_MS`.
    """
    m = _DURATION.fullmatch(text.strip()) if len(text) <= MAX_TEXT_LEN else None
    if not m:
        raise ValueError(f"not a duration: {_shown(text)}")
    ms = int(m.group(1)) * _UNIT_MS[m.group(2) or "ms"]
    if not 0 < ms <= MAX_DURATION_MS:
        raise ValueError(f"duration {_shown(text)} must be 1 ms .. {MAX_DURATION_MS} ms ({_RANGE})")
    return ms


def parse_time_ms(text: str, now_ms: int) -> int:
    """Resolves a time parameter against `now_ms`.

    Raises:
        ValueError: unparsable, or outside 1970-01-01 .. 2200-01-01; the message has the offending text.
    """
    t = text.strip()
    if len(t) > MAX_TEXT_LEN:
        raise ValueError(f"not a time: {_shown(text)}")
    if t == "now":
        ms = now_ms
    elif m := _REL.fullmatch(t):
        ms = now_ms - int(m.group(1)) * _UNIT_MS[m.group(2)]
    elif re.fullmatch(r"\d{1,16}", t):
        ms = int(t)
    else:
        try:
            parsed = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not a time: {_shown(text)}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        try:
            ms = int(parsed.timestamp() * 1000)
        except (OverflowError, OSError, ValueError):  # years near 1 or 9999 with an offset
            raise ValueError(f"time {_shown(text)} outside {_RANGE}") from None
    if not TIME_MIN_MS <= ms <= TIME_MAX_MS:
        raise ValueError(f"time {_shown(text)} outside {_RANGE} ({TIME_MIN_MS}..{TIME_MAX_MS} ms)")
    return ms


def _shown(text: str) -> str:
    """The offending text for an error message, cut short: a 1 MB parameter must not come back whole."""
    return repr(text if len(text) <= MAX_TEXT_LEN else text[:MAX_TEXT_LEN] + "...")
