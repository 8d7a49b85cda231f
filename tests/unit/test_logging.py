"""The log-once up/down rule: one line when something goes down, one when it comes back."""

from __future__ import annotations

import logging

import pytest

from shared.clock import FakeClock
from shared.logging import UpDown, human_duration

pytestmark = pytest.mark.unit


def test_an_outage_is_two_lines_however_many_failures(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    log = logging.getLogger("test.updown")
    hub = UpDown(log, "hub", clock)
    caplog.set_level(logging.INFO, logger="test.updown")
    assert hub.up() is False  # already up: nothing to say
    assert hub.down("connection refused") is True
    for _ in range(50):
        assert hub.down("connection refused") is False
    clock._mono += 250  # 4m10s later
    assert hub.up() is True
    assert hub.up() is False
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["hub down: connection refused", "hub back after 4m10s"]
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.INFO]


def test_every_outage_is_logged_not_only_the_first(caplog: pytest.LogCaptureFixture) -> None:
    state = UpDown(logging.getLogger("test.updown2"), "NATS", FakeClock())
    caplog.set_level(logging.INFO, logger="test.updown2")
    for _ in range(3):
        state.down("gone")
        state.up()
    assert len(caplog.records) == 6


def test_a_long_reason_is_cut_and_durations_read_like_people_write_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = UpDown(logging.getLogger("test.updown3"), "store", FakeClock())
    caplog.set_level(logging.INFO, logger="test.updown3")
    state.down("x" * 5000, logging.ERROR)
    assert len(caplog.records[0].getMessage()) == len("store down: ") + 300
    assert caplog.records[0].levelno == logging.ERROR
    assert [human_duration(s) for s in (12, 250, 7380)] == ["12s", "4m10s", "2h3m0s"]
