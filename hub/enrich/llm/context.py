"""What a prompt says about an incident: its alerts, its series around it, its devices' most frequent
log templates (with their classes) and similar past incidents where semantic search runs, read from the
state database, the store, the log store and the semantic index (blocking: run in a thread).

Everything here is bounded (alerts, series, points, log lines) so a storm incident makes a prompt of the
same size as a small one, and best-effort: a store or log store that fails costs that part of the
context (counted), never the enrichment.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from hub.alerts.incidents import IncidentStatus, describe
from hub.alerts.model import Alert
from hub.alerts.repository import AlertRepository
from hub.enrich.llm import repository
from hub.enrich.llm.classify import TemplateClass
from hub.enrich.logs.store import LogQuery, LogStore
from hub.matchers import Matcher, MatchOp
from hub.store.base import RangeQuery, Store

log = logging.getLogger(__name__)

MAX_ALERTS = 20
MAX_SERIES = 5
MAX_POINTS = 120
MAX_LOG_LINES = 500
MAX_TEMPLATES = 5
MAX_SIMILAR = 5
_OWN_LABELS = {"alertname", "agent", "site", "device"}


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """One incident as the prompt describes it (not yet redacted: `IncidentEnricher.prompt` does that)."""

    incident_id: str
    title: str
    alerts: tuple[str, ...]
    context: tuple[str, ...]


@dataclass(slots=True)
class ContextStats:
    series_failures: int = 0
    log_failures: int = 0


# Similar past incidents as prompt lines, by incident id (the semantic search's, where it runs); blocking.
SimilarLines = Callable[[str], list[str]]


@dataclass(slots=True)
class ContextReader:
    """Reads `IncidentFacts`; `window_ms` is how far before the incident opened series and logs go back."""

    alerts: AlertRepository
    store: Store
    logs: LogStore | None
    window_ms: int
    # Lines naming similar past incidents (`hub.enrich.logs.semantic`); None without semantic search.
    similar: SimilarLines | None = None
    stats: ContextStats = field(default_factory=ContextStats)

    def read(self, incident_id: str, now_ms: int) -> IncidentFacts | None:
        """The incident's facts; None when it does not exist or is resolved (nothing left to explain)."""
        found = self.alerts.incident(incident_id)
        if found is None or found[0].status is IncidentStatus.RESOLVED:
            return None
        inc = found[0]
        alerts = sorted(self.alerts.alerts_by_ids(sorted(inc.alert_ids)), key=lambda a: (a.starts_ms, a.id))
        start_ms = max(0, inc.opened_ms - self.window_ms)
        context = self._series(alerts, start_ms, now_ms) + self._templates(alerts, start_ms, now_ms)
        if self.similar is not None:
            context += self.similar(inc.id)[:MAX_SIMILAR]
        shown = [alert_line(a) for a in alerts[:MAX_ALERTS]]
        if len(alerts) > MAX_ALERTS:
            shown.append(f"... and {len(alerts) - MAX_ALERTS} more alerts")
        return IncidentFacts(inc.id, inc.title, tuple(shown), tuple(context))

    def _series(self, alerts: list[Alert], start_ms: int, now_ms: int) -> list[str]:
        wanted = list(dict.fromkeys(
            (a.label("metric"), a.label("agent"), a.label("device")) for a in alerts if a.label("metric")
        ))[:MAX_SERIES]  # fmt: skip
        out: list[str] = []
        for metric, agent, device in wanted:
            matchers = tuple(
                Matcher(k, MatchOp.EQ, v) for k, v in (("agent", agent), ("device", device)) if v
            )
            try:
                found = self.store.query(
                    RangeQuery(metric, start_ms, now_ms, matchers, max_points=MAX_POINTS)
                )
            except Exception as exc:  # the store away: the prompt goes without its series
                self.stats.series_failures += 1
                log.debug("series for the prompt not read: %s: %s", type(exc).__name__, exc)
                continue
            for s in found[:2]:
                values = [v for v in s.values.tolist() if math.isfinite(v)]
                if values:
                    out.append(
                        f"series {s.key}: {len(values)} points since {(now_ms - start_ms) // 60_000} min "
                        f"before, min {min(values):.4g}, max {max(values):.4g}, last {values[-1]:.4g}"
                    )
        return out

    def _templates(self, alerts: list[Alert], start_ms: int, now_ms: int) -> list[str]:
        devices = list(dict.fromkeys(a.label("device") for a in alerts if a.label("device")))[:MAX_SERIES]
        if self.logs is None or not devices:
            return []
        counts: Counter[str] = Counter()
        example: dict[str, str] = {}
        for device in devices:
            try:
                page = self.logs.search(LogQuery(start_ms, now_ms, MAX_LOG_LINES, device=device))
            except Exception as exc:  # the log store away: the prompt goes without log lines
                self.stats.log_failures += 1
                log.debug("log lines for the prompt not read: %s: %s", type(exc).__name__, exc)
                continue
            for line in page.lines:
                counts[line.template_id] += 1
                example.setdefault(line.template_id, line.message[:300])
        top = counts.most_common(MAX_TEMPLATES)
        known = repository.classes(self.alerts.engine, [t for t, _ in top])
        return [f"log line seen {n}x{_class_of(known.get(t))}: {example[t]}" for t, n in top]


def _class_of(c: TemplateClass | None) -> str:
    return f" ({c.severity}, {c.category})" if c is not None else ""


def alert_line(a: Alert) -> str:
    """One alert for the prompt: severity, state, what and where, its summary, its own labels."""
    summary = next((v for k, v in a.annotations if k == "summary"), "")
    value = next((v for k, v in a.annotations if k == "value"), "")
    own = ", ".join(f"{k}={v}" for k, v in a.labels if k not in _OWN_LABELS)
    parts = [
        f"[{a.severity}, {a.status.value}] {describe(a)}",
        summary,
        f"value {value}" if value else "",
        own,
    ]
    return "; ".join(p for p in parts if p)
