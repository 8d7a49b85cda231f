"""Sentry integration webhooks (`Sentry-Hook-Resource`: issue, event_alert, metric_alert, error) as
alert signals, and the check of their `Sentry-Hook-Signature`.

The fingerprint is Sentry's own id (`sentry:<issue id>`, `sentry-metric:<alert rule id>`), so every
webhook about one issue lands on one alert and Sentry's resolve resolves it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from hub.alerts.model import Signal, labels_of

RESOURCES = frozenset({"issue", "event_alert", "metric_alert", "error"})
# Sentry levels -> the hub's severities.
LEVELS = {"fatal": "critical", "error": "critical", "warning": "warning", "info": "info", "debug": "info"}
# Issue actions after which the issue is no longer a problem.
ENDED = frozenset({"resolved", "archived", "ignored"})
MAX_TEXT = 500


class SentryPayloadError(ValueError):
    """Raised for a body that is not JSON or lacks what its resource needs (with the missing path)."""


def signature_ok(body: bytes, signature: str, secret: str) -> bool:
    """HMAC-SHA256 of the raw body with the integration's client secret, compared in constant time."""
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


def signal(resource: str, body: bytes, ts_ms: int, resolve_after_ms: int | None) -> Signal | None:
    """The alert signal a webhook means; None for a resource the hub does not turn into alerts.

    Raises:
        SentryPayloadError: not JSON, or a field the resource needs is missing.
    """
    if resource not in RESOURCES:
        return None
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise SentryPayloadError("body is not JSON") from None
    action = str(_get(payload, "action", "")).lower()
    data = _get(payload, "data", {})
    if resource == "metric_alert":
        rule = _get(data, "metric_alert", {})
        ident = _text(_need(rule, "id", "data.metric_alert.id"))
        title = _text(_get(data, "description_title", "") or _get(rule, "title", "") or "Sentry metric alert")
        return _build(
            f"sentry-metric:{ident}",
            {"alertname": "SentryMetricAlert", "sentry_metric_alert": ident},
            title,
            action != "resolved",
            "critical" if action == "critical" else "warning",
            _text(_get(data, "web_url", "")),
            ts_ms,
            resolve_after_ms,
        )
    if resource == "issue":
        issue = _get(data, "issue", {})
        ident = _text(_need(issue, "id", "data.issue.id"))
        project = _get(issue, "project", {})
        firing = action not in ENDED
        level, title = _get(issue, "level", "error"), _get(issue, "title", "")
        url = _get(issue, "permalink", "") or _get(issue, "web_url", "")
    else:  # event_alert and error carry the event, which names its issue
        key = "event" if resource == "event_alert" else "error"
        event = _get(data, key, {})
        ident = _text(_need(event, "issue_id", f"data.{key}.issue_id"))
        project = {"slug": _get(event, "project", "")}
        firing = True
        level, url, title = (
            _get(event, "level", "error"),
            _get(event, "web_url", ""),
            _get(event, "title", ""),
        )
    labels = {"alertname": "SentryIssue", "sentry_issue": ident}
    slug = _text(_get(project, "slug", "") if isinstance(project, dict) else "")
    if slug:
        labels["project"] = slug
    return _build(
        f"sentry:{ident}",
        labels,
        _text(title) or "Sentry issue",
        firing,
        LEVELS.get(str(level).lower(), "warning"),
        _text(url),
        ts_ms,
        resolve_after_ms,
    )


def _build(
    fingerprint: str,
    labels: dict[str, str],
    title: str,
    firing: bool,
    severity: str,
    url: str,
    ts_ms: int,
    resolve_after_ms: int | None,
) -> Signal:
    return Signal(
        labels_of(labels),
        firing,
        ts_ms,
        severity=severity,
        annotations=labels_of({"summary": title}),
        source="sentry",
        fingerprint=fingerprint,
        links=(("sentry", url),) if url else (),
        resolve_after_ms=resolve_after_ms,
    )


def _get(obj: Any, key: str, default: Any) -> Any:
    return obj.get(key, default) if isinstance(obj, dict) else default


def _need(obj: Any, key: str, path: str) -> Any:
    value = _get(obj, key, None)
    if value is None or value == "":
        raise SentryPayloadError(f"{path} is required")
    return value


def _text(value: Any) -> str:
    return str(value)[:MAX_TEXT] if isinstance(value, str | int | float) else ""
