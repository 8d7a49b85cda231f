"""What a stored batch tells the rest of the hub: the bus messages published after its durable write.

Ids come from the batch's place in the agent's stream (`<agent>:<batch id>:<index>`), so a batch
re-sent after a lost ack publishes the same ids again and every consumer skips what it has seen.

- every batch: `BatchStored`;
- `anomaly.onset` / `anomaly.end` events: `AnomalyReported`; other events: `DeviceEvent`;
- a heartbeat: `AgentSeen`;
- a pushed batch (`pushed=True`: line protocol, remote write, metric webhooks): its points in
  `PointsPushed` parts, for the hub's detector bank (`hub.detect`); agents score their own series;
- series that carry device limits, and Redfish health gauges: one `LimitCrossed` per series and
  direction with its current state (the last point of the batch), `onset` beyond a limit, `end` inside
  it. Stateless on purpose: any worker can publish it, the alert engine deduplicates.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import numpy as np

from hub.bus.errors import MessageError
from hub.bus.messages import (
    MAX_MESSAGE_BYTES,
    AgentSeen,
    AnomalyReported,
    BatchStored,
    DeviceEvent,
    LimitCrossed,
    Message,
    PointsPushed,
)
from hub.store.base import SeriesColumns
from shared.model import Batch, Event, Heartbeat, SeriesKey, SeriesPoints

ANOMALY_KINDS = {"anomaly.onset": "onset", "anomaly.end": "end"}
HEALTH_METRIC = "hw_health"  # 0 OK, 1 Warning, 2 Critical (agent/collect/redfish)
# A part of pushed points is filled to this estimate (plain string lengths), then bounded exactly.
PART_BUDGET_BYTES = 48_000
# JSON bytes of one point at most: an int64 timestamp (20) and a float's repr (24), with separators.
POINT_BYTES = 46
# Points of one series in one part at most: a long series spans several parts.
SLICE_POINTS = 512
# Series whose keys estimate the key size of a pushed batch.
KEY_SAMPLE = 64
# JSON texts of pushed keys, by key object: receivers hand over the same SeriesKey objects for a series
# push after push (the line-protocol parser caches them), so a key is encoded once, not once a part.
# A text is filed under its key's id() only while `_held_keys` keeps that key alive, so no other object
# can have that id meanwhile and a lookup is one C-level dict get (entries are added and the cache is
# emptied under `_texts_lock`, in an order that never leaves an entry without its key held).
MAX_KEY_TEXTS = 50_000
_key_texts: dict[int, str] = {}
_held_keys: list[SeriesKey] = []
_texts_lock = threading.Lock()


@dataclass(slots=True)
class Published:
    messages: list[Message] = field(default_factory=list)
    # Items a message could not be built from (a field the bus refuses, e.g. an absurd label): counted.
    refused: int = 0


def messages(
    agent: str, batch_id: str, batch: Batch, pushed: bool = False, columns: SeriesColumns | None = None
) -> Published:
    """Every message `batch` (stored for `agent`) publishes, in order; one bad item never stops the rest.

    Args:
        pushed: the batch is points a source pushed, to be scored at the hub (`PointsPushed` parts).
        columns: the batch's points when a receiver gave them as columns (then `batch.series` is empty).
    """
    out = Published()

    def add(build: Callable[[], Message | list[LimitCrossed]]) -> None:
        try:
            built = build()
        except MessageError:
            out.refused += 1
            return
        out.messages += built if isinstance(built, list) else [built]

    if columns is None:
        max_ts = max((int(s.timestamps_ms[-1]) for s in batch.series if len(s)), default=0)
        points = sum(len(s) for s in batch.series)
    else:
        max_ts, points = int(columns.timestamps_ms.max(initial=0)), len(columns)
    add(lambda: BatchStored(f"batch:{agent}:{batch_id}", agent, batch_id, points, max(max_ts, 0)))
    for i, e in enumerate(batch.events):
        ident = f"{agent}:{batch_id}:{i}"
        phase = ANOMALY_KINDS.get(e.kind)
        add(partial(_anomaly, ident, agent, e, phase) if phase else partial(_event, ident, agent, e))
    if batch.heartbeat is not None:
        add(partial(_seen, f"seen:{agent}:{batch_id}", agent, batch.heartbeat))
    for j, s in _limited(batch.series) if columns is None else _health(columns):
        add(partial(_limits, f"limit:{agent}:{batch_id}:{j}", agent, s))
    if pushed:
        _pushed_parts(
            out, agent, batch_id, SeriesColumns.of_series(batch.series) if columns is None else columns
        )
    return out


def _limited(series: tuple[SeriesPoints, ...]) -> list[tuple[int, SeriesPoints]]:
    """The series (with their index) whose state against limits is published."""
    return [
        (j, s)
        for j, s in enumerate(series)
        if len(s) and (s.limits is not None or s.key.metric == HEALTH_METRIC)
    ]


def _health(columns: SeriesColumns) -> list[tuple[int, SeriesPoints]]:
    """`_limited` of columns: pushed series carry no device limits, so only health gauges (by name)."""
    out = []
    for j, key in enumerate(columns.keys):
        if key.metric == HEALTH_METRIC:
            a, b = int(columns.offsets[j]), int(columns.offsets[j + 1])
            if b > a:
                out.append((j, SeriesPoints(key, columns.timestamps_ms[a:b], columns.values[a:b])))
    return out


def anomaly_message(agent: str, e: Event) -> AnomalyReported | None:
    """The `AnomalyReported` of an `anomaly.onset`/`anomaly.end` event the hub's own bank raised
    (`hub.detect`), None for other kinds: the fields an agent's event gets, and the id derived from them
    (the series, time and phase), since the event has no batch of its own.

    Raises:
        MessageError: a field the bus refuses (or an id past its length limit).
    """
    phase = ANOMALY_KINDS.get(e.kind)
    return AnomalyReported.create(**_anomaly_fields(agent, e, phase)) if phase else None


def _pushed_parts(out: Published, agent: str, batch_id: str, columns: SeriesColumns) -> None:
    """Adds the batch's finite points as `PointsPushed` parts, column-wise: numpy over the points and the
    series, one JSON text of keys per part, no Python step per point."""
    if not columns.keys:
        return
    counts, ts, values = columns.counts, columns.timestamps_ms, columns.values
    n_series = len(columns.keys)
    finite = np.isfinite(values)
    if not finite.all():  # NaN marks a missing point: nothing to score
        owner = np.repeat(np.arange(n_series), counts)
        counts = np.bincount(owner[finite], minlength=n_series)
        ts, values = ts[finite], values[finite]
    keys = _Keys(columns.keys, _texts_of(columns.keys))
    # Slices of at most SLICE_POINTS points (a long series spans parts), in point order.
    per = -(-counts // SLICE_POINTS)
    sid = np.repeat(np.arange(n_series), per)
    k = np.arange(sid.shape[0]) - np.repeat(np.cumsum(per) - per, per)
    starts = np.cumsum(counts) - counts
    first = starts[sid] + k * SLICE_POINTS
    end = np.minimum(first + SLICE_POINTS, starts[sid] + counts[sid])
    # Parts filled to PART_BUDGET_BYTES at the key size of the batch's first series; _add_part bounds
    # each part from its key text (a batch of much longer keys further on splits there).
    sample = keys.texts[:KEY_SAMPLE]
    key_bytes = 2 * len(", ".join(sample).encode()) / len(sample)
    cost = key_bytes + 21 + POINT_BYTES * (end - first)
    which = ((np.cumsum(cost) - cost) // PART_BUDGET_BYTES).astype(np.int64)
    bounds = np.flatnonzero(np.r_[True, which[1:] != which[:-1], True]).tolist()
    part = 0
    for a, b in itertools.pairwise(bounds):
        part = _add_part(out, agent, batch_id, part, keys, (sid[a:b], first[a:b], end[a:b]), ts, values)


def _add_part(
    out: Published,
    agent: str,
    batch_id: str,
    part: int,
    keys: _Keys,
    slices: tuple[np.ndarray, np.ndarray, np.ndarray],
    ts: np.ndarray,
    values: np.ndarray,
) -> int:
    """Adds the message of `slices` (series index, first and end point) as part `part` and returns the
    next part number. Its size is bounded from its exact key text: a part over the bus's limit (long or
    escaped labels) is split in halves; a single point too large alone is refused (counted)."""
    sid, first, end = slices
    order = sid.tolist()
    mine = tuple(map(keys.keys.__getitem__, order))
    text = "[" + ", ".join(map(keys.texts.__getitem__, order)) + "]"  # json.dumps of the keys' list
    lo, hi = int(first[0]), int(end[-1])  # a part's slices are contiguous in point order
    # The key text as the message's JSON holds it (escaped once more: each byte at most doubles), the id
    # (quoted: up to 3 bytes a character) and agent fields, a count per slice, the points at their widest.
    quoted = 2 * len(text.encode()) + 2
    bound = 128 + 4 * (len(agent) + len(batch_id)) + quoted + 21 * sid.shape[0] + POINT_BYTES * (hi - lo)
    if bound > MAX_MESSAGE_BYTES:
        if hi - lo == 1:
            out.refused += 1
            return part
        if sid.shape[0] == 1:
            mid = (lo + hi) // 2
            sid, first, end = np.r_[sid, sid], np.r_[lo, mid], np.r_[mid, hi]
        half = sid.shape[0] // 2
        part = _add_part(out, agent, batch_id, part, keys, (sid[:half], first[:half], end[:half]), ts, values)
        return _add_part(out, agent, batch_id, part, keys, (sid[half:], first[half:], end[half:]), ts, values)
    try:
        msg = PointsPushed.create(
            agent=agent,
            batch_id=batch_id,
            part=part,
            series=text,
            counts=end - first,
            ts_ms=ts[lo:hi],
            values=values[lo:hi],
            keys=mine,
        )
    except MessageError:
        out.refused += 1
        return part
    out.messages.append(msg)
    return part + 1


@dataclass(frozen=True, slots=True)
class _Keys:
    """A pushed batch's series keys and the JSON text of each, `[metric, [[label, value], ...]]`."""

    keys: tuple[SeriesKey, ...]
    texts: list[str]


