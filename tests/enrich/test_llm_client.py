"""The chat client against a real local OpenAI-compatible HTTP server that records what it receives."""

from __future__ import annotations

import asyncio
import json

import pytest

from hub.enrich.llm.classify import TemplateClass, TemplateClassifier, keyword_class
from hub.enrich.llm.client import ChatClient, LlmError, Unavailable
from hub.enrich.llm.config import LlmConfig
from hub.enrich.llm.redact import Redactor
from hub.enrich.llm.service import IncidentEnricher
from tests.enrich.llm_server import ANSWER, FakeLlm, llm

__all__ = ["llm"]

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_answer_is_returned_with_its_usage_and_the_bearer_key(llm: FakeLlm) -> None:
    client = ChatClient(LlmConfig(base_url=llm.url, api_key="k-123"))  # type: ignore[arg-type]
    try:
        content, used = await client.complete("sys", "user text")
    finally:
        await client.aclose()
    assert (content, used, client.spent) == (ANSWER, 100, 100)
    assert llm.requests[0]["messages"][1] == {"role": "user", "content": "user text"}
    assert llm.headers_seen[0]["Authorization"] == "Bearer k-123"


async def test_429_opens_the_breaker_for_retry_after(llm: FakeLlm) -> None:
    clock = Clock()
    client = ChatClient(LlmConfig(base_url=llm.url), clock=clock)
    llm.mode = "429"
    try:
        with pytest.raises(LlmError, match="429"):
            await client.complete("s", "u")
        with pytest.raises(Unavailable):
            await client.complete("s", "u")
        assert len(llm.requests) == 1
        clock.now += 121
        llm.mode = "ok"
        assert (await client.complete("s", "u"))[1] == 100
    finally:
        await client.aclose()


async def test_server_down_opens_breaker_then_half_open_probe_closes_it(llm: FakeLlm) -> None:
    clock = Clock()
    client = ChatClient(LlmConfig(base_url=llm.url, failures_to_open=2, open_s=30), clock=clock)
    llm.mode = "garbage"
    try:
        for _ in range(2):
            with pytest.raises(LlmError, match="unusable"):
                await client.complete("s", "u")
        with pytest.raises(Unavailable, match="circuit"):
            await client.complete("s", "u")
        clock.now += 31
        llm.mode = "ok"
        await client.complete("s", "u")
        await client.complete("s", "u")  # closed again after the probe
        assert len(llm.requests) == 4
    finally:
        await client.aclose()


async def test_unreachable_server_is_an_llm_error() -> None:
    client = ChatClient(LlmConfig(base_url="http://127.0.0.1:9", timeout_s=2))
    try:
        with pytest.raises(LlmError):
            await client.complete("s", "u")
    finally:
        await client.aclose()


async def test_concurrent_calls_never_exceed_the_token_budget(llm: FakeLlm) -> None:
    # Each call reserves (2 // 4) + 100 = 100 tokens and costs 100: exactly 5 fit in 500.
    client = ChatClient(LlmConfig(base_url=llm.url, tokens_per_hour=500, max_tokens=100))
    try:
        results = await asyncio.gather(
            *(client.complete("s", "u") for _ in range(20)), return_exceptions=True
        )
    finally:
        await client.aclose()
    assert sum(1 for r in results if isinstance(r, tuple)) == 5
    assert all(isinstance(r, Unavailable) for r in results if not isinstance(r, tuple))
    assert len(llm.requests) == 5 and client.spent == 500


async def test_enricher_redacts_caches_and_falls_back_after_one_retry(llm: FakeLlm) -> None:
    client = ChatClient(LlmConfig(base_url=llm.url))
    enricher = IncidentEnricher(client, Redactor.build())
    alerts = ["link down on core1.dc2.example.com (10.1.2.3), owner ops@example.org"]
    try:
        first, prov = await enricher.enrich("Uplink lost", alerts)
        again, _ = await enricher.enrich("Uplink lost", alerts)
        sent = json.dumps(llm.requests)
        assert "10.1.2.3" not in sent and "example.com" not in sent and "ops@example.org" not in sent
        assert len(llm.requests) == 1 and again == first and not first.fallback and prov.tokens == 100
        llm.mode = "badjson"
        other, prov2 = await enricher.enrich("Disk full", ["sda1 at 99%"])
        assert len(llm.requests) == 3  # one retry, then the fallback
        assert other.fallback and prov2.fallback and other.summary == "Disk full: 1 alert(s): sda1 at 99%"
    finally:
        await client.aclose()


async def test_template_classification_is_asked_once_per_template(llm: FakeLlm) -> None:
    llm.mode = "class"
    client = ChatClient(LlmConfig(base_url=llm.url))
    classifier = TemplateClassifier(client, Redactor.build())
    try:
        for _ in range(3):
            got = await classifier.classify_template("Disk <*> write failed on 10.0.0.7")
        assert got == TemplateClass("error", "storage", "llm")
        assert len(llm.requests) == 1 and "10.0.0.7" not in json.dumps(llm.requests)
    finally:
        await client.aclose()
    assert keyword_class("FATAL kernel panic").severity == "critical"
    assert keyword_class("Receiving block <*>").severity == "info"


async def test_slow_server_times_out_and_opens_the_breaker(llm: FakeLlm) -> None:
    llm.mode = "slow"
    client = ChatClient(LlmConfig(base_url=llm.url, timeout_s=0.2, failures_to_open=1))
    try:
        with pytest.raises(LlmError, match="Timeout"):
            await client.complete("s", "u")
        with pytest.raises(Unavailable, match="circuit"):
            await client.complete("s", "u")
        assert len(llm.requests) == 1 and client.spent == 0
    finally:
        await client.aclose()


async def test_an_answer_over_the_size_bound_is_an_llm_error_not_a_read_into_memory(llm: FakeLlm) -> None:
    llm.mode = "huge"
    client = ChatClient(LlmConfig(base_url=llm.url))
    try:
        with pytest.raises(LlmError, match="ValueError"):
            await client.complete("s", "u")
        assert client.spent == 0
    finally:
        await client.aclose()
        await client.aclose()  # safe twice


async def test_enricher_without_any_answer_raises_instead_of_inventing_a_fallback() -> None:
    client = ChatClient(LlmConfig(base_url="http://127.0.0.1:9", timeout_s=2))
    enricher = IncidentEnricher(client, Redactor.build())
    try:
        with pytest.raises(LlmError):
            await enricher.enrich("Uplink lost", ["link down"])
    finally:
        await client.aclose()


async def test_a_moved_context_alone_is_answered_from_the_cache(llm: FakeLlm) -> None:
    client = ChatClient(LlmConfig(base_url=llm.url))
    enricher = IncidentEnricher(client, Redactor.build())
    try:
        first, prov = await enricher.enrich("Uplink lost", ["link down"], ["series x: last 3"])
        again, prov2 = await enricher.enrich("Uplink lost", ["link down"], ["series x: last 7"])
        grown, prov3 = await enricher.enrich("Uplink lost", ["link down", "bgp down"], ["series x: last 7"])
    finally:
        await client.aclose()
    assert len(llm.requests) == 2 and (again, prov2) == (first, prov) and enricher.cache_hits == 1
    assert prov.prompt_sha256 == enricher.cache_key("Uplink lost", ["link down"]) != prov3.prompt_sha256
