"""`Written`: which columns of a row moved since it was last written, and forgetting what it cannot hold."""

from __future__ import annotations

import pytest

from hub.alerts.written import Written

pytestmark = pytest.mark.unit


def test_an_unknown_row_moved_everywhere_and_a_known_one_only_where_it_differs() -> None:
    w = Written(fields=4, volatile=2)
    assert w.moved("a", (1, 10, "firing", None)) == [0, 1, 2, 3]
    assert w.moved("a", (2, 11, "firing", None)) == [0, 1]  # a repeat: the volatile head only
    assert w.moved("a", (2, 11, "resolved", None)) == [2]
    assert w.moved("a", (3, 11, "firing", "op")) == [0, 2, 3]
    assert w.moved("a", (3, 11, "firing", "op")) == []


def test_beyond_its_limit_the_least_recently_written_row_is_forgotten_and_written_whole_again() -> None:
    w = Written(fields=2, volatile=1, limit=2)
    w.remember("a", (1, "x"))
    w.remember("b", (1, "x"))
    assert w.moved("a", (2, "x")) == [0]  # "a" is now the most recently written
    w.remember("c", (1, "x"))  # over the limit: "b" goes
    assert (w.known("a"), w.known("b"), w.known("c")) == (True, False, True)
    assert w.moved("b", (1, "x")) == [0, 1]
    w.forget("c")
    w.clear()
    assert not w.known("a")
