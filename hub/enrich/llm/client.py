"""An OpenAI-compatible chat-completions client (OpenAI, Ollama, vLLM, llama.cpp server) with a circuit
breaker and a token budget. The only importer of httpx in hub.enrich.

The breaker opens after `failures_to_open` failures in a row and lets one probe through after
`open_s`; a 429 opens it for the server's Retry-After. The budget counts the `usage` the server reports
(or an estimate, 4 characters a token, when it reports none) per hour; a request that would exceed it is
refused before it is sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr


class LlmConfig(BaseModel):
    """`enrich.llm`: off by default; the key is a SecretStr so it is never logged or returned."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    enabled: bool = False
    base_url: str = "http://127.0.0.1:8000"
    model: str = "smollm2-135m"
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=30.0, gt=0)
    failures_to_open: int = Field(default=3, ge=1)
    open_s: float = Field(default=60.0, gt=0)
    tokens_per_hour: int = Field(default=200_000, ge=1)
    max_tokens: int = Field(default=512, ge=1)


class LlmError(RuntimeError):
    """Raised when no answer can be had: breaker open, budget spent, server down, slow or failing."""


class Unavailable(LlmError):
    """Raised without sending when the breaker is open or the hour's token budget is spent."""


class ChatClient:
    """One chat completion at a time per call; safe to call from many tasks on one loop."""

    def __init__(self, config: LlmConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._http = httpx.AsyncClient(timeout=config.timeout_s)
        self._failures = 0
        self._open_until = 0.0
        self._probing = False
        self._hour_start = clock()
        self._spent = 0
        self._lock = asyncio.Lock()

    @property
    def spent(self) -> int:
        return self._spent

    async def _admit(self, estimate: int) -> None:
        async with self._lock:
            now = self._clock()
            if now - self._hour_start >= 3600:
                self._hour_start, self._spent = now, 0
            if self._open_until > now or self._probing:
                raise Unavailable("circuit open")
            if self._failures >= self.config.failures_to_open:
                self._probing = True  # half-open: this request is the probe
            if self._spent + estimate > self.config.tokens_per_hour:
                self._probing = False
                raise Unavailable("token budget spent")
            self._spent += estimate  # reserved now, so concurrent calls cannot overspend

    async def _settle(self, estimate: int, used: int | None, retry_after_s: float | None) -> None:
        async with self._lock:
            self._probing = False
            if used is not None:
                self._spent += used - estimate
                self._failures = 0
                return
            self._spent -= estimate  # nothing was generated
            self._failures += 1
            if retry_after_s is not None:
                self._open_until = self._clock() + retry_after_s
            elif self._failures >= self.config.failures_to_open:
                self._open_until = self._clock() + self.config.open_s

    async def complete(self, system: str, user: str) -> tuple[str, int]:
        """The model's answer to `user` and the tokens it cost.

        Raises:
            Unavailable: breaker open or budget spent (nothing was sent).
            LlmError: the server was down, too slow, answered non-2xx or without a message.
        """
        estimate = (len(system) + len(user)) // 4 + self.config.max_tokens
        await self._admit(estimate)
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "max_tokens": self.config.max_tokens,
            "response_format": {"type": "json_object"},
        }
        headers = {}
        if self.config.api_key is not None:
            headers["Authorization"] = f"Bearer {self.config.api_key.get_secret_value()}"
        url = self.config.base_url.rstrip("/") + "/v1/chat/completions"
        try:
            r = await self._http.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            await self._settle(estimate, None, None)
            raise LlmError(f"{type(exc).__name__} from the LLM server") from None
        if r.status_code == 429:
            await self._settle(estimate, None, _retry_after(r.headers.get("retry-after")))
            raise LlmError("rate limited (429)")
        try:
            r.raise_for_status()
            data = r.json()
            content = str(data["choices"][0]["message"]["content"])
        except (httpx.HTTPStatusError, ValueError, KeyError, IndexError, TypeError):
            await self._settle(estimate, None, None)
            raise LlmError(f"unusable answer (HTTP {r.status_code})") from None
        usage = data.get("usage") or {}
        used = usage.get("total_tokens")
        if not isinstance(used, int):
            used = (len(system) + len(user) + len(content)) // 4
        await self._settle(estimate, used, None)
        return content, used

    async def aclose(self) -> None:
        await self._http.aclose()


def _retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (seconds form); 1 s when absent or an HTTP date."""
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0
