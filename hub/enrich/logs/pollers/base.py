"""The poll loop shared by every log source: time windows, the cursor, backoff, dedupe, and the hand-off
of each page to the log store through the same intake as syslog lines (`LogIntake.store_batch`), so
polled lines are mined, counted and stored exactly like pushed ones, under the agent `poll:<name>`.

A window is [start, end) of event time (or index time): the first reaches `initial_lookback_s` back,
each next one starts `overlap_s` before the previous ended and ends at most `max_window_s` later and
`lag_s` before now. A source yields the window's events page by page; after each page's lines are
durable the cursor file is rewritten (page cursor, ids seen), so a restart resumes at the next page.

Exactly once across restarts: an event whose id was stored in this window or the overlap is skipped;
a page's new lines are stored as one batch whose id is a hash of their event ids, so a page stored just
before a crash (its cursor not yet saved) and fetched again after it is refused by the log store's
batch ledger instead of being stored twice. Nothing is lost: the cursor only moves past durable lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import random
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import Protocol

from hub.enrich.logs.intake import LogIntake, LogsRefused
from hub.enrich.logs.pollers.config import DatadogPollerConfig, SplunkPollerConfig
from hub.enrich.logs.pollers.metrics import PollerMetrics
from hub.enrich.logs.pollers.state import PollerState, StateFile, Window
from hub.http_client import scrub
from shared.clock import Clock
from shared.errors import TransientError
from shared.logging import UpDown
from shared.model import Batch, BatchClass, LogRecord

log = logging.getLogger(__name__)

# syslog severities of the status / level words Datadog and Splunk use.
SEVERITIES = {
    "emerg": 0, "emergency": 0, "alert": 1, "crit": 2, "critical": 2, "fatal": 2, "err": 3, "error": 3,
    "warn": 4, "warning": 4, "notice": 5, "info": 6, "informational": 6, "ok": 6, "success": 6,
    "debug": 7, "trace": 7,
}  # fmt: skip
DEFAULT_SEVERITY = 5  # notice, as for a syslog line that says none
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
POLL_BOOT_EPOCH = 0  # batch ids of polled pages: (poll:<name>, 0, hash of the page's event ids)


class PollError(Exception):
    """Raised by a source when a poll fails (no connection, timeout, a non-2xx answer, an answer that is
    not the API's); transient: the poller retries after `retry_after_s` or its backoff. `kind` labels
    the errors counter; `reread` says the saved page cursor is no good (expired): the window is read
    again from its start, its stored lines skipped by id."""

    def __init__(
        self, kind: str, message: str, retry_after_s: float | None = None, *, reread: bool = False
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after_s = retry_after_s
        self.reread = reread


@dataclass(frozen=True, slots=True)
class Polled:
    """One event of a source: its id there (unique within the source), the line it becomes, and its
    time on the axis the windows cut (event time, or Splunk's index time), which bounds how long its id
    is remembered."""

    event_id: str
    record: LogRecord
    at_ms: int


@dataclass(frozen=True, slots=True)
class Page:
    """Events in source order, and the cursor of the page after this one (None: a source that resumes a
    window from its start, or the window's last page)."""

    events: list[Polled]
    cursor: str | None = None


class Source(Protocol):
    """A remote log source: `start` reads its secrets (ConfigError if it cannot) and opens its session."""

    name: str

    def secrets(self) -> list[str]:
        """Values that must never be logged (keys, tokens)."""

    async def start(self) -> None: ...

    def pages(self, window: Window, cursor: str | None) -> AsyncGenerator[Page, None]:
        """The window's events from `cursor` on (None: from its start), ending after its last page.

        Raises:
            PollError: a request failed; pages yielded before it stay valid.
        """

    async def aclose(self) -> None: ...


PollerConfig = DatadogPollerConfig | SplunkPollerConfig


class Poller:
    """Polls one source forever (`run`); never raises after start but for cancellation."""

    def __init__(
        self,
        config: PollerConfig,
        source: Source,
        intake: LogIntake,
        state_file: StateFile,
        metrics: PollerMetrics,
        clock: Clock,
    ) -> None:
        self.config = config
        self.agent = f"poll:{config.name}"
        self._source = source
        self._intake = intake
        self._file = state_file
        self._metrics = metrics
        self._clock = clock
        self._health = UpDown(log, f"log source {source.name}", clock)
        self._random = random.Random()
        self.state = PollerState()

    async def run(self) -> None:
        self.state = await asyncio.to_thread(self._file.load)
        failures = 0
        while True:
            try:
                caught_up = await self.poll_window()
            except PollError as exc:
                self._metrics.errors.labels(self.config.name, exc.kind).inc()
                if exc.reread:
                    self.state.cursor = None
                self._health.down(scrub(f"{exc.kind}: {exc}", self._source.secrets()))
                delay = exc.retry_after_s if exc.retry_after_s is not None else self._backoff(failures)
                failures += 1
                await self._clock.sleep(min(delay, self.config.backoff_cap_s))
                continue
            except Exception as exc:  # a bug must not end the loop for good: logged once, retried
                self._metrics.errors.labels(self.config.name, "internal").inc()
                self._health.down(scrub(f"internal: {exc!r}", self._source.secrets()), exc_info=True)
                failures += 1
                await self._clock.sleep(self._backoff(failures))
                continue
            failures = 0
            self._health.up()
            if caught_up:
                await self._clock.sleep(self.config.interval_s)

    def _backoff(self, failures: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^failures)], so pollers of one outage spread out."""
        c = self.config
        return self._random.uniform(0, min(c.backoff_cap_s, c.backoff_base_s * 2 ** min(failures, 30)))

    async def poll_window(self) -> bool:
        """Reads the current window (or opens the next) to its end; True when it reached `lag_s` before
        now (caught up: wait `interval_s`), False when more windows are due at once.

        Raises:
            PollError: the source or the log store failed; the state keeps what was stored.
        """
        c, s = self.config, self.state
        if s.window is None:
            limit = self._clock.now_ms() - int(c.lag_s * 1000)
            span = int(c.max_window_s * 1000)
            if s.watermark_ms is None:
                start = limit - int(c.initial_lookback_s * 1000)
                end = min(limit, start + span)
            elif s.watermark_ms >= limit:
                return True  # nothing new yet
            else:  # the overlap comes on top of the span: a window always ends past the watermark
                start, end = s.watermark_ms - int(c.overlap_s * 1000), min(limit, s.watermark_ms + span)
            s.window, s.cursor = Window(start, end), None
        window = s.window
        async with contextlib.aclosing(self._source.pages(window, s.cursor)) as pages:
            async for page in pages:
                self._metrics.pages.labels(c.name).inc()
                await self._store(page)
        s.watermark_ms, s.window, s.cursor = window.end_ms, None, None
        keep_from = window.end_ms - int(c.overlap_s * 1000)
        s.seen = {k: ts for k, ts in s.seen.items() if ts >= keep_from}
        await self._save()
        return window.end_ms >= self._clock.now_ms() - int(c.lag_s * 1000) - int(c.interval_s * 1000)

    async def _store(self, page: Page) -> None:
        """Stores the page's events not stored before, then saves the cursor after it."""
        seen = self.state.seen
        fresh: dict[str, Polled] = {}
        for e in page.events:
            if e.event_id not in seen and e.event_id not in fresh:
                fresh[e.event_id] = e
        skipped = len(page.events) - len(fresh)
        if skipped:
            self._metrics.duplicates.labels(self.config.name).inc(skipped)
        if fresh:
            batch = Batch(
                POLL_BOOT_EPOCH,
                batch_seq(fresh),
                batch_class=BatchClass.LOGS,
                logs=tuple(e.record for e in fresh.values()),
            )
            try:
                await asyncio.to_thread(self._store_batch, batch)
            except TransientError as exc:
                raise PollError("store", str(exc)) from None
            except LogsRefused as exc:  # refused for good (the intake counted the lines): skip them
                self._metrics.errors.labels(self.config.name, "refused").inc()
                log.error("log store refused a page of %s for good: %s", self._source.name, exc)
            for event_id, e in fresh.items():
                seen[event_id] = e.at_ms
            self._bound_seen()
        self.state.cursor = page.cursor
        await self._save()

    def _store_batch(self, batch: Batch) -> None:
        """On a worker thread: stores and counts together, so a poller cancelled while the thread runs
        (the hub stopping) still counts what was stored."""
        self._intake.store_batch(self.agent, batch)
        self._metrics.lines.labels(self.config.name).inc(len(batch.logs))

    def _bound_seen(self) -> None:
        seen, cap = self.state.seen, self.config.max_seen_ids
        if len(seen) <= cap:
            return
        extra = len(seen) - cap
        for k in list(seen)[:extra]:  # oldest stored first
            del seen[k]
        self._metrics.seen_evicted.labels(self.config.name).inc(extra)

    async def _save(self) -> None:
        try:
            await asyncio.to_thread(self._file.save, self.state)
        except OSError as exc:
            raise PollError("state", f"cannot save the cursor {self._file.path}: {exc}") from None


def batch_seq(event_ids: Iterable[str]) -> int:
    """A page's batch seq: 63 bits of a hash of its event ids (the ledger's BIGINT is signed)."""
    digest = hashlib.sha256("\n".join(event_ids).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def severity_of(word: object) -> int:
    """The syslog severity of a status or level word ("error", "WARN", "info"); notice when unknown."""
    if isinstance(word, str):
        return SEVERITIES.get(word.strip().lower(), DEFAULT_SEVERITY)
    return DEFAULT_SEVERITY


def text_of(value: object) -> str:
    """A JSON field as text ("" when absent): sources send numbers where strings are usual."""
    return value if isinstance(value, str) else "" if value is None else str(value)


def time_ms(value: object) -> int | None:
    """Epoch ms of an ISO 8601 time ("2026-12-02T10:00:00.123Z", "...+00:00") or epoch seconds (number
    or numeric text, as Splunk's `_indextime`); None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return round(value * 1000)
    if not isinstance(value, str) or not value:
        return None
    try:
        return round(float(value) * 1000)
    except ValueError:
        pass
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return (t - _EPOCH) // dt.timedelta(milliseconds=1)


def iso_ms(ms: int) -> str:
    """Epoch ms as ISO 8601 UTC with milliseconds, e.g. 2026-12-02T10:00:00.123Z."""
    return (_EPOCH + dt.timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
