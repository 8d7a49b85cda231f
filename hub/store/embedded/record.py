"""The ingest record: one accepted batch as the embedded store journals and replays it.

Columnar: a series id per point plus the point columns, so writing, journaling and replaying a batch
costs a handful of array operations however many series it carries. Series first seen in this batch
travel with their keys, so a replay recreates exactly the ids the head used.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np

from shared.model import Event, F64Array, I64Array, SeriesKey, Severity

# boot_epoch, seq, points, JSON length; then the JSON, point series ids (<i4), timestamps (<i8), values (<f8).
_HEAD = struct.Struct("<qqII")

I32Array = np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class IngestRecord:
    """What one `write` adds to the store."""

    agent: str
    boot_epoch: int
    seq: int
    new_series: tuple[tuple[int, SeriesKey], ...]
    sids: I32Array  # one per point
    ts: I64Array
    vals: F64Array
    events: tuple[Event, ...]

    def encode(self) -> bytes:
        meta = {
            "agent": self.agent,
            "new": [[sid, key.metric, key.labels] for sid, key in self.new_series],
            "events": [
                [e.ts_ms, e.kind, e.severity.value, e.source, e.message, e.attributes] for e in self.events
            ],
        }
        text = json.dumps(meta, separators=(",", ":")).encode()
        head = _HEAD.pack(self.boot_epoch, self.seq, self.ts.shape[0], len(text))
        return b"".join(
            (
                head,
                text,
                self.sids.astype("<i4", copy=False).tobytes(),
                self.ts.astype("<i8", copy=False).tobytes(),
                self.vals.astype("<f8", copy=False).tobytes(),
            )
        )

    @classmethod
    def decode(cls, payload: bytes) -> IngestRecord:
        """Inverse of `encode`.

        Raises:
            ValueError: when the payload is not a record (truncated, bad JSON, wrong sizes).
        """
        try:
            boot, seq, n, text_len = _HEAD.unpack_from(payload, 0)
            pos = _HEAD.size
            meta = json.loads(payload[pos : pos + text_len])
            pos += text_len
            if len(payload) != pos + 20 * n:
                raise ValueError("record size does not match its point count")
            sids = np.frombuffer(payload, "<i4", n, pos).astype(np.int32)
            ts = np.frombuffer(payload, "<i8", n, pos + 4 * n).astype(np.int64)
            vals = np.frombuffer(payload, "<f8", n, pos + 12 * n).astype(np.float64)
            new = tuple((int(sid), SeriesKey(metric, _pairs(labels))) for sid, metric, labels in meta["new"])
            events = tuple(
                Event(int(t), kind, Severity(sev), source, msg, _pairs(attrs))
                for t, kind, sev, source, msg, attrs in meta["events"]
            )
            return cls(str(meta["agent"]), boot, seq, new, sids, ts, vals, events)
        except (struct.error, KeyError, TypeError) as exc:
            raise ValueError(f"not an ingest record: {exc}") from exc


def _pairs(items: list[list[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in items)
