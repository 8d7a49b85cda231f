"""Log lines of ingested batches: checked, mined for their template, stored before the batch is acked.

The ingest service calls `LogIntake.store_batch` on its own threads after the series store took the
batch and before it acknowledges; an exception means "not stored", so the agent sends the batch again
and the log store's own batch-id ledger keeps the lines from being stored twice.

One `TemplateMiner` per ingesting hub process (roles `all` and `worker`; `api` processes never mine),
saved under the data dir (0600) and restored at start, so ids stay stable across restarts. Several
workers each mine with their own miner: a template id is a hash of the template's first text, so
workers that meet the same line shapes usually give them the same id, but one whose template was
generalized differently, or evicted, can disagree. Stored lines keep the id their worker gave them and
`log_templates` (keyed by id) counts each id exactly; ids are never reused, so they never mix.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import sqlalchemy as sa

from hub.enrich.logs.config import LogsConfig
from hub.enrich.logs.counts import TemplateCounts
from hub.enrich.logs.metrics import LogMetrics
from hub.enrich.logs.miner import TemplateMiner
from hub.enrich.logs.store import MINUTE_MS, LogStore, MinedRecord
from hub.store.base import TIME_MAX_MS, TIME_MIN_MS
from shared.clock import Clock, SystemClock
from shared.errors import TransientError
from shared.model import Batch, LogRecord

log = logging.getLogger(__name__)

SNAPSHOT_FILE = "miner.json"
MAX_LABEL_CHARS = 255  # device, host, app: names, not payload
# Told the templates (id -> text) of every stored batch and its agent, on the ingest thread; must not block
# (the semantic index queues what is new or changed, `hub.enrich.logs.semantic`).
TemplatesSeen = Callable[[Mapping[str, str], str], None]


class LogsRefused(Exception):
    """Raised when the database refuses a batch's lines for good (a value it cannot hold): the batch
    is then rejected, not retried. Carries how many lines it held."""

    def __init__(self, message: str, lines: int) -> None:
        super().__init__(message)
        self.lines = lines


class LogIntake:
    """Mines and stores log lines; marks the minutes they fall in for the template-count series."""

    name = "log intake"

    def __init__(
        self,
        store: LogStore,
        counts: TemplateCounts,
        config: LogsConfig,
        metrics: LogMetrics,
        state_dir: Path,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._counts = counts
        self._config = config
        self._metrics = metrics
        self._dir = state_dir
        self._clock = clock or SystemClock()
        self.miner = TemplateMiner()
        self._saved_lines = 0
        self._task: asyncio.Task[None] | None = None
        self.on_templates: TemplatesSeen | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self._restore)
        self._task = asyncio.create_task(self._save_loop(), name="miner-snapshots")

    def _restore(self) -> None:
        path = self._dir / SNAPSHOT_FILE
        try:
            self.miner = TemplateMiner.restore(path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:  # a bad file costs the ids, not the hub
            log.warning("template miner snapshot %s unreadable, starting with no templates: %s", path, exc)
            return
        log.info("template miner restored %d templates from %s", len(self.miner.templates()), path)

    async def _save_loop(self) -> None:
        while True:
            await self._clock.sleep(self._config.snapshot_interval_s)
            await asyncio.to_thread(self.save)

    def save(self) -> None:
        """Writes the miner's snapshot (0600, replaced atomically) when it mined lines since the last."""
        lines = self.miner.counters.lines
        if lines == self._saved_lines:
            return
        try:
            _write_private_atomic(self._dir / SNAPSHOT_FILE, self.miner.snapshot())
        except OSError as exc:  # retried at the next interval; ids of new templates may change if lost
            log.warning("cannot save the template miner snapshot: %s", exc)
            return
        self._saved_lines = lines

    async def aclose(self) -> None:
        """Stops the save loop and saves once more; safe without start and twice."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
            await asyncio.to_thread(self.save)

    def store_batch(self, agent: str, batch: Batch) -> None:
        """Stores `batch.logs` for `agent` (blocking: call on an ingest thread).

        Raises:
            TransientError: the database could not take them now (do not acknowledge).
            LogsRefused: the database refuses them for good (reject the batch).
        """
        lines = self._mined(batch.logs)
        try:
            new = self._store.write(agent, batch.boot_epoch, batch.seq, lines, self._clock.now_ms())
        # What the lines hold is refused (a value the column cannot take): sending it again cannot help.
        # Anything else (locked, unreachable, a missing table) may pass later: the agent retries.
        except (sa.exc.DataError, sa.exc.IntegrityError) as exc:
            self._metrics.rejected.labels("refused").inc(len(lines))
            raise LogsRefused(f"the log store refused the lines: {exc.orig}", len(lines)) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise TransientError(f"log store: {type(exc).__name__}: {exc}") from exc
        if not new:
            self._metrics.duplicate.inc(len(lines))
            return
        self._metrics.stored.inc(len(lines))
        self._counts.mark(agent, {m.record.ts_ms - m.record.ts_ms % MINUTE_MS for m in lines})
        if self.on_templates is not None:
            self.on_templates({m.template_id: m.template for m in lines}, agent)

    def _mined(self, records: Sequence[LogRecord]) -> list[MinedRecord]:
        out = []
        limit = self._config.max_message_chars
        for r in records:
            if not (0 <= r.severity <= 7 and 0 <= r.facility <= 23 and TIME_MIN_MS <= r.ts_ms <= TIME_MAX_MS):
                self._metrics.rejected.labels("field").inc()
                continue
            message = _text(r.message)
            if len(message) > limit:
                message = message[:limit]
                self._metrics.truncated.inc()
            clean = LogRecord(
                r.ts_ms,
                r.received_ms,
                message,
                facility=r.facility,
                severity=r.severity,
                host=_text(r.host)[:MAX_LABEL_CHARS],
                app=_text(r.app)[:MAX_LABEL_CHARS],
                device=_text(r.device)[:MAX_LABEL_CHARS],
            )
            mined = self.miner.add(message)
            out.append(MinedRecord(clean, mined.template_id, mined.template))
        return out


def _text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; the same replacement on SQLite keeps both stores alike."""
    return value.replace("\x00", "\ufffd")


def _write_private_atomic(path: Path, data: bytes) -> None:
    """Writes `data` to a 0600 temp file beside `path`, syncs it, then renames it over `path`."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
