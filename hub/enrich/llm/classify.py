"""Classification of a new log template (severity, category) by the LLM, cached per template, with a
keyword classifier as the fallback when no model answers (and as the bench's baseline)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, get_args

from hub.enrich.llm.client import ChatClient, LlmError
from hub.enrich.llm.redact import Redactor

Severity = Literal["debug", "info", "warning", "error", "critical"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
CATEGORIES = ("hardware", "network", "storage", "security", "application", "system")

SYSTEM = (
    "Classify one log message template. Answer with one JSON object: "
    f'"severity" one of {list(SEVERITIES)}, "category" one of {list(CATEGORIES)}. No other text.'
)

# Most alarming first: the first keyword found decides.
_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("critical", ("fatal", "panic", "critical", "severe")),
    ("error", ("error", "exception", "fail", "refused", "denied", "cannot", "unable")),
    ("warning", ("warn", "retry", "timeout", "timed out", "slow", "deprecated", "lost")),
    ("debug", ("debug", "trace", "verbose")),
)


@dataclass(frozen=True, slots=True)
class TemplateClass:
    severity: str
    category: str
    source: Literal["llm", "keywords"]


def keyword_class(template: str) -> TemplateClass:
    """The deterministic classification: a keyword match, else `info` / `application`."""
    low = template.lower()
    severity = next((sev for sev, words in _KEYWORDS if any(w in low for w in words)), "info")
    category = next((c for c in CATEGORIES if c in low), "application")
    return TemplateClass(severity, category, "keywords")


class TemplateClassifier:
    """`classify_template` for the log pipeline, called when a template is new; one request per template."""

    def __init__(self, client: ChatClient | None, redact: Redactor) -> None:
        self._client = client
        self._redact = redact
        self._cache: dict[str, TemplateClass] = {}

    async def classify_template(self, template: str) -> TemplateClass:
        """The LLM's classification, or the keyword one when no valid answer comes; never raises."""
        if template in self._cache:
            return self._cache[template]
        result = keyword_class(template)
        if self._client is not None:
            try:
                content, _ = await self._client.complete(SYSTEM, self._redact(template))
                result = _parse(content) or result
            except LlmError:
                return result  # not cached: asked again when the model is back
        self._cache[template] = result
        return result


def _parse(content: str) -> TemplateClass | None:
    start, end = content.find("{"), content.rfind("}")
    try:
        obj = json.loads(content[start : end + 1]) if 0 <= start < end else None
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    sev, cat = str(obj.get("severity", "")).lower(), str(obj.get("category", "")).lower()
    if sev not in SEVERITIES:
        return None
    return TemplateClass(sev, cat if cat in CATEGORIES else "application", "llm")
