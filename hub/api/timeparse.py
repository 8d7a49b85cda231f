"""Parses API time parameters: epoch milliseconds, RFC 3339, `now`, or relative (`-15m`, `-2h`, `-7d`)."""

from __future__ import annotations

import datetime as dt
import re

_REL = re.compile(r"^(?:now)?-(\d+)(ms|s|m|h|d|w)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_duration_ms(text: str) -> int:
    """`30s`, `5m`, `1h`, or a bare number of milliseconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d|w)?", text.strip())
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return int(m.group(1)) * _UNIT_MS[m.group(2) or "ms"]


def parse_time_ms(text: str, now_ms: int) -> int:
    """Resolves a time parameter against `now_ms`. Raises ValueError with the offending text."""
    t = text.strip()
    if t == "now":
        return now_ms
    m = _REL.match(t)
    if m:
        return now_ms - int(m.group(1)) * _UNIT_MS[m.group(2)]
    if re.fullmatch(r"\d{1,16}", t):
        return int(t)
    try:
        parsed = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)
