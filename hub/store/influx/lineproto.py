"""InfluxDB line protocol for Outpost series, and parsing of the series keys InfluxQL lists.

Mapping (what Grafana users see in InfluxDB):
    measurement = metric name (`ifHCInOctets_rate`)
    tags        = the series labels, including `agent` (the agent's certificate identity); labels with an
                  empty value are omitted, as line protocol has no empty tag values
    field       = `value` (float)
    timestamp   = the edge's sample time in milliseconds (`precision=ms`), so a replayed batch
                  overwrites the same points instead of adding new ones
Events are not written to InfluxDB (they live in the store's local ledger).
Non-finite values (NaN, ±Inf) cannot be expressed in line protocol and are skipped and counted.
"""

from __future__ import annotations

import numpy as np

from hub.store.base import AGENT_LABEL
from shared.model import Batch, SeriesKey

FIELD = "value"

# The escapes every InfluxDB version documents; names containing newlines are not supported.
_MEASUREMENT_ESCAPES = str.maketrans({",": "\\,", " ": "\\ "})
_TAG_ESCAPES = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_ESCAPED = frozenset(", =")


def series_prefix(key: SeriesKey) -> str:
    """`measurement,tag=v,... value=` for a key whose labels are sorted (tags must be sorted for speed)."""
    tags = "".join(f",{k.translate(_TAG_ESCAPES)}={v.translate(_TAG_ESCAPES)}" for k, v in key.labels if v)
    return f"{key.metric.translate(_MEASUREMENT_ESCAPES)}{tags} {FIELD}="


def encode_batch(agent: str, batch: Batch, lines_per_chunk: int) -> tuple[list[bytes], int, int]:
    """Encodes every point of a batch, with the agent label, as line protocol bodies.

    Returns:
        (bodies of at most `lines_per_chunk` lines each, points encoded, non-finite points skipped)
    """
    lines: list[str] = []
    skipped = 0
    for s in batch.series:
        labels = dict(s.key.labels)
        labels[AGENT_LABEL] = agent
        prefix = series_prefix(SeriesKey.of(s.key.metric, labels))
        finite = np.isfinite(s.values)
        ts, vals = s.timestamps_ms, s.values
        if not finite.all():
            skipped += int(finite.shape[0] - np.count_nonzero(finite))
            ts, vals = ts[finite], vals[finite]
        lines.extend([f"{prefix}{v!r} {t}" for t, v in zip(ts.tolist(), vals.tolist(), strict=True)])
    bodies = [
        "\n".join(lines[i : i + lines_per_chunk]).encode() for i in range(0, len(lines), lines_per_chunk)
    ]
    return bodies, len(lines), skipped


def parse_series_key(text: str) -> SeriesKey:
    """Parses `measurement,tag=value,...` as listed by `SHOW SERIES` (escapes undone).

    Raises:
        ValueError: when a tag has no `=`.
    """
    parts = _split_unescaped(text, ",")
    labels: dict[str, str] = {}
    for part in parts[1:]:
        kv = _split_unescaped(part, "=")
        if len(kv) != 2:
            raise ValueError(f"malformed series key {text!r}")
        labels[_unescape(kv[0])] = _unescape(kv[1])
    return SeriesKey.of(_unescape(parts[0]), labels)


def _split_unescaped(text: str, sep: str) -> list[str]:
    out, cur, i = [], [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if c == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPED:
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
