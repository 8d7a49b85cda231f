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

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

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
    PushedSeries,
)
from shared.model import Batch, Event, Heartbeat, SeriesPoints

ANOMALY_KINDS = {"anomaly.onset": "onset", "anomaly.end": "end"}
HEALTH_METRIC = "hw_health"  # 0 OK, 1 Warning, 2 Critical (agent/collect/redfish)
# A part of pushed points is filled to this estimate (plain string lengths), then measured once.
PART_BUDGET_BYTES = 40_000
# JSON bytes of one point at most: an int64 timestamp (20) and a float's repr (24), with separators.
POINT_BYTES = 46


@dataclass(slots=True)
class Published:
    messages: list[Message] = field(default_factory=list)
    # Items a message could not be built from (a field the bus refuses, e.g. an absurd label): counted.
    refused: int = 0


def messages(agent: str, batch_id: str, batch: Batch, pushed: bool = False) -> Published:
    """Every message `batch` (stored for `agent`) publishes, in order; one bad item never stops the rest.

    Args:
        pushed: the batch is points a source pushed, to be scored at the hub (`PointsPushed` parts).
    """
    out = Published()

    def add(build: Callable[[], Message | list[LimitCrossed]]) -> None:
        try:
            built = build()
        except MessageError:
            out.refused += 1
            return
        out.messages += built if isinstance(built, list) else [built]

    max_ts = max((int(s.timestamps_ms[-1]) for s in batch.series if len(s)), default=0)
    points = sum(len(s) for s in batch.series)
    add(lambda: BatchStored(f"batch:{agent}:{batch_id}", agent, batch_id, points, max(max_ts, 0)))
    for i, e in enumerate(batch.events):
        ident = f"{agent}:{batch_id}:{i}"
        phase = ANOMALY_KINDS.get(e.kind)
        add(partial(_anomaly, ident, agent, e, phase) if phase else partial(_event, ident, agent, e))
    if batch.heartbeat is not None:
        add(partial(_seen, f"seen:{agent}:{batch_id}", agent, batch.heartbeat))
    for j, s in enumerate(batch.series):
        if len(s) and (s.limits is not None or s.key.metric == HEALTH_METRIC):
            add(partial(_limits, f"limit:{agent}:{batch_id}:{j}", agent, s))
    if pushed:
        part = 0
        for series in _parts(batch.series):
            part = _add_parts(out, agent, batch_id, series, part)
    return out


def anomaly_message(ident: str, agent: str, e: Event) -> AnomalyReported | None:
    """The `AnomalyReported` of an `anomaly.onset`/`anomaly.end` event (None for other kinds): the one
    way an anomaly enters the hub, whether an agent's bank or the hub's (`hub.detect`) raised it.

    Raises:
        MessageError: a field the bus refuses.
    """
    phase = ANOMALY_KINDS.get(e.kind)
    return _anomaly(ident, agent, e, phase) if phase else None


def _parts(series: tuple[SeriesPoints, ...]) -> list[list[PushedSeries]]:
    """The batch's finite points as lists of series slices, each list estimated under PART_BUDGET_BYTES."""
    parts: list[list[PushedSeries]] = []
    current: list[PushedSeries] = []
    size = 0
    for s in series:
        ts, values = s.timestamps_ms.tolist(), s.values.tolist()
        if not all(map(math.isfinite, values)):  # NaN marks a missing point: nothing to score
            kept = [i for i, v in enumerate(values) if math.isfinite(v)]
            ts, values = [ts[i] for i in kept], [values[i] for i in kept]
        labels = s.key.labels
        head = 48 + len(s.key.metric) + sum(len(k) + len(v) + 6 for k, v in labels)
        start = 0
        while start < len(ts):
            room = (PART_BUDGET_BYTES - size - head) // POINT_BYTES
            if room < 1 and current:
                parts.append(current)
                current, size = [], 0
                continue
            end = start + max(room, 1)
            current.append(PushedSeries(s.key.metric, labels, tuple(ts[start:end]), tuple(values[start:end])))
            size += head + POINT_BYTES * (min(end, len(ts)) - start)
            start = end
    if current:
        parts.append(current)
    return parts


def _add_parts(out: Published, agent: str, batch_id: str, series: list[PushedSeries], part: int) -> int:
    """Adds the message of `series` as part `part`, measured once: one over the bus's limit (long or
    escaped labels) is split in halves; a single point that alone is too large is refused (counted).
    Returns the next free part number."""
    try:
        msg = PointsPushed.create(agent=agent, batch_id=batch_id, part=part, series=tuple(series))
    except MessageError:
        out.refused += 1
        return part
    if len(msg.to_bytes()) <= MAX_MESSAGE_BYTES:
        out.messages.append(msg)
        return part + 1
    if len(series) == 1:
        s = series[0]
        if len(s.ts_ms) == 1:
            out.refused += 1
            return part
        half = len(s.ts_ms) // 2
        series = [
            PushedSeries(s.metric, s.labels, s.ts_ms[:half], s.values[:half]),
            PushedSeries(s.metric, s.labels, s.ts_ms[half:], s.values[half:]),
        ]
    half = len(series) // 2
    part = _add_parts(out, agent, batch_id, series[:half], part)
    return _add_parts(out, agent, batch_id, series[half:], part)


def _anomaly(ident: str, agent: str, e: Event, phase: str) -> AnomalyReported:
    attrs = dict(e.attributes)
    try:
        labels = tuple(sorted(json.loads(attrs.get("labels", "{}")).items()))
    except (ValueError, AttributeError):
        labels = ()
    value = _float(attrs.get("value"))
    return AnomalyReported(
        id=f"anomaly:{ident}",
        agent=agent,
        device=dict(labels).get("device", ""),
        metric=attrs.get("metric", "") or "unknown",
        labels=labels,
        ts_ms=e.ts_ms,
        score=_float(attrs.get("score")) or 0.0,
        severity=e.severity.name.lower(),
        phase=phase,  # type: ignore[arg-type]
        value=value,
        detector=attrs.get("detector", "")[:64],
    )


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
