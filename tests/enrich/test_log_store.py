"""The log store on a real state database (a SQLite file and a real PostgreSQL): full-text search and
filters, exact template counts, keyset paging that stays exact while lines are stored, retention."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from hub.enrich.logs.models import log_lines, log_templates
from hub.enrich.logs.store import (
    Cursor,
    LogQuery,
    LogQueryError,
    LogStore,
    MinedRecord,
    check_fts5_query,
)
from shared.model import LogRecord
from tests.support.hubdb import migrated_engine

pytestmark = pytest.mark.integration

T0 = 1_789_999_200_000
END = T0 + 86_400_000


@pytest.fixture
def store(state_url: str) -> Iterator[LogStore]:
    engine = migrated_engine(state_url)
    try:
        yield LogStore(engine)
    finally:
        engine.dispose()


def _line(ts: int, message: str, tid: str = "t1", **fields: object) -> MinedRecord:
    record = LogRecord(ts, ts + 5, message, **fields)  # type: ignore[arg-type]
    return MinedRecord(record, tid, f"template {tid}")


def _all(store: LogStore, **filters: object) -> list[str]:
    page = store.search(LogQuery(T0, END, 1000, **filters))  # type: ignore[arg-type]
    return [line.message for line in page.lines]


def test_lines_are_found_by_text_time_source_severity_and_template_newest_first(store: LogStore) -> None:
    assert store.write(
        "s/edge-1",
        1,
        1,
        [
            _line(T0 + 1, "Interface eth0 link down", "down", device="sw1", app="kernel", severity=3),
            _line(T0 + 2, "Interface eth1 link up", "up", device="sw1", app="kernel", severity=5),
            _line(T0 + 3, "sshd accepted password for root", "ssh", device="srv2", app="sshd", severity=6),
        ],
        T0,
    )
    assert store.write("s/edge-2", 1, 1, [_line(T0 + 4, "Interface eth9 link down", "down")], T0)
    assert _all(store) == [
        "Interface eth9 link down",
        "sshd accepted password for root",
        "Interface eth1 link up",
        "Interface eth0 link down",
    ]
    assert _all(store, text="down") == ["Interface eth9 link down", "Interface eth0 link down"]
    assert _all(store, text="link", agent="s/edge-1") == [
        "Interface eth1 link up",
        "Interface eth0 link down",
    ]
    assert _all(store, device="srv2") == ["sshd accepted password for root"]
    assert _all(store, app="kernel", max_severity=4) == ["Interface eth0 link down"]
    assert _all(store, template_id="down") == ["Interface eth9 link down", "Interface eth0 link down"]
    assert _all(store, text="nothingmatches") == []
    narrow = store.search(LogQuery(T0 + 2, T0 + 3, 10))
    assert [line.ts_ms for line in narrow.lines] == [T0 + 3, T0 + 2]
    first = narrow.lines[-1]
    assert (first.agent, first.device, first.app, first.severity, first.received_ms) == (
        "s/edge-1",
        "sw1",
        "kernel",
        5,
        T0 + 7,
    )


def test_a_resent_batch_adds_no_lines_and_template_counts_stay_exact(store: LogStore) -> None:
    batch = [_line(T0 + i, f"job {i} done", "job") for i in range(5)] + [_line(T0 + 9, "disk full", "disk")]
    assert store.write("s/a", 7, 1, batch, T0)
    assert not store.write("s/a", 7, 1, batch, T0 + 1000)  # the same id again: nothing added
    assert store.write("s/a", 7, 2, [_line(T0 - 50, "job 99 done", "job")], T0)
    assert store.write("s/b", 7, 1, [_line(T0 + 20, "job 1 done", "job")], T0)  # same seq, other agent
    stats = {t.template_id: t for t in store.templates(10)}
    assert [(t.template_id, t.count) for t in store.templates(10)] == [("job", 7), ("disk", 1)]
    assert (stats["job"].first_seen_ms, stats["job"].last_seen_ms) == (T0 - 50, T0 + 20)
    with store._engine.connect() as db:  # noqa: SLF001 (counting rows the API has no call for)
        assert db.execute(sa.select(sa.func.count()).select_from(log_lines)).scalar() == 8
        assert db.execute(sa.select(sa.func.sum(log_templates.c["count"]))).scalar() == 8
    assert store.templates(1)[0].template_id == "job"


@pytest.mark.parametrize(
    "query", ['"unterminated', "AND", "nosuchcolumn:word", "(a OR", "*", "a NEAR("], ids=repr
)
def test_a_text_query_fts5_cannot_parse_is_a_query_error_naming_why(query: str) -> None:
    with pytest.raises(LogQueryError, match="q is not a valid search"):
        check_fts5_query(query)


def test_sqlite_searches_reject_unparsable_queries_and_postgresql_reads_them_as_web_search(
    store: LogStore,
) -> None:
    store.write("s/a", 1, 1, [_line(T0, "link down on port 7"), _line(T0 + 1, "link up")], T0)
    if store._pg:  # noqa: SLF001 (which backend the fixture gave)
        assert _all(store, text='"link down') == ["link down on port 7"]
        assert _all(store, text="link -down") == ["link up"]
    else:
        with pytest.raises(LogQueryError):
            store.search(LogQuery(T0, END, 10, text='"link down'))
        assert _all(store, text="link NOT down") == ["link up"]
        assert _all(store, text="lin*") == ["link up", "link down on port 7"]


def test_cursors_are_opaque_and_refuse_what_the_hub_did_not_make() -> None:
    cursor = Cursor(T0, 12345)
    assert Cursor.decode(cursor.encode()) == cursor and str(T0) not in cursor.encode()
    for bad in ("", "!!!", "MTIz", Cursor(T0, 2**63).encode(), "bm90OmFfY3Vyc29y"):
        with pytest.raises(LogQueryError, match="cursor"):
            Cursor.decode(bad)


def test_paging_sees_every_line_present_once_while_other_lines_are_stored(store: LogStore) -> None:
    # Pairs of lines share a timestamp, so the id decides their order and the cursor must carry it.
    for seq in range(10):
        lines = [_line(T0 + 10_000 + (seq * 30 + i) // 2, f"old word {seq}-{i}") for i in range(30)]
        store.write("s/a", 1, seq + 1, lines, T0)
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:  # new lines land before, among and after those being paged
        seq = 100
        while not stop.is_set():
            seq += 1
            at = [T0 + 10_000 + (seq * 7) % 200, T0 + 50_000 + seq, T0 + 1 + seq % 50]
            store.write("s/a", 1, seq, [_line(t, f"new word {seq}") for t in at], T0)
            written.append(seq)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen: list[int] = []
        messages: list[str] = []
        after: Cursor | None = None
        while True:
            page = store.search(LogQuery(T0, END, 7, text="word", after=after))
            seen += [line.id for line in page.lines]
            messages += [line.message for line in page.lines]
            if page.next is None:
                break
            after = Cursor.decode(page.next.encode())
    finally:
        stop.set()
        thread.join()
    assert len(written) > 0
    assert len(seen) == len(set(seen))  # no line twice...
    old = sorted(m for m in messages if m.startswith("old"))
    assert old == sorted(f"old word {s}-{i}" for s in range(10) for i in range(30))  # ...none missed
    ts = [line.ts_ms for line in store.search(LogQuery(T0, END, 1000, text="old")).lines]
    assert ts == sorted(ts, reverse=True)


def test_prune_removes_lines_past_retention_then_the_oldest_beyond_max_rows(store: LogStore) -> None:
    store.write("s/a", 1, 1, [_line(T0 + i, f"ancient word{i}", "old") for i in range(25)], T0)
    store.write("s/a", 1, 2, [_line(T0 + 1000 + i, f"recent word{i}", "new") for i in range(30)], T0 + 5)
    done = store.prune(before_ms=T0 + 1000, max_rows=20, chunk=7, batches_before_ms=T0 + 1)
    assert (done.by_age, done.by_rows) == (25, 10)
    kept = _all(store)
    assert kept == [f"recent word{i}" for i in range(29, 9, -1)]
    assert _all(store, text="ancient") == [] and _all(store, text="word5") == []
    assert _all(store, text="word15") == ["recent word15"]
    assert [t.template_id for t in store.templates(10)] == ["new"]  # "old" was last seen before the cut
    # The batch id stored before `batches_before_ms` is forgotten: the same id stores again.
    assert store.write("s/a", 1, 1, [_line(T0 + 2000, "again")], T0 + 10)
    assert not store.write("s/a", 1, 2, [_line(T0 + 2000, "again")], T0 + 10)


def test_minute_counts_group_lines_by_device_template_and_minute(store: LogStore) -> None:
    m = T0 // 60_000 * 60_000
    store.write(
        "s/a",
        1,
        1,
        [
            _line(m + 1, "x", "t1", device="sw1"),
            _line(m + 59_999, "x", "t1", device="sw1"),
            _line(m + 60_000, "x", "t1", device="sw1"),
            _line(m + 5, "y", "t2"),
            _line(m + 180_000, "x", "t1", device="sw1"),
        ],
        T0,
    )
    store.write("s/b", 1, 1, [_line(m + 2, "x", "t1", device="sw1")], T0)
    got = sorted(store.minute_counts("s/a", [m, m + 60_000, m + 180_000]))
    assert got == [
        ("", "t2", m, 1),
        ("sw1", "t1", m, 2),
        ("sw1", "t1", m + 60_000, 1),
        ("sw1", "t1", m + 180_000, 1),
    ]
    assert sorted(store.minute_counts("s/a", [m + 60_000])) == [("sw1", "t1", m + 60_000, 1)]
