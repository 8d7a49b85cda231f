"""The disk spool keeps every unacknowledged envelope across restarts, sheds load by class, and never
refuses to start."""

from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path

import pytest

from agent.config import SpoolConfig
from agent.outbox.outbox import OutboxItem
from agent.outbox.spool import Spool
from shared import codec
from shared.clock import FakeClock
from shared.model import BatchClass
from tests.support.tmpfs import fill, mounted_tmpfs
from tests.transport.items import T0, event_item, metrics_item

pytestmark = pytest.mark.integration


def _spool(path: Path, clock: FakeClock | None = None, **settings: float) -> Spool:
    # model_construct: tests use sizes far below the config's production minimums (one record per segment)
    s = Spool(path, SpoolConfig.model_construct(**settings), clock or FakeClock(T0))
    s.open()
    return s


async def _drain(spool: Spool, ack: bool = True) -> list[OutboxItem]:
    out = []
    for _ in range(spool.pending()):
        item = await spool.get()
        out.append(item)
        if ack:
            spool.ack(item)
    return out


async def test_unacknowledged_envelopes_survive_a_restart_byte_for_byte(tmp_path: Path) -> None:
    s = _spool(tmp_path)
    items = [metrics_item(i) for i in range(1, 6)]
    for it in items:
        s.put(it)
    first = await s.get()
    s.ack(first)
    s.close()  # a SIGKILL leaves the same files: every record is one os.write
    again = _spool(tmp_path)
    replayed = await _drain(again)
    assert [r.batch_id for r in replayed] == ["7-2", "7-3", "7-4", "7-5"]
    assert [r.envelope for r in replayed] == [it.envelope for it in items[1:]]
    assert [codec.peek(r.envelope).seq for r in replayed] == [2, 3, 4, 5]
    assert again.pending() == 0


async def test_acknowledged_segments_are_deleted_and_the_watermark_remains(tmp_path: Path) -> None:
    s = _spool(tmp_path, segment_bytes=512)
    for i in range(1, 30):
        s.put(metrics_item(i, points=50))
    assert len(list(tmp_path.glob("*.seg"))) > 3
    await _drain(s)
    s.close()
    assert len(list(tmp_path.glob("*.seg"))) == 1  # only the (empty) active one
    again = _spool(tmp_path)
    assert again.watermark_ms == T0 + 49_000
    assert again.pending() == 0
    assert len(list(tmp_path.glob("*.seg"))) == 1


