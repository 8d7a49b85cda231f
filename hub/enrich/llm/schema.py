"""What an LLM must answer about an incident, and the deterministic summary used when it does not."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Enrichment(BaseModel):
    """An incident's explanation; `fallback` marks the template one made without a valid answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    summary: str = Field(min_length=1, max_length=2000)
    probable_cause: str = Field(max_length=2000)
    suggested_actions: tuple[str, ...] = Field(max_length=10)
    confidence: float = Field(ge=0.0, le=1.0)
    fallback: bool = False


def parse_answer(content: str) -> Enrichment | None:
    """The answer's enrichment, or None when it is not a JSON object of the schema's fields.

    A model may wrap the object in a Markdown fence or prose; the outermost braces are taken.
    """
    start, end = content.find("{"), content.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        obj = json.loads(content[start : end + 1])
    except ValueError:
        return None
    if not isinstance(obj, dict) or "fallback" in obj:
        return None
    try:
        return Enrichment.model_validate(obj)
    except ValidationError:
        return None


def fallback(title: str, alert_lines: Sequence[str]) -> Enrichment:
    """A summary built from the incident itself, the same for the same inputs."""
    shown = "; ".join(alert_lines[:5]) + (f" (+{len(alert_lines) - 5} more)" if len(alert_lines) > 5 else "")
    return Enrichment(
        summary=f"{title}: {len(alert_lines)} alert(s): {shown}"[:2000],
        probable_cause="",
        suggested_actions=(),
        confidence=0.0,
        fallback=True,
    )
