"""Field mappings of generic webhook sources: JMESPath expressions from a JSON payload to the hub's alert
signals or metric points, and the built-in presets (Alertmanager, Grafana).

A mapping is compiled once when its source is saved (`compile_mapping`, which names the bad field) and
applied to each delivery (`alerts_of`, `points_of`). `items` selects the list of things in a payload
(Alertmanager's `alerts`); every other expression is evaluated on one item. Whatever a payload holds,
applying never raises past `PayloadError`, and every result is bounded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import jmespath
import numpy as np
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from hub.alerts.model import SEVERITIES, Signal, labels_of
from shared.model import SeriesKey, SeriesPoints

MAX_EXPRESSION = 512
MAX_ITEMS = 1000
MAX_LABELS = 64
MAX_LABEL_NAME = 128
MAX_LABEL_VALUE = 1024
MAX_TEXT = 1000
MAX_FINGERPRINT = 200
MAX_METRIC = 256
MAX_RESOLVED_VALUES = 16
# The label every alert of a source carries and the prefix of its fingerprints, so one source can
# never fire, resolve or collide with another source's alerts.
SOURCE_LABEL = "webhook_source"
# Epoch numbers above this are milliseconds, below it seconds (1e11 s is the year 5138).
MS_THRESHOLD = 1e11
MAX_TS_MS = 9_000_000_000_000  # the year 2255: far enough, and well inside int64 nanoseconds
# Other tools' words for severities -> the hub's.
SEVERITY_WORDS = {
    "critical": "critical",
    "crit": "critical",
    "fatal": "critical",
    "error": "critical",
    "high": "critical",
    "page": "critical",
    "emergency": "critical",
    "alert": "critical",
    "warning": "warning",
    "warn": "warning",
    "medium": "warning",
    "major": "warning",
    "minor": "warning",
    "info": "info",
    "low": "info",
    "notice": "info",
    "debug": "info",
    "none": "info",
}


class Kind(StrEnum):
    """What a source's deliveries become."""

    ALERTS = "alerts"
    METRICS = "metrics"


# The fields a mapping of each kind may set. `items` is evaluated on the payload, the rest on an item.
ALERT_FIELDS = (
    "items",
    "title",
    "severity",
    "status",
    "fingerprint",
    "labels",
    "description",
    "starts_at",
    "ends_at",
)
METRIC_FIELDS = ("items", "metric", "value", "timestamp", "labels")
FIELDS = {Kind.ALERTS: ALERT_FIELDS, Kind.METRICS: METRIC_FIELDS}
REQUIRED = {Kind.ALERTS: ("title",), Kind.METRICS: ("metric", "value")}
DEFAULT_RESOLVED = ("resolved", "ok", "inactive", "normal")

# Alertmanager's webhook (payload version 4) and Grafana unified alerting's webhook both carry one entry
# per alert in `alerts[]` with status, fingerprint, labels, annotations and RFC 3339 startsAt/endsAt;
# Grafana adds `valueString` (the values that fired the rule).
PRESETS: dict[str, dict[str, str]] = {
    "alertmanager": {
        "items": "alerts",
        "title": "annotations.summary || labels.alertname",
        "severity": "labels.severity",
        "status": "status",
        "fingerprint": "fingerprint",
        "labels": "labels",
        "description": "annotations.description",
        "starts_at": "startsAt",
        "ends_at": "endsAt",
    },
    "grafana": {
        "items": "alerts",
        "title": "annotations.summary || labels.alertname",
        "severity": "labels.severity",
        "status": "status",
        "fingerprint": "fingerprint",
        "labels": "labels",
        "description": "annotations.description || valueString",
        "starts_at": "startsAt",
        "ends_at": "endsAt",
    },
}