async def test_a_torn_final_record_is_cut_off_and_the_rest_replays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = _spool(tmp_path)
    for i in (1, 2):
        s.put(metrics_item(i))
    s.close()
    (seg,) = tmp_path.glob("*.seg")
    whole = seg.read_bytes()
    third = metrics_item(3)
    with seg.open("ab") as f:  # what a SIGKILL in the middle of the third write leaves behind
        f.write(whole[: len(whole) // 2 + 10][:60] + third.envelope[:20])
    caplog.set_level(logging.WARNING)
    again = _spool(tmp_path)
    assert [r.batch_id for r in await _drain(again)] == ["7-1", "7-2"]
    assert "torn record" in caplog.text
    assert not (tmp_path / "quarantine").exists()


async def test_a_flipped_byte_in_the_middle_of_a_segment_costs_that_batch_only_and_the_rest_are_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = _spool(tmp_path)
    for i in range(1, 6):
        s.put(metrics_item(i))
    s.close()
    (seg,) = tmp_path.glob("*.seg")
    raw = bytearray(seg.read_bytes())
    third = raw.index(metrics_item(3).envelope)
    raw[third + 40] ^= 0xFF  # a flipped bit in the middle of batch 3
    seg.write_bytes(bytes(raw))
    caplog.set_level(logging.WARNING)
    again = _spool(tmp_path)
    assert [r.batch_id for r in await _drain(again)] == ["7-1", "7-2", "7-4", "7-5"]
    assert again.skipped_records == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "agent.outbox.spool"]
    assert len(lines) == 1 and "skipped 1 damaged records" in lines[0]
    assert not (tmp_path / "quarantine").exists() and again.quarantined == []


async def test_an_older_segment_whose_only_record_is_damaged_is_quarantined_and_the_others_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = _spool(tmp_path, segment_bytes=1)  # one record per segment
    for i in (1, 2, 3):
        s.put(metrics_item(i))
    s.close()
    segs = sorted(tmp_path.glob("*.seg"))
    raw = bytearray(segs[1].read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # a flipped bit in the middle of batch 2
    segs[1].write_bytes(bytes(raw))
    caplog.set_level(logging.WARNING)
    again = _spool(tmp_path)
    assert sorted(r.batch_id for r in await _drain(again)) == ["7-1", "7-3"]
    lines = [r for r in caplog.records if "no readable record" in r.getMessage()]
    assert len(lines) == 1
    assert [p.name for p in (tmp_path / "quarantine").iterdir()] == [segs[1].name]
    assert (tmp_path / "quarantine" / segs[1].name).read_bytes() == bytes(raw)


async def test_a_segment_in_the_previous_format_is_converted_and_its_unacknowledged_batches_sent(
    tmp_path: Path,
) -> None:
    records, offsets = b"", []
    for i in (1, 2, 3):
        it = metrics_item(i)
        bid = it.batch_id.encode()
        meta = struct.pack("<BqqIH", it.batch_class.value, T0, it.max_ts_ms, it.points, len(bid))
        crc = zlib.crc32(it.envelope, zlib.crc32(bid, zlib.crc32(meta)))
        offsets.append(len(records))
        records += struct.pack("<2sII", b"OP", len(it.envelope), crc) + meta + bid + it.envelope
    (tmp_path / f"{4:020d}.seg").write_bytes(records)
    (tmp_path / f"{4:020d}.ack").write_bytes(struct.pack("<Q", offsets[0]))  # batch 1 was acknowledged
    s = _spool(tmp_path)
    replayed = await _drain(s)
    assert [r.batch_id for r in replayed] == ["7-2", "7-3"]
    assert [r.envelope for r in replayed] == [metrics_item(i).envelope for i in (2, 3)]
    assert s.watermark_ms == metrics_item(3).max_ts_ms
    assert not (tmp_path / f"{4:020d}.seg").exists() and s.quarantined == []
    s.close()
    assert _spool(tmp_path).pending() == 0


async def test_garbage_instead_of_a_segment_does_not_stop_the_agent(tmp_path: Path) -> None:
    (tmp_path / f"{1:020d}.seg").write_bytes(os.urandom(5000))
    (tmp_path / f"{2:020d}.seg").write_bytes(b"")
    s = _spool(tmp_path)
    s.put(metrics_item(1))
    assert [r.batch_id for r in await _drain(s)] == ["7-1"]
    assert len(s.quarantined) == 1


async def test_above_eighty_percent_metrics_are_downsampled_before_anything_is_dropped(
    tmp_path: Path,
) -> None:
    size = len(metrics_item(1, points=600).envelope)
    s = _spool(tmp_path, max_bytes=int(size * 5))
    aligned = T0 // 300_000 * 300_000
    for i in range(1, 5):
        s.put(metrics_item(i, points=600, start_ms=aligned + i * 600_000))
    assert s.dropped[("metrics", "downsampled")] >= 1
    assert not any(reason == "full" for _, reason in s.dropped)
    items = await _drain(s)
    classes = [it.batch_class for it in items]
    assert classes[:3] == [BatchClass.METRICS] * 3 and classes[3] is BatchClass.ROLLUP
    _, rolled = codec.decode(items[3].envelope)
    # 600 points at 1 s = 10 minutes = 2 five-minute buckets, four aggregates each.
    assert sorted(dict(x.key.labels)["rollup"] for x in rolled.series) == [
        "avg_5m",
        "count_5m",
        "max_5m",
        "min_5m",
    ]
    counts = next(x for x in rolled.series if dict(x.key.labels)["rollup"] == "count_5m")
    assert counts.values.tolist() == [300.0, 300.0]


async def test_when_full_spooled_metrics_are_rolled_up_then_the_oldest_dropped_and_all_counted(
    tmp_path: Path,
) -> None:
    size = len(metrics_item(1, points=600).envelope) + 80
    s = _spool(tmp_path, max_bytes=size * 3, downsample_at=1.0)
    s.put(event_item(100))
    for i in range(1, 31):
        s.put(metrics_item(i, points=600, start_ms=T0 + i * 600_000))
    s.put(event_item(101))
    items = await _drain(s)
    assert [it.batch_id for it in items[:2]] == ["7-100", "7-101"]  # urgent classes: first, never dropped
    kept = [int(it.batch_id.split("-")[1]) for it in items[2:]]
    assert {it.batch_class for it in items[2:]} == {BatchClass.ROLLUP}
    assert kept == list(range(31 - len(kept), 31))  # the oldest went first
    assert s.dropped == {("metrics", "downsampled"): 30, ("rollup", "full"): 30 - len(kept)}
    assert 30 - len(kept) > 0  # raw batches were rolled up before any rollup was dropped


async def test_batches_older_than_the_age_limit_are_dropped_and_counted(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    s = _spool(tmp_path, clock, max_age_s=3600)
    s.put(metrics_item(1))
    await clock.advance(1800)
    s.put(metrics_item(2))
    await clock.advance(1801)
    assert s.expire() == 1
    assert s.dropped[("metrics", "expired")] == 1
    assert [it.batch_id for it in await _drain(s)] == ["7-2"]


async def test_live_data_goes_first_and_backfill_gets_its_share_of_the_bytes(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    s = _spool(tmp_path, clock, live_window_s=5, backfill_share=0.25)
    for i in range(1, 21):
        s.put(metrics_item(i))  # an outage's backlog ...
    await clock.advance(60)
    s.put(event_item(500))
    for i in range(100, 120):
        s.put(metrics_item(i))  # ... and fresh data after the link came back
    stats = s.stats()
    assert stats.backfill_bytes > 0 and stats.backfill_progress == 0.0
    order = [it.batch_id for it in await _drain(s)]
    assert order[0] == "7-500"  # urgent classes first
    first_20 = order[1:21]
    backfill = sum(1 for b in first_20 if int(b.split("-")[1]) < 100)
    assert backfill == 5  # a quarter of the bytes (all batches here are the same size)
    assert order[1] == "7-100"  # live goes first
    assert s.stats().backfill_progress == 1.0


async def test_a_nacked_batch_is_sent_again_before_newer_ones(tmp_path: Path) -> None:
    s = _spool(tmp_path)
    for i in (1, 2):
        s.put(metrics_item(i))
    first = await s.get()
    s.nack(first)
    assert (await s.get()).batch_id == "7-1"
    assert s.pending() == 2


async def test_a_full_disk_drops_and_counts_batches_logs_once_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with mounted_tmpfs(tmp_path / "mnt", "1m") as mnt:
        s = _spool(mnt / "spool")
        s.put(metrics_item(1, points=2000))
        filler = fill(mnt)
        caplog.set_level(logging.INFO)
        for i in (2, 3, 4):
            s.put(metrics_item(i, points=2000))
        filler.unlink()
        s.put(metrics_item(5, points=2000))
        assert s.dropped[("metrics", "disk_error")] == 3
        lines = [r.getMessage() for r in caplog.records if r.name == "agent.outbox.spool"]
        assert len(lines) == 2 and "No space left on device" in lines[0] and "back after" in lines[1]
        s.close()
        again = _spool(mnt / "spool")
        assert [r.batch_id for r in await _drain(again)] == ["7-1", "7-5"]
        again.close()
