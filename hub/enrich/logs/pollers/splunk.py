"""Splunk as a log source: `POST /services/search/jobs/export` with `output_mode=json`, token auth
(`Authorization: Bearer <token>`, or `Splunk <session key>`), read as a stream.

The export answers newline-delimited JSON objects as the search finds results:
`{"preview":false,"result":{"_time":...,"_raw":...,"host":...,"source":...,"sourcetype":...}}`, and
`{"messages":[{"type":"ERROR","text":...}]}` when the search fails. Lines are parsed one at a time (each
bounded by `max_line_bytes`); a line that is not such an object is counted and skipped, never fatal.
Results are stored every `batch_lines`; the stream has no cursor, so a window interrupted mid-stream is
read again from its start and the results already stored are skipped by their id (`_bkt` and `_cd`,
Splunk's bucket and offset of the event, with the index and server; a hash of the result without them).

Windows are on `_time` (earliest_time / latest_time) or, with `window_on: _indextime`, on index time
(index_earliest / index_latest), in epoch seconds with milliseconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncGenerator
from typing import Any

from hub.enrich.logs.pollers.base import Page, Polled, PollError, severity_of, text_of, time_ms
from hub.enrich.logs.pollers.config import SplunkPollerConfig
from hub.enrich.logs.pollers.http import Session, new_session, post_lines
from hub.enrich.logs.pollers.metrics import PollerMetrics
from hub.enrich.logs.pollers.state import Window
from hub.notify.config import read_secret
from shared.clock import Clock
from shared.model import LogRecord

EXPORT_PATH = "/services/search/jobs/export"
# Result fields that may say how bad a line is, most specific first.
LEVEL_FIELDS = ("log_level", "level", "severity", "status")


class SplunkSource:
    """One Splunk search head and search; `pages` is called by one poller task at a time."""

    def __init__(self, config: SplunkPollerConfig, metrics: PollerMetrics, clock: Clock) -> None:
        self.config = config
        self.name = f"splunk {config.name!r}"
        self._metrics = metrics
        self._clock = clock
        self._url = config.url + EXPORT_PATH
        self._token = ""
        self._session: Session | None = None
        query = config.query.strip()
        # Splunk's REST API wants the generating command spelled out.
        self._search = query if query.startswith(("search ", "|")) else f"search {query}"

    def secrets(self) -> list[str]:
        return [self._token] if self._token else []

    async def start(self) -> None:
        c = self.config
        token = read_secret(c.token, c.token_file, f"logs -> pollers -> {c.name} -> token")
        assert token is not None  # the config requires one
        self._token = token
        if self._session is None:
            self._session = new_session(c.timeout_s)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def pages(self, window: Window, cursor: str | None) -> AsyncGenerator[Page, None]:
        assert self._session is not None, "start() first"
        c = self.config
        lo, hi = f"{window.start_ms / 1000:.3f}", f"{window.end_ms / 1000:.3f}"
        form = {"search": self._search, "output_mode": "json"}
        if c.window_on == "_time":
            form |= {"earliest_time": lo, "latest_time": hi}
        else:
            form |= {"index_earliest": lo, "index_latest": hi}
        headers = {"Authorization": f"{c.auth_scheme} {self._token}"}
        chunk: list[Polled] = []
        stream = post_lines(self._session, self._url, form, headers, c.max_stream_s, c.max_line_bytes)
        async with contextlib.aclosing(stream) as lines:  # closes the response when we stop early
            async for line in lines:
                if line is None:
                    self._metrics.errors.labels(c.name, "too_long").inc()
                    continue
                polled = self._parse(line)
                if polled is not None:
                    chunk.append(polled)
                    if len(chunk) >= c.batch_lines:
                        yield Page(chunk)
                        chunk = []
        if chunk:
            yield Page(chunk)

    def _parse(self, line: bytes) -> Polled | None:
        """The event of one streamed line; None for a preview, a blank line or a malformed one (counted).

        Raises:
            PollError: the line is Splunk saying the search failed.
        """
        if not line.strip():
            return None
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            self._metrics.errors.labels(self.config.name, "malformed").inc()
            return None
        result = obj.get("result")
        if isinstance(result, dict):
            return None if obj.get("preview") is True else self._event(result)
        messages = obj.get("messages")
        if isinstance(messages, list):
            for m in messages:
                if isinstance(m, dict) and m.get("type") in ("ERROR", "FATAL"):
                    raise PollError("search", f"splunk search failed: {str(m.get('text'))[:300]}")
            return None
        if "lastrow" in obj or "preview" in obj:
            return None
        self._metrics.errors.labels(self.config.name, "malformed").inc()
        return None

    def _event(self, r: dict[str, Any]) -> Polled | None:
        raw = r.get("_raw")
        ts = time_ms(r.get("_time"))
        if not isinstance(raw, str) or ts is None:
            self._metrics.errors.labels(self.config.name, "malformed").inc()
            return None
        now = self._clock.now_ms()
        host = text_of(r.get("host"))
        level = next((r[f] for f in LEVEL_FIELDS if isinstance(r.get(f), str)), None)
        record = LogRecord(
            ts_ms=ts,
            received_ms=now,
            message=raw,
            severity=severity_of(level),
            host=host,
            app=text_of(r.get("sourcetype")),
            device=host,
        )
        at = ts if self.config.window_on == "_time" else (time_ms(r.get("_indextime")) or ts)
        return Polled(_event_id(r), record, at)


def _event_id(r: dict[str, Any]) -> str:
    """Splunk's own address of the event when the result carries it, else a hash of what it says."""
    cd = r.get("_cd")
    if isinstance(cd, str) and cd:
        return "|".join(text_of(r.get(f)) for f in ("splunk_server", "index", "_bkt")) + "|" + cd
    text = json.dumps([text_of(r.get(f)) for f in ("_time", "host", "source", "sourcetype", "_raw")])
    return "h:" + hashlib.sha256(text.encode()).hexdigest()[:32]
