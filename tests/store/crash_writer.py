"""Ingests into an embedded store forever, printing `acked <seq>` after each write returns.

Run by the crash test, which SIGKILLs it mid-ingest. A small head forces flushes (and journal resets)
during the run, so the kill can land in any phase: journal append, head update, flush, reset.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from hub.store.config import EmbeddedStoreConfig
from hub.store.factory import build_store
from shared.model import Batch, SeriesKey, SeriesPoints

SERIES = 5
POINTS = 40
T0 = 1_789_999_200_000


def batch(seq: int) -> Batch:
    """Batch `seq` holds points seq*POINTS .. seq*POINTS+POINTS-1 of each series; value = point index."""
    idx = np.arange(seq * POINTS, (seq + 1) * POINTS, dtype=np.int64)
    series = tuple(
        SeriesPoints(SeriesKey.of("load", {"core": str(c)}), T0 + idx * 10_000, idx.astype(np.float64) + c)
        for c in range(SERIES)
    )
    return Batch(1, seq, series)


def main() -> None:
    store = build_store(EmbeddedStoreConfig(head_max_points=SERIES * POINTS * 7), Path(sys.argv[1]))
    store.open()
    seq = 0
    while True:
        store.write("edge-crash", batch(seq))
        print(f"acked {seq}", flush=True)
        seq += 1


if __name__ == "__main__":
    main()
