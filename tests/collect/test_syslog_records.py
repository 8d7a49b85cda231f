"""A parsed line's time: RFC 5424 as stamped, RFC 3164 in the year nearest the receive time, else now."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.collect.syslog.parse import parse
from agent.collect.syslog.records import timestamp_ms

pytestmark = pytest.mark.unit


def _ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("line", "received", "expected"),
    [
        ("<13>Dec 31 23:00:00 h a: x", _ms(2026, 1, 2), _ms(2025, 12, 31, 23)),  # last year's December
        ("<13>Jan  1 01:00:00 h a: x", _ms(2026, 12, 31, 23), _ms(2027, 1, 1, 1)),  # sender already in 2027
        ("<13>Jun 14 15:16:01 h a: x", _ms(2026, 6, 14, 15), _ms(2026, 6, 14, 15, 16, 1)),
        ("<13>Feb 29 15:16:01 h a: x", _ms(2026, 6, 14, 15), _ms(2026, 6, 14, 15)),  # no such day: received
        ("<13>1 2026-12-02T10:00:00.25+01:00 h a - - - x", 0, _ms(2026, 12, 2, 9) + 250),
        ("<13>1 2026-12-02T10:00:00 h a - - - x", 0, _ms(2026, 12, 2, 10)),  # no zone: read as UTC
        ("<13>1 - h a - - - x", 77, 77),  # NILVALUE: when it was received
        ("<13>1 yesterday h a - - - x", 77, 77),
        ("just some text", 77, 77),
    ],
)
def test_a_lines_time_is_what_the_sender_stamped_or_when_it_arrived(
    line: str, received: int, expected: int
) -> None:
    assert timestamp_ms(parse(line), received) == expected
