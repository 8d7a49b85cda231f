"""`enrich.llm` in hub.yaml: where the OpenAI-compatible server is, what a request may cost, and how much
incident work may wait for it. Off by default: nothing leaves the hub unless an operator turns it on."""

from __future__ import annotations

import urllib.parse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from hub.regex import RegexError, compile_search


class LlmConfig(BaseModel):
    """The chat server and its bounds; the key is a SecretStr so it is never logged or returned."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    enabled: bool = False
    # The server's root: requests go to <base_url>/v1/chat/completions (OpenAI, Ollama, vLLM, llama.cpp).
    base_url: str = "http://127.0.0.1:8000"
    model: str = Field(default="smollm2-135m", min_length=1, max_length=255)
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=30.0, gt=0)
    failures_to_open: int = Field(default=3, ge=1)
    open_s: float = Field(default=60.0, gt=0)
    tokens_per_hour: int = Field(default=200_000, ge=1)
    max_tokens: int = Field(default=512, ge=1)
    # Incidents waiting for an answer; more are dropped (counted) and asked about at their next change.
    queue: int = Field(default=1000, ge=1)
    # Requests in flight at once.
    concurrency: int = Field(default=4, ge=1, le=64)
    # How far back from an incident's opening its series and log lines are read for the prompt.
    context_s: float = Field(default=1800.0, gt=0)
    # Extra RE2 patterns redacted (as <redacted>) besides the built-in addresses, names and credentials.
    redact: tuple[str, ...] = ()
    # Log templates classified (severity, category): every interval, at most `classify_per_tick` of the
    # log store's templates not yet classified by the model, newest classes first.
    classify_templates: bool = True
    classify_interval_s: float = Field(default=30.0, gt=0)
    classify_per_tick: int = Field(default=20, ge=1, le=1000)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        p = urllib.parse.urlsplit(value)
        if p.scheme not in ("http", "https") or not p.hostname or p.query or p.fragment:
            raise ValueError("an http:// or https:// URL without query or fragment")
        if p.username or p.password:
            raise ValueError("credentials go in api_key, not in the URL")
        return value

    @field_validator("redact")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for i, pattern in enumerate(value):
            try:
                compile_search(pattern)
            except RegexError as exc:
                raise ValueError(f"pattern {i}: {exc}") from None
        return value


class EnrichConfig(BaseModel):
    """`enrich`: the hub's third tier after statistics and ML."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    llm: LlmConfig = LlmConfig()
