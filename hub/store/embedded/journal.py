"""The ingest journal: an append-only file that makes a batch durable before the store acknowledges it.

Each record is `length, crc32, lsn` then the payload, written with one `write` and made durable with
`fdatasync` (shared by concurrent writers) before the store acknowledges it. A record torn by a crash
fails its CRC (or is short) and is cut off on open: it was never acknowledged. LSNs rise forever, so
the store can note in its database which records a flush already made redundant.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from pathlib import Path

log = logging.getLogger(__name__)

_FRAME = struct.Struct("<IIQ")  # payload length, crc32 of payload, lsn
# A record longer than this is treated as corruption rather than allocated.
MAX_RECORD_BYTES = 1 << 30


class Journal:
    """One journal file. `append` and `reset` need the caller's lock; `sync` is thread-safe."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None
        self._sync_lock = threading.Lock()
        self._durable_lsn = 0
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
        self._durable_lsn = self.last_lsn
        if good_end < len(data):
            log.warning("journal %s: cut %d bytes of torn tail", self._path, len(data) - good_end)
            os.ftruncate(self._fd, good_end)
            os.fsync(self._fd)
        return records

    def append(self, payload: bytes) -> int:
        """Writes one record (not yet durable: see `sync`) and returns its lsn.

        Callers serialise `append` and `reset`; `sync` may run concurrently with both.

        Raises:
            OSError: when the record could not be written (disk full...); the file is unchanged.
        """
        fd = self._require_fd()
        lsn = self.last_lsn + 1
        end = os.fstat(fd).st_size
        try:
            os.write(fd, _FRAME.pack(len(payload), zlib.crc32(payload), lsn) + payload)
        except OSError:
            # A partial record left in place would hide every later record from replay.
            os.ftruncate(fd, end)
            raise
        self.last_lsn = lsn
        return lsn

    def sync(self, lsn: int) -> None:
        """Returns once every record up to `lsn` is on stable storage (group commit).

        Writers that arrive while an fdatasync is running wait for it and usually find their record
        covered by the next one, so concurrent writers share fsyncs instead of queueing for one each.

        Raises:
            OSError: when fdatasync fails; the journal must then be treated as broken.
        """
        with self._sync_lock:
            if self._durable_lsn >= lsn:
                return
            target = self.last_lsn
            os.fdatasync(self._require_fd())
            self._durable_lsn = max(self._durable_lsn, target)

    def reset(self) -> None:
        """Empties the file once everything in it is durable elsewhere; lsns keep rising."""
        fd = self._require_fd()
        with self._sync_lock:
            os.ftruncate(fd, 0)
            os.fsync(fd)
            self._durable_lsn = max(self._durable_lsn, self.last_lsn)

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
