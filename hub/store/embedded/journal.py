"""The ingest journal: the write-ahead log that makes a batch durable before the store acknowledges it.

A `shared.wal` file whose record bodies are `lsn` then the payload: one `write` per record, made durable
by a group-commit `fdatasync` before the store acknowledges. A record torn by a crash is a tail and is
cut on open (it was never acknowledged); a damaged record in the middle is skipped and counted
(`skipped_records`) and every record after it is replayed. LSNs rise forever, so the store can note in
its database which records a flush already made redundant.

A journal written by the previous format (`length, crc32, lsn`, no magic) is read once and rewritten in
this one; a file that is neither is moved aside (`<name>.unreadable`), never deleted.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path

from shared.wal import Wal

log = logging.getLogger(__name__)

_LSN = struct.Struct("<Q")
_LEGACY = struct.Struct("<IIQ")  # the previous format: payload length, crc32 of payload, lsn
MAX_RECORD_BYTES = 1 << 30


class Journal:
    """One journal file. `append` and `reset` need the caller's lock; `sync` is thread-safe."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wal = Wal(path, MAX_RECORD_BYTES + _LSN.size)
        self._base_lsn = 0  # last_lsn at open: wal append n carries lsn base + n
        self.last_lsn = 0
        self.skipped_records = 0

    def open(self, after_lsn: int) -> list[tuple[int, bytes]]:
        """Opens the file and returns every intact record with lsn > `after_lsn`, in order.

        Damaged records are skipped (counted in `skipped_records`); a torn tail is cut off.
        """
        found = self._wal.open()
        if found.unreadable:
            self._wal.close()
            self._migrate_or_move_aside(after_lsn)
            found = self._wal.open()
        if found.tail:
            log.warning("journal %s: cut %d bytes of torn tail", self._path, found.tail)
        self.last_lsn = after_lsn
        self.skipped_records = found.skipped
        records: list[tuple[int, bytes]] = []
        for rec in found.records:
            if len(rec.body) < _LSN.size:
                self.skipped_records += 1
                continue
            (lsn,) = _LSN.unpack_from(rec.body)
            self.last_lsn = max(self.last_lsn, lsn)
            if lsn > after_lsn:
                records.append((lsn, rec.body[_LSN.size :]))
        if self.skipped_records:
            log.error(
                "journal %s: skipped %d damaged records, replaying the %d after them",
                self._path,
                self.skipped_records,
                len(records),
            )
        self._base_lsn = self.last_lsn
        return records

    def append(self, payload: bytes) -> int:
        """Writes one record (not yet durable: see `sync`) and returns its lsn.

        Callers serialise `append` and `reset`; `sync` may run concurrently with both.

        Raises:
            OSError: when the record could not be written (disk full...); the file is unchanged.
        """
        lsn = self.last_lsn + 1
        self._wal.append(_LSN.pack(lsn) + payload)
        self.last_lsn = lsn
        return lsn

    def sync(self, lsn: int) -> None:
        """Returns once every record up to `lsn` is on stable storage (group commit, see `Wal.sync`).

        Raises:
            OSError: when fdatasync fails; the journal must then be treated as broken.
        """
        self._wal.sync(max(0, lsn - self._base_lsn))

    def reset(self) -> None:
        """Empties the file once everything in it is durable elsewhere; lsns keep rising."""
        self._wal.reset()

    def close(self) -> None:
        self._wal.close()

    def _migrate_or_move_aside(self, after_lsn: int) -> None:
        """Rewrites a previous-format journal in this format (atomically), or moves another file aside."""
        data = self._path.read_bytes()
        old = _legacy_records(data)
        if not old:
            aside = self._path.with_name(self._path.name + ".unreadable")
            self._path.replace(aside)
            log.error("journal %s: not a journal (%d bytes), moved to %s", self._path, len(data), aside)
            return
        tmp = self._path.with_name(self._path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        wal = Wal(tmp, MAX_RECORD_BYTES + _LSN.size)
        wal.open()
        try:
            for lsn, payload in old:
                if lsn > after_lsn:
                    wal.append(_LSN.pack(lsn) + payload)
            wal.sync()
        finally:
            wal.close()
        os.replace(tmp, self._path)
        log.info("journal %s: %d records converted from the previous format", self._path, len(old))


def _legacy_records(data: bytes) -> list[tuple[int, bytes]]:
    """The intact records of a previous-format journal (it stopped at the first bad one, so do we)."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos + _LEGACY.size <= len(data):
        size, crc, lsn = _LEGACY.unpack_from(data, pos)
        end = pos + _LEGACY.size + size
        if size > MAX_RECORD_BYTES or end > len(data):
            break
        payload = data[pos + _LEGACY.size : end]
        if zlib.crc32(payload) != crc:
            break
        out.append((lsn, payload))
        pos = end
    return out
