"""The disk spool: a segmented on-disk log of envelopes waiting for the hub (store-and-forward).

Every envelope is appended here before it is sent and forgotten only when the hub acknowledged it, so
neither a hub outage nor a SIGKILL of the agent loses an accepted batch; after a restart the envelopes
are re-sent byte for byte, with their original (boot_epoch, seq) ids, and the hub's dedup drops any
that had already arrived.

Layout under `dir`: `<n>.seg` segments (`shared.wal` files), `<n>.ack` the offsets of records already
acknowledged (or dropped) in segment n, `quarantine/` for segments unreadable as a whole, `watermark`
the newest point time ever released. A record's body is a metadata header (class, written_ms, max_ts_ms,
points, batch id) then the envelope.

Durability and loss bound: each record is one `os.write` (in the kernel's page cache at once, so SIGKILL
loses nothing written); `fsync` runs in group commits at most `fsync_interval_s` apart (0 = every write).
On power loss at most the records of the last `fsync_interval_s` (default 1 s) are lost; acks are not
fsynced eagerly because losing one only re-sends a batch the hub then ignores. On start a torn tail is
cut off; a damaged record in the middle of a segment is skipped and counted (`skipped_records`) and the
records after it are sent; only a segment without one readable record is quarantined (one log line).
Segments written by the previous record format are converted on start. The agent starts regardless.

A full disk never stops delivery: an ack or watermark that cannot be written is kept in memory and
retried by `maintain` (a restart before that re-sends the batch, which the hub ignores); new batches
that cannot be written are dropped and counted. Each kind of failure is logged once until it works.

Overflow (size `max_bytes` of pending records, age `max_age_s`): above `downsample_at` of the size limit
incoming raw METRICS batches are rolled up (outbox.downsample; LOGS bytes do not count towards that
threshold, since they go first anyway); when full, the oldest LOGS batches are
dropped first (an incoming log batch evicts only older log batches), then the oldest spooled raw batches
are rolled up in place, then the oldest ROLLUP, then other batches are dropped; expired batches are
dropped by age. Every drop is counted by class and reason in `dropped`.

Heartbeats are about now, so at most one per boot waits: a new HEARTBEAT envelope replaces the one of
its boot still queued (not out for delivery), which is acked internally and counted in `dropped` as
("heartbeat", "replaced"); a 3-day outage leaves one heartbeat in the spool, not 26,000. The runtime
gives the replacement the replaced one's batch id (`heartbeat()` tells it), so replacing never shows as
a lost batch (a seq gap) at the hub, and it sends no new heartbeat while one is out for delivery. A
heartbeat of an earlier boot found on disk is sent as it is: dropping it would leave a gap in that
boot's sequence, and the hub takes only the newest heartbeat time into account.

Lanes: envelopes written while the hub keeps up are the live lane; anything older than `live_window_s`
(an outage's backlog, or everything found on disk at start) is the backfill lane. Urgent classes (events,
anomalies, heartbeats) go first; otherwise backfill gets at most `backfill_share` of the bytes handed out
while live data is waiting, and all of the link when it is not.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import struct
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

from agent.config import SpoolConfig
from agent.outbox.downsample import rollup_batch
from agent.outbox.outbox import URGENT, OutboxItem
from shared import codec
from shared.clock import Clock, SystemClock
from shared.errors import CodecError
from shared.logging import UpDown
from shared.model import BatchClass
from shared.wal import HEAD_SIZE, Wal

log = logging.getLogger(__name__)

# A record's body: _META (class, written_ms, max_ts_ms, points, id length), the batch id, the envelope.
_META = struct.Struct("<BqqIH")
_HDR_SIZE = HEAD_SIZE + _META.size
_OFFSET = struct.Struct("<Q")
_MAX_RECORD = 256 * 1024 * 1024  # envelope bytes
_MAX_BODY = _MAX_RECORD + _META.size + 0xFFFF
# The previous record format (read on start, never written): magic, envelope length, crc32, then as above.
_LEGACY_MAGIC = b"OP"
_LEGACY_HEAD = struct.Struct("<2sII")
# Drop order when the spool is full: log lines first (bulky, and a log storm is what most often fills
# the spool: it must not evict the metrics), then raw metrics (rolled up in place before they go), then
# their rollups, then everything else.
_DROP_ORDER = (
    BatchClass.LOGS,
    BatchClass.METRICS,
    BatchClass.ROLLUP,
    BatchClass.HEARTBEAT,
    BatchClass.EVENTS,
    BatchClass.ANOMALY,
)


@dataclass(slots=True, eq=False)
class _Record:
    seg: int
    offset: int
    size: int
    batch_class: BatchClass
    batch_id: str
    written_ms: int
    max_ts_ms: int
    points: int


@dataclass(slots=True, eq=False)
class _Segment:
    no: int
    wal: Wal
    ack_fd: int
    live: int = 0
    sealed: bool = False

    @property
    def path(self) -> Path:
        return self.wal.path


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """What the agent exports as metrics: size, age of the oldest batch, backfill progress."""

    bytes: int
    records: int
    oldest_age_s: float
    backfill_bytes: int
    backfill_total_bytes: int

    @property
    def backfill_progress(self) -> float:
        """Share of the current backfill already delivered (1.0 when there is none)."""
        if not self.backfill_total_bytes:
            return 1.0
        return 1.0 - self.backfill_bytes / self.backfill_total_bytes


@dataclass(slots=True)
class _Lanes:
    urgent: deque[_Record] = field(default_factory=deque)
    live: deque[_Record] = field(default_factory=deque)
    backfill: deque[_Record] = field(default_factory=deque)


class Spool:
    """Implements the Outbox protocol on disk. Single-threaded: call it from the agent's event loop."""

    def __init__(
        self, directory: Path, settings: SpoolConfig | None = None, clock: Clock | None = None
    ) -> None:
        self._dir = directory
        self._cfg = settings or SpoolConfig()
        self._clock = clock or SystemClock()
        self._segments: dict[int, _Segment] = {}
        self._records: dict[str, _Record] = {}
        # The HEARTBEAT records among them (queued or out for delivery), at most one per boot.
        self._heartbeats: dict[str, _Record] = {}
        self._lanes = _Lanes()
        self._active: _Segment | None = None
        self._bytes = 0
        # Bytes of the LOGS records among them: logs are shed first, so they do not push metrics into rollups.
        self._log_bytes = 0
        self._dirty = False
        self._disk = UpDown(log, f"spool writes to {self._dir}", self._clock)
        self._ack_disk = UpDown(log, f"spool ack writes to {self._dir}", self._clock)
        self._mark_disk = UpDown(log, f"spool watermark writes to {self._dir}", self._clock)
        # Acks written to memory but not yet to their segment's ack file: (segment, record offset).
        self._ack_backlog: deque[tuple[int, int]] = deque()
        self._watermark_saved = True
        self._last_sync = 0.0
        self._watermark_ms = 0
        self._backfill_total = 0
        self._sent_live = 0
        self._sent_backfill = 0
        self._ready = asyncio.Event()
        self.dropped: Counter[tuple[str, str]] = Counter()
        # Failed bookkeeping writes by kind ("ack", "watermark", "fsync", "segment"); each is retried.
        self.write_errors: Counter[str] = Counter()
        self.skipped_records = 0  # damaged records skipped on start (the ones around them are kept)
        self.quarantined: list[Path] = []

    # --- lifecycle ---

    def open(self) -> None:
        """Recovers every segment on disk (into the backfill lane) and opens a fresh segment for writes."""
        self._dir.mkdir(parents=True, exist_ok=True)
        self._watermark_ms = _read_watermark(self._dir / "watermark")
        numbers = sorted(int(p.stem) for p in self._dir.glob("*.seg") if p.stem.isdigit())
        converted: list[tuple[OutboxItem, int]] = []
        legacy: list[Path] = []
        for i, no in enumerate(numbers):
            try:
                old = self._recover(no, newest=i == len(numbers) - 1)
            except OSError as exc:  # unreadable file: the agent starts anyway, without it
                log.error("spool: cannot read segment %020d.seg (%s): skipped", no, exc.strerror)
                continue
            if old is not None:
                converted.extend(old)
                legacy.append(self._dir / f"{no:020d}.seg")
        self._roll(numbers[-1] + 1 if numbers else 1)
        for item, written_ms in converted:
            self._append(item, written_ms, lane=self._lanes.backfill)
        if legacy:
            self.sync(force=True)  # the converted copies are durable before the originals go
            for path in legacy:
                path.unlink()
                path.with_suffix(".ack").unlink(missing_ok=True)
            log.info("spool: %d batches converted from %d old-format segments", len(converted), len(legacy))
        self._keep_newest_heartbeats()
        for seg in list(self._segments.values()):
            self._release_if_done(seg)
        if self._records:
            log.info(
                "spool: %d batches (%d bytes) to replay from %s", len(self._records), self._bytes, self._dir
            )

    def close(self) -> None:
        """Syncs and closes every file; pending records stay on disk for the next start."""
        self._write_acks()
        self.sync(force=True)
        for seg in self._segments.values():
            seg.wal.close()
            os.close(seg.ack_fd)
        self._segments.clear()
        self._active = None

    # --- the Outbox protocol ---

    def put(self, item: OutboxItem) -> None:
        """Appends an envelope (durable against SIGKILL on return), after applying the overflow policy.

        A HEARTBEAT first replaces the queued heartbeat of its boot (same batch id or not).
        """
        if item.batch_class is BatchClass.HEARTBEAT:
            self._replace_heartbeats(item.batch_id)
        if item.batch_id in self._records:
            return  # already waiting: the same batch id means the same batch
        kept = self._make_room(item)
        if kept is None:
            return
        self._append(kept, self._clock.now_ms(), lane=self._lanes.live)
        if self._cfg.fsync_interval_s <= 0:
            self.sync(force=True)

    async def get(self) -> OutboxItem:
        """The next envelope to send: urgent first, then live and backfill by their byte shares."""
        while True:
            rec = self._next()
            if rec is not None:
                try:
                    data = self._read(rec)
                except OSError:
                    self._lane_of(rec).appendleft(rec)  # still pending: the caller retries later
                    raise
                return OutboxItem(data, rec.batch_class, rec.batch_id, rec.points, rec.max_ts_ms)
            self._ready.clear()
            await self._ready.wait()

    def ack(self, item: OutboxItem) -> None:
        """Forgets a batch the hub acknowledged (or refused for good). Never raises: an ack that cannot be
        written (disk full) is kept and written by a later `maintain`; the batch is not handed out again."""
        rec = self._records.pop(item.batch_id, None)
        if rec is not None:
            self._release(rec)

    def nack(self, item: OutboxItem) -> None:
        """Puts a batch whose send failed back at the front of its lane."""
        rec = self._records.get(item.batch_id)
        if rec is None:
            return
        if rec.batch_class is BatchClass.HEARTBEAT and self._queued_heartbeat(_boot_of(rec.batch_id)):
            self._records.pop(rec.batch_id)  # a newer heartbeat of this boot waits: this one is old news
            self.dropped[("heartbeat", "replaced")] += 1
            self._release(rec)
            return
        self._lane_of(rec).appendleft(rec)
        self._ready.set()

    def pending(self) -> int:
        return len(self._records)

    # --- heartbeats ---

    def heartbeat(self, boot_epoch: int) -> tuple[int, bool] | None:
        """This boot's heartbeat still in the spool: (its seq, whether it is out for delivery), or None."""
        prefix = f"{boot_epoch}-"
        for bid, rec in self._heartbeats.items():
            if bid.startswith(prefix):
                return int(bid[len(prefix) :]), rec not in self._lanes.urgent
        return None

    @property
    def replaced_heartbeats(self) -> int:
        """Heartbeats dropped unsent because a newer one of their boot replaced them."""
        return self.dropped[("heartbeat", "replaced")]

    def _queued_heartbeat(self, boot: str) -> _Record | None:
        """The heartbeat of `boot` waiting in the urgent lane (not out for delivery), if any."""
        for rec in self._heartbeats.values():
            if _boot_of(rec.batch_id) == boot and rec in self._lanes.urgent:
                return rec
        return None

    def _replace_heartbeats(self, batch_id: str) -> None:
        """Acks internally (and counts) the queued heartbeat of `batch_id`'s boot, before it is written."""
        old = self._queued_heartbeat(_boot_of(batch_id))
        if old is not None:
            self._drop(self._lanes.urgent, old, "replaced")

    def _keep_newest_heartbeats(self) -> None:
        """After recovery: per boot only the newest heartbeat stays (more than one is only possible when
        an internal ack could not be written, e.g. on a full disk)."""
        newest: dict[str, _Record] = {}
        for rec in list(self._heartbeats.values()):
            boot = _boot_of(rec.batch_id)
            other = newest.get(boot)
            if other is None:
                newest[boot] = rec
                continue
            # Records are in write order across segments: the later (segment, offset) is the newer one.
            older, newer = (other, rec) if (other.seg, other.offset) < (rec.seg, rec.offset) else (rec, other)
            newest[boot] = newer
            self._drop(self._lanes.urgent, older, "replaced")

    # --- upkeep, called periodically by the runtime ---

    def maintain(self) -> None:
        """Age-based expiry, the retry of acks and watermark a full disk refused, and group commit."""
        self.expire()
        self._write_acks()
        if not self._watermark_saved:
            self._save_watermark()
        self.sync()

    def sync(self, force: bool = False) -> None:
        """fsyncs the active segment and ack files if anything was written since the last sync.

        A failing fsync is counted and logged once; the data stays dirty and the next sync tries again.
        """
        now = self._clock.monotonic()
        if not self._dirty or (not force and now - self._last_sync < self._cfg.fsync_interval_s):
            return
        try:
            if self._active is not None:
                self._active.wal.sync()
            for seg in self._segments.values():
                os.fsync(seg.ack_fd)
        except OSError as exc:
            self.write_errors["fsync"] += 1
            self._disk.down(f"fsync failed ({exc}); retrying", logging.ERROR)
            return
        self._dirty = False
        self._last_sync = now

    def expire(self) -> int:
        """Drops queued batches older than `max_age_s` (counted as `expired`); returns how many.

        Lanes are in write order (a nacked batch returns to the front, and it is older), so only the
        front of each lane needs looking at.
        """
        horizon = self._clock.now_ms() - int(self._cfg.max_age_s * 1000)
        dropped = 0
        for lane in (self._lanes.backfill, self._lanes.live, self._lanes.urgent):
            while lane and lane[0].written_ms < horizon:
                self._drop(lane, lane[0], "expired")
                dropped += 1
        return dropped

    def stats(self) -> SpoolStats:
        """Size, oldest batch age, backfill progress. O(backlog): call it per tick, not per batch."""
        oldest = min((r.written_ms for r in self._records.values()), default=None)
        age = 0.0 if oldest is None else max(0.0, (self._clock.now_ms() - oldest) / 1000)
        self._age_lanes()
        backlog = sum(r.size for r in self._lanes.backfill)
        self._backfill_total = max(self._backfill_total, backlog) if backlog else 0
        return SpoolStats(self._bytes, len(self._records), age, backlog, self._backfill_total)

    @property
    def watermark_ms(self) -> int:
        """The newest point time ever accepted into the spool (survives restarts and acks)."""
        return self._watermark_ms

    # --- internals: writing ---

    def _roll(self, no: int) -> None:
        """Starts segment `no` and seals the active one.

        Raises:
            OSError: when the new segment cannot be created; the active one then stays in use.
        """
        path = self._dir / f"{no:020d}.seg"
        wal = Wal(path, _MAX_BODY)
        try:
            wal.open()
            seg = _Segment(no, wal, _open_ack(path))
        except OSError:
            wal.close()
            raise
        old, self._segments[no], self._active = self._active, seg, seg
        if old is not None:
            old.sealed = True
            try:
                old.wal.sync()
            except OSError as exc:
                self.write_errors["fsync"] += 1
                self._disk.down(f"fsync failed ({exc}); retrying", logging.ERROR)
            self._release_if_done(old)

    def _append(self, item: OutboxItem, written_ms: int, lane: deque[_Record]) -> None:
        active = self._active
        assert active is not None, "spool not opened"
        bid = item.batch_id.encode()
        meta = _META.pack(item.batch_class.value, written_ms, item.max_ts_ms, item.points, len(bid))
        body = b"".join((meta, bid, item.envelope))
        offset = self._write(active, body, item.batch_class)
        if offset < 0:
            return
        rec = _Record(
            active.no,
            offset,
            HEAD_SIZE + len(body),
            item.batch_class,
            item.batch_id,
            written_ms,
            item.max_ts_ms,
            item.points,
        )
        self._dirty = True
        active.live += 1
        self._records[item.batch_id] = rec
        if rec.batch_class is BatchClass.HEARTBEAT:
            self._heartbeats[rec.batch_id] = rec
        self._bytes += rec.size
        if rec.batch_class is BatchClass.LOGS:
            self._log_bytes += rec.size
        self._watermark_ms = max(self._watermark_ms, item.max_ts_ms)
        (self._lanes.urgent if rec.batch_class in URGENT else lane).append(rec)
        self._ready.set()
        if active.wal.size >= self._cfg.segment_bytes:
            try:
                self._roll(active.no + 1)
            except OSError as exc:  # the disk is full: keep appending to this segment, roll later
                self.write_errors["segment"] += 1
                self._disk.down(f"cannot start a new segment ({exc}); retrying", logging.ERROR)

    def _write(self, seg: _Segment, body: bytes, batch_class: BatchClass) -> int:
        """One append (a failed or short write is cut off again by the WAL); returns its offset, or -1
        when the batch was dropped and counted, the failure logged once until writes work."""
        try:
            offset = seg.wal.append(body)
        except OSError as exc:
            self.dropped[(batch_class.name.lower(), "disk_error")] += 1
            self._disk.down(f"{exc}: dropping batches until it works", logging.ERROR)
            return -1
        self._disk.up()
        return offset

    def _make_room(self, item: OutboxItem) -> OutboxItem | None:
        """Applies the overflow policy to an incoming item; returns what to write, or None when dropped."""
        size = len(item.envelope) + _HDR_SIZE + len(item.batch_id.encode())
        limit = self._cfg.max_bytes
        pressure = self._bytes - self._log_bytes + size  # log batches make way before metrics shrink
        if item.batch_class is BatchClass.METRICS and pressure > limit * self._cfg.downsample_at:
            item = _downsampled(item)
            size = len(item.envelope) + _HDR_SIZE + len(item.batch_id.encode())
            self.dropped[("metrics", "downsampled")] += 1
        rank = _DROP_ORDER.index(item.batch_class)
        while self._bytes + size > limit:
            victim = self._victim(max_rank=rank)
            if victim is None:
                self.dropped[(item.batch_class.name.lower(), "full")] += 1
                return None
            lane, rec = victim
            if rec.batch_class is BatchClass.METRICS:
                self._roll_up(lane, rec)  # a spooled raw batch shrinks before anything is dropped
            else:
                self._drop(lane, rec, "full")
        return item

    def _roll_up(self, lane: deque[_Record], rec: _Record) -> None:
        """Replaces a queued raw METRICS record by its rollup (same batch id, same age, same lane)."""
        raw = OutboxItem(self._read(rec), rec.batch_class, rec.batch_id, rec.points, rec.max_ts_ms)
        lane.remove(rec)
        del self._records[rec.batch_id]
        self._release(rec)
        rolled = _downsampled(raw)
        if rolled.batch_class is not BatchClass.ROLLUP:
            self.dropped[("metrics", "full")] += 1
            return
        self.dropped[("metrics", "downsampled")] += 1
        self._append(rolled, rec.written_ms, lane)

    def _victim(self, max_rank: int) -> tuple[deque[_Record], _Record] | None:
        """The oldest queued record of the lowest-priority class no more important than `max_rank`."""
        for cls in _DROP_ORDER[: max_rank + 1]:
            for lane in (self._lanes.backfill, self._lanes.live, self._lanes.urgent):
                for rec in lane:
                    if rec.batch_class is cls:
                        return lane, rec
        return None

    def _drop(self, lane: deque[_Record], rec: _Record, reason: str) -> None:
        lane.remove(rec)
        del self._records[rec.batch_id]
        self.dropped[(rec.batch_class.name.lower(), reason)] += 1
        self._release(rec)

    # --- internals: reading and releasing ---

    def _next(self) -> _Record | None:
        self._age_lanes()
        lanes = self._lanes
        if lanes.urgent:
            return lanes.urgent.popleft()
        if not lanes.backfill:
            self._sent_live = self._sent_backfill = 0
            return lanes.live.popleft() if lanes.live else None
        share = self._cfg.backfill_share
        if lanes.live and self._sent_backfill * (1 - share) >= self._sent_live * share:
            rec = lanes.live.popleft()
            self._sent_live += rec.size
            return rec
        if not lanes.live:
            self._sent_live = self._sent_backfill = 0
        rec = lanes.backfill.popleft()
        self._sent_backfill += rec.size
        return rec

    def _age_lanes(self) -> None:
        """Moves live records that waited longer than the live window (an outage's backlog) to backfill."""
        horizon = self._live_horizon()
        live, backfill = self._lanes.live, self._lanes.backfill
        while live and live[0].written_ms < horizon:
            backfill.append(live.popleft())

    def _read(self, rec: _Record) -> bytes:
        body = self._segments[rec.seg].wal.read(rec.offset, rec.size)
        id_len = _META.unpack_from(body)[4]
        return body[_META.size + id_len :]

    def _release(self, rec: _Record) -> None:
        if self._heartbeats.get(rec.batch_id) is rec:
            del self._heartbeats[rec.batch_id]
        seg = self._segments.get(rec.seg)
        self._bytes -= rec.size
        if rec.batch_class is BatchClass.LOGS:
            self._log_bytes -= rec.size
        if seg is None:
            return
        seg.live -= 1
        self._ack_backlog.append((seg.no, rec.offset))
        self._write_acks()
        self._release_if_done(seg)

    def _write_acks(self) -> None:
        """Writes the waiting acks in order; on a failure the rest wait for the next try (`maintain`).

        Until an ack is written the batch stays forgotten in memory (it is not handed out again); a
        restart before then re-sends it and the hub ignores the duplicate.
        """
        while self._ack_backlog:
            no, offset = self._ack_backlog[0]
            seg = self._segments.get(no)
            if seg is not None:  # a deleted segment needs no acks
                try:
                    _append_ack(seg.ack_fd, offset)
                except OSError as exc:
                    self.write_errors["ack"] += 1
                    self._ack_disk.down(
                        f"{exc}: {len(self._ack_backlog)} acks kept in memory and retried", logging.ERROR
                    )
                    return
                self._dirty = True
            self._ack_backlog.popleft()
        self._ack_disk.up()

    def _release_if_done(self, seg: _Segment) -> None:
        """Deletes a sealed segment once all its records are gone.

        The watermark is saved first; when that fails (disk full) the segment is deleted anyway, which
        frees the space, and the watermark is retried: a stale watermark only makes a replayable source
        send points again that the hub already has, while keeping the segment could keep the disk full.
        """
        if not seg.sealed or seg.live > 0:
            return
        self._save_watermark()
        seg.wal.close()
        os.close(seg.ack_fd)
        seg.path.unlink(missing_ok=True)
        seg.path.with_suffix(".ack").unlink(missing_ok=True)
        del self._segments[seg.no]

    def _save_watermark(self) -> None:
        try:
            _write_watermark(self._dir / "watermark", self._watermark_ms)
        except OSError as exc:
            self._watermark_saved = False
            self.write_errors["watermark"] += 1
            self._mark_disk.down(f"{exc}: retrying", logging.ERROR)
            return
        self._watermark_saved = True
        self._mark_disk.up()

    def _lane_of(self, rec: _Record) -> deque[_Record]:
        if rec.batch_class in URGENT:
            return self._lanes.urgent
        return self._lanes.live if rec.written_ms >= self._live_horizon() else self._lanes.backfill

    def _live_horizon(self) -> int:
        return self._clock.now_ms() - int(self._cfg.live_window_s * 1000)

    # --- internals: recovery ---

    def _recover(self, no: int, newest: bool) -> list[tuple[OutboxItem, int]] | None:
        """Indexes one segment's unacknowledged records (into the backfill lane).

        Damaged records are skipped and counted, the ones after them kept. A bad tail of the newest
        segment is a write torn by a crash and is cut; older segments were fsynced before the next one
        began, so there it is damage (counted, left in place). Returns the unacknowledged batches of a
        previous-format segment (to re-append, after which the caller deletes it), else None; a segment
        without one readable record (that is not just a torn first write) is quarantined.
        """
        path = self._dir / f"{no:020d}.seg"
        wal = Wal(path, _MAX_BODY)
        found = wal.open(cut_tail=newest)
        if found.unreadable or (not newest and found.tail and not found.records):
            wal.close()
            return self._convert_or_quarantine(path)
        if found.tail and newest:
            log.warning("spool: cut a torn record (%d bytes) off the end of %s", found.tail, path.name)
        acked = _read_acks(path.with_suffix(".ack"))
        seg = _Segment(no, wal, _open_ack(path), sealed=True)
        self._segments[no] = seg
        skipped = found.skipped + (1 if found.tail and not newest else 0)
        for frame in found.records:
            rec = _parse_body(frame.body, no, frame.offset, frame.size)
            if rec is None:
                skipped += 1
                continue
            self._watermark_ms = max(self._watermark_ms, rec.max_ts_ms)
            if rec.offset in acked or rec.batch_id in self._records:
                continue
            seg.live += 1
            self._records[rec.batch_id] = rec
            if rec.batch_class is BatchClass.HEARTBEAT:
                self._heartbeats[rec.batch_id] = rec
            self._bytes += rec.size
            if rec.batch_class is BatchClass.LOGS:
                self._log_bytes += rec.size
            (self._lanes.urgent if rec.batch_class in URGENT else self._lanes.backfill).append(rec)
        if skipped:
            self.skipped_records += skipped
            log.error(
                "spool: skipped %d damaged records in %s; the %d unacknowledged others are kept",
                skipped,
                path.name,
                seg.live,
            )
        return None

    def _convert_or_quarantine(self, path: Path) -> list[tuple[OutboxItem, int]] | None:
        """A segment with no record in this format: the previous format's records, or quarantine."""
        data = path.read_bytes()
        acked = _read_acks(path.with_suffix(".ack"))
        old = _legacy_records(data)
        if old:
            for rec, _ in old:
                self._watermark_ms = max(self._watermark_ms, rec.max_ts_ms)
            return [
                (OutboxItem(p, r.batch_class, r.batch_id, r.points, r.max_ts_ms), r.written_ms)
                for r, p in old
                if r.offset not in acked and r.batch_id not in self._records
            ]
        qdir = self._dir / "quarantine"
        qdir.mkdir(exist_ok=True)
        target = qdir / path.name
        path.replace(target)
        path.with_suffix(".ack").unlink(missing_ok=True)
        self.quarantined.append(target)
        log.error(
            "spool: segment %s holds no readable record (%d bytes): moved to %s", path.name, len(data), target
        )
        return None


