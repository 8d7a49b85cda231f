"""The detector bank: every series of an agent scored and learned in one vectorized step per poll.

Series are rows in per-rule groups (one rule = one detector setup); a key is mapped to its row once and
the mapping of a whole poll is cached, so a poll that repeats the previous poll's key list costs no
Python work per series. Anomaly onsets and their ends come out as events the runtime sends immediately;
the score reported per point is the raw score shaped by `refractory` (an event's echoes report 0), while
the gate and the events use the raw score.

An `anomaly.end` is emitted when a series with an open onset is back to normal (the gate's rule: a run
of normal points, see shared/detect/gate.py). It carries the attributes of the series' latest onset
(metric, labels, value, score, detector, reason) plus `onset_ms`, so the hub pairs it with that onset,
and its own time. Open onsets are kept per series (in the snapshot too), at most one per series, and
dropped with the series when it is forgotten, so an anomaly that never ends holds no growing state.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from shared.detect import snapshot
from shared.detect.config import DetectConfig
from shared.detect.gate import LIMIT_REASONS, Level, SeriesState
from shared.detect.group import Group
from shared.model import Event, Limits, SeriesKey, Severity

log = logging.getLogger(__name__)

EVENT_KIND = "anomaly.onset"
END_KIND = "anomaly.end"
# How often (in data time) stale series are looked for and long-gone ones freed.
SWEEP_MS = 60_000


@dataclass(frozen=True, slots=True, eq=False)
class Observation:
    """What one poll's scoring produced: a reported score per point and the anomaly onsets and ends it
    brought, in point order (an onset and an end never share a point)."""

    scores: npt.NDArray[np.float32]
    events: list[Event]


@dataclass(frozen=True, slots=True, eq=False)
class _Plan:
    """Where each key of a poll lives: per group, the poll positions and the group rows (aligned)."""

    keys: tuple[SeriesKey, ...]
    parts: tuple[tuple[int, npt.NDArray[np.intp], npt.NDArray[np.intp] | slice], ...]


class DetectorBank:
    """Scores every series of an agent; `observe` once per poll, `save`/`load` across restarts."""

    def __init__(self, config: DetectConfig) -> None:
        self.config = config
        self._groups = [Group(rule) for rule in [*config.rules, config.default]]
        self._rule_index = {id(rule): i for i, rule in enumerate([*config.rules, config.default])}
        self._group_of_metric: dict[str, int] = {}
        self._where: dict[SeriesKey, tuple[int, int]] = {}
        self._plan: _Plan | None = None
        # The latest onset of every series whose event is open, for its end's attributes.
        self._open: dict[SeriesKey, Event] = {}
        self._now_ms = 0
        self._next_sweep_ms = 0
        self._last_save_s: float | None = None
        # Counters for telemetry; each kind of bad input is also logged once.
        self.rejected_points = 0
        self.dropped_series = 0
        self._logged: set[str] = set()

    def __len__(self) -> int:
        return len(self._where)

    @property
    def row_nbytes(self) -> int:
        """State bytes per series under the default rule."""
        return self._groups[-1].row_nbytes

    def observe(
        self,
        keys: Sequence[SeriesKey],
        ts_ms: np.ndarray,
        values: np.ndarray,
        limits: Mapping[SeriesKey, Limits] | None = None,
    ) -> Observation:
        """Scores, judges and learns one point per key; NaN marks a missing point (scored 0, not learned).

        Args:
            keys: the series of this poll, each at most once. Passing the same tuple as the previous poll
                skips the key lookup entirely (a list is compared key by key).
            ts_ms: int64 timestamp per point.
            values: float value per point.
            limits: device limits of (some of) these series; remembered until replaced.
        """
        scores = np.zeros(len(keys), dtype=np.float32)
        columns = self._columns(scores.shape[0], ts_ms, values)
        if columns is None or not scores.shape[0]:
            return Observation(scores, [])
        ts, x = columns
        plan = self._plan_for(keys, int(ts.max()))
        if limits:
            self._set_limits(limits)
        finite = self._finite(x)
        events = self._step(plan.parts, keys.__getitem__, ts, x, finite, scores)
        self._now_ms = max(self._now_ms, int(ts.max()))
        if self._now_ms >= self._next_sweep_ms:
            self._sweep()
        return Observation(scores, events)

    def observe_rounds(
        self,
        keys: Sequence[SeriesKey],
        ts_ms: np.ndarray,
        values: np.ndarray,
        limits: Mapping[SeriesKey, Limits] | None = None,
    ) -> Observation:
        """`observe` for points where a series may appear several times (a backlog, a multi-tick source):
        the k-th point of every series goes into step k, in the order given; scores come back in point
        order. Each series' points must be in time order."""
        if len(set(keys)) == len(keys):
            return self.observe(keys, ts_ms, values, limits)
        ids: dict[SeriesKey, int] = {}
        index = np.fromiter(map(lambda k: ids.setdefault(k, len(ids)), keys), np.intp, len(keys))
        return self.observe_series(list(ids), index, ts_ms, values, limits)

    def observe_series(
        self,
        series: Sequence[SeriesKey],
        index: npt.NDArray[np.intp],
        ts_ms: np.ndarray,
        values: np.ndarray,
        limits: Mapping[SeriesKey, Limits] | None = None,
    ) -> Observation:
        """`observe_rounds` of points given by series number: `series` holds each key once and point i
        belongs to `series[index[i]]`. Each key is looked up once per call, not once per point (a push
        of thousands of series, several points each); stale series are swept after the last step.
        """
        scores = np.zeros(index.shape[0], dtype=np.float32)
        columns = self._columns(scores.shape[0], ts_ms, values)
        if columns is None or not scores.shape[0]:
            return Observation(scores, [])
        ts, x = columns
        present = np.bincount(index, minlength=len(series)) > 0
        if not present.all():  # a series without points is not added
            index = (np.cumsum(present) - 1)[index]
            series = [key for key, p in zip(series, present.tolist(), strict=True) if p]
        group_of, row_of = self._locate(series, int(ts.max()))
        point_group, point_row = group_of[index], row_of[index]
        self.dropped_series += int(np.count_nonzero(point_group < 0))  # per point, as `observe` counts
        if limits:
            self._set_limits(limits)
        finite = self._finite(x)
        ranks = _ranks(index)
        order = np.argsort(ranks, kind="stable")
        cuts = np.flatnonzero(np.diff(ranks[order])) + 1
        events: list[Event] = []
        for sel in np.split(order, cuts):
            groups = point_group[sel]
            parts = []
            for gi in np.flatnonzero(np.bincount(groups[groups >= 0])).tolist():
                pos = sel[groups == gi]
                parts.append((gi, pos, point_row[pos]))
            events += self._step(tuple(parts), lambda p: series[index[p]], ts, x, finite, scores)
        self._now_ms = max(self._now_ms, int(ts.max()))
        if self._now_ms >= self._next_sweep_ms:
            self._sweep()
        return Observation(scores, events)

    def _columns(
        self, m: int, ts_ms: np.ndarray, values: np.ndarray
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
        """The `m` points as int64 times and float values; None (rejected: counted, logged once) when
        either column has another shape."""
        ts, x = np.asarray(ts_ms, dtype=np.int64), np.asarray(values, dtype=np.float64)
        if ts.shape != (m,) or x.shape != (m,):
            self._reject(m, "shape", f"observe got {m} keys, {ts.shape} timestamps and {x.shape} values")
            return None
        return ts, x

    def _finite(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_] | None:
        """Which values are finite (None when all are); infinite ones are counted as rejected."""
        finite = np.isfinite(x)
        if bool(finite.all()):
            return None
        if n_inf := int(np.isinf(x).sum()):
            self._reject(n_inf, "inf", f"{n_inf} infinite values dropped (counted in rejected_points)")
        return finite

    def _step(
        self,
        parts: tuple[tuple[int, npt.NDArray[np.intp], npt.NDArray[np.intp] | slice], ...],
        key_at: Callable[[int], SeriesKey],
        ts: npt.NDArray[np.int64],
        x: npt.NDArray[np.float64],
        finite: npt.NDArray[np.bool_] | None,
        scores: npt.NDArray[np.float32],
    ) -> list[Event]:
        """One step of each group over its part of the points (positions `pos`, rows `rows`, at most one
        point per series): reported scores into `scores`, the onsets and ends it brought."""
        events: list[Event] = []
        for gi, pos, rows in parts:
            group = self._groups[gi]
            if finite is not None:  # missing points are neither scored nor learned
                sel = finite[pos]
                rows = np.arange(group.gate.columns.n)[rows][sel] if isinstance(rows, slice) else rows[sel]
                pos = pos[sel]
                if pos.shape[0] == 0:
                    continue
            raw, reported, verdict = group.step(rows, ts[pos], x[pos])
            scores[pos] = reported
            for j in np.flatnonzero(verdict.level).tolist():
                p = int(pos[j])
                level, limit = int(verdict.level[j]), int(verdict.limit_reason[j])
                key = key_at(p)
                onset = self._event(group, key, int(ts[p]), float(x[p]), float(raw[j]), level, limit)
                self._open[key] = onset
                events.append(onset)
            if verdict.end is not None:
                for j in np.flatnonzero(verdict.end).tolist():
                    p = int(pos[j])
                    events.append(self._end(group, key_at(p), int(ts[p]), float(x[p]), float(raw[j])))
        return events

    def last_seen_ms(self, keys: Sequence[SeriesKey]) -> npt.NDArray[np.int64]:
        """Time of each key's latest point (-1 for series the bank does not hold), so a caller fed out of
        order (pushed data) can drop points older than what was learned."""
        out = np.full(len(keys), -1, dtype=np.int64)
        for i, key in enumerate(keys):
            loc = self._where.get(key)
            if loc is not None:
                out[i] = self._groups[loc[0]].gate.columns.a["last_ts"][loc[1]]
        return out

    def states(self) -> dict[str, int]:
        """Number of series per lifecycle state (learning / active / stale)."""
        counts = np.zeros(len(SeriesState), dtype=np.int64)
        for group in self._groups:
            st = group.gate.states(self._now_ms, int(self.config.stale_after_s * 1000))
            counts += np.bincount(st, minlength=len(SeriesState))
        return {s.name.lower(): int(counts[s.value]) for s in SeriesState}

    def save(self, path: Path) -> None:
        """Snapshots all state atomically (temporary file + rename)."""
        header = {
            "now_ms": self._now_ms,
            "open": [_event_json(k, e) for k, e in self._open.items()],
            "groups": [
                {"rule": g.rule.model_dump(mode="json"), "keys": [[k.metric, list(k.labels)] for k in g.keys]}
                for g in self._groups
            ],
        }
        arrays = {
            f"g{gi}.{name}": arr for gi, g in enumerate(self._groups) for name, arr in g.export().items()
        }
        snapshot.write(path, header, arrays)

    def maybe_save(self, path: Path, monotonic_s: float) -> bool:
        """Saves if `snapshot_interval_s` passed since the last save (or there was none); returns whether."""
        if (
            self._last_save_s is not None
            and monotonic_s - self._last_save_s < self.config.snapshot_interval_s
        ):
            return False
        self.save(path)
        self._last_save_s = monotonic_s
        return True

    @classmethod
    def load(cls, path: Path, config: DetectConfig) -> DetectorBank:
        """A bank restored from `path`; a missing, corrupt or old-version file gives a fresh bank (one log).

        Series whose rule changed since the snapshot start learning again.
        """
        bank = cls(config)
        if not path.exists():  # a first start, or a new device: nothing to restore, nothing wrong
            log.info("no detector state at %s yet: series start learning", path.name)
            return bank
        try:
            header, arrays = snapshot.read(path)
            restored = bank._restore(header, arrays)
        except (snapshot.SnapshotError, ValueError, KeyError, TypeError) as e:
            log.warning("detector state not restored, starting fresh: %s", e)
            return cls(config)
        log.info(
            "detector state restored: %d series from %s (%d relearn: rule changed)",
            restored,
            path,
            _count_keys(header) - restored,
        )
        return bank

    def _restore(self, header: dict[str, object], arrays: dict[str, np.ndarray]) -> int:
        groups = header["groups"]
        if not isinstance(groups, list):
            raise ValueError("snapshot header has no group list")
        dumps = [g.rule.model_dump(mode="json") for g in self._groups]
        restored = 0
        for gi, saved in enumerate(groups):
            if saved["rule"] not in dumps:
                continue
            target = dumps.index(saved["rule"])
            keys = [
                SeriesKey(metric, tuple((str(k), str(v)) for k, v in labels))
                for metric, labels in saved["keys"]
            ]
            prefix = f"g{gi}."
            group = self._groups[target]
            group.restore(keys, {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)})
            # Rules may have been reordered: a series whose metric now matches another rule relearns.
            keep = [row for row, key in enumerate(keys) if self._group_index(key.metric) == target]
            if len(keep) < len(keys):
                group.take(np.asarray(keep, dtype=np.intp))
            for row, key in enumerate(group.keys):
                self._where[key] = (target, row)
            restored += len(group.keys)
        now = header.get("now_ms", 0)
        self._now_ms = int(now) if isinstance(now, int) else 0
        saved_open = header.get("open", [])  # absent in snapshots from before anomaly ends
        for item in saved_open if isinstance(saved_open, list) else []:
            key, onset = _event_of_json(item)
            if key in self._where:  # a series that relearns (rule changed) has no open event
                self._open[key] = onset
        self._next_sweep_ms = self._now_ms + SWEEP_MS
        return restored

    def _plan_for(self, keys: Sequence[SeriesKey], now_ms: int) -> _Plan:
        """The cached plan when the poll repeats the previous key list, else a new one (new series added)."""
        plan = self._plan
        if plan is not None and (
            keys is plan.keys or (len(keys) == len(plan.keys) and tuple(keys) == plan.keys)
        ):
            return plan
        first: list[int] = []
        seen: set[SeriesKey] = set()
        for i, key in enumerate(keys):
            if key in seen:
                self._reject(1, "duplicate", f"series {key} appeared twice in one poll; extra points dropped")
                continue
            seen.add(key)
            first.append(i)
        distinct = keys if len(first) == len(keys) else [keys[i] for i in first]
        group_of, row_of = self._locate(distinct, now_ms)
        self.dropped_series += int(np.count_nonzero(group_of < 0))
        positions = np.asarray(first, dtype=np.intp)
        parts = []
        for gi in np.unique(group_of[group_of >= 0]).tolist():
            mine = group_of == gi
            p, r = positions[mine], row_of[mine]
            n = self._groups[gi].gate.columns.n
            contiguous = r.shape[0] == n and bool(np.array_equal(r, np.arange(n)))
            parts.append((gi, p, slice(0, n) if contiguous else r))
        self._plan = _Plan(tuple(keys), tuple(parts))
        return self._plan

    def _locate(
        self, keys: Sequence[SeriesKey], now_ms: int
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """The group and row of each of `keys` (distinct), adding new series while `max_series` leaves
        room (-1 for those left out, logged once; callers count them)."""
        found = [self._where.get(key) for key in keys]
        group_of = np.fromiter((-1 if loc is None else loc[0] for loc in found), np.intp, len(keys))
        row_of = np.fromiter((-1 if loc is None else loc[1] for loc in found), np.intp, len(keys))
        new: dict[int, list[int]] = {}
        for i in np.flatnonzero(group_of < 0).tolist():
            new.setdefault(self._group_index(keys[i].metric), []).append(i)
        room = self.config.max_series - len(self._where)
        for gi, items in new.items():
            if len(items) > room:
                self._log_once(
                    "max_series", f"max_series={self.config.max_series} reached; new series dropped"
                )
                items = items[: max(room, 0)]
            room -= len(items)
            if not items:
                continue
            added = self._groups[gi].add([keys[i] for i in items])
            # Seen now even if its first value is missing, so the next sweep does not forget it at once.
            self._groups[gi].gate.columns.a["last_ts"][added] = now_ms
            for i, row in zip(items, added.tolist(), strict=True):
                self._where[keys[i]] = (gi, row)
            group_of[items], row_of[items] = gi, added
        return group_of, row_of

    def _group_index(self, metric: str) -> int:
        gi = self._group_of_metric.get(metric)
        if gi is None:
            gi = self._rule_index[id(self.config.rule_for(metric))]
            self._group_of_metric[metric] = gi
        return gi

    def _set_limits(self, limits: Mapping[SeriesKey, Limits]) -> None:
        for key, lim in limits.items():
            loc = self._where.get(key)
            if loc is not None:
                self._groups[loc[0]].gate.set_limits(loc[1], lim)

    def _sweep(self) -> None:
        """Frees rows of series unseen for `forget_after_s`; their keys start learning if they return."""
        self._next_sweep_ms = self._now_ms + SWEEP_MS
        cutoff = self._now_ms - int(self.config.forget_after_s * 1000)
        forgotten = 0
        for gi, group in enumerate(self._groups):
            cols = group.gate.columns
            gone = cols.a["last_ts"][: cols.n] < cutoff
            if not gone.any():
                continue
            for key in (group.keys[i] for i in np.flatnonzero(gone).tolist()):
                del self._where[key]
                self._open.pop(key, None)
            group.take(np.flatnonzero(~gone))
            for row, key in enumerate(group.keys):
                self._where[key] = (gi, row)
            forgotten += int(gone.sum())
        if forgotten:
            self._plan = None
            log.info("forgot %d series unseen for %.0fs", forgotten, self.config.forget_after_s)

    def _event(
        self, group: Group, key: SeriesKey, ts_ms: int, value: float, score: float, level: int, limit: int
    ) -> Event:
        reason = LIMIT_REASONS[limit] if limit >= 0 else "score"
        severity = Severity.CRITICAL if level == Level.CRITICAL else Severity.WARNING
        return Event.of(
            ts_ms,
            EVENT_KIND,
            severity,
            str(key),
            f"{key.metric} anomalous: {reason}, value {value:.6g}, score {score:.3f}",
            {
                "metric": key.metric,
                "labels": json.dumps(dict(key.labels), sort_keys=True),
                "value": repr(value),
                "score": f"{score:.4f}",
                "detector": group.label,
                "reason": reason,
            },
        )

    def _end(self, group: Group, key: SeriesKey, ts_ms: int, value: float, score: float) -> Event:
        """The end of `key`'s open event: its onset's attributes, this point's time."""
        onset = self._open.pop(key, None)
        if onset is None:  # the gate restored an open event whose onset was not saved: describe this point
            onset = self._event(group, key, ts_ms, value, score, Level.WARNING, -1)
        attrs = dict(onset.attributes)
        attrs["onset_ms"] = str(onset.ts_ms)
        took = (ts_ms - onset.ts_ms) / 1000
        return Event.of(
            ts_ms,
            END_KIND,
            onset.severity,
            onset.source,
            f"{key.metric} back to normal after {took:.0f}s: value {value:.6g}, score {score:.3f}",
            attrs,
        )

    def _reject(self, count: int, kind: str, message: str) -> None:
        self.rejected_points += count
        self._log_once(kind, message)

    def _log_once(self, kind: str, message: str) -> None:
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("%s", message)


def _event_json(key: SeriesKey, e: Event) -> list[object]:
    labels = [list(kv) for kv in key.labels]
    return [key.metric, labels, e.ts_ms, e.severity.value, e.message, [list(kv) for kv in e.attributes]]


def _event_of_json(item: list[object]) -> tuple[SeriesKey, Event]:
    """Inverse of `_event_json`.

    Raises:
        ValueError, KeyError, TypeError: the item is not what `_event_json` writes (the caller starts fresh).
    """
    metric, labels, ts_ms, severity, message, attrs = item
    if not (isinstance(labels, list) and isinstance(attrs, list) and isinstance(ts_ms, int)):
        raise ValueError("open onset in snapshot is malformed")
    key = SeriesKey(str(metric), tuple((str(k), str(v)) for k, v in labels))
    pairs = tuple((str(k), str(v)) for k, v in attrs)
    return key, Event(ts_ms, EVENT_KIND, Severity(severity), str(key), str(message), pairs)


def _count_keys(header: dict[str, object]) -> int:
    groups = header.get("groups")
    return sum(len(g["keys"]) for g in groups) if isinstance(groups, list) else 0


def _ranks(index: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """Each point's place among the points of its series (0 for the first given), vectorized."""
    order = np.argsort(index, kind="stable")
    owners = index[order]
    first = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
    ranks = np.empty_like(index)
    ranks[order] = np.arange(index.shape[0]) - np.repeat(first, np.diff(np.r_[first, index.shape[0]]))
    return ranks
