"""Alert fingerprints: which labels make two signals the same alert."""

from __future__ import annotations

import functools
import hashlib

from hub.alerts.model import Labels

# Label sets seen recently: a storm repeats a few thousand of them, and hashing one again cost ten times
# the lookup.
_CACHED = 1 << 16


@functools.lru_cache(maxsize=_CACHED)
def fingerprint(labels: Labels, keys: tuple[str, ...] | None = None) -> str:
    """A stable 16-hex-digit hash of the chosen labels (all of them when `keys` is None).

    Only names and values enter the hash, separated by bytes that cannot occur in UTF-8 text, so
    `{a="b,c"}` and `{a="b", c=""}` never collide by construction.
    """
    chosen = labels if keys is None else tuple((k, v) for k, v in labels if k in keys)
    h = hashlib.sha256()
    for k, v in chosen:
        h.update(k.encode())
        h.update(b"\xff")
        h.update(v.encode())
        h.update(b"\xfe")
    return h.hexdigest()[:16]