def _boot_of(batch_id: str) -> str:
    """The boot epoch part of a batch id ("<boot_epoch>-<seq>")."""
    return batch_id.partition("-")[0]


def _parse_body(body: bytes, seg: int, offset: int, size: int) -> _Record | None:
    """The record a frame holds, or None when its fields make no sense (a bug, not a torn write)."""
    if len(body) < _META.size:
        return None
    cls, written, max_ts, points, id_len = _META.unpack_from(body)
    try:
        batch_class = BatchClass(cls)
        batch_id = body[_META.size : _META.size + id_len].decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if len(body) < _META.size + id_len:
        return None
    return _Record(seg, offset, size, batch_class, batch_id, written, max_ts, points)


def _legacy_records(data: bytes) -> list[tuple[_Record, bytes]]:
    """The records of a segment in the previous format (up to the first bad one), with their envelopes."""
    out: list[tuple[_Record, bytes]] = []
    head = _LEGACY_HEAD.size + _META.size
    pos = 0
    while len(data) - pos >= head:
        magic, length, crc = _LEGACY_HEAD.unpack_from(data, pos)
        cls, written, max_ts, points, id_len = _META.unpack_from(data, pos + _LEGACY_HEAD.size)
        end = pos + head + id_len + length
        if magic != _LEGACY_MAGIC or length > _MAX_RECORD or end > len(data):
            break
        if zlib.crc32(data[pos + _LEGACY_HEAD.size : end]) != crc:
            break
        try:
            batch_class = BatchClass(cls)
            batch_id = data[pos + head : pos + head + id_len].decode()
        except (ValueError, UnicodeDecodeError):
            break
        rec = _Record(0, pos, end - pos, batch_class, batch_id, written, max_ts, points)
        out.append((rec, data[pos + head + id_len : end]))
        pos = end
    return out


def _downsampled(item: OutboxItem) -> OutboxItem:
    try:
        _, batch = codec.decode(item.envelope)
    except CodecError:
        return item  # our own envelope; cannot happen, but a spool must never refuse to store
    rolled = rollup_batch(batch)
    return OutboxItem(
        codec.encode(rolled), rolled.batch_class, item.batch_id, rolled.point_count, item.max_ts_ms
    )


def _open_ack(seg_path: Path) -> int:
    return os.open(seg_path.with_suffix(".ack"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


def _append_ack(fd: int, offset: int) -> None:
    """One ack entry; a short write is cut off again, so later entries stay aligned."""
    entry = _OFFSET.pack(offset)
    written = os.write(fd, entry)
    if written != len(entry):
        os.ftruncate(fd, os.fstat(fd).st_size - written)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _read_acks(path: Path) -> set[int]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return set()
    whole = len(raw) - len(raw) % _OFFSET.size  # a torn last entry only means one batch is re-sent
    return {v for (v,) in _OFFSET.iter_unpack(raw[:whole])}


def _read_watermark(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _write_watermark(path: Path, value: int) -> None:
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(str(value))
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a half-written temp file must not hold on to the last free space
        raise
