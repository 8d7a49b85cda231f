"""Pure pieces of the store: line protocol, the batch-id ledger, the journal framing, step choice, config."""

from __future__ import annotations

import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from hub.store import ledger
from hub.store.base import RangeQuery, SeriesColumns, effective_step
from hub.store.config import EmbeddedStoreConfig, InfluxStoreConfig, StoreConfig
from hub.store.embedded.head import Head
from hub.store.embedded.journal import Journal
from hub.store.embedded.record import IngestRecord
from hub.store.embedded.store import EmbeddedStore
from hub.store.factory import build_store
from hub.store.influx.store import InfluxStore, lineproto
from hub.store.ledger import SeenBatches
from shared.model import Batch, Event, SeriesKey, SeriesPoints, Severity

pytestmark = pytest.mark.unit


def test_line_protocol_escapes_names_and_adds_the_agent_tag() -> None:
    key = SeriesKey.of("if in,octets", {"ifDescr": "Gi 0/1", "a=b": "x,y", "empty": ""})
    batch = Batch(1, 1, (SeriesPoints(key, np.array([1000, 2000]), np.array([1.5, 2.0])),))
    bodies, points, skipped = lineproto.encode_batch("edge-1", batch, lines_per_chunk=1)
    assert (points, skipped) == (2, 0)
    assert bodies == [
        b"if\\ in\\,octets,a\\=b=x\\,y,agent=edge-1,ifDescr=Gi\\ 0/1 value=1.5 1000",
        b"if\\ in\\,octets,a\\=b=x\\,y,agent=edge-1,ifDescr=Gi\\ 0/1 value=2.0 2000",
    ]


def test_line_protocol_skips_and_counts_non_finite_values() -> None:
    batch = Batch(
        1, 1, (SeriesPoints(SeriesKey.of("m"), np.array([1, 2, 3]), np.array([np.nan, 1.0, np.inf])),)
    )
    bodies, points, skipped = lineproto.encode_batch("a", batch, lines_per_chunk=100)
    assert (bodies, points, skipped) == ([b"m,agent=a value=1.0 2"], 1, 2)


def test_series_keys_listed_by_influxql_parse_back_to_labels() -> None:
    key = SeriesKey.of("if in,octets", {"ifDescr": "Gi 0/1", "a=b": "x,y", "agent": "e"})
    text = lineproto.series_prefix(key).removesuffix(" value=")
    assert lineproto.parse_series_key(text) == key


def test_seen_batches_merge_ranges_and_survive_a_save_and_load(tmp_path: Path) -> None:
    seen = SeenBatches()
    for seq in [1, 2, 3, 7, 5, 6, 9]:
        seen.add("a", 1, seq, now_ms=seq)
    assert [s for s in range(12) if ("a", 1, s) in seen] == [1, 2, 3, 5, 6, 7, 9]
    assert ("a", 2, 1) not in seen and ("b", 1, 1) not in seen
    db = sqlite3.connect(tmp_path / "l.sqlite")
    db.executescript(ledger.SCHEMA)
    seen.save(db)
    seen.mark_saved()
    assert db.execute("SELECT lo, hi, last_ms FROM batch_ranges ORDER BY lo").fetchall() == [
        (1, 3, 3),
        (5, 7, 7),
        (9, 9, 9),
    ]
    loaded = SeenBatches()
    loaded.load(db)
    loaded.prune(before_ms=7)
    assert [s for s in range(12) if ("a", 1, s) in loaded] == [5, 6, 7, 9]