def _texts_of(keys: tuple[SeriesKey, ...]) -> list[str]:
    """The JSON text of each key, from the cache (thread-safe: the caller holds `keys`, so their ids
    are theirs while it runs)."""
    texts = list(map(_key_texts.get, map(id, keys)))
    if None in texts:
        with _texts_lock:
            if len(_key_texts) + len(keys) > MAX_KEY_TEXTS:
                _key_texts.clear()  # before the keys are let go: an entry never outlives its key
                _held_keys.clear()
            for i, key in enumerate(keys):
                if texts[i] is None:
                    text = _key_texts.get(id(key))  # another thread may have added it meanwhile
                    if text is None:
                        _held_keys.append(key)
                        text = _key_texts[id(key)] = json.dumps((key.metric, key.labels), ensure_ascii=False)
                    texts[i] = text
    return cast(list[str], texts)  # every None was filled


def _anomaly(ident: str, agent: str, e: Event, phase: str) -> AnomalyReported:
    return AnomalyReported(id=f"anomaly:{ident}", **_anomaly_fields(agent, e, phase))


def _anomaly_fields(agent: str, e: Event, phase: str) -> dict[str, Any]:
    attrs = dict(e.attributes)
    try:
        labels = tuple(sorted(json.loads(attrs.get("labels", "{}")).items()))
    except (ValueError, AttributeError):
        labels = ()
    return {
        "agent": agent,
        "device": dict(labels).get("device", ""),
        "metric": attrs.get("metric", "") or "unknown",
        "labels": labels,
        "ts_ms": e.ts_ms,
        "score": _float(attrs.get("score")) or 0.0,
        "severity": e.severity.name.lower(),
        "phase": phase,
        "value": _float(attrs.get("value")),
        "detector": attrs.get("detector", "")[:64],
    }


