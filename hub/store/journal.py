"""The ingest journal: an append-only file that makes a batch durable before the store acknowledges it.

Each record is `length, crc32, lsn` then the payload, written with one `write` and made durable with
`fdatasync` before `append` returns. A record torn by a crash fails its CRC (or is short) and is cut
off on open: it was never acknowledged, since `append` had not returned. LSNs rise forever, so the
store can note in its database which records a flush already made redundant.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from shared.model import Batch, BatchClass, Event, MetricKind, SeriesKey, SeriesPoints, Severity

log = logging.getLogger(__name__)

_FRAME = struct.Struct("<IIQ")  # payload length, crc32 of payload, lsn
_META_LEN = struct.Struct("<I")
# A record longer than this is treated as corruption rather than allocated.
MAX_RECORD_BYTES = 1 << 30


class Journal:
    """One journal file; not thread-safe (the store serialises writers)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None
        self.last_lsn = 0

    def open(self, after_lsn: int) -> list[tuple[int, bytes]]:
        """Opens the file, cuts any torn tail, and returns every intact record with lsn > `after_lsn`."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        created = not self._path.exists()
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        if created:
            _fsync_dir(self._path.parent)
        self.last_lsn = after_lsn
        records: list[tuple[int, bytes]] = []
        good_end = 0
        with open(self._path, "rb") as f:
            data = f.read()
        pos = 0
        while pos + _FRAME.size <= len(data):
            size, crc, lsn = _FRAME.unpack_from(data, pos)
            body_end = pos + _FRAME.size + size
            if size > MAX_RECORD_BYTES or body_end > len(data):
                break
            payload = data[pos + _FRAME.size : body_end]
            if zlib.crc32(payload) != crc:
                break
            pos = good_end = body_end
            self.last_lsn = max(self.last_lsn, lsn)
            if lsn > after_lsn:
                records.append((lsn, payload))
        if good_end < len(data):
            log.warning("journal %s: cut %d bytes of torn tail", self._path, len(data) - good_end)
            os.ftruncate(self._fd, good_end)
            os.fsync(self._fd)
        return records

    def append(self, payload: bytes) -> int:
        """Appends one record and returns its lsn once it is on stable storage.

        Raises:
            OSError: when the record could not be made durable (disk full...); the file is unchanged.
        """
        fd = self._require_fd()
        lsn = self.last_lsn + 1
        end = os.fstat(fd).st_size
        try:
            os.write(fd, _FRAME.pack(len(payload), zlib.crc32(payload), lsn) + payload)
            os.fdatasync(fd)
        except OSError:
            # A partial record left in place would hide every later record from replay.
            os.ftruncate(fd, end)
            raise
        self.last_lsn = lsn
        return lsn

    def reset(self) -> None:
        """Empties the file once everything in it is durable elsewhere; lsns keep rising."""
        fd = self._require_fd()
        os.ftruncate(fd, 0)
        os.fsync(fd)

    def size(self) -> int:
        return os.fstat(self._require_fd()).st_size

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _require_fd(self) -> int:
        if self._fd is None:
            raise RuntimeError("journal is not open")
        return self._fd


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode_batch(agent: str, batch: Batch) -> bytes:
    """Serialises a batch for the journal: a JSON header, then all timestamps, then all values.

    Scores, kinds and units are not kept: the store does not serve them.
    """
    meta = {
        "agent": agent,
        "boot": batch.boot_epoch,
        "seq": batch.seq,
        "class": batch.batch_class.value,
        "series": [[s.key.metric, s.key.labels, len(s)] for s in batch.series],
        "events": [
            [e.ts_ms, e.kind, e.severity.value, e.source, e.message, e.attributes] for e in batch.events
        ],
    }
    head = json.dumps(meta, separators=(",", ":")).encode()
    ts = [s.timestamps_ms.astype("<i8", copy=False).tobytes() for s in batch.series]
    vals = [s.values.astype("<f8", copy=False).tobytes() for s in batch.series]
    return b"".join([_META_LEN.pack(len(head)), head, *ts, *vals])


def decode_batch(payload: bytes) -> tuple[str, Batch]:
    """Inverse of `encode_batch`.

    Raises:
        ValueError: when the payload is not a journal batch (a CRC-valid record never is, barring bugs).
    """
    (head_len,) = _META_LEN.unpack_from(payload, 0)
    meta = json.loads(payload[_META_LEN.size : _META_LEN.size + head_len])
    lengths = [int(n) for _, _, n in meta["series"]]
    total = sum(lengths)
    pos = _META_LEN.size + head_len
    ts = np.frombuffer(payload, "<i8", total, pos).astype(np.int64)
    vals = np.frombuffer(payload, "<f8", total, pos + 8 * total).astype(np.float64)
    bounds = np.cumsum([0, *lengths])
    series = tuple(
        SeriesPoints(
            SeriesKey(metric, tuple((str(k), str(v)) for k, v in labels)),
            ts[bounds[i] : bounds[i + 1]],
            vals[bounds[i] : bounds[i + 1]],
            MetricKind.GAUGE,
        )
        for i, (metric, labels, _) in enumerate(meta["series"])
    )
    events = tuple(
        Event(t, kind, Severity(sev), source, msg, tuple((str(k), str(v)) for k, v in attrs))
        for t, kind, sev, source, msg, attrs in meta["events"]
    )
    batch = Batch(int(meta["boot"]), int(meta["seq"]), series, events, BatchClass(meta["class"]))
    return str(meta["agent"]), batch
