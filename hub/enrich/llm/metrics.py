"""The enrichment job's series, read at scrape time from its counters (nothing on the hot path)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hub.enrich.llm.job import EnrichJob
from hub.enrich.llm.templates import TemplateClassJob


class EnrichCollector:
    """A prometheus_client custom collector over an `EnrichJob` and its template classification."""

    def __init__(self, job: EnrichJob, classify: TemplateClassJob | None = None) -> None:
        self._job = job
        self._classify = classify

    def collect(self) -> Iterable[Metric]:
        job, stats, client = self._job, self._job.stats, self._job.client
        context = job.context.stats
        for name, help_text, value in (
            ("requests", "Chat requests sent to the LLM server", client.requests),
            ("request_failures", "Chat requests that got no usable answer (down, slow, 429, non-2xx)",
             client.failures),
            ("refused", "Chat requests not sent: breaker open or the token budget spent", client.refused),
            ("tokens", "Tokens the LLM server reported (or estimated) for answered requests", client.tokens),
            ("cache_hits", "Incidents answered from the prompt cache without a request",
             job.enricher.cache_hits),
            ("enriched", "Incident explanations stored", stats.enriched),
            ("fallbacks", "Stored explanations that are the deterministic summary (no valid answer)",
             stats.fallbacks),
            ("unanswered", "Incidents left without an explanation: no answer came", stats.unanswered),
            ("unchanged", "Incidents not asked again: the stored explanation is of the same alerts",
             stats.unchanged),
            ("dropped", "Incident changes dropped: the enrichment queue was full", stats.dropped),
            ("coalesced", "Incident changes folded into one already queued", stats.coalesced),
            ("duplicates", "Incident changes seen twice and skipped", stats.duplicates),
            ("failures", "Incidents not enriched: the state database failed", stats.failures),
            ("publish_failures", "Stored explanations the bus did not announce", stats.publish_failures),
            ("context_failures", "Prompt context parts (series, log lines) that could not be read",
             context.series_failures + context.log_failures),
        ):  # fmt: skip
            yield CounterMetricFamily(f"outpost_hub_llm_{name}", help_text, value=value)
        yield GaugeMetricFamily("outpost_hub_llm_queued", "Incidents waiting for the LLM", value=job.queued)
        yield GaugeMetricFamily(
            "outpost_hub_llm_tokens_this_hour", "Tokens spent or reserved in the current budget hour",
            value=client.spent,
        )  # fmt: skip
