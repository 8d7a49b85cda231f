"""The shared write-ahead log on real files: resync after damage, cut only a torn tail, never lose a
good record, and an append that fails leaves the file as it was."""

from __future__ import annotations

import errno
import os
import struct
import zlib
from pathlib import Path

import pytest

from hub.store.embedded.journal import Journal
from shared import wal
from shared.wal import Wal
from tests.support.tmpfs import fill, mounted_tmpfs

pytestmark = pytest.mark.unit

PAYLOADS = [f"record {i} ".encode() * (i + 3) for i in range(1, 6)]


def _write(path: Path, bodies: list[bytes]) -> list[int]:
    w = Wal(path)
    w.open()
    offsets = [w.append(b) for b in bodies]
    w.sync()
    w.close()
    return offsets


def test_a_flipped_byte_in_record_one_of_five_skips_that_record_only_and_keeps_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ingest.journal"
    journal = Journal(path)
    assert journal.open(after_lsn=0) == []
    for p in PAYLOADS:
        journal.append(p)
    journal.close()
    raw = bytearray(path.read_bytes())
    raw[wal.HEAD_SIZE + 10] ^= 0x01  # inside record 1's payload
    path.write_bytes(bytes(raw))
    reopened = Journal(path)
    assert reopened.open(after_lsn=0) == [(i + 1, p) for i, p in enumerate(PAYLOADS)][1:]
    assert reopened.skipped_records == 1
    assert path.read_bytes() == bytes(raw)  # nothing truncated, the damage stays for a post-mortem
    assert reopened.append(b"six") == 6
    reopened.close()


def test_a_torn_tail_is_cut_back_to_the_end_of_the_last_good_record(tmp_path: Path) -> None:
    path = tmp_path / "w"
    _write(path, PAYLOADS[:3])
    good = path.stat().st_size
    with path.open("ab") as f:
        f.write(wal.frame(PAYLOADS[3])[:-7])  # what a crash in the middle of the fourth write leaves
    w = Wal(path)
    found = w.open()
    assert [r.body for r in found.records] == PAYLOADS[:3]
    assert (found.skipped, found.tail, found.good_end) == (0, len(wal.frame(PAYLOADS[3])) - 7, good)
    assert path.stat().st_size == good
    w.append(b"after")
    w.close()
    assert [r.body for r in wal.scan(path.read_bytes()).records] == [*PAYLOADS[:3], b"after"]


def test_garbage_after_valid_records_is_cut_and_the_records_kept(tmp_path: Path) -> None:
    path = tmp_path / "w"
    _write(path, PAYLOADS)
    good = path.stat().st_size
    with path.open("ab") as f:
        f.write(os.urandom(300) + wal.MAGIC + b"\x05\x00\x00\x00garbage")
    w = Wal(path)
    found = w.open()
    w.close()
    assert [r.body for r in found.records] == PAYLOADS
    assert found.skipped == 0 and found.tail == 300 + 4 + 4 + 7
    assert path.stat().st_size == good


def test_a_length_field_corrupted_to_a_huge_value_costs_one_record(tmp_path: Path) -> None:
    path = tmp_path / "w"
    offsets = _write(path, PAYLOADS)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, offsets[2] + 4, 0xFFFF_FFF0)  # record 3 claims 4 GB
    path.write_bytes(bytes(raw))
    w = Wal(path)
    found = w.open()
    w.close()
    assert [r.body for r in found.records] == PAYLOADS[:2] + PAYLOADS[3:]
    assert found.skipped == 1 and found.tail == 0
    assert path.stat().st_size == len(raw)


def test_a_length_field_pointing_past_the_end_of_the_last_record_is_a_tail_not_a_record(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w"
    offsets = _write(path, PAYLOADS)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, offsets[4] + 4, len(PAYLOADS[4]) + 1000)
    path.write_bytes(bytes(raw))
    found = wal.scan(bytes(raw))
    assert [r.body for r in found.records] == PAYLOADS[:4]
    assert found.good_end == offsets[4] and found.tail == len(raw) - offsets[4]


def test_resync_does_not_accept_a_magic_inside_a_payload_unless_its_whole_frame_checks() -> None:
    decoy = wal.MAGIC + struct.pack("<II", 4, 0) + b"fake"  # right magic and length, wrong CRC
    data = bytearray(wal.frame(b"first") + wal.frame(b"x" * 20 + decoy + b"y" * 20) + wal.frame(b"last"))
    data[wal.HEAD_SIZE + 5 + wal.HEAD_SIZE + 3] ^= 0xFF  # damage the record holding the decoy
    found = wal.scan(bytes(data))
    assert [r.body for r in found.records] == [b"first", b"last"]
    assert found.skipped == 1


def test_a_file_without_a_single_frame_is_left_alone_and_reported_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "w"
    junk = b"not a write-ahead log at all\n" * 20
    path.write_bytes(junk)
    w = Wal(path)
    found = w.open()
    w.close()
    assert found.unreadable and found.records == []
    assert path.read_bytes() == junk


def test_a_journal_in_the_previous_format_is_converted_and_replayed(tmp_path: Path) -> None:
    path = tmp_path / "ingest.journal"
    old = b"".join(
        struct.pack("<IIQ", len(p), zlib.crc32(p), lsn) + p for lsn, p in enumerate(PAYLOADS, start=10)
    )
    path.write_bytes(old)
    journal = Journal(path)
    assert journal.open(after_lsn=11) == [(lsn, p) for lsn, p in enumerate(PAYLOADS, start=10)][2:]
    assert journal.append(b"next") == 15
    journal.close()
    again = Journal(path)
    assert [lsn for lsn, _ in again.open(after_lsn=0)] == [12, 13, 14, 15]
    again.close()


def test_a_journal_that_is_not_one_is_moved_aside_not_deleted(tmp_path: Path) -> None:
    path = tmp_path / "ingest.journal"
    path.write_bytes(b"\xff" * 100)
    journal = Journal(path)
    assert journal.open(after_lsn=3) == []
    assert journal.append(b"x") == 4
    journal.close()
    assert (tmp_path / "ingest.journal.unreadable").read_bytes() == b"\xff" * 100


@pytest.mark.integration
def test_an_append_on_a_full_disk_raises_enospc_and_leaves_the_file_unchanged(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "mnt", "1m") as full_fs:
        _full_disk_append(full_fs)


def _full_disk_append(full_fs: Path) -> None:
    w = Wal(full_fs / "w")
    w.open()
    w.append(b"kept")
    filler = fill(full_fs)
    before = (full_fs / "w").read_bytes()
    with pytest.raises(OSError) as exc:
        w.append(b"z" * 200_000)
    assert exc.value.errno == errno.ENOSPC
    assert (full_fs / "w").read_bytes() == before
    filler.unlink()
    w.append(b"later")
    w.close()
    assert [r.body for r in wal.scan((full_fs / "w").read_bytes()).records] == [b"kept", b"later"]
