"""The hub's LLM client and incident enricher against the real small model of `make llm` (SmolLM2-135M on
llama-cpp-python's OpenAI-compatible server, started from `.venv-llm` on a free port, stopped by PID).

A 135M model may or may not write a valid explanation: both outcomes are the product working, so each
test says which one it got and checks what that outcome promises (a schema-valid answer from the model,
or the marked deterministic fallback after exactly two tries), with the provenance of either.
Skipped unless `make llm` has built `.venv-llm`: its build compiles llama.cpp, never part of `make test`;
marked slow, since a small model on two shared cores still takes minutes for three answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.enrich.llm.classify import SEVERITIES, TemplateClassifier, keyword_class
from hub.enrich.llm.client import ChatClient
from hub.enrich.llm.config import LlmConfig
from hub.enrich.llm.redact import Redactor
from hub.enrich.llm.schema import Enrichment, fallback
from hub.enrich.llm.service import IncidentEnricher
from tests.support.procs import Service, free_port, start_service

ROOT = Path(__file__).resolve().parents[2]
LLM_VENV = ROOT / ".venv-llm"

pytestmark = [
    pytest.mark.llm,
    pytest.mark.integration,
    # 41 s alone on two loaded cores, 3 min beside another model server: past make test's budget, so
    # `make soak` and `pytest -m llm` run it, `make test` does not.
    pytest.mark.slow,
    pytest.mark.skipif(
        not (LLM_VENV / ".installed").is_file(),
        reason="no .venv-llm with the real model (make llm builds it)",
    ),
]

MODEL = "smollm2-135m"
TITLE = "Disk almost full on db-1.example.com"
ALERTS = ["critical firing disk_used_percent on db-1.example.com (10.1.2.3): 99.2 > 95"]
CONTEXT = ["log line seen 12x (error, storage): write failed: No space left on device"]


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The server `make llm` runs, on a free port; loading the 98 MB model takes seconds."""
    port = free_port()
    svc = start_service(
        "smollm2",
        [str(LLM_VENV / "bin" / "python"), str(ROOT / "packaging" / "serve_llm.py"), "--port", str(port)],
        tmp_path_factory.mktemp("smollm2"),
        port=port,
        ready_log=r"Uvicorn running on",
        timeout=120,
    )
    try:
        yield svc
    finally:
        svc.stop()


def _config(svc: Service, max_tokens: int) -> LlmConfig:
    # Two loaded cores generate tens of tokens a second: short answers and a generous timeout.
    return LlmConfig(
        enabled=True,
        base_url=f"http://127.0.0.1:{svc.port}",
        model=MODEL,
        timeout_s=120,
        max_tokens=max_tokens,
    )


async def test_an_incident_gets_a_schema_valid_answer_or_the_marked_fallback(smollm2: Service) -> None:
    client = ChatClient(_config(smollm2, max_tokens=160))
    redact = Redactor.build()
    enricher = IncidentEnricher(client, redact)
    try:
        enrichment, prov = await enricher.enrich(TITLE, ALERTS, CONTEXT)
    finally:
        await client.aclose()
    outcome = "fallback" if enrichment.fallback else "model answer"
    print(f"SmolLM2-135M gave a {outcome} after {client.requests} request(s): {enrichment!r}")
    assert client.failures == 0 and client.refused == 0
    assert (prov.model, prov.prompt_sha256, prov.fallback) == (
        MODEL,
        enricher.cache_key(TITLE, ALERTS),
        enrichment.fallback,
    )
    assert prov.tokens > 0 and prov.latency_ms > 0 and client.tokens == prov.tokens
    if enrichment.fallback:
        assert client.requests == 2  # the invalid answer was asked for once more
        assert enrichment == fallback(redact(TITLE), [redact(a) for a in ALERTS])
    else:
        assert client.requests in (1, 2)
        assert Enrichment.model_validate(enrichment.model_dump()) == enrichment
        assert enrichment.summary.strip() and 0.0 <= enrichment.confidence <= 1.0
        assert "10.1.2.3" not in enrichment.model_dump_json()  # redacted before it left: not echoed back


async def test_a_log_template_gets_a_model_class_or_the_keyword_one(smollm2: Service) -> None:
    client = ChatClient(_config(smollm2, max_tokens=48))
    classifier = TemplateClassifier(client, Redactor.build())
    template = "write failed on <*>: No space left on device"
    try:
        got = await classifier.classify_template(template)
    finally:
        await client.aclose()
    print(f"SmolLM2-135M classified {template!r} as {got}")
    assert client.requests == 1 and client.failures == 0
    if got.source == "llm":
        assert got.severity in SEVERITIES
    else:
        assert got == keyword_class(template)
