"""The disk spool: a segmented on-disk log of envelopes waiting for the hub (store-and-forward).

Every envelope is appended here before it is sent and forgotten only when the hub acknowledged it, so
neither a hub outage nor a SIGKILL of the agent loses an accepted batch; after a restart the envelopes
are re-sent byte for byte, with their original (boot_epoch, seq) ids, and the hub's dedup drops any
that had already arrived.

Layout under `dir`: `<n>.seg` segments of records, `<n>.ack` the offsets of records already acknowledged
(or dropped) in segment n, `quarantine/` for segments that failed their checks, `watermark` the newest
point time ever released. A record is `header + envelope`; its CRC-32 covers both (after the CRC field).

Durability and loss bound: each record is one `os.write` (in the kernel's page cache at once, so SIGKILL
loses nothing written); `fsync` runs in group commits at most `fsync_interval_s` apart (0 = every write).
On power loss at most the records of the last `fsync_interval_s` (default 1 s) are lost; acks are not
fsynced eagerly because losing one only re-sends a batch the hub then ignores. A torn record at the tail
of the newest segment is cut off on start; any other bad record quarantines its segment with one log line
(records before it are salvaged) and the agent starts regardless.

Overflow (size `max_bytes` of pending records, age `max_age_s`): above `downsample_at` of the size limit
incoming raw METRICS batches are rolled up (outbox.downsample); when full, the oldest spooled raw batches
are rolled up in place before anything is dropped, then the oldest ROLLUP, then other batches are
dropped; expired batches are dropped by age. Every drop is counted by class and reason in `dropped`.

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

log = logging.getLogger(__name__)

_MAGIC = b"OP"
# A record: _HEAD (magic, payload length, crc32), _META (class, written_ms, max_ts_ms, points, id length),
# the batch id, the envelope. The CRC covers everything after _HEAD.
_HEAD = struct.Struct("<2sII")
_META = struct.Struct("<BqqIH")
_HDR_SIZE = _HEAD.size + _META.size
_OFFSET = struct.Struct("<Q")
_MAX_RECORD = 256 * 1024 * 1024
# Drop order when the spool is full: raw metrics first, then their rollups, then everything else.
_DROP_ORDER = (
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
    path: Path
    read_fd: int
    ack_fd: int
    live: int = 0
    sealed: bool = False


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
        self._lanes = _Lanes()
        self._active: _Segment | None = None
        self._write_fd = -1
        self._write_pos = 0
        self._bytes = 0
        self._dirty = False
        self._disk = UpDown(log, f"spool writes to {self._dir}", self._clock)
        self._last_sync = 0.0
        self._watermark_ms = 0
        self._backfill_total = 0
        self._sent_live = 0
        self._sent_backfill = 0
        self._ready = asyncio.Event()
        self.dropped: Counter[tuple[str, str]] = Counter()
        self.quarantined: list[Path] = []

    # --- lifecycle ---

    def open(self) -> None:
        """Recovers every segment on disk (into the backfill lane) and opens a fresh segment for writes."""
        self._dir.mkdir(parents=True, exist_ok=True)
        self._watermark_ms = _read_watermark(self._dir / "watermark")
        numbers = sorted(int(p.stem) for p in self._dir.glob("*.seg") if p.stem.isdigit())
        salvaged: list[tuple[OutboxItem, int]] = []
        for i, no in enumerate(numbers):
            try:
                salvaged.extend(self._recover(no, newest=i == len(numbers) - 1))
            except OSError as exc:  # unreadable file: the agent starts anyway, without it
                log.error("spool: cannot read segment %020d.seg (%s): skipped", no, exc.strerror)
        self._roll(numbers[-1] + 1 if numbers else 1)
        for item, written_ms in salvaged:
            self._append(item, written_ms, lane=self._lanes.backfill)
        for seg in list(self._segments.values()):
            self._release_if_done(seg)
        if self._records:
            log.info(
                "spool: %d batches (%d bytes) to replay from %s", len(self._records), self._bytes, self._dir
            )

    def close(self) -> None:
        """Syncs and closes every file; pending records stay on disk for the next start."""
        self.sync(force=True)
        for seg in self._segments.values():
            os.close(seg.read_fd)
            os.close(seg.ack_fd)
        if self._write_fd >= 0:
            os.close(self._write_fd)
        self._segments.clear()
        self._write_fd = -1

    # --- the Outbox protocol ---

    def put(self, item: OutboxItem) -> None:
        """Appends an envelope (durable against SIGKILL on return), after applying the overflow policy."""
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
                data = self._read(rec)
                return OutboxItem(data, rec.batch_class, rec.batch_id, rec.points, rec.max_ts_ms)
            self._ready.clear()
            await self._ready.wait()

    def ack(self, item: OutboxItem) -> None:
        """Forgets a batch the hub acknowledged (or refused for good)."""
        rec = self._records.pop(item.batch_id, None)
        if rec is not None:
            self._release(rec)

    def nack(self, item: OutboxItem) -> None:
        """Puts a batch whose send failed back at the front of its lane."""
        rec = self._records.get(item.batch_id)
        if rec is None:
            return
        self._lane_of(rec).appendleft(rec)
        self._ready.set()

    def pending(self) -> int:
        return len(self._records)

    # --- upkeep, called periodically by the runtime ---

    def maintain(self) -> None:
        """Group commit (fsync when the interval passed) and age-based expiry."""
        self.expire()
        self.sync()

    def sync(self, force: bool = False) -> None:
        """fsyncs the active segment and ack files if anything was written since the last sync."""
        now = self._clock.monotonic()
        if not self._dirty or (not force and now - self._last_sync < self._cfg.fsync_interval_s):
            return
        if self._write_fd >= 0:
            os.fsync(self._write_fd)
        for seg in self._segments.values():
            os.fsync(seg.ack_fd)
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
        if self._active is not None:
            os.fsync(self._write_fd)
            os.close(self._write_fd)
            self._active.sealed = True
            self._release_if_done(self._active)
        path = self._dir / f"{no:020d}.seg"
        self._write_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._write_pos = os.fstat(self._write_fd).st_size
        seg = _Segment(no, path, os.open(path, os.O_RDONLY), _open_ack(path))
        self._segments[no] = self._active = seg

    def _append(self, item: OutboxItem, written_ms: int, lane: deque[_Record]) -> None:
        assert self._active is not None, "spool not opened"
        bid = item.batch_id.encode()
        meta = _META.pack(item.batch_class.value, written_ms, item.max_ts_ms, item.points, len(bid))
        crc = zlib.crc32(item.envelope, zlib.crc32(bid, zlib.crc32(meta)))
        record = b"".join((_HEAD.pack(_MAGIC, len(item.envelope), crc), meta, bid, item.envelope))
        if not self._write(record, item.batch_class):
            return
        rec = _Record(
            self._active.no,
            self._write_pos,
            len(record),
            item.batch_class,
            item.batch_id,
            written_ms,
            item.max_ts_ms,
            item.points,
        )
        self._write_pos += len(record)
        self._dirty = True
        self._active.live += 1
        self._records[item.batch_id] = rec
        self._bytes += rec.size
        self._watermark_ms = max(self._watermark_ms, item.max_ts_ms)
        (self._lanes.urgent if rec.batch_class in URGENT else lane).append(rec)
        self._ready.set()
        if self._write_pos >= self._cfg.segment_bytes:
            self._roll(self._active.no + 1)

    def _write(self, record: bytes, batch_class: BatchClass) -> bool:
        """One append; on a failed or short write (disk full, I/O error) the partial record is cut off
        again, the batch is dropped and counted, and the failure is logged once until writes work."""
        try:
            if os.write(self._write_fd, record) != len(record):
                raise OSError(errno.ENOSPC, "short write")
        except OSError as exc:
            try:
                os.ftruncate(self._write_fd, self._write_pos)
            except OSError:
                pass  # the CRC check drops a torn tail on the next start anyway
            self.dropped[(batch_class.name.lower(), "disk_error")] += 1
            self._disk.down(f"{exc}: dropping batches until it works", logging.ERROR)
            return False
        self._disk.up()
        return True

    def _make_room(self, item: OutboxItem) -> OutboxItem | None:
        """Applies the overflow policy to an incoming item; returns what to write, or None when dropped."""
        size = len(item.envelope) + _HDR_SIZE + len(item.batch_id)
        limit = self._cfg.max_bytes
        if item.batch_class is BatchClass.METRICS and self._bytes + size > limit * self._cfg.downsample_at:
            item = _downsampled(item)
            size = len(item.envelope) + _HDR_SIZE + len(item.batch_id)
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
        seg = self._segments[rec.seg]
        data = os.pread(seg.read_fd, rec.size, rec.offset)
        id_len = _META.unpack_from(data, _HEAD.size)[4]
        return data[_HDR_SIZE + id_len :]

    def _release(self, rec: _Record) -> None:
        seg = self._segments.get(rec.seg)
        self._bytes -= rec.size
        if seg is None:
            return
        os.write(seg.ack_fd, _OFFSET.pack(rec.offset))
        self._dirty = True
        seg.live -= 1
        self._release_if_done(seg)

    def _release_if_done(self, seg: _Segment) -> None:
        """Deletes a sealed segment once all its records are gone (watermark saved first)."""
        if not seg.sealed or seg.live > 0:
            return
        _write_watermark(self._dir / "watermark", self._watermark_ms)
        os.close(seg.read_fd)
        os.close(seg.ack_fd)
        seg.path.unlink(missing_ok=True)
        seg.path.with_suffix(".ack").unlink(missing_ok=True)
        del self._segments[seg.no]

    def _lane_of(self, rec: _Record) -> deque[_Record]:
        if rec.batch_class in URGENT:
            return self._lanes.urgent
        return self._lanes.live if rec.written_ms >= self._live_horizon() else self._lanes.backfill

    def _live_horizon(self) -> int:
        return self._clock.now_ms() - int(self._cfg.live_window_s * 1000)

    # --- internals: recovery ---

    def _recover(self, no: int, newest: bool) -> list[tuple[OutboxItem, int]]:
        """Indexes one segment's unacknowledged records; returns records to re-append when it is quarantined.

        A bad record at the very end of the newest segment is a write torn by a crash: cut off quietly.
        Anywhere else it is corruption: the valid records before it are salvaged, the file quarantined.
        """
        path = self._dir / f"{no:020d}.seg"
        data = path.read_bytes()
        acked = _read_acks(path.with_suffix(".ack"))
        recs: list[tuple[_Record, bytes]] = []
        pos, problem = 0, ""
        while pos < len(data):
            parsed = _parse_record(data, pos)
            if isinstance(parsed, str):
                problem = parsed
                break
            rec, payload = parsed
            rec.seg = no
            recs.append((rec, payload))
            pos += rec.size
        if problem and newest and _is_torn_tail(data, pos):
            log.warning("spool: cut a torn record (%d bytes) off the end of %s", len(data) - pos, path.name)
            os.truncate(path, pos)
            problem = ""
        if problem:
            return self._quarantine(path, problem, pos, [(r, p) for r, p in recs if r.offset not in acked])
        seg = _Segment(no, path, os.open(path, os.O_RDONLY), _open_ack(path), sealed=True)
        self._segments[no] = seg
        for rec, _ in recs:
            self._watermark_ms = max(self._watermark_ms, rec.max_ts_ms)
            if rec.offset in acked or rec.batch_id in self._records:
                continue
            seg.live += 1
            self._records[rec.batch_id] = rec
            self._bytes += rec.size
            (self._lanes.urgent if rec.batch_class in URGENT else self._lanes.backfill).append(rec)
        return []

    def _quarantine(
        self, path: Path, problem: str, pos: int, keep: list[tuple[_Record, bytes]]
    ) -> list[tuple[OutboxItem, int]]:
        qdir = self._dir / "quarantine"
        qdir.mkdir(exist_ok=True)
        target = qdir / path.name
        path.replace(target)
        path.with_suffix(".ack").unlink(missing_ok=True)
        self.quarantined.append(target)
        log.error(
            "spool: segment %s is corrupt at byte %d (%s): moved to %s, %d earlier batches salvaged",
            path.name,
            pos,
            problem,
            target,
            len(keep),
        )
        return [
            (OutboxItem(p, r.batch_class, r.batch_id, r.points, r.max_ts_ms), r.written_ms) for r, p in keep
        ]


def _parse_record(data: bytes, pos: int) -> tuple[_Record, bytes] | str:
    """One record at `pos`, or why it is unreadable."""
    if len(data) - pos < _HDR_SIZE:
        return "truncated header"
    magic, length, crc = _HEAD.unpack_from(data, pos)
    cls, written, max_ts, points, id_len = _META.unpack_from(data, pos + _HEAD.size)
    if magic != _MAGIC or length > _MAX_RECORD:
        return "bad record header"
    end = pos + _HDR_SIZE + id_len + length
    if end > len(data):
        return "truncated record"
    if zlib.crc32(data[pos + _HEAD.size : end]) != crc:
        return "checksum mismatch"
    try:
        batch_class = BatchClass(cls)
        batch_id = data[pos + _HDR_SIZE : pos + _HDR_SIZE + id_len].decode()
    except (ValueError, UnicodeDecodeError):
        return "bad record fields"
    payload = data[pos + _HDR_SIZE + id_len : end]
    return _Record(0, pos, end - pos, batch_class, batch_id, written, max_ts, points), payload


def _is_torn_tail(data: bytes, pos: int) -> bool:
    """True when no valid record follows `pos`: the damage is one unfinished final write."""
    nxt = data.find(_MAGIC, pos + 1)
    while nxt != -1:
        if not isinstance(_parse_record(data, nxt), str):
            return False
        nxt = data.find(_MAGIC, nxt + 1)
    return True


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
    tmp.write_text(str(value))
    tmp.replace(path)
