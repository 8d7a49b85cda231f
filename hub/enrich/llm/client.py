"""An OpenAI-compatible chat-completions client (OpenAI, Ollama, vLLM, llama.cpp server) with a circuit
breaker and a token budget, on the hub's one outbound HTTP stack (`hub.http_client`): one session per
client with a connection pool, the same explicit bounds (connect, socket read and a total per request),
redirects never followed, no proxy or netrc from the environment and answers bounded in size.

The breaker opens after `failures_to_open` failures in a row and lets one probe through after
`open_s`; a 429 opens it for the server's Retry-After. The budget counts the `usage` the server reports
(or an estimate, 4 characters a token, when it reports none) per hour; a request that would exceed it is
refused before it is sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from hub.enrich.llm.config import LlmConfig
from hub.http_client import HttpError, Session, new_session, parse_retry_after, post, safe_url

# Bigger answers are cut off: a chat answer of `max_tokens` is a few KB, so 1 MiB is a broken server.
MAX_ANSWER_BYTES = 1 << 20
_USER_AGENT = "outpost-hub-llm/1"
# How an LlmError names what went wrong (the names it used before hub.http_client; logs are read for them).
_FAILURES = {"connect": "ClientError", "timeout": "TimeoutError", "too_large": "ValueError"}


class LlmError(RuntimeError):
    """Raised when no answer can be had: breaker open, budget spent, server down, slow or failing."""


class Unavailable(LlmError):
    """Raised without sending when the breaker is open or the hour's token budget is spent."""


class ChatClient:
    """One chat completion at a time per call; safe to call from many tasks on one loop."""

    def __init__(self, config: LlmConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._http: Session | None = None
        self._failures = 0
        self._open_until = 0.0
        self._probing = False
        self._hour_start = clock()
        self._spent = 0
        self._lock = asyncio.Lock()
        # Since start, for /metrics: requests sent, of those failed, refused unsent, tokens used.
        self.requests = 0
        self.failures = 0
        self.refused = 0
        self.tokens = 0

    @property
    def spent(self) -> int:
        return self._spent

    async def _admit(self, estimate: int) -> None:
        async with self._lock:
            now = self._clock()
            if now - self._hour_start >= 3600:
                self._hour_start, self._spent = now, 0
            if self._open_until > now or self._probing:
                self.refused += 1
                raise Unavailable("circuit open")
            if self._failures >= self.config.failures_to_open:
                self._probing = True  # half-open: this request is the probe
            if self._spent + estimate > self.config.tokens_per_hour:
                self._probing = False
                self.refused += 1
                raise Unavailable("token budget spent")
            self.requests += 1
            self._spent += estimate  # reserved now, so concurrent calls cannot overspend

    async def _settle(self, estimate: int, used: int | None, retry_after_s: float | None) -> None:
        async with self._lock:
            self._probing = False
            if used is not None:
                self._spent += used - estimate
                self.tokens += used
                self._failures = 0
                return
            self._spent -= estimate  # nothing was generated
            self.failures += 1
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
        if self._http is None:
            self._http = new_session(self.config.timeout_s, _USER_AGENT)
        try:
            resp = await post(
                self._http, url, headers, json=body, total_s=self.config.timeout_s, max_bytes=MAX_ANSWER_BYTES
            )
        except HttpError as exc:
            await self._settle(estimate, None, None)
            failure = _FAILURES.get(exc.kind, exc.kind)
            raise LlmError(f"{failure} from the LLM server at {safe_url(url)}") from None
        status, raw = resp.status, resp.body
        if status == 429:
            wait_s = parse_retry_after(resp.headers.get("Retry-After"))
            await self._settle(estimate, None, 1.0 if wait_s is None else wait_s)
            raise LlmError("rate limited (429)")
        try:
            if not 200 <= status < 300:
                raise ValueError(status)
            data = json.loads(raw)
            content = str(data["choices"][0]["message"]["content"])
        except (ValueError, KeyError, IndexError, TypeError):
            await self._settle(estimate, None, None)
            raise LlmError(f"unusable answer (HTTP {status})") from None
        usage = data.get("usage")
        used = usage.get("total_tokens") if isinstance(usage, dict) else None
        if not isinstance(used, int):
            used = (len(system) + len(user) + len(content)) // 4
        await self._settle(estimate, used, None)
        return content, used

    async def aclose(self) -> None:
        """Closes the connection pool; safe without a request and safe twice."""
        http, self._http = self._http, None
        if http is not None:
            await http.close()