def _event(ident: str, agent: str, e: Event) -> DeviceEvent:
    return DeviceEvent(
        id=f"event:{ident}",
        agent=agent,
        device=e.source,
        kind=e.kind,
        severity=e.severity.name.lower(),
        source=e.source,
        message=e.message[:1000],
        attributes=tuple(sorted((k, v[:256]) for k, v in e.attributes)[:64]),
        ts_ms=e.ts_ms,
    )


def _seen(ident: str, agent: str, hb: Heartbeat) -> AgentSeen:
    return AgentSeen(
        id=ident,
        agent=agent,
        ts_ms=hb.ts_ms,
        heartbeat_s=hb.interval_ms / 1000,
        version=hb.agent_version[:64],
        spool_depth=hb.spool_records,
        cert_expiry_ms=hb.cert_not_after_ms,
        targets_up=tuple(t.name for t in hb.targets if t.up),
        targets_down=tuple(t.name for t in hb.targets if not t.up),
    )


def _limits(ident: str, agent: str, s: SeriesPoints) -> list[LimitCrossed]:
    """The series' state against its limits at its last point: one message per direction it has."""
    value = float(s.values[-1])
    if not math.isfinite(value):
        return []
    ts = int(s.timestamps_ms[-1])
    device = s.key.label("device")

    def msg(direction: str, name: str, limit: float, crossed: bool) -> LimitCrossed:
        return LimitCrossed(
            id=f"{ident}:{direction}",
            agent=agent,
            device=device,
            metric=s.key.metric,
            labels=s.key.labels,
            ts_ms=ts,
            value=value,
            limit_name=name,
            limit_value=limit,
            phase="onset" if crossed else "end",
        )

    if s.key.metric == HEALTH_METRIC:
        name = "health_critical" if value >= 2 else "health_warning"
        return [msg("health", name, 2.0 if value >= 2 else 1.0, value >= 1)]
    lim = s.limits
    assert lim is not None
    out = []
    highs = [(n, v) for n, v in (("crit_high", lim.crit_high), ("warn_high", lim.warn_high)) if v is not None]
    if highs:
        hit = next(((n, v) for n, v in highs if value > v), None)
        name, limit = hit or highs[-1]
        out.append(msg("high", name, limit, hit is not None))
    lows = [(n, v) for n, v in (("crit_low", lim.crit_low), ("warn_low", lim.warn_low)) if v is not None]
    if lows:
        hit = next(((n, v) for n, v in lows if value < v), None)
        name, limit = hit or lows[-1]
        out.append(msg("low", name, limit, hit is not None))
    return out


def _float(text: str | None) -> float | None:
    try:
        v = float(text) if text is not None else None
    except ValueError:
        return None
    return v if v is not None and math.isfinite(v) else None
