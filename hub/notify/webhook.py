"""Outbound webhook receiver: Alertmanager's webhook JSON (version 4), signed, with an idempotency key.

Body: what Alertmanager's webhook notifier sends, so tooling written for it works unchanged:
`version`, `groupKey`, `truncatedAlerts`, `status`, `receiver`, `groupLabels`, `commonLabels`,
`commonAnnotations`, `externalURL` and `alerts: [{status, labels, annotations, startsAt, endsAt,
generatorURL, fingerprint}]` (RFC 3339 times; `endsAt` of a firing alert is Go's zero time, as there).

Signature, when a secret is configured:
    X-Outpost-Timestamp: <unix seconds when signed>
    X-Outpost-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body bytes)>
A consumer recomputes the HMAC over the exact bytes received, compares in constant time, and rejects
timestamps too far from its clock (replay). `verify_signature` below is a reference implementation.
Every request also carries `Idempotency-Key: <notification id>`: a hub that crashed between the 2xx and
recording it re-sends with the same key.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

from hub.notify.config import WebhookConfig, read_secret
from hub.notify.http import HttpPoster
from hub.notify.model import ZERO_TIME, AlertView, Notification, rfc3339
from shared.clock import Clock, SystemClock

SIGNATURE_HEADER = "X-Outpost-Signature"
TIMESTAMP_HEADER = "X-Outpost-Timestamp"
WEBHOOK_VERSION = "4"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The `X-Outpost-Signature` value for `body` signed at `timestamp` (unix seconds as text)."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: bytes, timestamp: str, body: bytes, signature: str, now_s: float, tolerance_s: float = 300.0
) -> bool:
    """What a consumer does: constant-time compare, and the timestamp within `tolerance_s` of now."""
    try:
        fresh = abs(now_s - int(timestamp)) <= tolerance_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    """Name/value pairs every map shares (Alertmanager's commonLabels / commonAnnotations)."""
    if not maps:
        return {}
    first, rest = maps[0], maps[1:]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


def _alert(a: AlertView, resolved_at_ms: int) -> dict[str, Any]:
    # A resolved alert without an end time ended when the notification was made.
    ends = (a.ends_at_ms or resolved_at_ms) if a.status == "resolved" else None
    return {
        "status": a.status,
        "labels": a.routing_labels(),
        "annotations": a.annotation_map,
        "startsAt": rfc3339(a.starts_at_ms),
        "endsAt": ZERO_TIME if ends is None else rfc3339(ends),
        "generatorURL": a.generator_url,
        "fingerprint": a.fingerprint,
    }


def payload(n: Notification, external_url: str = "") -> dict[str, Any]:
    """The webhook body of `n` as a JSON-ready dict."""
    alerts = [_alert(a, n.created_ms) for a in n.alerts]
    return {
        "version": WEBHOOK_VERSION,
        "groupKey": n.group_key,
        "truncatedAlerts": 0,
        "status": n.status,
        "receiver": n.receiver,
        "groupLabels": dict(n.group_labels),
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url,
        "alerts": alerts,
    }


class WebhookReceiver:
    """POSTs each notification once per `send`, signed when a secret is configured."""

    def __init__(self, config: WebhookConfig, *, external_url: str = "", clock: Clock | None = None) -> None:
        self._cfg = config
        self._external_url = external_url
        self._clock = clock or SystemClock()
        self._http = HttpPoster(config.name, config.timeout_s)
        self._http.add_secrets(config.inline_secrets())
        self._secret: bytes | None = None
        self._started = False

    async def start(self) -> None:
        """Reads the secret file (ConfigError if unreadable) and opens the connection pool."""
        if self._started:
            return
        where = f"receivers -> {self._cfg.name} -> secret"
        secret = read_secret(self._cfg.secret, self._cfg.secret_file, where)
        self._secret = None if secret is None else secret.encode()
        if secret is not None:
            self._http.add_secrets([secret])
        await self._http.start()
        self._started = True

    async def send(self, n: Notification) -> None:
        await self.start()
        body = orjson.dumps(payload(n, self._external_url))  # compact UTF-8, as Alertmanager's Go sends
        headers = {k: v.get_secret_value() for k, v in self._cfg.headers.items()}
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = n.id
        if self._secret is not None:
            ts = str(self._clock.now_ms() // 1000)
            headers[TIMESTAMP_HEADER] = ts
            headers[SIGNATURE_HEADER] = sign(self._secret, ts, body)
        await self._http.post(self._cfg.url, body, headers)

    async def aclose(self) -> None:
        self._started = False
        await self._http.aclose()
