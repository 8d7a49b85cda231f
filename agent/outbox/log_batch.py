"""Groups log records into LOGS batches, bounded in records and bytes and flushed on age.

Log batches take their ids from the same Sequencer as metric batches, so they ride the same envelope,
spool, dedupe and gap accounting at the hub; they are their own class so the spool can shed them first.
"""

from __future__ import annotations

from agent.outbox.batch import Sequencer
from shared.clock import Clock
from shared.model import Batch, BatchClass, LogRecord

# Per-record wire overhead besides its text: timestamps, numbers, five symbol refs, field tags.
_RECORD_OVERHEAD = 32


def record_bytes(r: LogRecord) -> int:
    """What a record costs a batch's byte budget: its UTF-8 text plus the fixed fields (an upper bound:
    host and app are counted per record although the symbol table sends each once per batch)."""
    text = (r.message, r.structured_data, r.host, r.app, r.procid, r.msgid)
    return sum(len(t.encode()) for t in text) + _RECORD_OVERHEAD


class LogBatcher:
    """Accumulates records until `max_records`, `max_bytes` or `max_age_s` since the first one."""

    def __init__(
        self, sequencer: Sequencer, clock: Clock, max_records: int, max_bytes: int, max_age_s: float
    ) -> None:
        self._seq = sequencer
        self._clock = clock
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._max_age_s = max_age_s
        self._records: list[LogRecord] = []
        self._bytes = 0
        self._opened_at: float | None = None

    def add(self, records: list[LogRecord]) -> list[Batch]:
        """Adds records in order; returns the batches they filled (each within both bounds)."""
        full: list[Batch] = []
        for r in records:
            size = record_bytes(r)
            if self._records and self._bytes + size > self._max_bytes:
                full.append(self._take())
            if self._opened_at is None:
                self._opened_at = self._clock.monotonic()
            self._records.append(r)
            self._bytes += size
            if len(self._records) >= self._max_records:
                full.append(self._take())
        return full

    def due(self) -> bool:
        """True when the oldest pending record has waited `max_age_s`."""
        return self._opened_at is not None and self._clock.monotonic() - self._opened_at >= self._max_age_s

    def flush(self) -> Batch | None:
        """The pending batch, or None when there is none."""
        return self._take() if self._records else None

    def _take(self) -> Batch:
        batch = Batch(
            self._seq.boot_epoch, self._seq.take(), batch_class=BatchClass.LOGS, logs=tuple(self._records)
        )
        self._records, self._bytes, self._opened_at = [], 0, None
        return batch
