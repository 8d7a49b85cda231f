"""The ingest journal: the write-ahead log that makes a batch durable before the store acknowledges it.

A `shared.wal` file whose record bodies are `lsn` then the payload: one `write` per record, made durable
by a group-commit `fdatasync` before the store acknowledges. A record torn by a crash is a tail and is
cut on open (it was never acknowledged); a damaged record in the middle is skipped and counted
(`skipped_records`) and every record after it is replayed. LSNs rise forever, so the store can note in
its database which records a flush already made redundant.

Sealing lets the store flush its head while writes go on: `seal()` syncs the file, renames it
`<name>.sealed` and starts an empty one; the sealed file is kept (and read back on open, before the
active one) until the flush that covers it has committed and calls `drop_sealed()`. At most one file
is sealed at a time.

A journal written by the previous format (`length, crc32, lsn`, no magic) is read once and rewritten in
this one; a file that is neither is moved aside (`<name>.unreadable`), never deleted.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path

from shared.wal import Scan, Wal, fsync_dir

log = logging.getLogger(__name__)

_LSN = struct.Struct("<Q")
_LEGACY = struct.Struct("<IIQ")  # the previous format: payload length, crc32 of payload, lsn
MAX_RECORD_BYTES = 1 << 30


class Journal:
    """One journal file (and at most one sealed one). `append`, `seal`, `drop_sealed` and `reset` need the
    caller's lock; `sync` is thread-safe."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._sealed_path = path.with_name(path.name + ".sealed")
        # The active file and its base (last_lsn when it was opened: wal append n carries lsn base + n),
        # swapped as one tuple by `seal`, so `sync` never pairs one file with the other's base.
        self._active = (Wal(path, MAX_RECORD_BYTES + _LSN.size), 0)
        # Kept open until dropped: a writer may still be inside its fdatasync.
        self._sealed: Wal | None = None
        self.last_lsn = 0
        self.skipped_records = 0

    @property
    def has_sealed(self) -> bool:
        """A sealed file exists (one a flush has not yet dropped, or one found on open)."""
        return self._sealed is not None

    def open(self, after_lsn: int) -> list[tuple[int, bytes]]:
        """Opens the file(s) and returns every intact record with lsn > `after_lsn`, in order: a sealed
        file left by a crash first, then the active one.

        Damaged records are skipped (counted in `skipped_records`); a torn tail is cut off.
        """
        self.last_lsn = after_lsn
        self.skipped_records = 0
        records: list[tuple[int, bytes]] = []
        if self._sealed_path.exists():
            self._sealed = Wal(self._sealed_path, MAX_RECORD_BYTES + _LSN.size)
            records += self._records(self._sealed, self._sealed.open(), after_lsn)
        wal = self._active[0]
        found = wal.open()
        if found.unreadable:
            wal.close()
            self._migrate_or_move_aside(after_lsn)
            found = wal.open()
        records += self._records(wal, found, after_lsn)
        if self.skipped_records:
            log.error(
                "journal %s: skipped %d damaged records, replaying the %d after them",
                self._path,
                self.skipped_records,
                len(records),
            )
        self._active = (wal, self.last_lsn)
        return records

    def _records(self, wal: Wal, found: Scan, after_lsn: int) -> list[tuple[int, bytes]]:
        """The records of a scanned file past `after_lsn`; raises `last_lsn` to the highest seen."""
        if found.tail:
            log.warning("journal %s: cut %d bytes of torn tail", wal.path, found.tail)
        self.skipped_records += found.skipped
        records: list[tuple[int, bytes]] = []
        for rec in found.records:
            if len(rec.body) < _LSN.size:
                self.skipped_records += 1
                continue
            (lsn,) = _LSN.unpack_from(rec.body)
            self.last_lsn = max(self.last_lsn, lsn)
            if lsn > after_lsn:
                records.append((lsn, rec.body[_LSN.size :]))
        return records

    def append(self, payload: bytes) -> int:
        """Writes one record (not yet durable: see `sync`) and returns its lsn.

        Raises:
            OSError: when the record could not be written (disk full...); the file is unchanged.
        """
        lsn = self.last_lsn + 1
        self._active[0].append(_LSN.pack(lsn) + payload)
        self.last_lsn = lsn
        return lsn

    def sync(self, lsn: int) -> None:
        """Returns once every record up to `lsn` is on stable storage (group commit, see `Wal.sync`).
        Records of a sealed file are durable already: `seal` synced it.

        Raises:
            OSError: when fdatasync fails; the journal must then be treated as broken.
        """
        wal, base = self._active
        if lsn > base:
            wal.sync(lsn - base)

    def seal(self) -> None:
        """Makes the file durable, renames it `<name>.sealed` and continues in an empty file; records up
        to today's `last_lsn` are then in the sealed file. A sealed file still there is replaced: the
        caller seals only once the flush of the previous one has committed.

        Raises:
            OSError: when the sync, rename or new file fails (the journal must then be treated as broken).
        """
        old, _ = self._active
        old.sync()
        os.replace(self._path, self._sealed_path)
        fresh = Wal(self._path, MAX_RECORD_BYTES + _LSN.size)
        fresh.open()  # creating it syncs the directory, which also makes the rename durable
        if self._sealed is not None:
            self._sealed.close()
        self._sealed = old
        self._active = (fresh, self.last_lsn)

    def drop_sealed(self) -> None:
        """Deletes the sealed file once a committed flush covers every record in it."""
        if self._sealed is None:
            return
        self._sealed.close()
        self._sealed = None
        self._sealed_path.unlink(missing_ok=True)
        fsync_dir(self._path.parent)

    def reset(self) -> None:
        """Empties the active file once everything in it is durable elsewhere; lsns keep rising."""
        self._active[0].reset()

    def close(self) -> None:
        self._active[0].close()
        if self._sealed is not None:
            self._sealed.close()

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
