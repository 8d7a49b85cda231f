"""The write-ahead log both sides keep: the hub's ingest journal and the agent's spool segments.

A file is a sequence of frames `magic, body length, crc32(length + body)` then the body; what a body
holds (an LSN, a batch's metadata) is the user's business. The rules:

* Append is one `os.write`, so a SIGKILL loses nothing written; durability is a group-commit
  `fdatasync` (`sync(seq)`) shared by concurrent writers. A failed or short write (ENOSPC) is cut
  off again, so the file is unchanged.
* A reader resyncs after a bad frame: it looks for the next magic whose whole frame checks (the CRC
  covers the length, and a length running past the end of the file is not a frame), skips the damage
  and counts it, and keeps every record after it. One flipped byte costs one record, not the file.
* Only a tail that no valid frame follows is cut (a write torn by a crash, or garbage after the last
  record), and never below the end of the last good record. A non-empty file without a single good
  frame that does not start like one (another format, or garbage) is left untouched and reported as
  unreadable: the user decides (read an older format, quarantine), nothing is silently deleted.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"OPW1"
_HEAD = struct.Struct("<4sII")  # magic, body length, crc32 of (length field + body)
HEAD_SIZE = _HEAD.size
# A frame longer than this is treated as corruption rather than allocated.
MAX_RECORD_BYTES = 1 << 30


def frame(body: bytes) -> bytes:
    """One record as written to disk."""
    length = struct.pack("<I", len(body))
    return b"".join((MAGIC, length, struct.pack("<I", zlib.crc32(body, zlib.crc32(length))), body))


@dataclass(frozen=True, slots=True)
class Record:
    """A good frame: where it starts in the file, its size on disk, and its body."""

    offset: int
    size: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Scan:
    """What a file holds.

    Attributes:
        records: every good frame, in file order.
        skipped: damaged stretches between good frames (each is at least one lost record).
        good_end: end of the last good frame (0 when there is none): the file is never cut below it.
        tail: bytes after `good_end` that no good frame follows (cut by `Wal.open`).
        unreadable: the file is non-empty, holds no good frame and does not start like one.
    """

    records: list[Record] = field(default_factory=list)
    skipped: int = 0
    good_end: int = 0
    tail: int = 0
    unreadable: bool = False


def _frame_at(data: bytes, pos: int, max_record: int) -> int:
    """The end of the good frame at `pos`, or -1."""
    if data[pos : pos + 4] != MAGIC or pos + HEAD_SIZE > len(data):
        return -1
    _, length, crc = _HEAD.unpack_from(data, pos)
    end = pos + HEAD_SIZE + length
    if length > max_record or end > len(data):
        return -1
    if zlib.crc32(data[pos + HEAD_SIZE : end], zlib.crc32(data[pos + 4 : pos + 8])) != crc:
        return -1
    return end


def scan(data: bytes, max_record: int = MAX_RECORD_BYTES) -> Scan:
    """Every good frame in `data`, resyncing after damage (see the module docstring)."""
    records: list[Record] = []
    skipped = good_end = pos = 0
    while pos < len(data):
        end = _frame_at(data, pos, max_record)
        if end < 0:
            nxt = data.find(MAGIC, pos + 1)
            while nxt != -1 and _frame_at(data, nxt, max_record) < 0:
                nxt = data.find(MAGIC, nxt + 1)
            if nxt == -1:
                break  # nothing good follows: a tail
            skipped += 1
            pos = nxt
            continue
        records.append(Record(pos, end - pos, data[pos + HEAD_SIZE : end]))
        pos = good_end = end
    tail = len(data) - good_end
    head = data[: min(len(data), 4)]
    unreadable = not records and tail > 0 and head != MAGIC[: len(head)]
    return Scan(records, skipped, good_end, tail, unreadable)


class Wal:
    """One log file. `append` and `reset` need the caller's lock; `sync` and `read` are thread-safe."""

    def __init__(self, path: Path, max_record: int = MAX_RECORD_BYTES) -> None:
        self.path = path
        self._max = max_record
        self._fd: int | None = None
        self._end = 0
        self._sync_lock = threading.Lock()
        # Appends since open, and how many of them are known durable (group commit, see `sync`).
        self._seq = 0
        self._durable = 0

    def open(self, cut_tail: bool = True) -> Scan:
        """Opens (creating) the file and scans it; cuts the tail unless the file is unreadable as a whole.

        Raises:
            OSError: when the file cannot be opened or read.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        if created:
            fsync_dir(self.path.parent)
        size = os.fstat(self._fd).st_size
        found = scan(os.pread(self._fd, size, 0) if size else b"", self._max)
        self._end = size
        if found.tail and cut_tail and not found.unreadable:
            os.ftruncate(self._fd, found.good_end)
            os.fsync(self._fd)
            self._end = found.good_end
        return found

    @property
    def size(self) -> int:
        """Bytes in the file (where the next append lands)."""
        return self._end

    @property
    def last_seq(self) -> int:
        """How many appends this `Wal` made since it was opened (what `sync` waits for)."""
        return self._seq

    def append(self, body: bytes) -> int:
        """Writes one frame (not yet durable: see `sync`) and returns its offset.

        Raises:
            OSError: when it could not be written whole (disk full...); the file is then unchanged.
        """
        fd = self._require_fd()
        if len(body) > self._max:
            raise ValueError(f"record of {len(body)} bytes exceeds the {self._max} limit")
        data = frame(body)
        offset = self._end
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:
            # A partial frame left in place would be a tail that later appends turn into damage.
            try:
                os.ftruncate(fd, offset)
            except OSError as exc:
                log.error("wal %s: cannot cut a failed write off again (%s)", self.path, exc)
            raise
        self._end = offset + len(data)
        self._seq += 1
        return offset

    def read(self, offset: int, size: int) -> bytes:
        """The body of the frame at `offset` whose size on disk is `size` (as `Record` gave them)."""
        data = os.pread(self._require_fd(), size, offset)
        return data[HEAD_SIZE:]

    def sync(self, seq: int | None = None) -> None:
        """Returns once every append up to `seq` (default: all so far) is on stable storage.

        Writers that arrive while an fdatasync is running wait for it and usually find their record
        covered by the next one, so concurrent writers share fsyncs instead of queueing for one each.

        Raises:
            OSError: when fdatasync fails.
        """
        upto = self._seq if seq is None else seq
        with self._sync_lock:
            if self._durable >= upto:
                return
            target = self._seq
            os.fdatasync(self._require_fd())
            self._durable = max(self._durable, target)

    def reset(self) -> None:
        """Empties the file once everything in it is durable elsewhere."""
        fd = self._require_fd()
        with self._sync_lock:
            os.ftruncate(fd, 0)
            os.fsync(fd)
            self._end = 0
            self._durable = max(self._durable, self._seq)

    def close(self) -> None:
        """Closes the file; safe twice."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _require_fd(self) -> int:
        if self._fd is None:
            raise RuntimeError(f"wal {self.path} is not open")
        return self._fd


def fsync_dir(path: Path) -> None:
    """Makes the creates, renames and deletes of entries in directory `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