def test_journal_cuts_a_torn_tail_and_keeps_every_complete_record(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = Journal(path)
    assert journal.open(after_lsn=0) == []
    for payload in [b"one", b"two", b"three"]:
        journal.append(payload)
    journal.close()
    good = path.stat().st_size
    with path.open("ab") as f:
        f.write(b"\x40\x00\x00\x00 torn")
    reopened = Journal(path)
    assert reopened.open(after_lsn=1) == [(2, b"two"), (3, b"three")]
    assert path.stat().st_size == good
    assert reopened.append(b"four") == 4
    reopened.close()


def test_a_sealed_journal_is_read_back_first_until_dropped_and_its_records_count_as_synced(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j"
    journal = Journal(path)
    journal.open(after_lsn=0)
    journal.append(b"one")
    journal.append(b"two")
    journal.seal()
    assert journal.has_sealed and path.with_name("j.sealed").exists() and path.stat().st_size == 0
    assert journal.append(b"three") == 3
    journal.sync(2)  # in the sealed file: durable already
    journal.sync(3)
    journal.close()
    reopened = Journal(path)  # a crash before the flush dropped the sealed file
    assert reopened.open(after_lsn=1) == [(2, b"two"), (3, b"three")]
    assert reopened.has_sealed
    reopened.drop_sealed()
    assert not path.with_name("j.sealed").exists() and not reopened.has_sealed
    assert reopened.append(b"four") == 4
    reopened.seal()  # a second seal: the new sealed file holds the active one's records
    reopened.close()
    again = Journal(path)
    assert again.open(after_lsn=0) == [(3, b"three"), (4, b"four")]
    again.close()


def test_the_head_view_of_a_sealed_and_a_newer_head_lets_the_newer_point_win() -> None:
    sealed, newer = Head(run_points=2), Head(run_points=2)
    sealed.append(np.array([1, 1, 1]), np.array([10, 20, 30]), np.array([1.0, 2.0, 3.0]))
    newer.append(np.array([1, 2]), np.array([20, 5]), np.array([9.0, 7.0]))
    got = sealed.view().then(newer.view()).get_many([1, 2, 3])
    assert {sid: (t.tolist(), v.tolist()) for sid, (t, v) in got.items()} == {
        1: ([10, 20, 30], [1.0, 9.0, 3.0]),
        2: ([5], [7.0]),
    }


def test_ingest_records_round_trip_with_new_series_and_events() -> None:
    ev = Event.of(5, "trap", Severity.CRITICAL, "sw1", "down", {"if": "3"})
    rec = IngestRecord(
        "edge",
        9,
        4,
        ((3, SeriesKey.of("m", {"x": "1"})),),
        np.array([3, 3, 1], np.int32),
        np.array([1, 2, 7]),
        np.array([0.5, 1.5, -2.0]),
        (ev,),
    )
    back = IngestRecord.decode(rec.encode())
    assert (back.agent, back.boot_epoch, back.seq, back.new_series, back.events) == (
        "edge",
        9,
        4,
        rec.new_series,
        (ev,),
    )
    assert (
        back.sids.tolist() == [3, 3, 1]
        and back.ts.tolist() == [1, 2, 7]
        and back.vals.tolist() == [0.5, 1.5, -2.0]
    )
    with pytest.raises(ValueError):
        IngestRecord.decode(rec.encode()[:-1])


@pytest.mark.parametrize(
    ("span_ms", "max_points", "step"),
    [
        (7_200_000, 4, 1_800_000),
        (7_200_000, 1000, 8_000),
        (30 * 86_400_000, 500, 7_200_000),
        (100, 1000, None),
    ],
)
def test_max_points_widens_the_step_to_a_round_multiple_that_fits(
    span_ms: int, max_points: int, step: int | None
) -> None:
    q = RangeQuery("m", 1_789_999_200_000, 1_789_999_200_000 + span_ms - 1, max_points=max_points)
    got = effective_step(q)
    assert got == step
    if got:
        assert q.end_ms // got - q.start_ms // got + 1 <= max_points


def test_store_config_picks_the_backend_by_kind_and_builds_it(tmp_path: Path) -> None:
    adapter: TypeAdapter[StoreConfig] = TypeAdapter(StoreConfig)
    embedded = adapter.validate_python({"kind": "embedded", "raw_retention": "P7D"})
    assert isinstance(embedded, EmbeddedStoreConfig) and embedded.raw_retention == timedelta(days=7)
    influx = adapter.validate_python({"kind": "influx", "url": "http://db:8086", "token": "s3cret"})
    assert isinstance(influx, InfluxStoreConfig) and influx.database_name == "outpost"
    assert isinstance(build_store(embedded, tmp_path), EmbeddedStore)
    assert isinstance(build_store(influx, tmp_path), InfluxStore)
    assert "s3cret" not in repr(influx) and "s3cret" not in influx.model_dump_json()


@pytest.mark.parametrize(
    "raw",
    [
        {"kind": "embedded", "retention": "P1D"},
        {"kind": "embedded", "dedup_window": 3600},
        {"kind": "embedded", "raw_retention": "P100D"},
        {"kind": "influx"},
        {"kind": "influx", "url": "http://x", "write_mode": "v3"},
        {"kind": "sqlite"},
    ],
    ids=["unknown-field", "short-dedup-window", "raw-outlives-rollups", "no-url", "bad-mode", "bad-kind"],
)
def test_bad_store_config_is_rejected(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(StoreConfig).validate_python(raw)


def test_journal_file_is_private(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.open(after_lsn=0)
    journal.close()
    assert os.stat(tmp_path / "j").st_mode & 0o077 == 0


def test_the_head_returns_each_series_sorted_with_the_latest_arrival_winning() -> None:
    rng = np.random.default_rng(3)
    head = Head(run_points=16)
    latest: dict[tuple[int, int], float] = {}
    for step in range(50):
        n = int(rng.integers(1, 9))
        sids = rng.integers(1, 4, n).astype(np.int32)
        ts = rng.integers(0, 20, n).astype(np.int64)
        vals = np.full(n, float(step)) + np.arange(n) / 100
        head.append(sids, ts, vals)
        for sid, t, v in zip(sids.tolist(), ts.tolist(), vals.tolist(), strict=True):
            latest[(sid, t)] = v
    want = {sid: sorted((t, v) for (s, t), v in latest.items() if s == sid) for sid in (1, 2, 3)}
    for sid in (1, 2, 3):
        got = head.get(sid)
        assert got is not None and list(zip(got[0].tolist(), got[1].tolist(), strict=True)) == want[sid]
    assert {sid: list(zip(t.tolist(), v.tolist(), strict=True)) for sid, t, v in head.items()} == want
    assert head.get(9) is None


def test_series_columns_round_trip_series_and_refuse_columns_that_disagree() -> None:
    series = (
        SeriesPoints(SeriesKey.of("a"), np.array([1, 2], np.int64), np.array([0.5, 1.5])),
        SeriesPoints(SeriesKey.of("b", {"x": "y"}), np.array([3], np.int64), np.array([2.5])),
    )
    columns = SeriesColumns.of_series(series)
    assert (len(columns), columns.counts.tolist(), columns.offsets.tolist()) == (3, [2, 1], [0, 2, 3])
    back = columns.series()
    assert [(s.key, s.timestamps_ms.tolist(), s.values.tolist()) for s in back] == [
        (s.key, s.timestamps_ms.tolist(), s.values.tolist()) for s in series
    ]
    with pytest.raises(ValueError, match="disagree"):
        SeriesColumns(columns.keys, np.array([0, 3], np.int64), columns.timestamps_ms, columns.values)
    with pytest.raises(ValueError, match="disagree"):
        SeriesColumns(columns.keys, columns.offsets, columns.timestamps_ms, columns.values[:2])
    skewed = SeriesPoints(SeriesKey.of("c"), np.array([1, 2], np.int64), np.array([1.0]))
    with pytest.raises(ValueError):
        SeriesColumns.of_series([skewed])
