"""Prometheus Alertmanager receiver: the notification's alerts go to `POST /api/v2/alerts`.

Hands the hub's alerts to a NOC's existing Alertmanager, whose routes, silences, inhibitions and
integrations then apply. Each alert is posted with its labels (plus `severity` when they lack it),
annotations, `startsAt`, `generatorURL` and `endsAt`: the resolve time for a resolved alert; for a firing
one, send time + 4 x `resend_interval_s` as Prometheus does (so Alertmanager resolves it by itself if the
hub stops re-sending), or unset. At most `batch_size` (<= 100) alerts per request; if a later batch fails
the whole notification is retried, which Alertmanager absorbs (the same labels update the same alert).
Credentials: basic auth or a bearer token (inline `SecretStr` or `*_file`), only in the Authorization header.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from hub.notify.config import AlertmanagerConfig, read_secret
from hub.notify.http import HttpPoster
from hub.notify.model import AlertView, Notification, rfc3339
from shared.clock import Clock, SystemClock

ALERTS_PATH = "/api/v2/alerts"
_PROMETHEUS_VALID_FOR = 4  # Prometheus: endsAt = now + 4 x max(eval interval, resend delay)


def postable_alert(a: AlertView, now_ms: int, resend_interval_s: float | None) -> dict[str, Any]:
    """One alert in API v2's `postableAlert` shape."""
    out: dict[str, Any] = {
        "labels": a.routing_labels(),
        "annotations": a.annotation_map,
        "startsAt": rfc3339(a.starts_at_ms),
    }
    if a.status == "resolved":
        out["endsAt"] = rfc3339(a.ends_at_ms if a.ends_at_ms is not None else now_ms)
    elif resend_interval_s is not None:
        out["endsAt"] = rfc3339(now_ms + int(_PROMETHEUS_VALID_FOR * resend_interval_s * 1000))
    if a.generator_url:  # API v2 validates it as a URI: an empty string would be refused
        out["generatorURL"] = a.generator_url
    return out


class AlertmanagerReceiver:
    """Posts the alerts of each notification to one Alertmanager."""

    def __init__(
        self, config: AlertmanagerConfig, *, clock: Clock | None = None, external_url: str = ""
    ) -> None:
        del external_url  # Alertmanager has its own; the signature is the registry's common one
        self._cfg = config
        self._clock = clock or SystemClock()
        self._url = config.url.rstrip("/") + ALERTS_PATH
        self._http = HttpPoster(config.name, config.timeout_s)
        self._http.add_secrets(config.inline_secrets())
        self._auth: str | None = None
        self._started = False

    async def start(self) -> None:
        """Reads credential files (ConfigError if unreadable) and opens the connection pool."""
        if self._started:
            return
        cfg, where = self._cfg, f"receivers -> {self._cfg.name}"
        if cfg.basic_auth is not None:
            ba = cfg.basic_auth
            password = read_secret(ba.password, ba.password_file, f"{where} -> basic_auth -> password") or ""
            token = base64.b64encode(f"{ba.username}:{password}".encode()).decode()
            self._auth = f"Basic {token}"
            self._http.add_secrets([password, token])
        else:
            bearer = read_secret(cfg.bearer_token, cfg.bearer_token_file, f"{where} -> bearer_token")
            if bearer is not None:
                self._auth = f"Bearer {bearer}"
                self._http.add_secrets([bearer])
        await self._http.start()
        self._started = True

    async def send(self, n: Notification) -> None:
        await self.start()
        now = self._clock.now_ms()
        headers = {k: v.get_secret_value() for k, v in self._cfg.headers.items()}
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = n.id
        if self._auth is not None:
            headers["Authorization"] = self._auth
        size = self._cfg.batch_size
        for i in range(0, len(n.alerts), size):
            batch = [postable_alert(a, now, self._cfg.resend_interval_s) for a in n.alerts[i : i + size]]
            body = orjson.dumps(batch)
            await self._http.post(self._url, body, headers)

    async def aclose(self) -> None:
        self._started = False
        await self._http.aclose()
