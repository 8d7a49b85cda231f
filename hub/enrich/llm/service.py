"""Asks the LLM about an incident: redacts the prompt, validates the answer (one retry, then the
deterministic fallback), caches per incident (the hash of its title and alerts) and records provenance."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from hub.enrich.llm.client import ChatClient, LlmError
from hub.enrich.llm.redact import Redactor
from hub.enrich.llm.schema import Enrichment, fallback, parse_answer

SYSTEM = (
    "You explain infrastructure incidents to an on-call engineer. Answer with one JSON object with the keys "
    '"summary" (string), "probable_cause" (string), "suggested_actions" (list of strings, at most 10) and '
    '"confidence" (number from 0 to 1). No other text.'
)
CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where an enrichment came from, stored and shown next to it."""

    model: str
    prompt_sha256: str
    ts_ms: int
    latency_ms: int
    tokens: int
    fallback: bool


class IncidentEnricher:
    """Turns an incident's (title, alert lines, context lines) into an `Enrichment`."""

    def __init__(self, client: ChatClient, redact: Redactor) -> None:
        self._client = client
        self._redact = redact
        self._cache: OrderedDict[str, tuple[Enrichment, Provenance]] = OrderedDict()
        self.cache_hits = 0  # answered from the cache, for /metrics

    def prompt(self, title: str, alerts: Sequence[str], context: Sequence[str] = ()) -> str:
        """The redacted user prompt: what leaves the hub, and the cache key's input."""
        parts = [f"Incident: {title}", "Alerts:", *(f"- {a}" for a in alerts)]
        if context:
            parts += ["Context:", *(f"- {c}" for c in context)]
        return self._redact("\n".join(parts))

    def cache_key(self, title: str, alerts: Sequence[str]) -> str:
        """SHA-256 of the model and the redacted incident itself (title and alerts), stored as provenance:
        an incident whose alerts did not change is not asked again because its context moved (a series'
        last value, a newly similar incident)."""
        return hashlib.sha256(
            f"{self._client.config.model}\n{self.prompt(title, alerts)}".encode()
        ).hexdigest()

    async def enrich(
        self, title: str, alerts: Sequence[str], context: Sequence[str] = ()
    ) -> tuple[Enrichment, Provenance]:
        """The model's validated explanation, or the fallback when its answers are not valid in two tries.

        Raises:
            LlmError: no answer came at all (server down or slow, breaker open, budget spent): there is
                nothing to explain the incident with yet, and the caller asks again later.
        """
        user = self.prompt(title, alerts, context)
        key = self.cache_key(title, alerts)
        if key in self._cache:
            self._cache.move_to_end(key)
            self.cache_hits += 1
            return self._cache[key]
        started, tokens = time.monotonic(), 0
        answer: Enrichment | None = None
        answered = False
        try:
            for _ in range(2):
                content, used = await self._client.complete(SYSTEM, user)
                answered, tokens = True, tokens + used
                answer = parse_answer(content)
                if answer is not None:
                    break
        except LlmError:
            if not answered:
                raise
        result = answer or fallback(self._redact(title), [self._redact(a) for a in alerts])
        prov = Provenance(
            model=self._client.config.model,
            prompt_sha256=key,
            ts_ms=int(time.time() * 1000),
            latency_ms=int((time.monotonic() - started) * 1000),
            tokens=tokens,
            fallback=result.fallback,
        )
        if answer is not None:  # a fallback is not cached: the next incident update asks again
            self._cache[key] = (result, prov)
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return result, prov
