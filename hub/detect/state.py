"""Where each pushing source's detector state lives: `<data_dir>/detect/<source>.npz`, in the bank's own
versioned snapshot format (`shared.detect.snapshot`), 0600 files in a 0700 directory.

The directory is the leader's own: a worker that takes the job over on another machine starts its
sources learning again unless `data_dir` is shared.
"""

from __future__ import annotations

from pathlib import Path

from shared.detect import DetectConfig, DetectorBank
from shared.detect.snapshot import file_name
from shared.private import private_dir


class BankFiles:
    """Loads and saves the banks of pushing sources under one directory (blocking: call off the loop)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, source: str) -> Path:
        return self.directory / file_name(source)

    def load(self, source: str, config: DetectConfig) -> DetectorBank:
        """The source's bank as last saved, or a fresh one (a first push, an unreadable file: one log)."""
        private_dir(self.directory)
        return DetectorBank.load(self.path(source), config)

    def save(self, source: str, bank: DetectorBank) -> None:
        """Saves atomically.

        Raises:
            OSError: the file could not be written (a full disk); the previous snapshot stays.
        """
        private_dir(self.directory)
        bank.save(self.path(source))

    def maybe_save(self, source: str, bank: DetectorBank, monotonic_s: float) -> bool:
        """Saves if the bank's `snapshot_interval_s` has passed; see `save` for what it raises."""
        return bank.maybe_save(self.path(source), monotonic_s)