class MappingError(ValueError):
    """Raised when a mapping is saved with a bad expression, field or preset; `path` names it
    (`mapping.fields.title`)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.message = path, message


class PayloadError(ValueError):
    """Raised for a delivery that is not JSON, or from which the mapping produced nothing valid."""


@dataclass(frozen=True, slots=True)
class CompiledMapping:
    """A source's validated mapping (its preset's expressions overlaid with its own)."""

    kind: Kind
    expressions: Mapping[str, ParsedResult]
    resolved_values: frozenset[str]


def compile_mapping(
    kind: Kind, preset: str | None, fields: Mapping[str, str], resolved_values: tuple[str, ...] | None = None
) -> CompiledMapping:
    """Compiles a source's mapping.

    Raises:
        MappingError: an unknown preset or field, an expression too long or not JMESPath, or a field
            the kind needs (alerts: title; metrics: metric and value) that neither sets.
    """
    if preset is not None:
        if preset not in PRESETS:
            raise MappingError("preset", f"unknown preset {preset[:32]!r} (known: {', '.join(PRESETS)})")
        if kind is not Kind.ALERTS:
            raise MappingError("preset", "presets map alerts; a metrics source needs its own mapping")
    merged = {**(PRESETS[preset] if preset else {}), **fields}
    compiled: dict[str, ParsedResult] = {}
    for name, expression in merged.items():
        path = f"mapping.fields.{name[:64]}"
        if name not in FIELDS[kind]:
            raise MappingError(path, f"not a field of a {kind.value} mapping ({', '.join(FIELDS[kind])})")
        if not 0 < len(expression) <= MAX_EXPRESSION:
            raise MappingError(path, f"an expression has 1 to {MAX_EXPRESSION} characters")
        try:
            compiled[name] = jmespath.compile(expression)
        except (JMESPathError, RecursionError, ValueError) as exc:
            raise MappingError(path, f"not a JMESPath expression: {str(exc)[:200]}") from None
    for name in REQUIRED[kind]:
        if name not in compiled:
            raise MappingError(f"mapping.fields.{name}", "required (set it or pick a preset)")
    words = resolved_values if resolved_values is not None else DEFAULT_RESOLVED
    return CompiledMapping(kind, compiled, frozenset(w.lower() for w in words[:MAX_RESOLVED_VALUES]))


def load(body: bytes) -> Any:
    """The delivery's JSON document.

    Raises:
        PayloadError: not UTF-8 JSON, or nested too deep.
    """
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise PayloadError("body is not JSON") from None


def alerts_of(mapping: CompiledMapping, source_id: str, doc: Any, now_ms: int) -> list[Signal]:
    """The alert signals a payload means; items the mapping makes no title of are skipped.

    Raises:
        PayloadError: no item gave a valid alert.
    """
    signals = []
    for item in _items(mapping, doc):
        title = _text(_search(mapping, "title", item), MAX_TEXT)
        if not title:
            continue
        labels = _labels(_search(mapping, "labels", item))
        labels.setdefault("alertname", title[:MAX_LABEL_VALUE])
        labels[SOURCE_LABEL] = source_id
        status = _search(mapping, "status", item)
        firing = not _resolved(status, mapping.resolved_values)
        at = _search(mapping, "starts_at" if firing else "ends_at", item)
        ts_ms = min(_ts_ms(at) or now_ms, now_ms)
        own = _text(_search(mapping, "fingerprint", item), MAX_FINGERPRINT)
        annotations = {
            "summary": title,
            "description": _text(_search(mapping, "description", item), MAX_TEXT),
        }
        signals.append(
            Signal(
                labels_of(labels),
                firing,
                ts_ms,
                severity=_severity(_search(mapping, "severity", item)),
                annotations=labels_of(annotations),
                source=f"webhook:{source_id}",
                fingerprint=f"generic:{source_id}:{own}" if own else None,
            )
        )
    if not signals:
        raise PayloadError("the mapping produced no alert (no item has a title)")
    return signals


def points_of(mapping: CompiledMapping, doc: Any, now_ms: int) -> tuple[SeriesPoints, ...]:
    """The metric points a payload holds, one series per metric and label set (a repeated timestamp
    keeps the last value); items without a metric name or a finite value are skipped.

    Raises:
        PayloadError: no item gave a valid point.
    """
    by_key: dict[SeriesKey, dict[int, float]] = {}
    for item in _items(mapping, doc):
        metric = _search(mapping, "metric", item)
        value = _number(_search(mapping, "value", item))
        if not isinstance(metric, str) or not 0 < len(metric) <= MAX_METRIC or value is None:
            continue
        labels = _labels(_search(mapping, "labels", item))
        labels.pop("agent", None)  # the store sets it from the source: nobody writes another's series
        ts_ms = _ts_ms(_search(mapping, "timestamp", item)) if "timestamp" in mapping.expressions else None
        by_key.setdefault(SeriesKey.of(metric, labels), {})[ts_ms or now_ms] = value
    if not by_key:
        raise PayloadError("the mapping produced no point (no item has a metric name and a number)")
    series = []
    for key, points in by_key.items():
        stamps = sorted(points)
        series.append(
            SeriesPoints(
                key,
                np.array(stamps, dtype=np.int64),
                np.array([points[t] for t in stamps], dtype=np.float64),
            )
        )
    return tuple(series)


def _items(mapping: CompiledMapping, doc: Any) -> list[Any]:
    if "items" not in mapping.expressions:
        return [doc]
    found = _search(mapping, "items", doc)
    if not isinstance(found, list):
        raise PayloadError("the mapping's items expression gave no list")
    return found[:MAX_ITEMS]


def _search(mapping: CompiledMapping, name: str, item: Any) -> Any:
    """An expression's result; None for a field the mapping leaves unset or an expression that fails on
    this payload (a function given the wrong type)."""
    expression = mapping.expressions.get(name)
    if expression is None:
        return None
    try:
        return expression.search(item)
    except (JMESPathError, RecursionError, TypeError, ValueError):
        return None


def _text(value: Any, limit: int) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)[:limit]
    return ""


def _labels(value: Any) -> dict[str, str]:
    """A mapping's labels: string keys and scalar values only, bounded in count and length."""
    if not isinstance(value, dict):
        return {}
    labels = {}
    for name, raw in value.items():
        text = _text(raw, MAX_LABEL_VALUE)
        if isinstance(name, str) and 0 < len(name) <= MAX_LABEL_NAME and text:
            labels[name] = text
            if len(labels) == MAX_LABELS:
                break
    return labels


def _resolved(status: Any, words: frozenset[str]) -> bool:
    if isinstance(status, bool):
        return not status  # a boolean status says whether the alert is active
    return isinstance(status, str) and status.strip().lower() in words


def _severity(value: Any) -> str:
    word = _text(value, 32).strip().lower()
    return word if word in SEVERITIES else SEVERITY_WORDS.get(word, "warning")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            value = float(value.strip()[:64])
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value) and abs(value) < 1e300:
        return float(value)
    return None


def _ts_ms(value: Any) -> int | None:
    """Epoch seconds or milliseconds, or an RFC 3339 time; None for anything else, for Go's zero time
    (`0001-01-01T00:00:00Z`, Alertmanager's endsAt of a firing alert) and for times out of range."""
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.strip()[:64])
        except ValueError:
            number = _number(value)
            return _ts_ms(number) if number is not None else None
        if at.tzinfo is None or at.year < 1971:
            return None
        ms = int(at.timestamp() * 1000)
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        ms = int(value if value > MS_THRESHOLD else value * 1000)
    else:
        return None
    return ms if 0 < ms <= MAX_TS_MS else None
