"""Decoded chunks of recent reads, keyed by their stored bytes, so dashboards that re-read the same
hours decode each chunk once.

Why keyed by the bytes: a flush that merges newer points into a block rewrites its row, and the new
bytes are a new key, so an entry is never stale and nothing needs invalidating. Hashing a raw block's
bytes for the lookup costs about a tenth of decoding them (zstd, delta and XOR passes).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import zstandard

from hub.store.embedded import chunk
from shared.model import F64Array, I64Array

Decoded = tuple[I64Array, list[F64Array]]

# Room for every raw block of a few thousand series' day (a raw block of 720 points is ~12 KB decoded).
DEFAULT_MAX_BYTES = 64 << 20


class DecodedChunks:
    """A byte-bounded LRU of decoded chunks; thread-safe (decoding runs outside its lock).

    The arrays handed out are shared by every reader, so they are read-only.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._max = max_bytes
        self._size = 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, tuple[Decoded, int]] = OrderedDict()

    def decode(self, data: bytes, dctx: zstandard.ZstdDecompressor) -> Decoded:
        """`chunk.decode(data, dctx)`, from the cache when these bytes were decoded before.

        Raises:
            chunk.ChunkError: when the bytes are not a valid chunk (never cached).
        """
        with self._lock:
            hit = self._entries.get(data)
            if hit is not None:
                self._entries.move_to_end(data)
                return hit[0]
        ts, cols = chunk.decode(data, dctx)
        for a in (ts, *cols):
            a.flags.writeable = False
        size = len(data) + ts.nbytes + sum(c.nbytes for c in cols)
        with self._lock:
            if data not in self._entries:
                self._entries[data] = ((ts, cols), size)
                self._size += size
            while self._size > self._max and self._entries:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._size -= dropped
        return ts, cols
