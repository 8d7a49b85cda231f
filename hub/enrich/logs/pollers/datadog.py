"""Datadog Logs as a log source: `POST /api/v2/logs/events/search` over a time window, oldest first,
page by page with `page.cursor` (from `meta.page.after`), authenticated with `DD-API-KEY` and
`DD-APPLICATION-KEY`.

Rate limits are honoured, never fought: a 429 waits `X-RateLimit-Reset` seconds (or Retry-After) and
sends the same request again; an answer with `X-RateLimit-Remaining: 0` holds the next request until its
reset. Each wait is counted. Events map to lines as: attributes.timestamp -> ts, host -> host and
device, service -> app, status -> severity, message -> message; the event id dedupes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from hub.enrich.logs.pollers.base import Page, Polled, PollError, iso_ms, severity_of, text_of, time_ms
from hub.enrich.logs.pollers.config import DatadogPollerConfig
from hub.enrich.logs.pollers.http import Session, new_session, post_json, status_error
from hub.enrich.logs.pollers.metrics import PollerMetrics
from hub.enrich.logs.pollers.state import Window
from hub.http_client import parse_retry_after, safe_url
from hub.notify.config import read_secret
from shared.clock import Clock
from shared.model import LogRecord

SEARCH_PATH = "/api/v2/logs/events/search"
MAX_PAGE_BYTES = 64 << 20  # 5000 events of a few KB each, with room
DEFAULT_WAIT_S = 1.0  # a 429 that says nothing about when to come back


class DatadogSource:
    """One Datadog site and query; `pages` is called by one poller task at a time."""

    def __init__(self, config: DatadogPollerConfig, metrics: PollerMetrics, clock: Clock) -> None:
        self.config = config
        self.name = f"datadog {config.name!r}"
        self._metrics = metrics
        self._clock = clock
        self._url = config.base_url + SEARCH_PATH
        self._headers: dict[str, str] = {}
        self._session: Session | None = None
        self._not_before = 0.0  # monotonic time the rate limit allows the next request at

    def secrets(self) -> list[str]:
        return list(self._headers.values())

    async def start(self) -> None:
        c, where = self.config, f"logs -> pollers -> {self.config.name}"
        api = read_secret(c.api_key, c.api_key_file, f"{where} -> api_key")
        app = read_secret(c.application_key, c.application_key_file, f"{where} -> application_key")
        assert api is not None and app is not None  # the config requires one of each
        self._headers = {"DD-API-KEY": api, "DD-APPLICATION-KEY": app}
        if self._session is None:
            self._session = new_session(c.timeout_s)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def pages(self, window: Window, cursor: str | None) -> AsyncGenerator[Page, None]:
        c = self.config
        while True:
            page: dict[str, Any] = {"limit": c.page_limit}
            if cursor is not None:
                page["cursor"] = cursor
            body = {
                "filter": {
                    "query": c.query,
                    "from": iso_ms(window.start_ms),
                    "to": iso_ms(window.end_ms),
                    "indexes": list(c.indexes),
                },
                "sort": "timestamp",
                "page": page,
            }
            data = await self._search(body)
            cursor = _after(data)
            yield Page(self._events(data), cursor)
            if cursor is None:
                return

    async def _search(self, body: dict[str, Any]) -> Any:
        """One search request, sent again after each 429 once its reset passed; the decoded answer."""
        assert self._session is not None, "start() first"
        headers = {**self._headers, "Content-Type": "application/json", "Accept": "application/json"}
        while True:
            wait = self._not_before - self._clock.monotonic()
            if wait > 0:
                self._metrics.rate_limited.labels(self.config.name).inc()
                await self._clock.sleep(wait)
            resp = await post_json(
                self._session, self._url, body, headers, self.config.timeout_s, MAX_PAGE_BYTES
            )
            reset = _reset_s(resp.headers)
            if resp.status == 429:
                self._hold(reset if reset is not None else DEFAULT_WAIT_S)
                continue
            if resp.status == 400 and "cursor" in body["page"]:  # a cursor kept over a long stop expires
                raise PollError(
                    "cursor", f"POST {safe_url(self._url)} refused the page cursor (400)", reread=True
                )
            if not 200 <= resp.status < 300:
                raise status_error(resp, self._url)
            if resp.headers.get("X-RateLimit-Remaining", "").strip() == "0":
                self._hold(reset if reset is not None else DEFAULT_WAIT_S)
            try:
                data = json.loads(resp.body)
            except ValueError:
                raise PollError("parse", f"POST {safe_url(self._url)}: answer is not JSON") from None
            if not isinstance(data, dict) or not isinstance(data.get("data", []), list):
                raise PollError("parse", f"POST {safe_url(self._url)}: answer has no data list")
            return data

    def _hold(self, seconds: float) -> None:
        """No request before `seconds` from now (bounded by the backoff cap: a wild reset cannot park us)."""
        self._not_before = self._clock.monotonic() + min(max(seconds, 0.0), self.config.backoff_cap_s)

    def _events(self, data: dict[str, Any]) -> list[Polled]:
        now = self._clock.now_ms()
        out = []
        for ev in data.get("data", []):
            attrs = ev.get("attributes") if isinstance(ev, dict) else None
            event_id = ev.get("id") if isinstance(ev, dict) else None
            if not isinstance(attrs, dict) or not isinstance(event_id, str) or not event_id:
                self._metrics.errors.labels(self.config.name, "malformed").inc()
                continue
            host = text_of(attrs.get("host"))
            record = LogRecord(
                ts_ms=time_ms(attrs.get("timestamp")) or now,
                received_ms=now,
                message=text_of(attrs.get("message")),
                severity=severity_of(attrs.get("status")),
                host=host,
                app=text_of(attrs.get("service")),
                device=host,
            )
            out.append(Polled(event_id, record, record.ts_ms))
        return out


def _after(data: dict[str, Any]) -> str | None:
    """The next page's cursor (`meta.page.after`); None on the last page (or an empty one)."""
    meta = data.get("meta")
    page = meta.get("page") if isinstance(meta, dict) else None
    after = page.get("after") if isinstance(page, dict) else None
    return after if isinstance(after, str) and after and data.get("data") else None


def _reset_s(headers: Mapping[str, str]) -> float | None:
    """Seconds until the rate limit resets: `X-RateLimit-Reset` (Datadog's), else Retry-After."""
    value = headers.get("X-RateLimit-Reset", "").strip()
    try:
        return float(value)
    except ValueError:
        return parse_retry_after(headers.get("Retry-After"))
